//! One SMTP transaction as the `mailin` state machine drives it: who may receive, the
//! size limit, and the moment of truth at the final dot, when the message's facts and
//! its reply are stored (`store`, awaited by the server loop) before the 250.
//!
//! `mailin` has no RSET hook, so all per-transaction state is reset at `MAIL` and
//! `DATA`; an error reply from `data_end` would leave its session in DATA state, so
//! every such reply also closes the connection.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mailin::{Action, Handler, Response};

use super::sender_auth::Verdict;
use super::{Intake, autoreply};
use crate::config::Config;
use crate::flows::signup_request::{self as signup, LinkRequest, Via};

/// The envelope sender the server loop writes for `MAIL FROM:<>`, which `mailin`'s
/// parser would refuse; bounces must be accepted (and are never answered).
pub const NULL_SENDER_MARK: &str = "@null-sender";

/// One SMTP connection's state.
pub struct Connection {
    intake: Arc<Intake>,
    client_ip: Option<IpAddr>,
    sender: String,
    recipients: Vec<String>,
    message: Vec<u8>,
    oversized: bool,
    flags: Arc<Flags>,
}

/// What the server loop and the handler share about one connection.
#[derive(Default)]
pub struct Flags {
    /// A data line had a bare CR or LF.
    pub bad_newline: AtomicBool,
    /// Set at MAIL: (HELO name, sender) for the server loop to check, asynchronously.
    pub to_check: Mutex<Option<(String, String)>>,
    /// What that check said about the current sender.
    pub verdict: Mutex<Option<Verdict>>,
    /// Set at the final dot: the message to store, for the server loop to await.
    pub prepared: Mutex<Option<Prepared>>,
}

impl Connection {
    pub fn new(intake: Arc<Intake>, client_ip: IpAddr, flags: Arc<Flags>) -> Connection {
        Connection {
            intake,
            client_ip: Some(client_ip),
            sender: String::new(),
            recipients: Vec::new(),
            message: Vec::new(),
            oversized: false,
            flags,
        }
    }
}

fn reply(code: u16, text: &str) -> Response {
    Response::custom(code, text.to_string())
}

/// An error reply after which the connection is closed (see the module comment).
fn reply_and_close(code: u16, text: &str) -> Response {
    let mut response = reply(code, text);
    response.action = Action::Close;
    response
}

fn closing() -> Response {
    reply_and_close(421, "4.3.2 Service shutting down, try again later")
}

impl Connection {
    fn is_closed(&self) -> bool {
        self.intake.closed.load(Ordering::Relaxed)
    }

    fn is_our_recipient(&self, to: &str) -> bool {
        let config = &self.intake.config;
        config.is_intake_address(to) || is_postmaster(config, to)
    }

    /// Stores the message's facts and queues the reply, or says why there is none.
    /// The sender check: done by the server loop at MAIL, or here from the upstream
    /// MTA's `Authentication-Results`.
    fn verdict(&self, ip: IpAddr) -> Verdict {
        let from_loop = self
            .flags
            .verdict
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match self.intake.sender_auth.check_message(ip, &self.message) {
            Verdict::Authentic => from_loop.unwrap_or(Verdict::Authentic),
            other => other,
        }
    }

    /// Everything about the message that needs no waiting: whether it may be answered,
    /// and the request to store. `Err` is the reply when it cannot be taken now.
    fn prepare(&mut self) -> Result<Prepared, Response> {
        let config = &self.intake.config;
        let inspection = autoreply::inspect(&self.message);
        let for_intake = self.recipients.iter().any(|r| config.is_intake_address(r));
        let sender = autoreply::check_sender(&self.sender, |a| {
            config.is_intake_address(a) || crate::address::same_mailbox(a, &config.mail.from)
        });
        let verdict = match self.client_ip {
            Some(ip) if sender.is_ok() && for_intake => self.verdict(ip),
            _ => Verdict::Authentic,
        };
        let suppressed = match (&sender, for_intake, verdict) {
            (_, false, _) => Some("postmaster_only"),
            (Err(reason), _, _) => Some(*reason),
            (Ok(_), true, Verdict::TryLater) => {
                return Err(reply_and_close(
                    451,
                    "4.4.3 Cannot check the sender now, please try again later",
                ));
            }
            (Ok(_), true, Verdict::Forged(reason)) => Some(reason),
            (Ok(_), true, Verdict::Authentic) => inspection.no_reply,
        };
        let client_ip = self.client_ip.and_then(|ip| {
            if config.smtp.trusted_relays.contains(&ip) {
                inspection.relayed_from
            } else {
                Some(ip)
            }
        });
        Ok(Prepared {
            sender: self.sender.clone(),
            client_ip: client_ip.map(|ip| ip.to_string()),
            smtp_client_ip: self.client_ip.map(|ip| ip.to_string()),
            message_id: inspection.message_id,
            size: self.message.len(),
            suppressed,
        })
    }
}

