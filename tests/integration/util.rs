//! Test harness: the real daemon in-process on port 0 with its own SQLite file and
//! outbox folder, a plain SMTP client over TCP, a small cookie-keeping browser on
//! hyper's client, and a toy relay for the outbox's SMTP transport.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
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
    config.smtp.intake_addresses = vec!["kc@example.jp".into()];
    config.database.path = dir.join("karamail.db");
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
            .join(format!("postcards-{}.csv", karamail::token::new_token()));
        karamail::members::import(&db, rows, &postcards).unwrap();
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

/// A plain SMTP client: one command, one reply code.
pub struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub greeting: u16,
}

impl Smtp {
    pub fn connect(addr: SocketAddr) -> Smtp {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let writer = stream.try_clone().unwrap();
        let mut smtp = Smtp {
            reader: BufReader::new(stream),
            writer,
            greeting: 0,
        };
        smtp.greeting = smtp.read_reply().0;
        smtp
    }

    /// Reads a (possibly multi-line) reply; code 0 when the server closed the connection.
    pub fn read_reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return (0, text),
                Ok(_) => {}
            }
            text.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return (line[..3].parse().unwrap_or(0), text);
            }
        }
    }

    pub fn command(&mut self, line: &str) -> u16 {
        self.command_text(line).0
    }

    pub fn command_text(&mut self, line: &str) -> (u16, String) {
        if self
            .writer
            .write_all(format!("{line}\r\n").as_bytes())
            .is_err()
        {
            return (0, String::new());
        }
        self.read_reply()
    }

    /// A whole transaction; returns the code after the final dot (or the first refusal).
    pub fn send(&mut self, from: &str, to: &[&str], message: &str) -> u16 {
        self.command("EHLO client.example");
        let code = self.command(&format!("MAIL FROM:<{from}>"));
        if code != 250 {
            return code;
        }
        for rcpt in to {
            let code = self.command(&format!("RCPT TO:<{rcpt}>"));
            if code != 250 {
                return code;
            }
        }
        let code = self.command("DATA");
        if code != 354 {
            return code;
        }
        self.data(message)
    }

    /// Sends the message body (dot-stuffed, CRLF) and the final dot.
    pub fn data(&mut self, message: &str) -> u16 {
        let mut wire = String::new();
        for line in message.replace("\r\n", "\n").split('\n') {
            if line.starts_with('.') {
                wire.push('.');
            }
            wire.push_str(line);
            wire.push_str("\r\n");
        }
        wire.push_str(".\r\n");
        if self.writer.write_all(wire.as_bytes()).is_err() {
            return 0;
        }
        self.read_reply().0
    }
}

/// An empty mail as a phone sends it.
pub fn empty_mail(from: &str) -> String {
    format!(
        "From: {from}\r\nTo: kc@example.jp\r\nSubject: \r\nMessage-ID: <{}@phone.example>\r\n\r\n",
        karamail::token::new_token()
    )
}

/// Sends one mail on a fresh connection; returns the final reply code.
pub fn send_mail(daemon: &TestDaemon, from: &str, message: &str) -> u16 {
    let mut smtp = daemon.smtp();
    let code = smtp.send(from, &["kc@example.jp"], message);
    smtp.command("QUIT");
    code
}

#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A browser that keeps cookies and posts the hidden CSRF field of the last page.
pub struct Browser<'a> {
    daemon: &'a TestDaemon,
    pub cookies: HashMap<String, String>,
    last_body: String,
}

impl Browser<'_> {
    pub fn get(&mut self, path_or_url: &str) -> Page {
        self.request("GET", path_or_url, None)
    }

    /// Follows redirects (GET) until a page.
    pub fn open(&mut self, path_or_url: &str) -> Page {
        let mut page = self.get(path_or_url);
        for _ in 0..5 {
            if page.status != 303 && page.status != 302 {
                break;
            }
            let next = page.location().to_string();
            page = self.get(&next);
        }
        page
    }

    /// Posts a form as the browser would: with the CSRF field of the last page.
    pub fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = hidden_field(&self.last_body, "csrf").unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        all.extend_from_slice(fields);
        let body = serde_urlencoded::to_string(&all).unwrap();
        self.request("POST", path, Some(body))
    }

    /// Posts exactly these fields (for CSRF tests).
    pub fn post_raw(&mut self, path: &str, body: &str) -> Page {
        self.request("POST", path, Some(body.to_string()))
    }

    fn request(&mut self, method: &str, path_or_url: &str, body: Option<String>) -> Page {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.daemon.base_url(), path_or_url)
        };
        let mut builder = hyper::Request::builder().method(method).uri(&url);
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            builder = builder.header("cookie", cookie);
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/x-www-form-urlencoded");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let (status, headers, bytes) = self.daemon.rt.block_on(async move {
            let response = client.request(request).await.unwrap();
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, headers, bytes)
        });
        for value in headers.get_all("set-cookie") {
            let cookie = cookie::Cookie::parse(value.to_str().unwrap().to_string()).unwrap();
            let expired = cookie.max_age().is_some_and(|age| age.is_zero());
            if expired {
                self.cookies.remove(cookie.name());
            } else {
                self.cookies
                    .insert(cookie.name().to_string(), cookie.value().to_string());
            }
        }
        let body = String::from_utf8(bytes.to_vec()).unwrap();
        if status == 200 || status == 422 {
            self.last_body = body.clone();
        }
        Page {
            status,
            headers,
            body,
        }
    }
}

/// The value of `<input type="hidden" name="NAME" value="…">` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(html[start..end].to_string())
}

/// The `value` attribute of the input with this `name` (any type).
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let tag_start = html.find(&format!("name=\"{name}\""))?;
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>')?];
    let start = tag.find("value=\"")? + "value=\"".len();
    Some(tag[start..start + tag[start..].find('"')?].to_string())
}

/// A toy SMTP relay for the outbox: refuses the first `refuse` mails with 451 at RCPT,
/// then accepts and keeps each message.
pub struct Relay {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<String>>>,
    pub refused: Arc<AtomicUsize>,
}

impl Relay {
    pub fn start(refuse: usize) -> Relay {
        Relay::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), refuse)
    }

    pub fn start_on(listener: TcpListener, refuse: usize) -> Relay {
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let (kept, count) = (received.clone(), refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = relay_session(stream, &kept, &count, refuse);
            }
        });
        Relay {
            addr,
            received,
            refused,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.received.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "relay got {} of {count} mails",
                self.received.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.received.lock().unwrap().clone()
    }
}

fn relay_session(
    stream: TcpStream,
    kept: &Mutex<Vec<String>>,
    refused: &AtomicUsize,
    refuse: usize,
) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 relay.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 relay.test\r\n",
            "MAIL" | "RSET" | "NOOP" => b"250 ok\r\n",
            "RCPT" if refused.load(Ordering::SeqCst) < refuse => {
                refused.fetch_add(1, Ordering::SeqCst);
                b"451 4.3.0 try again later\r\n"
            }
            "RCPT" => b"250 ok\r\n",
            "DATA" => {
                writer.write_all(b"354 go ahead\r\n")?;
                let mut message = String::new();
                loop {
                    let mut data_line = String::new();
                    if reader.read_line(&mut data_line)? == 0 || data_line == ".\r\n" {
                        break;
                    }
                    message.push_str(&data_line);
                }
                kept.lock().unwrap().push(message);
                b"250 queued\r\n"
            }
            "QUIT" => {
                writer.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => b"502 unknown\r\n",
        };
        writer.write_all(reply)?;
    }
}
