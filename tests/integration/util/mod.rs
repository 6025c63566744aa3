//! Test harness: the real daemon in-process on port 0 with its own SQLite file and
//! outbox folder, and the clients that talk to it.

mod browser;
pub mod dns;
pub mod member;
pub mod relay;
mod smtp_client;
pub mod tls_relay;
pub mod webdriver;

pub use browser::{Browser, Page, hidden_field, input_value};
pub use relay::Relay;
pub use smtp_client::Smtp;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use karamail::config::Config;
use karamail::daemon::{self, Daemon};
use mail_parser::MessageParser;

pub struct TestDaemon {
    pub rt: tokio::runtime::Runtime,
    pub daemon: Option<Daemon>,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

/// A config for tests: loopback, port 0, files in `dir`.
pub fn test_config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.smtp.listen = "127.0.0.1:0".parse().unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.http.metrics_listen = "127.0.0.1:0".into();
    config.smtp.intake_addresses = vec!["kc@example.jp".into()];
    config.database.path = dir.join("karamail.db");
    // Short, so hundreds of test connections do not add up; the early-talker test sets more.
    config.smtp.greeting_delay = "20ms".parse().unwrap();
    config.mail.outbox_dir = dir.join("outbox");
    config.mail.from = "noreply@example.jp".into();
    config.site.society = "テスト健康保険組合".into();
    config.site.contact_phone = "03-1234-5678".into();
    config
}

impl TestDaemon {
    pub fn start() -> TestDaemon {
        TestDaemon::start_with(|_| {})
    }

    pub fn start_with(configure: impl FnOnce(&mut Config)) -> TestDaemon {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        configure(&mut config);
        TestDaemon::start_in(dir, config)
    }

    pub fn start_in(dir: tempfile::TempDir, config: Config) -> TestDaemon {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let daemon = rt
            .block_on(daemon::start(config.clone()))
            .expect("daemon starts");
        TestDaemon {
            rt,
            daemon: Some(daemon),
            dir,
            config,
        }
    }

    /// Stops this daemon and starts a new one on the same database and folders.
    pub fn restart_with(mut self, configure: impl FnOnce(&mut Config)) -> TestDaemon {
        let daemon = self.daemon.take().unwrap();
        self.rt.block_on(daemon.shutdown());
        let mut config = self.config.clone();
        configure(&mut config);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        TestDaemon::start_in(dir, config)
    }

    /// Stops this daemon and hands back its folder and config (a restore's test).
    pub fn stop(mut self) -> (tempfile::TempDir, Config) {
        let daemon = self.daemon.take().unwrap();
        self.rt.block_on(daemon.shutdown());
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (dir, self.config.clone())
    }

    fn running(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    pub fn smtp(&self) -> Smtp {
        Smtp::connect(self.running().smtp_addr)
    }

    pub fn browser(&self) -> Browser<'_> {
        Browser {
            daemon: self,
            cookies: HashMap::new(),
            last_body: String::new(),
            headers: Vec::new(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.running().public_url
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.config.database.path).unwrap()
    }

    /// Imports members through the library, returning (temp_login_id, temp_password)
    /// per member, read from the postcards file as a sysadmin would.
    pub fn import_members(&self, csv: &str) -> Vec<(String, String)> {
        let db = karamail::db::Db::open(&self.config.database.path).unwrap();
        let rows = karamail::members::parse(csv).unwrap();
        let postcards = self
            .dir
            .path()
            .join(format!("postcards-{}.csv", karamail::secrets::new_token()));
        let key = karamail::secrets::ServerKey::open(&db, &self.config.key_file(), false).unwrap();
        karamail::members::import(&db, &key, rows, &postcards, None).unwrap();
        read_postcards(&postcards)
    }

    /// Mails written to the outbox folder, oldest first.
    pub fn sent_mails(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(&self.config.mail.outbox_dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| Mail::parse(&std::fs::read(p).unwrap()))
            .collect()
    }

    /// Waits (up to 10 s) until `count` mails went to `to`, and returns them.
    pub fn wait_for_mails(&self, to: &str, count: usize) -> Vec<Mail> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mails: Vec<Mail> = self
                .sent_mails()
                .into_iter()
                .filter(|m| m.to == to)
                .collect();
            if mails.len() >= count || Instant::now() > deadline {
                assert!(
                    mails.len() >= count,
                    "expected {count} mail(s) to {to}, got {}",
                    mails.len()
                );
                return mails;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_for_mail(&self, to: &str) -> Mail {
        self.wait_for_mails(to, 1).pop().unwrap()
    }

    /// What `signup_requests` recorded for a sender, oldest first.
    pub fn outcomes_for(&self, address: &str) -> Vec<String> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT outcome FROM signup_requests WHERE address = ?1 ORDER BY id")
            .unwrap();
        stmt.query_map([address], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            self.rt.block_on(daemon.shutdown());
        }
    }
}

pub fn read_postcards(path: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.trim_start_matches('\u{FEFF}')
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[2].to_string(), fields[3].to_string())
        })
        .collect()
}

/// An outgoing mail as read back from its `.eml` file.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub headers: HashMap<String, String>,
    pub raw: String,
}

impl Mail {
    pub fn parse(raw: &[u8]) -> Mail {
        let message = MessageParser::default()
            .parse(raw)
            .expect("a parseable mail");
        let raw_text = String::from_utf8_lossy(raw).to_string();
        let mut headers = HashMap::new();
        for header in message.headers() {
            let value = &raw[header.offset_start as usize..header.offset_end as usize];
            headers.insert(
                header.name().to_ascii_lowercase(),
                String::from_utf8_lossy(value).trim().to_string(),
            );
        }
        let to = headers.get("to").cloned().unwrap_or_default();
        Mail {
            to,
            subject: message.subject().unwrap_or("").to_string(),
            body: message.body_text(0).unwrap_or_default().to_string(),
            headers,
            raw: raw_text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The first `http…/signup/link/…` URL in the body.
    pub fn signup_link(&self) -> String {
        self.body
            .split_whitespace()
            .find(|w| w.contains("/signup/link/"))
            .expect("a sign-up link in the mail")
            .to_string()
    }
}

/// An empty mail as a phone sends it.
pub fn empty_mail(from: &str) -> String {
    format!(
        "From: {from}\r\nTo: kc@example.jp\r\nSubject: \r\nMessage-ID: <{}@phone.example>\r\n\r\n",
        karamail::secrets::new_token()
    )
}

/// Sends one mail on a fresh connection; returns the final reply code.
pub fn send_mail(daemon: &TestDaemon, from: &str, message: &str) -> u16 {
    let mut smtp = daemon.smtp();
    let code = smtp.send(from, &["kc@example.jp"], message);
    smtp.command("QUIT");
    code
}
