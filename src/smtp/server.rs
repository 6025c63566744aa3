//! The SMTP listener: our own tokio accept loop around `mailin`'s protocol state
//! machine. mailin-embedded served each connection on a fixed pool of threads with
//! 5-minute timeouts, so a few hundred idle connections could starve real senders; here
//! a connection is a task, and every limit an MTA facing the internet needs is ours:
//! connections in all and per client address, idle and whole-session timeouts, line
//! lengths, errors per session, no talking before the greeting, and no bare CR or LF in
//! a message (SMTP smuggling).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use mailin::{Action, Response, SessionBuilder};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsAcceptor;

use super::Intake;
use super::autoreply;
use super::handler::{Event, NULL_SENDER_MARK, Protocol};
use super::relayed::Relayed;
use super::sender_auth::Verdict;
use super::transaction::Transaction;
use crate::connections::{Caps, Connections, Place};
use crate::shutdown::stopping;

/// RFC 5321 §4.5.3.1: 512 for a command line, 1000 for a text line; we allow more for
/// the sloppy senders out there, but not without bound.
const MAX_COMMAND_LINE: usize = 2048;
const MAX_DATA_LINE: usize = 16 * 1024;

/// Serves SMTP until `shutdown` turns true.
pub async fn serve(
    intake: Arc<Intake>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = Arc::new(Connections::default());
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
        let caps = Caps {
            total: config.max_connections,
            per_ip: config.max_connections_per_ip,
            per_network: config.max_connections_per_network,
        };
        let place = limits.admit(ip, caps, config.trusted_relays.contains(&ip));
        let (intake, shutdown, tls) = (intake.clone(), shutdown.clone(), tls.clone());
        tokio::spawn(async move {
            let Ok(place) = place else {
                refuse_busy(stream).await;
                return;
            };
            if let Err(e) = session(intake, stream, ip, place, shutdown, tls).await {
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

/// Longest a reply may wait for the client to take it: one that does not read holds
/// its place no longer than this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    response: &Response,
    limit: Duration,
) -> std::io::Result<()> {
    let limit = limit.min(WRITE_TIMEOUT);
    let bytes = response.buffer()?;
    let write = async {
        writer.write_all(&bytes).await?;
        writer.flush().await
    };
    match timeout(limit, write).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

fn reply(code: u16, text: &str) -> Response {
    Response::custom(code, text.to_string())
}

/// One connection, from the greeting to QUIT (or a limit), upgraded to TLS on STARTTLS
/// when a certificate is configured.
async fn session(
    intake: Arc<Intake>,
    stream: TcpStream,
    ip: IpAddr,
    place: Place,
    shutdown: watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
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
    let (tell, events) = std::sync::mpsc::channel();
    let mut builder = SessionBuilder::new(config.hostname.clone());
    if tls.is_some() {
        builder.enable_start_tls();
    }
    let smtp = builder.build(ip, Protocol::new(intake.clone(), tell));
    send(&mut writer, &smtp.greeting(), idle).await?;
    let ends = Instant::now() + config.session_timeout.0;
    let mut talk = Conversation {
        intake,
        ip,
        smtp,
        events,
        transaction: Transaction::default(),
        config,
        ends,
        errors: 0,
        shutdown,
        relayed: Relayed::default(),
        place,
    };
    if talk.run(&mut reader, &mut writer).await? == After::Done {
        return Ok(());
    }
    let Some(acceptor) = tls else { return Ok(()) };
    // Anything the client sent after STARTTLS but before the handshake would be taken as
    // said over TLS: refuse it (the STARTTLS command-injection attack).
    if !reader.buffer().is_empty() {
        return Ok(());
    }
    let stream = reader
        .into_inner()
        .reunite(writer)
        .map_err(std::io::Error::other)?;
    let tls_stream = match timeout(idle, acceptor.accept(stream)).await {
        Ok(result) => result?,
        Err(_) => return Ok(()),
    };
    talk.smtp.tls_active();
    let (reader, mut writer) = tokio::io::split(tls_stream);
    talk.run(&mut BufReader::new(reader), &mut writer).await?;
    Ok(())
}

#[derive(PartialEq, Eq)]
enum After {
    Done,
    StartTls,
}

/// What a session keeps across a STARTTLS upgrade.
struct Conversation {
    intake: Arc<Intake>,
    ip: IpAddr,
    smtp: mailin::Session<Protocol>,
    /// What the state machine learned (`handler`), taken after each line it processed.
    events: std::sync::mpsc::Receiver<Event>,
    transaction: Transaction,
    config: crate::config::SmtpConfig,
    ends: Instant,
    errors: u32,
    shutdown: watch::Receiver<bool>,
    relayed: Relayed,
    /// Its place among the listener's connections: idle while it waits for a command.
    place: Place,
}

impl Conversation {
    /// Reads commands and data and answers them, until the session ends or asks for TLS.
    async fn run<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &mut self,
        reader: &mut BufReader<R>,
        writer: &mut W,
    ) -> std::io::Result<After> {
        let idle = self.config.idle_timeout.0;
        let (mut in_data, mut line) = (false, Vec::with_capacity(256));
        loop {
            line.clear();
            let limit = if in_data {
                MAX_DATA_LINE
            } else {
                MAX_COMMAND_LINE
            };
            let wait = idle.min(self.ends.saturating_duration_since(Instant::now()));
            if !in_data {
                self.place.idle();
            }
            let read = tokio::select! {
                read = timeout(wait, read_line(reader, &mut line, limit)) => read,
                () = stopping(&mut self.shutdown), if !in_data => {
                    send(writer, &reply(421, "4.3.2 Service shutting down, try again later"), idle).await?;
                    return Ok(After::Done);
                }
                // Every place is taken and this one has waited longest: a new client
                // needs it.
                () = self.place.asked_to_close(), if !in_data => {
                    send(writer, &reply(421, "4.7.0 Too many connections: closing idle ones, try again later"), idle).await?;
                    return Ok(After::Done);
                }
            };
            self.place.busy();
            let response = match read {
                Err(_) => {
                    send(
                        writer,
                        &reply(421, "4.4.2 Timeout, closing connection"),
                        idle,
                    )
                    .await?;
                    return Ok(After::Done);
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(LineRead::Eof)) => return Ok(After::Done),
                Ok(Ok(LineRead::TooLong)) => {
                    send(writer, &reply(500, "5.5.6 Line too long"), idle).await?;
                    return Ok(After::Done);
                }
                Ok(Ok(LineRead::Line)) if in_data => {
                    if line != b".\r\n" {
                        if bad_newline(&line) {
                            self.transaction.bad_newline = true;
                        }
                        self.relayed.data_line(&line);
                        self.smtp.process(&line);
                        continue;
                    }
                    in_data = false;
                    self.check_relayed_sender().await;
                    // The final dot: the transaction judges the message, the store is
                    // awaited like any other future, and its answer is the reply.
                    let protocol_reply = self.smtp.process(&line);
                    match self.events.try_recv() {
                        Ok(Event::Message {
                            recipients,
                            message,
                        }) => {
                            let (intake, ip) = (&self.intake, self.ip);
                            self.transaction
                                .finish(intake, ip, &recipients, message)
                                .await
                        }
                        _ => protocol_reply,
                    }
                }
                Ok(Ok(LineRead::Line)) => self.command(&line).await,
            };
            if response.code == 354 {
                in_data = true;
                self.relayed.start_data();
                self.transaction.bad_newline = false;
            }
            if response.is_error {
                self.errors += 1;
            }
            match response.action {
                Action::NoReply => continue,
                Action::Reply if self.errors < self.config.max_errors => {
                    send(writer, &response, idle).await?
                }
                Action::Reply => {
                    send(writer, &response, idle).await?;
                    send(
                        writer,
                        &reply(421, "4.7.0 Too many errors, closing connection"),
                        idle,
                    )
                    .await?;
                    return Ok(After::Done);
                }
                Action::Close => {
                    send(writer, &response, idle).await?;
                    return Ok(After::Done);
                }
                Action::UpgradeTls => {
                    send(writer, &response, idle).await?;
                    return Ok(After::StartTls);
                }
            }
        }
    }

    /// A command line; after MAIL, a new transaction and its sender check.
    async fn command(&mut self, line: &[u8]) -> Response {
        let response = self.smtp.process(&mark_null_sender(line));
        while let Ok(event) = self.events.try_recv() {
            if let Event::Mail { helo, sender } = event {
                self.begin(helo, sender).await;
            }
        }
        response
    }

    /// A new transaction. The sender check needs DNS (SPF and DMARC: async here); behind
    /// a trusted relay it waits for the relay's record of its client, at the final dot.
    async fn begin(&mut self, helo: String, sender: String) {
        self.relayed.sender = None;
        self.transaction = Transaction {
            sender: sender.clone(),
            ..Transaction::default()
        };
        if sender.is_empty() {
            return;
        }
        if self.config.trusted_relays.contains(&self.ip) && self.intake.sender_auth.checks_spf() {
            self.relayed.sender = Some(sender);
            return;
        }
        let verdict = self
            .intake
            .sender_auth
            .check_envelope(self.ip, &helo, &sender, &self.config.hostname)
            .await;
        self.transaction.verdict = Some(verdict);
    }

    /// At the final dot of a relayed message: SPF for the client the relay recorded
    /// (its address and HELO); no such record from a trusted relay is not believed.
    async fn check_relayed_sender(&mut self) {
        let Some(sender) = self.relayed.sender.take() else {
            return;
        };
        let verdict = match autoreply::relayed_client(&self.relayed.header) {
            Some((helo, client)) => {
                self.intake
                    .sender_auth
                    .check_envelope(client, &helo, &sender, &self.config.hostname)
                    .await
            }
            None => Verdict::Forged("no_relay_record"),
        };
        self.transaction.verdict = Some(verdict);
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
}
