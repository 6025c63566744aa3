//! Mail out through a relay: retries while it refuses, and nothing lost across restarts.

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
    let (status, attempts, error): (String, i64, Option<String>) = daemon
        .db()
        .query_row("SELECT status, attempts, last_error FROM outbox", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((status.as_str(), attempts, error), ("sent", 3, None));
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
