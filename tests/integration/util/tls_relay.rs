//! A relay that insists on TLS (STARTTLS on 587, or implicit TLS as on 465) and AUTH
//! PLAIN, as a provider's submission server does: for the outbox's TLS and credentials.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

/// What the relay saw: the `user:password` it was given, and each message.
#[derive(Default)]
pub struct Seen {
    pub logins: Vec<String>,
    pub messages: Vec<String>,
}

pub struct TlsRelay {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
}

impl TlsRelay {
    /// `implicit`: TLS from the first byte (smtps); otherwise plain until STARTTLS.
    pub fn start(
        rt: &tokio::runtime::Runtime,
        cert: &Path,
        key: &Path,
        implicit: bool,
    ) -> TlsRelay {
        let certificate =
            karamail::tls::Certificate::load(cert.to_path_buf(), key.to_path_buf()).unwrap();
        let acceptor = certificate.acceptor().unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let kept = seen.clone();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (acceptor, kept) = (acceptor.clone(), kept.clone());
                tokio::spawn(async move {
                    let stream = if implicit {
                        stream
                    } else {
                        let mut plain = BufReader::new(stream);
                        if !greet_until_starttls(&mut plain).await {
                            return;
                        }
                        plain.into_inner()
                    };
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut tls = BufReader::new(tls);
                    if implicit {
                        let _ = tls.get_mut().write_all(b"220 relay.test ESMTP\r\n").await;
                    }
                    let _ = after_tls(tls, &kept).await;
                });
            }
        });
        TlsRelay { addr, seen }
    }
}

/// Before TLS only EHLO and STARTTLS are allowed.
async fn greet_until_starttls(stream: &mut BufReader<tokio::net::TcpStream>) -> bool {
    let _ = stream
        .get_mut()
        .write_all(b"220 relay.test ESMTP\r\n")
        .await;
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
            return false;
        }
        let reply: &[u8] = match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
            "EHLO" => b"250-relay.test\r\n250 STARTTLS\r\n",
            "STARTTLS" | "STAR" => {
                let _ = stream.get_mut().write_all(b"220 go ahead\r\n").await;
                return true;
            }
            _ => b"530 5.7.0 Must issue a STARTTLS command first\r\n",
        };
        let _ = stream.get_mut().write_all(reply).await;
    }
}

async fn after_tls<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: BufReader<S>,
    seen: &Mutex<Seen>,
) -> std::io::Result<()> {
    let mut authenticated = false;
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            b"250-relay.test\r\n250 AUTH PLAIN\r\n"
        } else if let Some(token) = line.strip_prefix("AUTH PLAIN ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token.trim())
                .unwrap_or_default();
            let parts: Vec<String> = decoded
                .split(|b| *b == 0)
                .map(|p| String::from_utf8_lossy(p).to_string())
                .collect();
            seen.lock().unwrap().logins.push(format!(
                "{}:{}",
                parts.get(1).cloned().unwrap_or_default(),
                parts.get(2).cloned().unwrap_or_default()
            ));
            authenticated = true;
            b"235 2.7.0 Authentication successful\r\n"
        } else if !authenticated && (upper.starts_with("MAIL") || upper.starts_with("RCPT")) {
            b"530 5.7.0 Authentication required\r\n"
        } else if upper.starts_with("DATA") {
            stream.get_mut().write_all(b"354 go ahead\r\n").await?;
            let mut message = String::new();
            loop {
                let mut data = String::new();
                if stream.read_line(&mut data).await? == 0 || data == ".\r\n" {
                    break;
                }
                message.push_str(&data);
            }
            seen.lock().unwrap().messages.push(message);
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            stream.get_mut().write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 ok\r\n"
        };
        stream.get_mut().write_all(reply).await?;
    }
}
