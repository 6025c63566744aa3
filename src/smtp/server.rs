//! The SMTP listener: our own tokio accept loop around `mailin`'s protocol state
//! machine. mailin-embedded served each connection on a fixed pool of threads with
//! 5-minute timeouts, so a few hundred idle connections could starve real senders; here
//! a connection is a task, and every limit an MTA facing the internet needs is ours:
//! connections in all and per client address, idle and whole-session timeouts, line
//! lengths, errors per session, no talking before the greeting, and no bare CR or LF in
//! a message (SMTP smuggling).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin::{Action, Response, SessionBuilder};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, timeout};

use super::Intake;
use super::handler::{Connection, Flags, NULL_SENDER_MARK};
use crate::shutdown::stopping;

/// RFC 5321 §4.5.3.1: 512 for a command line, 1000 for a text line; we allow more for
/// the sloppy senders out there, but not without bound.
const MAX_COMMAND_LINE: usize = 2048;
const MAX_DATA_LINE: usize = 16 * 1024;

/// Serves SMTP until `shutdown` turns true.
pub async fn serve(
    intake: Arc<Intake>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = Arc::new(ConnectionLimits::default());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, most likely: pause rather than spin.
                    tracing::warn!(error = %e, "smtp accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let ip = peer.ip();
        let config = &intake.config.smtp;
        let per_ip = if config.trusted_relays.contains(&ip) {
            usize::MAX
        } else {
            config.max_connections_per_ip
        };
        let slot = limits.admit(ip, config.max_connections, per_ip);
        let (intake, shutdown) = (intake.clone(), shutdown.clone());
        tokio::spawn(async move {
            let Some(_slot) = slot else {
                refuse_busy(stream).await;
                return;
            };
            if let Err(e) = session(intake, stream, ip, shutdown).await {
                tracing::debug!(client = %ip, error = %e, "smtp session ended with an error");
            }
        });
    }
    // Stopped accepting: sessions waiting for a command are told 421 at once, a message
    // being transferred is received and stored first.
    let deadline = Instant::now() + DRAIN_TIME;
    while limits.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if limits.open() > 0 {
        tracing::warn!(
            open = limits.open(),
            "smtp sessions still open at shutdown; closing them"
        );
    }
}

/// How long shutdown waits for SMTP sessions in the middle of a message.
const DRAIN_TIME: Duration = Duration::from_secs(8);

async fn refuse_busy(mut stream: TcpStream) {
    let refusal = b"421 4.7.0 Too many connections, try again later\r\n";
    let _ = timeout(Duration::from_secs(5), stream.write_all(refusal)).await;
}

/// Connections open, in all and per client address.
#[derive(Default)]
struct ConnectionLimits {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection's place; dropping it frees the place.
struct Slot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    fn admit(self: &Arc<Self>, ip: IpAddr, max_total: usize, max_per_ip: usize) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let from_ip = open.1.get(&ip).copied().unwrap_or(0);
        if open.0 >= max_total || from_ip >= max_per_ip {
            return None;
        }
        open.0 += 1;
        open.1.insert(ip, from_ip + 1);
        Some(Slot {
            limits: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 -= 1;
        if let Some(count) = open.1.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

enum LineRead {
    Line,
    TooLong,
    Eof,
}

/// Reads up to and including `\n`, giving up past `limit` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<LineRead> {
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(LineRead::Eof);
        }
        let (taken, complete) = match buffer.iter().position(|b| *b == b'\n') {
            Some(end) => (end + 1, true),
            None => (buffer.len(), false),
        };
        line.extend_from_slice(&buffer[..taken]);
        reader.consume(taken);
        if line.len() > limit {
            return Ok(LineRead::TooLong);
        }
        if complete {
            return Ok(LineRead::Line);
        }
    }
}

/// `MAIL FROM:<>` (a bounce), which mailin's parser refuses, with a mark the handler
/// reads as the null sender. Everything else passes unchanged.
fn mark_null_sender(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let upper = line.to_ascii_uppercase();
    let Some(rest) = upper.strip_prefix(b"MAIL FROM:") else {
        return line.into();
    };
    let rest_start = line.len() - rest.len();
    let spaces = rest.iter().take_while(|b| **b == b' ').count();
    if !rest[spaces..].starts_with(b"<>") {
        return line.into();
    }
    let mut rewritten = line[..rest_start + spaces].to_vec();
    rewritten.extend_from_slice(format!("<{NULL_SENDER_MARK}>").as_bytes());
    rewritten.extend_from_slice(&line[rest_start + spaces + 2..]);
    rewritten.into()
}

/// A data line that ends in bare LF or holds a bare CR: a smuggling attempt or a broken
/// sender; either way the message is refused.
fn bad_newline(line: &[u8]) -> bool {
    let Some(body) = line.strip_suffix(b"\r\n") else {
        return true;
    };
    body.contains(&b'\r') || body.contains(&b'\n')
}

