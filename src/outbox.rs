//! Mail out. Every mail is a row in `outbox` first; one worker sends due rows through
//! the configured transport (SMTP relay, or `.eml` files when there is none), retrying
//! with backoff. A mail's secrets (link tokens) are made at send time, so they are
//! never at rest in the queue.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::config::{Config, Transport};
use crate::db::{self, Db, outbox as queue};
use crate::error::{Error, Result};
use crate::mail::{Composed, Mailer};
use crate::token;

/// What a queued mail is; stored as JSON in `outbox.params` (never with a secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutgoingMail {
    /// 「利用登録手続きのご案内」 with a fresh sign-up link.
    SignupLink {
        in_reply_to: Option<String>,
        /// An answer to the member's mail (RFC 3834 `auto-replied`) rather than to a form.
        auto_replied: bool,
    },
    /// 「暗証キーのご案内」: a one-time key for a login attempt.
    LoginKey { attempt_id: i64 },
    /// 「パスワード再発行のご案内」: a link, the login ID and a temporary password.
    Reset { member_id: i64 },
    /// 「メールアドレス確認のご案内」: confirms an address a member is adding.
    EmailVerify { member_id: i64 },
    /// 「登録情報変更のお知らせ」: what changed, never the new value of a secret.
    ProfileChanged { change: String },
}

impl OutgoingMail {
    fn kind(&self) -> &'static str {
        match self {
            OutgoingMail::SignupLink { .. } => "signup_link",
            OutgoingMail::LoginKey { .. } => "login_key",
            OutgoingMail::Reset { .. } => "reset",
            OutgoingMail::EmailVerify { .. } => "email_verify",
            OutgoingMail::ProfileChanged { .. } => "profile_changed",
        }
    }
}

/// Queues a mail in the caller's transaction. The Message-ID is fixed now, so a retry
/// of the same mail carries the same one and receivers can tell it is not a new mail.
pub fn enqueue(
    conn: &Connection,
    mail: &OutgoingMail,
    recipient: &str,
    from: &str,
    now: i64,
) -> Result<i64> {
    let message_id = new_message_id(from, now);
    let params = serde_json::to_string(mail).map_err(|e| Error::Mail(e.to_string()))?;
    queue::insert(conn, mail.kind(), recipient, &params, &message_id, now)
}

/// A fresh `<time.random@domain-of-from>`.
pub fn new_message_id(from: &str, now: i64) -> String {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!("<{}.{}@{}>", now, &token::new_token()[..24], domain)
}

/// Where mail goes.
pub enum Sender {
    /// One `<outbox id>.eml` per mail, for machines without an MTA.
    Files(PathBuf),
    Relay(AsyncSmtpTransport<Tokio1Executor>),
}

/// Why a send failed, whether trying again could help, and whether the fault is the
/// mail's own or the transport's (then every mail would fail alike).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub permanent: bool,
    pub transport: bool,
    pub message: String,
}

impl SendError {
    /// Reads a relay's answer. Without a reply code (connect, TLS, timeout) or with one
    /// that speaks of the relay itself (421 closing, 454 TLS, 530/534/535/538
    /// authentication), the transport is at fault: every mail would fail alike, so the
    /// queue waits and no mail is marked failed for it. Any other 4xx (450 mailbox busy,
    /// 451, 452 at RCPT or DATA) is this mail's alone; any other 5xx refuses it for good.
    fn from_relay(error: &lettre::transport::smtp::Error) -> SendError {
        let code = error.status().map(|c| c.to_string());
        let relay_wide = matches!(
            code.as_deref(),
            None | Some("421" | "454" | "530" | "534" | "535" | "538")
        );
        SendError {
            permanent: !relay_wide && error.is_permanent(),
            transport: relay_wide,
            message: error.to_string(),
        }
    }
}

