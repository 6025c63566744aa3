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
        Serving { child, smtp }
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
         [http]\nlisten = \"127.0.0.1:0\"\n\
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