async fn send(
    writer: &mut OwnedWriteHalf,
    response: &Response,
    limit: Duration,
) -> std::io::Result<()> {
    let bytes = response.buffer()?;
    match timeout(limit, writer.write_all(&bytes)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

fn reply(code: u16, text: &str) -> Response {
    Response::custom(code, text.to_string())
}

/// One connection, from the greeting to QUIT (or a limit).
async fn session(
    intake: Arc<Intake>,
    stream: TcpStream,
    ip: IpAddr,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let config = intake.config.smtp.clone();
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let idle = config.idle_timeout.0;
    // A sender that talks before our greeting is not an MTA waiting its turn.
    if let Ok(Ok(early)) = timeout(config.greeting_delay.0, reader.fill_buf()).await {
        if !early.is_empty() {
            send(
                &mut writer,
                &reply(554, "5.5.0 Protocol error: you talked before the greeting"),
                idle,
            )
            .await?;
        }
        return Ok(());
    }
    let flags = Arc::new(Flags::default());
    let handler = Connection::new(intake.clone(), ip, flags.clone());
    let mut smtp = SessionBuilder::new(config.hostname.clone()).build(ip, handler);
    send(&mut writer, &smtp.greeting(), idle).await?;
    let ends = Instant::now() + config.session_timeout.0;
    let (mut in_data, mut errors, mut line) = (false, 0u32, Vec::with_capacity(256));
    loop {
        line.clear();
        let limit = if in_data {
            MAX_DATA_LINE
        } else {
            MAX_COMMAND_LINE
        };
        let wait = idle.min(ends.saturating_duration_since(Instant::now()));
        let read = tokio::select! {
            read = timeout(wait, read_line(&mut reader, &mut line, limit)) => read,
            () = stopping(&mut shutdown), if !in_data => {
                send(&mut writer, &reply(421, "4.3.2 Service shutting down, try again later"), idle).await?;
                return Ok(());
            }
        };
        let response = match read {
            Err(_) => {
                send(
                    &mut writer,
                    &reply(421, "4.4.2 Timeout, closing connection"),
                    idle,
                )
                .await?;
                return Ok(());
            }
            Ok(Err(e)) => return Err(e),
            Ok(Ok(LineRead::Eof)) => return Ok(()),
            Ok(Ok(LineRead::TooLong)) => {
                send(&mut writer, &reply(500, "5.5.6 Line too long"), idle).await?;
                return Ok(());
            }
            Ok(Ok(LineRead::Line)) if in_data => {
                if line != b".\r\n" {
                    if bad_newline(&line) {
                        flags.bad_newline.store(true, Ordering::Relaxed);
                    }
                    smtp.process(&line);
                    continue;
                }
                in_data = false;
                // The final dot stores the message: SQLite, off the async threads' work.
                tokio::task::block_in_place(|| smtp.process(&line))
            }
            Ok(Ok(LineRead::Line)) => {
                let response = smtp.process(&mark_null_sender(&line));
                // MAIL set a sender to check (SPF and DMARC need DNS: done here, async).
                let pending = flags
                    .to_check
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                if let Some((helo, sender)) = pending {
                    let verdict = intake
                        .sender_auth
                        .check_envelope(ip, &helo, &sender, &config.hostname)
                        .await;
                    *flags.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(verdict);
                }
                response
            }
        };
        if response.code == 354 {
            in_data = true;
            flags.bad_newline.store(false, Ordering::Relaxed);
        }
        if response.is_error {
            errors += 1;
        }
        match response.action {
            Action::NoReply => continue,
            Action::Reply if errors < config.max_errors => {
                send(&mut writer, &response, idle).await?
            }
            Action::Reply => {
                send(&mut writer, &response, idle).await?;
                send(
                    &mut writer,
                    &reply(421, "4.7.0 Too many errors, closing connection"),
                    idle,
                )
                .await?;
                return Ok(());
            }
            // STARTTLS is not offered, so UpgradeTls cannot come; treat it as the end.
            Action::Close | Action::UpgradeTls => {
                send(&mut writer, &response, idle).await?;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_null_sender_is_marked_and_nothing_else_changes() {
        assert_eq!(
            &*mark_null_sender(b"MAIL FROM:<>\r\n"),
            format!("MAIL FROM:<{NULL_SENDER_MARK}>\r\n").as_bytes()
        );
        assert_eq!(
            &*mark_null_sender(b"mail from: <> SIZE=10\r\n"),
            format!("mail from: <{NULL_SENDER_MARK}> SIZE=10\r\n").as_bytes()
        );
        assert_eq!(
            &*mark_null_sender(b"MAIL FROM:<a@b.jp>\r\n"),
            b"MAIL FROM:<a@b.jp>\r\n"
        );
        assert_eq!(&*mark_null_sender(b"RCPT TO:<>\r\n"), b"RCPT TO:<>\r\n");
    }

    #[test]
    fn bare_newlines_are_caught() {
        assert!(!bad_newline(b"hello\r\n"));
        assert!(bad_newline(b"hello\n"));
        assert!(bad_newline(b"hel\rlo\r\n"));
        assert!(bad_newline(b"hello"));
    }

    #[test]
    fn limits_count_and_free_places() {
        let limits = Arc::new(ConnectionLimits::default());
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let first = limits.admit(a, 3, 2).unwrap();
        let _second = limits.admit(a, 3, 2).unwrap();
        assert!(limits.admit(a, 3, 2).is_none(), "per address");
        let _third = limits.admit(b, 3, 2).unwrap();
        assert!(limits.admit(b, 3, 2).is_none(), "in all");
        drop(first);
        assert!(limits.admit(a, 3, 2).is_some());
    }
}
