//! Where mail goes: `.eml` files in a folder (a machine with no MTA), or the relay, over
//! connections the worker's lanes keep open between mails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lettre::Message;
use lettre::transport::smtp::client::AsyncSmtpConnection;

use super::relay::{self, Relay};
use crate::config::{Config, Transport};
use crate::error::Result;

pub enum Sender {
    /// One `<outbox id>.eml` per mail, for machines without an MTA.
    Files(PathBuf),
    Relay {
        relay: Relay,
        /// `[mail] per_session_per_domain`.
        per_domain: u32,
    },
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
/// for the next ones, with how many recipients at each domain it has had.
#[derive(Default)]
pub struct Lane {
    connection: Option<AsyncSmtpConnection>,
    recipients: HashMap<String, u32>,
}

impl Sender {
    pub fn from_config(config: &Config) -> Result<Sender> {
        match config.mail.transport {
            Transport::File => {
                crate::files::create_private_dir(&config.mail.outbox_dir)?;
                crate::files::make_private(&config.mail.outbox_dir);
                Ok(Sender::Files(config.mail.outbox_dir.clone()))
            }
            Transport::Smtp => Ok(Sender::Relay {
                relay: relay_of(config)?,
                per_domain: config.mail.per_session_per_domain,
            }),
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
            Sender::Relay { .. } => "through the SMTP relay".to_string(),
        }
    }

    /// How many mails a lane takes at once. The relay's lane sends one at a time: a
    /// mail sent and not yet recorded when karamail stops is sent again, so no more than
    /// one may be in that state. `.eml` files are written a batch at a time with one
    /// sync for the lot: a file written again after a crash replaces itself (with fresh
    /// secrets: the first copy's link or key no longer works).
    pub fn batch(&self) -> usize {
        match self {
            Sender::Files(_) => EML_BATCH,
            Sender::Relay { .. } => 1,
        }
    }

    /// Sends one mail on `lane` (see `send_all`).
    pub async fn send(
        &self,
        lane: &mut Lane,
        name: &str,
        message: &Message,
    ) -> Result<(), SendError> {
        let mut outcomes = self.send_all(lane, &[(name.to_string(), message)]).await;
        outcomes.pop().unwrap_or(Ok(()))
    }

    /// Sends each `(name, message)` on `lane`, in order; with the file transport each
    /// becomes `{name}.eml`. One outcome per mail.
    pub async fn send_all(
        &self,
        lane: &mut Lane,
        mails: &[(String, &Message)],
    ) -> Vec<Result<(), SendError>> {
        let (relay, per_domain) = match self {
            Sender::Files(dir) => {
                let files = mails
                    .iter()
                    .map(|(name, message)| (name.clone(), message.formatted()))
                    .collect();
                let written = write_emls(dir.clone(), files).await;
                // A file that failed beside others that were written is that mail's
                // trouble (its own backoff); a batch that failed whole is the folder's.
                let some_written = written.iter().any(|w| w.is_ok());
                return written
                    .into_iter()
                    .map(|written| {
                        written.map_err(|e| SendError {
                            permanent: false,
                            transport: !some_written,
                            message: format!("writing .eml: {e}"),
                            ..Default::default()
                        })
                    })
                    .collect();
            }
            Sender::Relay { relay, per_domain } => (relay, *per_domain),
        };
        let mut outcomes = Vec::with_capacity(mails.len());
        for (_, message) in mails {
            outcomes.push(send_by_relay(relay, per_domain, lane, message).await);
        }
        outcomes
    }

