//! Where mail goes: `.eml` files in a folder (a machine with no MTA), or the relay, over
//! connections the worker's lanes keep open between mails.

use std::path::{Path, PathBuf};

use lettre::Message;
use lettre::transport::smtp::client::AsyncSmtpConnection;

use super::relay::{self, Relay};
use crate::config::{Config, Transport};
use crate::error::Result;

pub enum Sender {
    /// One `<outbox id>.eml` per mail, for machines without an MTA.
    Files(PathBuf),
    Relay(Relay),
}

/// Why a send failed, whether trying again could help, and whether the fault is the
/// mail's own or the transport's (then every mail would fail alike).
#[derive(Debug, Clone, Default, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub permanent: bool,
    pub transport: bool,
    pub message: String,
    /// A refusal at RCPT on policy grounds (enhanced status 5.7.x, 5.1.7, 5.1.8):
    /// this mail's, or — when mails to other domains meet it too — the relay's.
    pub policy: Option<String>,
}

/// One lane of sending: for the relay, a connection opened at its first mail and kept
/// for the next ones.
#[derive(Default)]
pub struct Lane {
    connection: Option<AsyncSmtpConnection>,
}

impl Sender {
    pub fn from_config(config: &Config) -> Result<Sender> {
        match config.mail.transport {
            Transport::File => {
                crate::files::create_private_dir(&config.mail.outbox_dir)?;
                crate::files::make_private(&config.mail.outbox_dir);
                Ok(Sender::Files(config.mail.outbox_dir.clone()))
            }
            Transport::Smtp => Ok(Sender::Relay(relay_of(config)?)),
        }
    }

    /// What `from_config` would refuse, without creating anything.
    pub fn check(config: &Config) -> Result<()> {
        if config.mail.transport == Transport::Smtp {
            relay_of(config)?;
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        match self {
            Sender::Files(dir) => format!("as .eml files in {}", dir.display()),
            Sender::Relay(_) => "through the SMTP relay".to_string(),
        }
    }

    /// How many mails may be under way at once: files are written one by one.
    pub fn lanes(&self, configured: usize) -> usize {
        match self {
            Sender::Files(_) => 1,
            Sender::Relay(_) => configured.max(1),
        }
    }

    /// Sends one mail on `lane`; with the file transport it becomes `{name}.eml`.
    pub async fn send(
        &self,
        lane: &mut Lane,
        name: &str,
        message: &Message,
    ) -> Result<(), SendError> {
        let relay = match self {
            Sender::Files(dir) => {
                return write_eml(dir, name, &message.formatted())
                    .await
                    .map_err(|e| SendError {
                        permanent: false,
                        transport: true,
                        message: format!("writing .eml: {e}"),
                        ..Default::default()
                    });
            }
            Sender::Relay(relay) => relay,
        };
        let (from, to) = envelope(message)?;
        let mut connection = match lane.connection.take() {
            Some(connection) if !connection.has_broken() => connection,
            _ => relay.connect().await?,
        };
        let bytes = message.formatted();
        let sent = relay::deliver(&mut connection, relay.timeout(), &from, &to, &bytes).await;
        match &sent {
            Err(error) if error.transport => {} // dropped: the next mail reconnects
            _ => lane.connection = Some(connection),
        }
        sent
    }

    /// Ends a lane politely (QUIT).
    pub async fn close(&self, lane: Lane) {
        if let Some(connection) = lane.connection {
            relay::quit(connection).await;
        }
    }
}

fn relay_of(config: &Config) -> Result<Relay> {
    let mail = &config.mail;
    let ca = mail.relay_ca.as_deref();
    Relay::parse(&mail.relay, &config.smtp.hostname, ca, mail.relay_timeout.0)
}

/// The one sender and one recipient of a message we built.
fn envelope(message: &Message) -> Result<(lettre::Address, lettre::Address), SendError> {
    let envelope = message.envelope();
    let to = envelope.to().first().cloned();
    match (envelope.from().cloned(), to) {
        (Some(from), Some(to)) => Ok((from, to)),
        _ => Err(SendError {
            permanent: true,
            transport: false,
            message: "a mail without sender or recipient".into(),
            ..Default::default()
        }),
    }
}

/// Writes the file whole or not at all (temporary name, fsync, rename), so a reader
/// never sees half a mail and a retry after a crash replaces rather than duplicates.
async fn write_eml(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let final_path = dir.join(format!("{name}.eml"));
    let temp_path = dir.join(format!(".{name}.eml.tmp"));
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // Live tokens, keys and temporary passwords: for karamail's user only.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp_path)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp_path, &final_path)
    })
    .await
    .map_err(std::io::Error::other)?
}
