//! A toy SMTP relay for the outbox's SMTP transport.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A toy SMTP relay for the outbox: refuses the first `refuse` mails with 451 at RCPT,
/// then accepts and keeps each message.
pub struct Relay {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<String>>>,
    pub refused: Arc<AtomicUsize>,
    /// The names clients gave in EHLO/HELO.
    pub greetings: Arc<Mutex<Vec<String>>>,
}

impl Relay {
    pub fn start(refuse: usize) -> Relay {
        Relay::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), refuse)
    }

    /// A relay whose mailbox `busy` answers 450 at RCPT every time (its other
    /// recipients are accepted).
    pub fn start_with_busy(busy: &str) -> Relay {
        Relay::start_serving(
            TcpListener::bind("127.0.0.1:0").unwrap(),
            0,
            Some(busy.to_string()),
        )
    }

    pub fn start_on(listener: TcpListener, refuse: usize) -> Relay {
        Relay::start_serving(listener, refuse, None)
    }

    fn start_serving(listener: TcpListener, refuse: usize, busy: Option<String>) -> Relay {
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let greetings = Arc::new(Mutex::new(Vec::new()));
        let (kept, count, names) = (received.clone(), refused.clone(), greetings.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let peer = Peer {
                    kept: &kept,
                    refused: &count,
                    greetings: &names,
                };
                let _ = relay_session(stream, &peer, refuse, busy.as_deref());
            }
        });
        Relay {
            addr,
            received,
            refused,
            greetings,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.received.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "relay got {} of {count} mails",
                self.received.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.received.lock().unwrap().clone()
    }
}

/// What a session records.
struct Peer<'a> {
    kept: &'a Mutex<Vec<String>>,
    refused: &'a AtomicUsize,
    greetings: &'a Mutex<Vec<String>>,
}

fn relay_session(
    stream: TcpStream,
    peer: &Peer,
    refuse: usize,
    busy: Option<&str>,
) -> std::io::Result<()> {
    let (kept, refused) = (peer.kept, peer.refused);
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 relay.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => {
                let name = line.get(5..).unwrap_or("").trim().to_string();
                peer.greetings.lock().unwrap().push(name);
                b"250 relay.test\r\n"
            }
            "MAIL" | "RSET" | "NOOP" => b"250 ok\r\n",
            "RCPT" if busy.is_some_and(|b| line.contains(b)) => {
                b"450 4.2.1 mailbox busy, try again later\r\n"
            }
            "RCPT" if refused.load(Ordering::SeqCst) < refuse => {
                refused.fetch_add(1, Ordering::SeqCst);
                b"451 4.3.0 try again later\r\n"
            }
            "RCPT" => b"250 ok\r\n",
            "DATA" => {
                writer.write_all(b"354 go ahead\r\n")?;
                let mut message = String::new();
                loop {
                    let mut data_line = String::new();
                    if reader.read_line(&mut data_line)? == 0 || data_line == ".\r\n" {
                        break;
                    }
                    message.push_str(&data_line);
                }
                kept.lock().unwrap().push(message);
                b"250 queued\r\n"
            }
            "QUIT" => {
                writer.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => b"502 unknown\r\n",
        };
        writer.write_all(reply)?;
    }
}
