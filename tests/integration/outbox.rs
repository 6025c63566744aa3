//! Mail out through a relay: retries while it refuses, and nothing lost across restarts.

use crate::util::member::{log_in, register};
use crate::util::relay::Behaviour;
use crate::util::{Relay, TestDaemon, empty_mail, send_mail};
use karamail::config::Transport;

#[test]
fn the_outbox_retries_while_the_relay_refuses() {
    let relay = Relay::start(2);
    let daemon = TestDaemon::start_with(|c| {
        c.mail.transport = Transport::Smtp;
        c.mail.relay = relay.url();
        c.mail.retry_initial = "1s".parse().unwrap();
    });
    assert_eq!(
        send_mail(
            &daemon,
            "patient@example.net",
            &empty_mail("patient@example.net")
        ),
        250
    );
    let received = relay.wait_for(1);
    assert_eq!(relay.refused.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(received[0].contains("Auto-Submitted: auto-replied"));
    // The relay has the mail a moment before the outbox records its 250.
    let row = poll(
        || {
            daemon
                .db()
                .query_row("SELECT status, attempts, last_error FROM outbox", [], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                })
                .unwrap()
        },
        |row| row.0 != "queued",
    );
    assert_eq!((row.0.as_str(), row.1, row.2), ("sent", 3, None));
}