/// A received message ready to be stored (at the final dot, before the reply).
pub struct Prepared {
    sender: String,
    client_ip: Option<String>,
    smtp_client_ip: Option<String>,
    message_id: Option<String>,
    size: usize,
    suppressed: Option<&'static str>,
}

/// Stores the message's facts and queues its reply, or records why there is none, and
/// answers: `250` once that is on disk — with whatever other mails arrived meanwhile, in
/// one commit (`Db::write`) — or `451` when it could not be.
pub async fn store(intake: &Intake, prepared: Prepared) -> Response {
    let config = intake.config.clone();
    let (sender, connected_from, size) = (
        prepared.sender.clone(),
        prepared.smtp_client_ip.clone(),
        prepared.size,
    );
    let stored = intake
        .db
        .write(move |conn| {
            let request = LinkRequest {
                via: Via::Mail,
                address: &prepared.sender,
                client_ip: prepared.client_ip.as_deref(),
                smtp_client_ip: prepared.smtp_client_ip.as_deref(),
                message_id: prepared.message_id.as_deref(),
                size: Some(prepared.size),
                suppressed: prepared.suppressed,
            };
            signup::request_link(conn, &config.limits, &config.mail.from, &request)
        })
        .await;
    match stored {
        Ok(outcome) => {
            tracing::info!(
                client = connected_from.as_deref().unwrap_or("-"),
                sender = %sender,
                outcome = outcome.as_str(),
                size,
                "mail received"
            );
            reply(250, "2.0.0 Ok: queued")
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store a received mail; answered 451");
            reply_and_close(451, "4.3.0 Temporary local problem, please try again later")
        }
    }
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

impl Handler for Connection {
    fn helo(&mut self, ip: IpAddr, _domain: &str) -> Response {
        if self.is_closed() {
            return closing();
        }
        self.client_ip = Some(ip);
        mailin::response::OK
    }

    fn mail(&mut self, ip: IpAddr, domain: &str, from: &str) -> Response {
        if self.is_closed() {
            return closing();
        }
        self.client_ip = Some(ip);
        self.sender = if from == NULL_SENDER_MARK {
            String::new()
        } else {
            from.to_string()
        };
        self.recipients.clear();
        let check = (!self.sender.is_empty()).then(|| (domain.to_string(), self.sender.clone()));
        *self
            .flags
            .to_check
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = check;
        *self.flags.verdict.lock().unwrap_or_else(|p| p.into_inner()) = None;
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

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.sender = if from == NULL_SENDER_MARK {
            String::new()
        } else {
            from.to_string()
        };
        self.recipients = to.to_vec();
        self.message.clear();
        self.oversized = false;
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.message.len() + buf.len() > self.intake.config.smtp.max_message_bytes {
            self.oversized = true;
            self.message.clear();
            self.message.shrink_to(0);
        } else if !self.oversized {
            self.message.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if self.flags.bad_newline.load(Ordering::Relaxed) {
            self.message.clear();
            return reply_and_close(554, "5.5.2 Bare CR or LF in the message is not allowed");
        }
        if self.oversized {
            self.oversized = false;
            return reply_and_close(552, "5.3.4 Message too big for this address");
        }
        // A transaction under way at shutdown is finished; only new ones get 421. The
        // store itself is awaited by the server loop (`store`), which replaces this
        // placeholder with its answer.
        let response = match self.prepare() {
            Ok(prepared) => {
                *self
                    .flags
                    .prepared
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(prepared);
                reply(250, "2.0.0 Ok: queued")
            }
            Err(response) => response,
        };
        self.message.clear();
        response
    }
}
