//! One SMTP transaction as the connection loop keeps it, from `MAIL` to the final dot:
//! the sender and what the sender check said, whether a data line was malformed, and
//! at the final dot the judgment (may it be answered?) and the store, awaited before
//! the reply: `250` once the mail is on disk (with whatever other mails arrived
//! meanwhile, in one commit), `451` when it could not be.

use std::net::IpAddr;

use mailin::{Action, Response};

use super::sender_auth::Verdict;
use super::{Intake, autoreply, robot};
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

fn try_later() -> Response {
    reply_and_close(
        451,
        "4.4.3 Cannot check the sender now, please try again later",
    )
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
    /// What the robot rule that suppressed it saw, for the log.
    robot_evidence: Option<String>,
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
        // Reading a whole message (up to the size limit) is CPU work: off the threads
        // that serve every other connection and page.
        let (sender, off) = (self.sender.clone(), intake.robot_rules_off.clone());
        let classified = tokio::task::spawn_blocking(move || {
            (robot::classify_except(&sender, &message, &off), message)
        })
        .await;
        let Ok((robot, message)) = classified else {
            tracing::error!("the robot check stopped; answered 451");
            return reply_and_close(451, "4.3.0 Temporary local problem, please try again later");
        };
        match self.judge(intake, ip, recipients, &message, robot) {
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
        robot: Option<robot::Sign>,
    ) -> Result<Received, Response> {
        let config = &intake.config;
        let inspection = autoreply::inspect(message);
        let for_intake = recipients.iter().any(|r| config.is_intake_address(r));
        let sender = autoreply::check_sender(&self.sender, |a| {
            config.is_intake_address(a) || crate::address::same_mailbox(a, &config.mail.from)
        });
        // A sender no reply could go to (or our own) is named first; a machine's mail
        // gets no reply whoever sent it, so its sender is not checked further (nor made
        // to wait for DNS, which a bounce would retry).
        let suppressed = match (for_intake, &robot, sender) {
            (false, _, _) => Some("postmaster_only"),
            (true, _, Err(reason)) => Some(reason),
            (true, Some(sign), Ok(_)) => Some(sign.rule.as_str()),
            (true, None, Ok(_)) => match self.sender_verdict(intake, ip, message) {
                Verdict::Authentic => None,
                Verdict::Forged(reason) => Some(reason),
                Verdict::TryLater => return Err(try_later()),
            },
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
            robot_evidence: robot
                .filter(|sign| suppressed == Some(sign.rule.as_str()))
                .map(|sign| sign.evidence),
            suppressed,
        })
    }

    /// The upstream MTA's `Authentication-Results` (in `upstream` mode), else the
    /// check done by the loop.
    fn sender_verdict(&mut self, intake: &Intake, ip: IpAddr, message: &[u8]) -> Verdict {
        match intake.sender_auth.check_message(ip, message) {
            Verdict::Authentic => self.verdict.take().unwrap_or(Verdict::Authentic),
            other => other,
        }
    }
}

/// Stores the message's facts and queues its reply, or records why there is none.
async fn store(intake: &Intake, received: Received) -> Response {
    let config = intake.config.clone();
    let (sender, connected_from, size, evidence) = (
        received.sender.clone(),
        received.smtp_client_ip.clone(),
        received.size,
        received.robot_evidence.clone(),
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
                robot = evidence.as_deref(),
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
