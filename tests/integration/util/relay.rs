//! A toy SMTP relay for the outbox's SMTP transport: a thread per session, as a real
//! relay serves several clients at once, answering as its `Behaviour` says.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Relay {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<String>>>,
    pub refused: Arc<AtomicUsize>,
    /// The names clients gave in EHLO/HELO.
    pub greetings: Arc<Mutex<Vec<String>>>,
    /// For each mail in `received`, the number of the session it came in.
    pub sessions: Arc<Mutex<Vec<usize>>>,
}

/// How the relay answers.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// The first this many RCPTs (over all sessions) get 451.
    pub refuse_rcpt: usize,
    /// This mailbox gets 450 at RCPT every time.
    pub busy: Option<String>,
    /// This mailbox's RCPT is answered only after the pause (a slow recipient).
    pub slow: Option<(String, Duration)>,
    /// The first this many MAIL FROMs get this reply (a relay refusing our sender).
    pub refuse_mail_from: Option<(usize, &'static str)>,
    /// The first this many RCPTs get this reply.
    pub rcpt_reply: Option<(usize, &'static str)>,
    /// A mail to this mailbox gets no answer after its final dot (a hung relay).
    pub hang_at_dot: Option<String>,
}

/// What the sessions share.
#[derive(Clone, Default)]
struct Shared {
    kept: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicUsize>,
    greetings: Arc<Mutex<Vec<String>>>,
    mail_froms: Arc<AtomicUsize>,
    rcpts: Arc<AtomicUsize>,
    kept_in: Arc<Mutex<Vec<usize>>>,
    sessions: Arc<AtomicUsize>,
}

impl Relay {
    /// Refuses the first `refuse` mails with 451 at RCPT, then accepts them all.
    pub fn start(refuse: usize) -> Relay {
        Relay::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), refuse)
    }

    /// A relay whose mailbox `busy` answers 450 at RCPT every time.
    pub fn start_with_busy(busy: &str) -> Relay {
        Relay::start_with(Behaviour {
            busy: Some(busy.to_string()),
            ..Behaviour::default()
        })
    }

    pub fn start_with(behaviour: Behaviour) -> Relay {
        Relay::serve(TcpListener::bind("127.0.0.1:0").unwrap(), behaviour)
    }

    pub fn start_on(listener: TcpListener, refuse: usize) -> Relay {
        let behaviour = Behaviour {
            refuse_rcpt: refuse,
            ..Behaviour::default()
        };
        Relay::serve(listener, behaviour)
    }

    fn serve(listener: TcpListener, behaviour: Behaviour) -> Relay {
        let addr = listener.local_addr().unwrap();
        let shared = Shared::default();
        let relay = Relay {
            addr,
            received: shared.kept.clone(),
            refused: shared.refused.clone(),
            greetings: shared.greetings.clone(),
            sessions: shared.kept_in.clone(),
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (shared, behaviour) = (shared.clone(), behaviour.clone());
                let number = shared.sessions.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || session(stream, number, &shared, &behaviour));
            }
        });
        relay
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
            std::thread::sleep(Duration::from_millis(20));
        }
        self.received.lock().unwrap().clone()
    }
}

/// Whether the `n`th event (counted in `counter`) is among the first `limit`.
fn among_first(counter: &AtomicUsize, limit: usize) -> bool {
    counter.fetch_add(1, Ordering::SeqCst) < limit
}

fn session(
    stream: TcpStream,
    number: usize,
    shared: &Shared,
    behaviour: &Behaviour,
) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 relay.test ESMTP\r\n")?;
    let (mut line, mut recipients) = (String::new(), String::new());
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let mentions = |who: &Option<String>| who.as_ref().is_some_and(|w| line.contains(w));
        let reply: String = match verb.as_str() {
            "EHLO" | "HELO" => {
                let name = line.get(5..).unwrap_or("").trim().to_string();
                shared.greetings.lock().unwrap().push(name);
                "250 relay.test\r\n".into()
            }
            "MAIL" => match behaviour.refuse_mail_from {
                Some((count, reply)) if among_first(&shared.mail_froms, count) => reply.into(),
                _ => "250 ok\r\n".into(),
            },
            "RSET" | "NOOP" => "250 ok\r\n".into(),
            "RCPT" if mentions(&behaviour.busy) => {
                "450 4.2.1 mailbox busy, try again later\r\n".into()
            }
            "RCPT" if mentions(&behaviour.slow.as_ref().map(|s| s.0.clone())) => {
                std::thread::sleep(behaviour.slow.as_ref().unwrap().1);
                "250 ok\r\n".into()
            }
            "RCPT"
                if behaviour
                    .rcpt_reply
                    .is_some_and(|(n, _)| among_first(&shared.rcpts, n)) =>
            {
                behaviour.rcpt_reply.unwrap().1.into()
            }
            "RCPT" if shared.refused.load(Ordering::SeqCst) < behaviour.refuse_rcpt => {
                shared.refused.fetch_add(1, Ordering::SeqCst);
                "451 4.3.0 try again later\r\n".into()
            }
            "RCPT" => {
                recipients.push_str(&line);
                "250 ok\r\n".into()
            }
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
                if mentions(&behaviour.hang_at_dot)
                    || behaviour
                        .hang_at_dot
                        .as_ref()
                        .is_some_and(|h| recipients.contains(h))
                {
                    std::thread::sleep(Duration::from_secs(30));
                    return Ok(());
                }
                recipients.clear();
                // Both under one lock: the two lists stay in step.
                let mut kept = shared.kept.lock().unwrap();
                kept.push(message);
                shared.kept_in.lock().unwrap().push(number);
                "250 queued\r\n".into()
            }
            "QUIT" => {
                writer.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => "502 unknown\r\n".into(),
        };
        writer.write_all(reply.as_bytes())?;
    }
}