impl Sender {
    pub fn from_config(config: &Config) -> Result<Sender> {
        match config.mail.transport {
            Transport::File => {
                std::fs::create_dir_all(&config.mail.outbox_dir)?;
                Ok(Sender::Files(config.mail.outbox_dir.clone()))
            }
            Transport::Smtp => {
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.mail.relay)
                        .map_err(|e| Error::Mail(format!("[mail] relay: {e}")))?;
                if let Some(ca) = &config.mail.relay_ca {
                    builder = builder.tls(relay_tls(&config.mail.relay, ca)?);
                }
                // The name the relay sees (and may check against DNS) is ours, not the
                // machine's: `[smtp] hostname`, as in our own greeting.
                let hello = ClientId::Domain(config.smtp.hostname.clone());
                builder = builder.hello_name(hello);
                Ok(Sender::Relay(
                    builder.timeout(Some(Duration::from_secs(60))).build(),
                ))
            }
        }
    }

    /// What `from_config` would refuse, without creating anything.
    pub fn check(config: &Config) -> Result<()> {
        if config.mail.transport == Transport::Smtp {
            AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.mail.relay)
                .map_err(|e| Error::Mail(format!("[mail] relay: {e}")))?;
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        match self {
            Sender::Files(dir) => format!("as .eml files in {}", dir.display()),
            Sender::Relay(_) => "through the SMTP relay".to_string(),
        }
    }

    /// Sends one mail; with the file transport it becomes `{name}.eml`.
    pub async fn send(&self, name: &str, message: &Message) -> Result<(), SendError> {
        match self {
            Sender::Files(dir) => write_eml(dir, name, &message.formatted())
                .await
                .map_err(|e| SendError {
                    permanent: false,
                    transport: true,
                    message: format!("writing .eml: {e}"),
                }),
            Sender::Relay(transport) => transport
                .send(message.clone())
                .await
                .map(|_| ())
                .map_err(|e| SendError::from_relay(&e)),
        }
    }
}

/// TLS for the relay trusting `ca` besides the system's roots, in the URL's mode
/// (`smtps://`: TLS from the start; `smtp://…?tls=required`: STARTTLS).
fn relay_tls(relay: &str, ca: &Path) -> Result<Tls> {
    let pem = std::fs::read(ca)
        .map_err(|e| Error::Config(format!("[mail] relay_ca {}: {e}", ca.display())))?;
    let certificate = Certificate::from_pem(&pem)
        .map_err(|e| Error::Config(format!("[mail] relay_ca {}: {e}", ca.display())))?;
    let after_scheme = relay.split_once("://").map_or(relay, |(_, rest)| rest);
    let host_port = after_scheme
        .rsplit_once('@')
        .map_or(after_scheme, |(_, hp)| hp);
    let host = host_port
        .split([':', '/', '?'])
        .next()
        .unwrap_or("")
        .to_string();
    let parameters = TlsParameters::builder(host)
        .add_root_certificate(certificate)
        .build_rustls()
        .map_err(|e| Error::Config(format!("[mail] relay_ca: {e}")))?;
    Ok(if relay.starts_with("smtps://") {
        Tls::Wrapper(parameters)
    } else {
        Tls::Required(parameters)
    })
}

