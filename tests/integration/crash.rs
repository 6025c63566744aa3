//! The real binary, killed with SIGKILL right after it answered 250: every accepted
//! mail still gets its reply once the daemon is back.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::util::{Relay, Smtp, empty_mail};

/// `karamail serve` as a child process, killed when dropped.
struct Serving {
    child: Child,
    smtp: SocketAddr,
    web: SocketAddr,
}

impl Serving {
    fn start(dir: &Path) -> Serving {
        let mut child = Command::new(env!("CARGO_BIN_EXE_karamail"))
            .args(["--config", "karamail.toml", "serve"])
            .current_dir(dir)
            .env_remove("KARAMAIL_CONFIG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // The one line that says where everything is.
        let listening = lines
            .by_ref()
            .map(|l| l.unwrap())
            .find(|l| l.contains("karamail listening"))
            .expect("the daemon says where it listens");
        std::thread::spawn(move || lines.for_each(drop));
        let smtp = listening
            .split_whitespace()
            .find_map(|field| field.strip_prefix("smtp="))
            .unwrap()
            .parse()
            .unwrap();
        for part in ["web=http://127.0.0.1:", "database=", "mail_out="] {
            assert!(listening.contains(part), "{listening}");
        }
        let web = listening
            .split_whitespace()
            .find_map(|field| field.strip_prefix("web=http://"))
            .unwrap()
            .parse()
            .unwrap();
        Serving { child, smtp, web }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mail_accepted_before_a_sigkill_is_answered_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = reserved.local_addr().unwrap();
    drop(reserved);
    let config = format!(
        "[smtp]\nlisten = \"127.0.0.1:0\"\nintake_addresses = [\"kc@example.jp\"]\n\
         [http]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\
         [mail]\nfrom = \"noreply@example.jp\"\ntransport = \"smtp\"\nrelay = \"smtp://{relay_addr}\"\nretry_initial = \"1s\"\n"
    );
    std::fs::write(dir.path().join("karamail.toml"), config).unwrap();

    let mut serving = Serving::start(dir.path());
    let senders: Vec<String> = (0..5).map(|n| format!("crash{n}@example.net")).collect();
    for sender in &senders {
        let mut smtp = Smtp::connect(serving.smtp);
        assert_eq!(
            smtp.send(sender, &["kc@example.jp"], &empty_mail(sender)),
            250
        );
    }
    // SIGKILL: no shutdown code runs.
    serving.child.kill().unwrap();
    serving.child.wait().unwrap();

    let relay = Relay::start_on(std::net::TcpListener::bind(relay_addr).unwrap(), 0);
    let _serving = Serving::start(dir.path());
    let received = relay.wait_for(senders.len());
    for sender in &senders {
        let replies = received
            .iter()
            .filter(|m| m.contains(&format!("To: {sender}")))
            .count();
        assert_eq!(replies, 1, "{sender}");
    }
}

/// A plain HTTP GET: the response body.
fn http_get(addr: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn a_template_folder_overrides_and_sighup_reloads_it() {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).unwrap();
    let page = |text: &str| {
        format!("{{% extends \"base.html\" %}}{{% block content %}}{text}{{% endblock content %}}")
    };
    std::fs::write(templates.join("login.html"), page("組合のお知らせ その1")).unwrap();
    std::fs::write(templates.join("style.css"), "body{color:#123456}").unwrap();
    let config = format!(
        "[smtp]\nlisten = \"127.0.0.1:0\"\n[http]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n[site]\ntemplates_dir = \"{}\"\n",
        templates.display()
    );
    std::fs::write(dir.path().join("karamail.toml"), config).unwrap();
    let serving = Serving::start(dir.path());
    assert!(http_get(serving.web, "/").contains("組合のお知らせ その1"));
    assert!(http_get(serving.web, "/assets/style.css").contains("#123456"));
    assert!(
        http_get(serving.web, "/signup").contains("新規利用登録"),
        "the others stay built in"
    );

    std::fs::write(templates.join("login.html"), page("組合のお知らせ その2")).unwrap();
    let hup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
    };
    assert!(hup(serving.child.id()).success());
    let reloaded = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        http_get(serving.web, "/").contains("その2")
    });
    assert!(reloaded, "SIGHUP re-read the folder");

    // A broken template is refused and the running ones stay.
    std::fs::write(templates.join("login.html"), "{% if %}").unwrap();
    assert!(hup(serving.child.id()).success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(http_get(serving.web, "/").contains("その2"));
}

#[test]
fn sigterm_finishes_the_mail_under_way_tells_systemd_and_exits_zero() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("karamail.toml"),
        "[smtp]\nlisten = \"127.0.0.1:0\"\nintake_addresses = [\"kc@example.jp\"]\ngreeting_delay = \"10ms\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"\"\n",
    )
    .unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_karamail"))
        .args(["--config", "karamail.toml", "serve"])
        .current_dir(dir.path())
        .env_remove("KARAMAIL_CONFIG")
        .env("NOTIFY_SOCKET", &notify_path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed if an assertion fails first, so no daemon outlives the test.
    let mut serving = Serving {
        child,
        smtp: "0.0.0.0:0".parse().unwrap(),
        web: "0.0.0.0:0".parse().unwrap(),
    };
    let child = &mut serving.child;
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = lines
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.contains("karamail listening"))
        .unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let smtp_addr: SocketAddr = listening
        .split_whitespace()
        .find_map(|f| f.strip_prefix("smtp="))
        .unwrap()
        .parse()
        .unwrap();
    let mut buffer = [0u8; 256];
    let ready = notify.recv(&mut buffer).unwrap();
    assert_eq!(
        std::str::from_utf8(&buffer[..ready]).unwrap().trim(),
        "READY=1"
    );

    let mut idle = Smtp::connect(smtp_addr);
    let mut busy = Smtp::connect(smtp_addr);
    busy.command("EHLO mx.example.net");
    busy.command("MAIL FROM:<inflight@example.net>");
    busy.command("RCPT TO:<kc@example.jp>");
    assert_eq!(busy.command("DATA"), 354);
    let started = std::time::Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let stopping = notify.recv(&mut buffer).unwrap();
    assert_eq!(
        std::str::from_utf8(&buffer[..stopping]).unwrap().trim(),
        "STOPPING=1"
    );
    assert_eq!(idle.read_reply().0, 421, "an idle session is told at once");
    assert_eq!(
        busy.data(&empty_mail("inflight@example.net")),
        250,
        "the mail under way is taken"
    );
    assert_eq!(busy.read_reply().0, 421, "then the session ends");
    let status = child.wait().unwrap();
    assert!(status.success(), "exit 0, got {status:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "within the grace time"
    );
    let db = rusqlite::Connection::open(dir.path().join("karamail-data/karamail.db")).unwrap();
    let stored: i64 = db
        .query_row(
            "SELECT count(*) FROM signup_requests WHERE address = 'inflight@example.net'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 1);
}
