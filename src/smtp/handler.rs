//! The `mailin` state machine's side of a connection: it decides the protocol (command
//! order, syntax, who may receive) and tells the connection loop what it learned, as it
//! happens (`Event`), through a one-way channel. Everything else — the sender check,
//! the judgment of a message, storing it, the reply at the final dot — is the loop's
//! (`transaction`).
//!
//! `mailin` has no RSET hook, so a transaction is begun anew at `MAIL`.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;

use mailin::{Action, Handler, Response};

use super::Intake;
use crate::config::Config;

/// The envelope sender the server loop writes for `MAIL FROM:<>`, which `mailin`'s
/// parser would refuse; bounces must be accepted (and are never answered).
pub const NULL_SENDER_MARK: &str = "@null-sender";

/// What the state machine tells the loop.
pub enum Event {
    /// `MAIL` accepted: a new transaction; `sender` is empty for the null sender.
    Mail { helo: String, sender: String },
    /// The final dot: the transaction's recipients and message (None when it was over
    /// the size limit; what came was dropped as it came).
    Message {
        recipients: Vec<String>,
        message: Option<Vec<u8>>,
    },
}

/// One connection's protocol state.
pub struct Protocol {
    intake: Arc<Intake>,
    events: Sender<Event>,
    recipients: Vec<String>,
    message: Vec<u8>,
    oversized: bool,
}

impl Protocol {
    pub fn new(intake: Arc<Intake>, events: Sender<Event>) -> Protocol {
        Protocol {
            intake,
            events,
            recipients: Vec::new(),
            message: Vec::new(),
            oversized: false,
        }
    }

    fn is_closed(&self) -> bool {
        self.intake.closed.load(Ordering::Relaxed)
    }

    fn is_our_recipient(&self, to: &str) -> bool {
        let config = &self.intake.config;
        config.is_intake_address(to) || is_postmaster(config, to)
    }
}

fn reply(code: u16, text: &str) -> Response {
    Response::custom(code, text.to_string())
}

fn closing() -> Response {
    let mut response = reply(421, "4.3.2 Service shutting down, try again later");
    response.action = Action::Close;
    response
}

/// `postmaster` bare (RFC 5321 §4.5.1 says it must be accepted) or at one of the
/// intake addresses' domains; postmaster of any other domain is not ours.
fn is_postmaster(config: &Config, to: &str) -> bool {
    let (local, domain) = to.rsplit_once('@').unwrap_or((to, ""));
    let our_domain = domain.is_empty()
        || config.smtp.intake_addresses.iter().any(|intake| {
            intake
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
        });
    local.eq_ignore_ascii_case("postmaster") && our_domain
}

impl Handler for Protocol {
    fn helo(&mut self, _ip: IpAddr, _domain: &str) -> Response {
        if self.is_closed() {
            return closing();
        }
        mailin::response::OK
    }

    fn mail(&mut self, _ip: IpAddr, domain: &str, from: &str) -> Response {
        if self.is_closed() {
            return closing();
        }
        let sender = if from == NULL_SENDER_MARK { "" } else { from };
        self.recipients.clear();
        let _ = self.events.send(Event::Mail {
            helo: domain.to_string(),
            sender: sender.to_string(),
        });
        reply(250, "2.1.0 Ok")
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if !self.is_our_recipient(to) {
            return reply(550, "5.1.1 No such user here");
        }
        if self.recipients.len() >= 10 {
            return reply(452, "4.5.3 Too many recipients");
        }
        self.recipients.push(to.to_string());
        reply(250, "2.1.5 Ok")
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.recipients = to.to_vec();
        self.message.clear();
        self.oversized = false;
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.message.len() + buf.len() > self.intake.config.smtp.max_message_bytes {
            self.oversized = true;
            self.message = Vec::new();
        } else if !self.oversized {
            self.message.extend_from_slice(buf);
        }
        Ok(())
    }

    /// The loop answers the final dot itself (see `transaction`); this reply is not
    /// sent.
    fn data_end(&mut self) -> Response {
        let message = std::mem::take(&mut self.message);
        let _ = self.events.send(Event::Message {
            recipients: std::mem::take(&mut self.recipients),
            message: (!std::mem::take(&mut self.oversized)).then_some(message),
        });
        mailin::response::OK
    }
}
