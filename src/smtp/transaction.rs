//! One SMTP transaction as the connection loop keeps it, from `MAIL` to the final dot:
//! the sender and what the sender check said, whether a data line was malformed, and
//! at the final dot the judgment (may it be answered?) and the store, awaited before
//! the reply: `250` once the mail is on disk (with whatever other mails arrived
//! meanwhile, in one commit), `451` when it could not be.

use std::net::IpAddr;

use mailin::{Action, Response};

use super::sender_auth::Verdict;
use super::{Intake, autoreply};
use crate::flows::signup_request::{self as signup, LinkRequest, Via};

/// The transaction under way.
#[derive(Default)]
pub struct Transaction {
    /// The `MAIL` command's sender; empty for the null sender.
    pub sender: String,
    /// What the sender check said (at `MAIL`, or at the final dot behind a relay).
    pub verdict: Option<Verdict>,
    /// A data line had a bare CR or LF.
    pub bad_newline: bool,
}

fn reply(code: u16, text: &str) -> Response {
    Response::custom(code, text.to_string())
}

/// An error reply after which the connection is closed.
fn reply_and_close(code: u16, text: &str) -> Response {
    let mut response = reply(code, text);
    response.action = Action::Close;
    response
}

/// A received message ready to be stored.
struct Received {
    sender: String,
    /// The member's side: the SMTP client, or behind a trusted relay its client.
    client_ip: Option<String>,
    smtp_client_ip: String,
    message_id: Option<String>,
    size: usize,
    suppressed: Option<&'static str>,
}

impl Transaction {
    /// The final dot: judges the message and stores it (or says why not), and answers.
    /// `message` is None when it was over the size limit.
    pub async fn finish(
        &mut self,
        intake: &Intake,
        ip: IpAddr,
        recipients: &[String],
        message: Option<Vec<u8>>,
    ) -> Response {
        if std::mem::take(&mut self.bad_newline) {
            return reply_and_close(554, "5.5.2 Bare CR or LF in the message is not allowed");
        }
        let Some(message) = message else {
            return reply_and_close(552, "5.3.4 Message too big for this address");
        };
        match self.judge(intake, ip, recipients, &message) {
            Ok(received) => store(intake, received).await,
            Err(response) => response,
        }
    }

    /// Everything about the message that needs no waiting: whether it may be answered,
    /// and the request to store. `Err` is the reply when it cannot be taken now.
    fn judge(
        &mut self,
        intake: &Intake,
        ip: IpAddr,
        recipients: &[String],
        message: &[u8],
    ) -> Result<Received, Response> {
        let config = &intake.config;
        let inspection = autoreply::inspect(message);
        let for_intake = recipients.iter().any(|r| config.is_intake_address(r));
        let sender = autoreply::check_sender(&self.sender, |a| {
            config.is_intake_address(a) || crate::address::same_mailbox(a, &config.mail.from)
        });
        let verdict = match (&sender, for_intake) {
            // The upstream MTA's `Authentication-Results` (in `upstream` mode), else
            // the check done by the loop.
            (Ok(_), true) => match intake.sender_auth.check_message(ip, message) {
                Verdict::Authentic => self.verdict.take().unwrap_or(Verdict::Authentic),
                other => other,
            },
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
        let client_ip = if config.smtp.trusted_relays.contains(&ip) {
            inspection.relayed_from
        } else {
            Some(ip)
        };
        Ok(Received {
            sender: self.sender.clone(),
            client_ip: client_ip.map(|ip| ip.to_string()),
            smtp_client_ip: ip.to_string(),
            message_id: inspection.message_id,
            size: message.len(),
            suppressed,
        })
    }
}

/// Stores the message's facts and queues its reply, or records why there is none.
async fn store(intake: &Intake, received: Received) -> Response {
    let config = intake.config.clone();
    let (sender, connected_from, size) = (
        received.sender.clone(),
        received.smtp_client_ip.clone(),
        received.size,
    );
    let stored = intake
        .db
        .write(move |tx| {
            let request = LinkRequest {
                via: Via::Mail,
                address: &received.sender,
                client_ip: received.client_ip.as_deref(),
                smtp_client_ip: Some(&received.smtp_client_ip),
                message_id: received.message_id.as_deref(),
                size: Some(received.size),
                suppressed: received.suppressed,
            };
            signup::request_link(tx, &config.limits, &config.mail.from, &request)
        })
        .await;
    match stored {
        Ok(outcome) => {
            tracing::info!(
                client = %connected_from,
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