#[test]
fn mail_queued_before_a_restart_is_sent_after_it() {
    // A relay address with nothing listening yet.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = reserved.local_addr().unwrap();
    drop(reserved);
    let daemon = TestDaemon::start_with(|c| {
        c.mail.transport = Transport::Smtp;
        c.mail.relay = format!("smtp://{relay_addr}");
        c.mail.retry_initial = "1s".parse().unwrap();
    });
    for n in 0..3 {
        let sender = format!("queued{n}@example.net");
        assert_eq!(send_mail(&daemon, &sender, &empty_mail(&sender)), 250);
    }
    let queued: i64 = daemon
        .db()
        .query_row(
            "SELECT count(*) FROM outbox WHERE status = 'queued'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(queued, 3);

    let relay = Relay::start_on(std::net::TcpListener::bind(relay_addr).unwrap(), 0);
    let daemon = daemon.restart_with(|_| {});
    let received = relay.wait_for(3);
    for n in 0..3 {
        assert_eq!(
            received
                .iter()
                .filter(|m| m.contains(&format!("To: queued{n}@example.net")))
                .count(),
            1
        );
    }
    drop(daemon);
}

#[test]
fn metrics_and_health_are_served_to_the_operator() {
    let daemon = TestDaemon::start();
    send_mail(
        &daemon,
        "counted@example.net",
        &empty_mail("counted@example.net"),
    );
    let bulk = format!("Precedence: bulk\r\n{}", empty_mail("bulk@example.net"));
    send_mail(&daemon, "bulk@example.net", &bulk);
    daemon.wait_for_mail("counted@example.net");
    let addr = daemon.daemon.as_ref().unwrap().metrics_addr.unwrap();
    let mut operator = daemon.browser();
    let metrics = operator.get(&format!("http://{addr}/metrics"));
    assert_eq!(metrics.status, 200);
    for line in [
        "karamail_mails_received_total 2",
        "karamail_mails_replied_total 1",
        "karamail_mails_suppressed_total{reason=\"precedence\"} 1",
        "karamail_outbox_mails{status=\"sent\"} 1",
        "karamail_outbox_oldest_queued_age_seconds 0",
    ] {
        assert!(metrics.body.contains(line), "{line} in\n{}", metrics.body);
    }
    assert_eq!(operator.get(&format!("http://{addr}/healthz")).body, "ok\n");
    assert_eq!(daemon.browser().get("/healthz").status, 200);
    assert_eq!(
        daemon.browser().get("/metrics").status,
        404,
        "not on the public listener"
    );
}

/// Addresses our parser once took but the sender refuses (`a@-x.jp`, a local part over
/// 64) used to stop the whole outbox. Now they are refused at the door, and one that is
/// in the queue already fails alone: a member's 暗証キー still arrives within seconds.
#[test]
fn no_address_can_stop_the_outbox() {
    let daemon = TestDaemon::start();
    register(&daemon, "6001", "member@example.net", "steadymember");
    let long = format!("{}@example.jp", "a".repeat(65));
    let mut browser = daemon.browser();
    for (address, message) in [
        ("a@-x.jp", "＠より後（ドメイン）が正しくありません"),
        (long.as_str(), "＠より前は64文字以内"),
        // Hosts inside the society's network are no member's mailbox.
        ("root@localhost", "＠より後（ドメイン）が正しくありません"),
        ("a@[10.0.0.5]", "＠より後（ドメイン）が正しくありません"),
    ] {
        for form in ["/signup", "/reset"] {
            browser.open(form);
            let page = browser.submit(form, &[("email", address)]);
            assert!(
                page.body.contains(message),
                "{form} {address}: {}",
                page.body
            );
        }
        assert_eq!(send_mail(&daemon, address, &empty_mail(address)), 250);
    }
    assert_eq!(daemon.outcomes_for("a@-x.jp"), ["unsendable_sender"]);
    assert_eq!(daemon.outcomes_for(&long), ["unsendable_sender"]);
    assert_eq!(daemon.outcomes_for("root@localhost"), ["unsendable_sender"]);
    // One queued before this release, first in line.
    daemon
        .db()
        .execute(
            "INSERT INTO outbox (kind, recipient, params, message_id, created_at, next_attempt_at)
             VALUES ('signup_link', 'a@-x.jp', '{\"kind\":\"signup_link\",\"in_reply_to\":null,\"auto_replied\":false}', '<old@x>', strftime('%s','now'), 0)",
            [],
        )
        .unwrap();
    let started = std::time::Instant::now();
    log_in(
        &daemon,
        &mut daemon.browser(),
        "steadymember",
        "member@example.net",
        1,
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (status, error): (String, String) = daemon
        .db()
        .query_row(
            "SELECT status, last_error FROM outbox WHERE recipient = 'a@-x.jp'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "failed");
    assert!(error.starts_with("composing:"), "{error}");
    // The operator sees it in a series of its own, to alert on.
    let addr = daemon.daemon.as_ref().unwrap().metrics_addr.unwrap();
    let metrics = daemon.browser().get(&format!("http://{addr}/metrics"));
    assert!(
        metrics.body.contains("karamail_outbox_failed_mails 1"),
        "{}",
        metrics.body
    );
}

/// A 暗証キー that could not go out within its key's lifetime is never sent late.
#[test]
fn a_mail_past_its_useful_life_expires_unsent() {
    let daemon = TestDaemon::start();
    daemon
        .db()
        .execute(
            "INSERT INTO outbox (kind, recipient, params, message_id, created_at, next_attempt_at)
             VALUES ('login_key', 'late@example.net', '{\"kind\":\"login_key\",\"attempt_id\":1}', '<late@x>', strftime('%s','now') - 601, 0)",
            [],
        )
        .unwrap();
    // Any new mail wakes the worker.
    assert_eq!(
        send_mail(&daemon, "wake@example.net", &empty_mail("wake@example.net")),
        250
    );
    daemon.wait_for_mail("wake@example.net");
    let status: String = poll(
        || {
            daemon
                .db()
                .query_row(
                    "SELECT status FROM outbox WHERE recipient = 'late@example.net'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        },
        |status| status != "queued",
    );
    assert_eq!(status, "expired");
    assert!(
        daemon
            .sent_mails()
            .iter()
            .all(|m| m.to != "late@example.net")
    );
}

/// A recipient whose mailbox answers 450 holds up only its own mail: the next member's
/// 暗証キー goes out at once, and the busy mail waits for its own retry.
#[test]
fn one_busy_mailbox_does_not_hold_up_the_others() {
    let relay = Relay::start_with_busy("busy@example.net");
    let daemon = TestDaemon::start_with(|c| {
        c.mail.transport = Transport::Smtp;
        c.mail.relay = relay.url();
        c.mail.retry_initial = "60s".parse().unwrap();
        c.smtp.hostname = "kc.example.jp".into();
    });
    assert_eq!(
        send_mail(&daemon, "busy@example.net", &empty_mail("busy@example.net")),
        250
    );
    let started = std::time::Instant::now();
    assert_eq!(
        send_mail(
            &daemon,
            "ready@example.net",
            &empty_mail("ready@example.net")
        ),
        250
    );
    let received = relay.wait_for(1);
    let waited = started.elapsed();
    assert!(
        waited < std::time::Duration::from_secs(5),
        "the healthy mail waited {waited:?}"
    );
    assert!(received[0].contains("ready@example.net"));
    let (status, error): (String, String) = daemon
        .db()
        .query_row(
            "SELECT status, last_error FROM outbox WHERE recipient = 'busy@example.net'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "queued", "retried later, not failed");
    assert!(error.contains("450"), "{error}");
    eprintln!("a healthy mail waited {waited:?} behind a 450 mailbox");
    // The relay is greeted with our own name, not the machine's.
    let greetings = relay.greetings.lock().unwrap().clone();
    assert!(
        !greetings.is_empty() && greetings.iter().all(|g| g == "kc.example.jp"),
        "{greetings:?}"
    );
}

/// One slow recipient (its mailbox answers RCPT only after seconds) holds up its own
/// lane only: a member's mail queued after it goes out on another connection at once.
#[test]
fn a_slow_recipient_does_not_serialise_the_queue() {
    let relay = Relay::start_with(Behaviour {
        slow: Some(("slow@example.net".into(), std::time::Duration::from_secs(4))),
        ..Behaviour::default()
    });
    let daemon = TestDaemon::start_with(|c| {
        c.mail.transport = Transport::Smtp;
        c.mail.relay = relay.url();
    });
    assert_eq!(
        send_mail(&daemon, "slow@example.net", &empty_mail("slow@example.net")),
        250
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert_eq!(
        send_mail(
            &daemon,
            "quick@example.net",
            &empty_mail("quick@example.net")
        ),
        250
    );
    let first = relay.wait_for(1);
    let waited = started.elapsed();
    assert!(
        first[0].contains("quick@example.net"),
        "the quick mail went first"
    );
    assert!(
        waited < std::time::Duration::from_secs(2),
        "it waited {waited:?}"
    );
    assert!(relay.wait_for(2)[1].contains("slow@example.net"));
    eprintln!("a healthy mail waited {waited:?} beside a recipient that takes 4 s");
}

/// A relay that refuses our sender (MAIL FROM), or asks for authentication (530),
/// refuses every mail alike: that is the transport's fault, the queue waits, and no
/// member's mail is marked failed for it.
#[test]
fn a_relay_wide_refusal_fails_no_mail() {
    for behaviour in [
        Behaviour {
            refuse_mail_from: Some((3, "550 5.7.1 sender rejected\r\n")),
            ..Behaviour::default()
        },
        Behaviour {
            rcpt_reply: Some((3, "530 5.7.0 Authentication required\r\n")),
            ..Behaviour::default()
        },
    ] {
        let relay = Relay::start_with(behaviour);
        let daemon = TestDaemon::start_with(|c| {
            c.mail.transport = Transport::Smtp;
            c.mail.relay = relay.url();
            c.mail.retry_initial = "1s".parse().unwrap();
        });
        for n in 0..2 {
            let sender = format!("member{n}@example.net");
            assert_eq!(send_mail(&daemon, &sender, &empty_mail(&sender)), 250);
        }
        let received = relay.wait_for(2);
        assert_eq!(received.len(), 2);
        let failed: i64 = daemon
            .db()
            .query_row(
                "SELECT count(*) FROM outbox WHERE status = 'failed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(failed, 0, "no mail blamed for the relay's refusal");
    }
}

/// A relay that stops answering (here after a mail's final dot) is a transport failure
/// after `relay_timeout`, not a lane stuck for good: the mail waits for its retry and
/// the others go on.
#[test]
fn a_relay_that_stops_answering_times_out() {
    let relay = Relay::start_with(Behaviour {
        hang_at_dot: Some("hang@example.net".into()),
        ..Behaviour::default()
    });
    let daemon = TestDaemon::start_with(|c| {
        c.mail.transport = Transport::Smtp;
        c.mail.relay = relay.url();
        c.mail.relay_timeout = "1s".parse().unwrap();
        c.mail.retry_initial = "1s".parse().unwrap();
    });
    assert_eq!(
        send_mail(&daemon, "hang@example.net", &empty_mail("hang@example.net")),
        250
    );
    assert_eq!(
        send_mail(&daemon, "next@example.net", &empty_mail("next@example.net")),
        250
    );
    assert!(relay.wait_for(1)[0].contains("next@example.net"));
    let error: Option<String> = poll(
        || {
            daemon
                .db()
                .query_row(
                    "SELECT last_error FROM outbox WHERE recipient = 'hang@example.net'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        },
        Option::is_some,
    );
    let error = error.unwrap_or_default();
    assert!(error.contains("did not answer within 2 s"), "{error}");
}

/// A relay refusing by its own policy at RCPT ("554 5.7.1 Relay access denied") refuses
/// mails to every domain alike: when two domains meet the same refusal, the mails are
/// the relay's victims, not failures, and go once it accepts again.
#[test]
fn a_relay_refusing_every_domain_at_rcpt_fails_no_mail() {
    let relay = Relay::start_with(Behaviour {
        rcpt_reply: Some((2, "554 5.7.1 <x>: Relay access denied\r\n")),
        ..Behaviour::default()
    });
    let daemon = TestDaemon::start_with(|c| {
        c.mail.transport = Transport::Smtp;
        c.mail.relay = relay.url();
        c.mail.retry_initial = "1s".parse().unwrap();
        c.mail.relay_connections = 1;
    });
    for sender in ["taro@example.net", "hanako@example.org"] {
        assert_eq!(send_mail(&daemon, sender, &empty_mail(sender)), 250);
    }
    assert_eq!(relay.wait_for(2).len(), 2);
    let failed: i64 = daemon
        .db()
        .query_row(
            "SELECT count(*) FROM outbox WHERE status = 'failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(failed, 0, "no mail blamed for the relay's policy");
}

/// Reads `read` until `done` says so, or 10 seconds pass; the last reading either way.
fn poll<T>(read: impl Fn() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let value = read();
        if done(&value) || std::time::Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