    /// Ends a lane politely (QUIT).
    pub async fn close(&self, lane: Lane) {
        if let Some(connection) = lane.connection {
            relay::quit(connection).await;
        }
    }
}

/// Sends on the lane's connection, opening one if it has none (or a broken one), and a
/// new one before a domain's recipients on it would pass `per_domain`.
async fn send_by_relay(
    relay: &Relay,
    per_domain: u32,
    lane: &mut Lane,
    message: &Message,
) -> Result<(), SendError> {
    let (from, to) = envelope(message)?;
    let domain = to.domain().to_ascii_lowercase();
    let full = lane
        .recipients
        .get(&domain)
        .is_some_and(|n| *n >= per_domain);
    let mut connection = match lane.connection.take() {
        Some(connection) if !connection.has_broken() && !full => connection,
        old => {
            // A connection that had its share of one domain ends politely; a broken
            // one is dropped.
            if let Some(old) = old.filter(|c| !c.has_broken()) {
                relay::quit(old).await;
            }
            lane.recipients.clear();
            relay.connect().await?
        }
    };
    let bytes = message.formatted();
    let sent = relay::deliver(&mut connection, relay.timeout(), &from, &to, &bytes).await;
    *lane.recipients.entry(domain).or_default() += 1;
    match &sent {
        Err(error) if error.transport => {} // dropped: the next mail reconnects
        _ => lane.connection = Some(connection),
    }
    sent
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

/// `.eml` files written with one sync.
const EML_BATCH: usize = 32;

/// Writes each file whole or not at all, so a reader never sees half a mail and a retry
/// after a crash replaces rather than duplicates: every file under a temporary name,
/// one `syncfs` for all their data, then each renamed and the folder synced, so each
/// answer `Ok` means the file is on disk under its name.
async fn write_emls(dir: PathBuf, files: Vec<(String, Vec<u8>)>) -> Vec<std::io::Result<()>> {
    let count = files.len();
    let written = tokio::task::spawn_blocking(move || write_emls_now(&dir, &files)).await;
    written.unwrap_or_else(|e| {
        (0..count)
            .map(|_| Err(std::io::Error::other(e.to_string())))
            .collect()
    })
}

fn write_emls_now(dir: &Path, files: &[(String, Vec<u8>)]) -> Vec<std::io::Result<()>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temp_path = |name: &str| dir.join(format!(".{name}.eml.tmp"));
    // Opened before the files are written: `syncfs` reports the write-back errors seen
    // since its descriptor was opened.
    let folder = std::fs::File::open(dir);
    let mut outcomes: Vec<std::io::Result<()>> = files
        .iter()
        .map(|(name, bytes)| {
            // Live tokens, keys and temporary passwords: for karamail's user only.
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(temp_path(name))?
                .write_all(bytes)
        })
        .collect();
    let synced = folder.and_then(|folder| {
        sync_filesystem(&folder)?;
        for ((name, _), outcome) in files.iter().zip(outcomes.iter_mut()) {
            if outcome.is_ok() {
                *outcome = std::fs::rename(temp_path(name), dir.join(format!("{name}.eml")));
            }
        }
        folder.sync_all()
    });
    if let Err(e) = synced {
        let failed =
            |_: &mut std::io::Result<()>| Err(std::io::Error::new(e.kind(), e.to_string()));
        outcomes
            .iter_mut()
            .for_each(|outcome| *outcome = failed(outcome));
    }
    outcomes
}

/// Every file's data on the filesystem holding `folder` to disk, in one call: cheaper
/// than an fsync per file, which is one journal commit each.
fn sync_filesystem(folder: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `folder` keeps open.
    match unsafe { libc::syncfs(folder.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A batch becomes its files, each whole under its own name, for karamail's user
    /// only, with no temporary file left; writing one again replaces it.
    #[test]
    fn a_batch_of_eml_files_is_written_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            ("00000001".to_string(), b"first\r\n".to_vec()),
            ("00000002".to_string(), b"second\r\n".to_vec()),
        ];
        let outcomes = write_emls_now(dir.path(), &files);
        assert!(outcomes.iter().all(|o| o.is_ok()), "{outcomes:?}");
        let again = write_emls_now(dir.path(), &[("00000001".into(), b"again\r\n".to_vec())]);
        assert!(again[0].is_ok());
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["00000001.eml", "00000002.eml"]);
        let first = dir.path().join("00000001.eml");
        assert_eq!(std::fs::read(&first).unwrap(), b"again\r\n");
        let mode = std::fs::metadata(&first).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// A folder that cannot be written fails every file of the batch (the mails stay
    /// queued), never some silently.
    #[test]
    fn a_missing_folder_fails_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let files = vec![
            ("1".to_string(), b"x".to_vec()),
            ("2".to_string(), b"y".to_vec()),
        ];
        let outcomes = write_emls_now(&gone, &files);
        assert!(outcomes.iter().all(|o| o.is_err()));
    }
}
