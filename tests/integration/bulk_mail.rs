//! 「新しいお知らせがあります」 to thousands: paced at `[mail] bulk_per_minute`, after every
//! mail a member is waiting for, and no more than `per_session_per_domain` recipients
//! at one domain per relay connection.

use std::time::{Duration, Instant};

use crate::util::{Relay, TestDaemon, empty_mail, send_mail};
use karamail::config::Transport;

/// `count` members who signed up, with addresses at `domain`, made in the database as a
/// restored one would hold them (signing up hundreds through the site takes minutes).
fn registered_members(daemon: &TestDaemon, count: usize, domain: &str) {
    let mut db = daemon.db();
    let tx = db.transaction().unwrap();
    for n in 0..count {
        tx.execute(
            "INSERT INTO members (member_no, name, temp_login_id, temp_issued_at, imported_at, login_id, registered_at)
             VALUES (?1, '会員', ?2, 0, 0, ?3, 1)",
            (format!("B{n}"), format!("BLK{n:06}"), format!("bulkmember{n}")),
        )
        .unwrap();
        tx.execute(
            "INSERT INTO member_emails (member_id, address, added_at) VALUES (last_insert_rowid(), ?1, 1)",
            [format!("m{n}@{domain}")],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

fn announce(daemon: &TestDaemon) {
    karamail::cli::notices_add(&daemon.config, "お知らせ", "本文", None, true).unwrap();
}

fn news_received(relay: &Relay) -> usize {
    relay
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m.contains("docomo.ne.jp"))
        .count()
}

#[test]
fn a_large_announcement_is_paced_and_a_sign_up_mail_goes_first() {
    let relay = Relay::start(0);
    let daemon = TestDaemon::start_with(|c| {
        c.mail.transport = Transport::Smtp;
        c.mail.relay = relay.url();
        c.mail.bulk_per_minute = 600;
    });
    registered_members(&daemon, 300, "docomo.ne.jp");
    let started = Instant::now();
    announce(&daemon);
    assert_eq!(
        send_mail(&daemon, "new@example.net", &empty_mail("new@example.net")),
        250
    );
    let deadline = started + Duration::from_secs(10);
    loop {
        let received = relay.received.lock().unwrap().clone();
        if received.iter().any(|m| m.contains("To: new@example.net")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sign-up mail waited behind the announcement"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // 10 a second, a second's worth at once, and the mails under way on the 4 lanes.
    let allowed = |elapsed: Duration| 10 + (elapsed.as_secs_f64() * 10.0).ceil() as usize + 4;
    assert!(news_received(&relay) <= allowed(started.elapsed()));
    std::thread::sleep(Duration::from_secs(2));
    let (sent, elapsed) = (news_received(&relay), started.elapsed());
    assert!(
        sent <= allowed(elapsed),
        "{sent} announcements in {elapsed:?}"
    );
    assert!(
        sent >= 10,
        "the announcement goes on meanwhile ({sent} in {elapsed:?})"
    );
    let queued: i64 = daemon
        .db()
        .query_row(
            "SELECT count(*) FROM outbox WHERE kind = 'news' AND status = 'queued'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        queued >= 300 - allowed(started.elapsed()) as i64,
        "the rest wait their turn"
    );
    // A lane waiting for its pace keeps its connection: not a new session per mail.
    let sessions = relay.greetings.lock().unwrap().len();
    assert!(sessions <= 8, "{sessions} relay sessions for {sent} mails");
}

#[test]
fn one_relay_connection_carries_at_most_a_hundred_mails_to_one_domain() {
    let relay = Relay::start(0);
    let daemon = TestDaemon::start_with(|c| {
        c.mail.transport = Transport::Smtp;
        c.mail.relay = relay.url();
        c.mail.relay_connections = 1;
        c.mail.bulk_per_minute = 600_000;
    });
    registered_members(&daemon, 250, "docomo.ne.jp");
    announce(&daemon);
    relay.wait_for(250);
    let sessions = relay.sessions.lock().unwrap().clone();
    let mut per_session = std::collections::BTreeMap::new();
    for session in sessions {
        *per_session.entry(session).or_insert(0) += 1;
    }
    let counts: Vec<usize> = per_session.values().copied().collect();
    assert_eq!(counts, [100, 100, 50], "{per_session:?}");
}