/// Writes the file whole or not at all (temporary name, fsync, rename), so a reader
/// never sees half a mail and a retry after a crash replaces rather than duplicates.
async fn write_eml(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let final_path = dir.join(format!("{name}.eml"));
    let temp_path = dir.join(format!(".{name}.eml.tmp"));
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::File::create(&temp_path)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp_path, &final_path)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The worker that empties the outbox.
pub struct Worker {
    pub db: Db,
    pub sender: Sender,
    pub mailer: Arc<Mailer>,
    pub wake: Arc<Notify>,
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Worker {
    /// Sends what is due, then sleeps until the next mail is due, a new one is queued
    /// (`wake`), or shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut failing = 0u32;
        loop {
            match self.send_due(&shutdown, &mut failing).await {
                Ok(()) => {}
                Err(e) => tracing::error!(error = %e, "outbox: cannot read the queue"),
            }
            if *shutdown.borrow() {
                return;
            }
            // While the transport fails, wait it out as a whole rather than trying
            // every queued mail against it.
            let wait = if failing > 0 {
                backoff(failing - 1, self.retry_initial, self.retry_max)
            } else {
                let next = self.db.call(|c| queue::next_due_at(c)).await.ok().flatten();
                next.map_or(Duration::from_secs(60), |at| {
                    Duration::from_secs((at - db::now()).clamp(0, 60) as u64)
                })
            };
            tokio::select! {
                _ = self.wake.notified(), if failing == 0 => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(200))) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Sends due mail oldest first until the queue is empty, the transport fails
    /// (`failing` counts the failures in a row), or shutdown.
    async fn send_due(&self, shutdown: &watch::Receiver<bool>, failing: &mut u32) -> Result<()> {
        loop {
            let due = self.db.call(|c| queue::due(c, db::now(), 50)).await?;
            if due.is_empty() {
                return Ok(());
            }
            for mail in due {
                if *shutdown.borrow() {
                    return Ok(());
                }
                match self.send_one(mail).await? {
                    Sent::Yes if *failing > 0 => {
                        // The transport is back: everything waiting goes now, in order.
                        *failing = 0;
                        let backlog = self.db.call(|c| queue::retry_all_now(c, db::now())).await?;
                        tracing::info!(backlog, "mail transport is back; sending the backlog");
                        break;
                    }
                    Sent::Yes | Sent::Never | Sent::MailLater => *failing = 0,
                    Sent::Later => {
                        *failing += 1;
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn send_one(&self, queued: queue::QueuedMail) -> Result<Sent> {
        let id = queued.id;
        let now = db::now();
        if let Some(life) = self.mailer.useful_life(&queued.kind)
            && now >= queued.created_at + life
        {
            let reason = format!("expired: not sent within {life} s of being queued");
            tracing::warn!(outbox_id = id, kind = %queued.kind, "mail expired unsent; never sent late");
            self.db
                .call(move |c| queue::mark_expired(c, id, &reason))
                .await?;
            return Ok(Sent::Never);
        }
        let result = match self.mailer.compose(&self.db, &queued).await {
            Ok(Composed::Mail(message)) => self.sender.send(&format!("{id:08}"), &message).await,
            Ok(Composed::Obsolete(reason)) => Err(SendError {
                permanent: true,
                transport: false,
                message: format!("not sent: {reason}"),
            }),
            // A mail that cannot be built (an address no sender takes) never will be;
            // it fails alone and the queue goes on.
            Err(e @ Error::Mail(_)) => Err(SendError {
                permanent: true,
                transport: false,
                message: format!("composing: {e}"),
            }),
            Err(e) => Err(SendError {
                permanent: false,
                transport: false,
                message: format!("composing: {e}"),
            }),
        };
        match result {
            Ok(()) => {
                tracing::info!(outbox_id = id, kind = %queued.kind, "mail sent");
                self.db.call(move |c| queue::mark_sent(c, id, now)).await?;
                Ok(Sent::Yes)
            }
            Err(error) if error.permanent => {
                tracing::warn!(outbox_id = id, error = %error.message, "mail refused for good; kept as failed");
                self.db
                    .call(move |c| queue::mark_failed(c, id, &error.message))
                    .await?;
                Ok(Sent::Never)
            }
            Err(error) => {
                let delay = backoff(queued.attempts, self.retry_initial, self.retry_max);
                tracing::warn!(outbox_id = id, error = %error.message, retry_in_s = delay.as_secs(), transport = error.transport, "mail not sent; will retry");
                let next = now + delay.as_secs() as i64;
                let transport = error.transport;
                self.db
                    .call(move |c| queue::mark_retry(c, id, next, &error.message))
                    .await?;
                Ok(if transport {
                    Sent::Later
                } else {
                    Sent::MailLater
                })
            }
        }
    }
}

/// What became of one attempt.
enum Sent {
    Yes,
    /// Refused for good (or nothing to send any more).
    Never,
    /// Not now, and not any mail: the transport failed; the queue waits.
    Later,
    /// Not now for this mail alone (its recipient's 450); the others go on.
    MailLater,
}

/// initial, 2×, 4×, … up to `max`.
fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    initial
        .saturating_mul(2u32.saturating_pow(attempts.min(20)))
        .min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (initial, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(backoff(0, initial, max).as_secs(), 30);
        assert_eq!(backoff(1, initial, max).as_secs(), 60);
        assert_eq!(backoff(3, initial, max).as_secs(), 240);
        assert_eq!(backoff(50, initial, max).as_secs(), 3600);
    }

    #[test]
    fn queued_mail_is_stored_without_secrets_and_with_its_own_message_id() {
        let db = Db::open_in_memory().unwrap();
        let mail = OutgoingMail::SignupLink {
            in_reply_to: Some("<a@b>".into()),
            auto_replied: true,
        };
        db.call_blocking(|c| {
            enqueue(c, &mail, "taro@example.jp", "noreply@example.jp", 100)?;
            enqueue(c, &mail, "taro@example.jp", "noreply@example.jp", 100)
        })
        .unwrap();
        let due = db.call_blocking(|c| queue::due(c, 100, 10)).unwrap();
        assert_eq!(due.len(), 2);
        assert_ne!(due[0].message_id, due[1].message_id);
        assert!(due[0].message_id.ends_with("@example.jp>"));
        assert_eq!(
            due[0].params,
            r#"{"kind":"signup_link","in_reply_to":"<a@b>","auto_replied":true}"#
        );
    }
}
