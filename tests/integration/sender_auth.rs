//! Forged senders cannot make karamail mail a stranger: SPF and DMARC checked against a
//! DNS server the test runs, or the upstream MTA's Authentication-Results.

use karamail::config::SenderAuthMode;

use crate::util::dns::Dns;
use crate::util::{TestDaemon, empty_mail, send_mail};

#[test]
fn spf_and_dmarc_decide_who_is_answered() {
    let dns = Dns::start(&[
        ("good.example", "v=spf1 ip4:127.0.0.0/8 -all"),
        ("forged.example", "v=spf1 ip4:192.0.2.1 -all"),
        ("strict.example", "v=spf1 ?all"),
        ("_dmarc.strict.example", "v=DMARC1; p=reject"),
        ("relaxed.example", "v=spf1 ?all"),
        ("nospf.example", "site-verification=abc"),
    ]);
    let daemon = TestDaemon::start_with(|c| {
        c.smtp.sender_auth = SenderAuthMode::Spf;
        c.smtp.dns_servers = vec![dns.addr];
        // The test talks to karamail directly, not through a relay on loopback.
        c.smtp.trusted_relays.clear();
    });
    for sender in [
        "taro@good.example",
        "victim@forged.example",
        "victim@strict.example",
        "hanako@relaxed.example",
        "jiro@nospf.example",
        "ghost@nxdomain.example",
    ] {
        assert_eq!(
            send_mail(&daemon, sender, &empty_mail(sender)),
            250,
            "{sender}"
        );
    }
    daemon.wait_for_mail("jiro@nospf.example");
    assert_eq!(
        daemon.outcomes_for("taro@good.example"),
        ["queued"],
        "SPF pass"
    );
    assert_eq!(daemon.outcomes_for("victim@forged.example"), ["spf_fail"]);
    assert_eq!(
        daemon.outcomes_for("victim@strict.example"),
        ["dmarc"],
        "SPF neutral, DMARC p=reject"
    );
    assert_eq!(
        daemon.outcomes_for("hanako@relaxed.example"),
        ["queued"],
        "SPF neutral, no DMARC"
    );
    assert_eq!(
        daemon.outcomes_for("jiro@nospf.example"),
        ["queued"],
        "no SPF record at all"
    );
    assert_eq!(
        daemon.outcomes_for("ghost@nxdomain.example"),
        ["sender_domain_missing"],
        "a domain that does not exist (NXDOMAIN)"
    );
    let answered: Vec<String> = daemon.sent_mails().into_iter().map(|m| m.to).collect();
    assert!(
        !answered
            .iter()
            .any(|to| to.contains("forged") || to.contains("strict") || to.contains("nxdomain")),
        "{answered:?}"
    );
}

#[test]
fn upstream_results_are_trusted_only_with_the_right_authserv_id() {
    let daemon = TestDaemon::start_with(|c| {
        c.smtp.sender_auth = SenderAuthMode::Upstream;
        c.smtp.upstream_authserv_id = "mx.example.jp".into();
    });
    let with_results = |sender: &str, results: &str| {
        format!(
            "Authentication-Results: {results}\r\n{}",
            empty_mail(sender)
        )
    };
    let cases = [
        (
            "pass@example.net",
            "mx.example.jp; spf=pass smtp.mailfrom=pass@example.net",
            "queued",
        ),
        (
            "fail@example.net",
            "mx.example.jp; spf=fail smtp.mailfrom=fail@example.net",
            "spf_fail",
        ),
        (
            "dmarc@example.net",
            "mx.example.jp; spf=softfail; dmarc=fail header.from=example.net",
            "dmarc",
        ),
        (
            "fake@example.net",
            "attacker.example; spf=pass",
            "no_upstream_results",
        ),
        // The attacks that once passed: a topmost header without `spf=` hiding a
        // fail below; an RFC 8601 version after the authserv-id; spaces around `=`.
        (
            "hidden@example.net",
            "mx.example.jp; dkim=pass\r\nAuthentication-Results: mx.example.jp; spf=fail",
            "no_upstream_results",
        ),
        (
            "versioned@example.net",
            "mx.example.jp 1; spf=fail\r\nAuthentication-Results: mx.example.jp; spf=pass",
            "spf_fail",
        ),
        (
            "spaced@example.net",
            "mx.example.jp; spf = fail smtp.mailfrom=spaced@example.net",
            "spf_fail",
        ),
    ];
    for (sender, results, _) in cases {
        assert_eq!(
            send_mail(&daemon, sender, &with_results(sender, results)),
            250
        );
    }
    assert_eq!(
        send_mail(&daemon, "none@example.net", &empty_mail("none@example.net")),
        250
    );
    for (sender, _, outcome) in cases {
        assert_eq!(daemon.outcomes_for(sender), [outcome], "{sender}");
    }
    assert_eq!(
        daemon.outcomes_for("none@example.net"),
        ["no_upstream_results"]
    );
}

/// Behind a trusted relay (Postfix in front), MAIL FROM arrives from the relay's own
/// address: SPF is checked for the client the relay recorded in its `Received:` line,
/// and a HELO that names another address does not choose it.
#[test]
fn behind_a_relay_spf_is_checked_for_the_relays_client() {
    let dns = Dns::start(&[("relayed.example", "v=spf1 ip4:192.0.2.7 -all")]);
    let daemon = TestDaemon::start_with(|c| {
        c.smtp.sender_auth = SenderAuthMode::Spf;
        c.smtp.dns_servers = vec![dns.addr];
        c.smtp.trusted_relays = vec!["127.0.0.1".parse().unwrap()];
    });
    let relayed = |sender: &str, helo: &str, client: &str| {
        format!(
            "Received: from {helo} (unknown [{client}])\r\n\tby mx.example.jp (Postfix) with ESMTP id 4XyZ\r\n\tfor <kc@example.jp>; Sun, 22 Nov 2026 10:00:00 +0900 (JST)\r\n{}",
            empty_mail(sender)
        )
    };
    let cases = [
        (
            "good@relayed.example",
            relayed("good@relayed.example", "phone.example", "192.0.2.7"),
            "queued",
        ),
        (
            "bad@relayed.example",
            relayed("bad@relayed.example", "phone.example", "198.51.100.9"),
            "spf_fail",
        ),
        (
            "helo@relayed.example",
            relayed("helo@relayed.example", "[192.0.2.7]", "198.51.100.9"),
            "spf_fail",
        ),
        (
            "bare@relayed.example",
            empty_mail("bare@relayed.example"),
            "no_relay_record",
        ),
    ];
    for (sender, message, _) in &cases {
        assert_eq!(send_mail(&daemon, sender, message), 250, "{sender}");
    }
    for (sender, _, outcome) in &cases {
        assert_eq!(daemon.outcomes_for(sender), [*outcome], "{sender}");
    }
}
