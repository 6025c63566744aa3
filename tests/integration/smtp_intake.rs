//! The SMTP listener: who it accepts mail for, whom it answers, and whom it never does.

use crate::util::{TestDaemon, empty_mail, send_mail};

#[test]
fn mail_for_anyone_else_is_refused_and_never_relayed() {
    let daemon = TestDaemon::start();
    let mut smtp = daemon.smtp();
    assert_eq!(smtp.greeting, 220);
    smtp.command("EHLO client.example");
    assert_eq!(smtp.command("MAIL FROM:<spammer@example.net>"), 250);
    let (code, text) = smtp.command_text("RCPT TO:<victim@gmail.example>");
    assert_eq!(code, 550);
    assert!(text.contains("5.1.1"));
    assert_eq!(smtp.command("RCPT TO:<info@example.jp>"), 550);
    assert_eq!(
        smtp.command("RCPT TO:<KC@Example.JP>"),
        250,
        "intake addresses ignore case"
    );
    assert_eq!(smtp.command("RCPT TO:<postmaster@example.jp>"), 250);
    assert_eq!(smtp.command("RCPT TO:<postmaster>"), 250);
    assert_eq!(
        smtp.command("RCPT TO:<postmaster@gmail.example>"),
        550,
        "not our domain"
    );
}

#[test]
fn rfc_3834_cases_get_no_reply_and_the_reason_is_recorded() {
    let daemon = TestDaemon::start();
    let cases = [
        (
            "auto@example.net",
            "Auto-Submitted: auto-replied\r\n",
            "auto_submitted",
        ),
        ("bulk@example.net", "Precedence: bulk\r\n", "precedence"),
        (
            "list@example.net",
            "List-Id: <news.example.net>\r\n",
            "list_header",
        ),
        ("junk@example.net", "Precedence: junk\r\n", "precedence"),
        // The loopholes an attacker found: a second field saying otherwise, comments
        // and quotes, report types at the top level, vendor fields.
        (
            "second@example.net",
            "Auto-Submitted: auto-replied\r\nAuto-Submitted: no\r\n",
            "auto_submitted",
        ),
        (
            "comment@example.net",
            "Precedence: bulk (mass mailing)\r\n",
            "precedence",
        ),
        (
            "quoted@example.net",
            "Precedence: \"bulk\"\r\n",
            "precedence",
        ),
        (
            "dsn@example.net",
            "Content-Type: message/delivery-status\r\n",
            "delivery_report",
        ),
        (
            "report@example.net",
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n",
            "delivery_report",
        ),
        (
            "vacation@example.net",
            "X-Autoreply: yes\r\n",
            "vendor_auto_header",
        ),
        (
            "respond@example.net",
            "X-Autorespond: out of office\r\n",
            "vendor_auto_header",
        ),
        ("MAILER-DAEMON@example.net", "", "robot_sender"),
        ("owner-news@example.net", "", "robot_sender"),
        ("noreply@example.jp", "", "own_address"),
        ("kc@example.jp", "", "own_address"),
    ];
    for (sender, header, _) in &cases {
        let message = format!("{header}{}", empty_mail(sender));
        assert_eq!(
            send_mail(&daemon, sender, &message),
            250,
            "{sender} is accepted"
        );
    }
    // A bounce (null sender) is accepted, as RFC 5321 requires, and never answered.
    let mut smtp = daemon.smtp();
    assert_eq!(
        smtp.send(
            "",
            &["kc@example.jp"],
            &empty_mail("MAILER-DAEMON@example.net")
        ),
        250
    );

    // Postmaster mail is kept but not answered.
    let mut smtp = daemon.smtp();
    assert_eq!(
        smtp.send(
            "someone@example.net",
            &["postmaster@example.jp"],
            &empty_mail("someone@example.net")
        ),
        250
    );

    // A normal mail after all of them: once its reply is out, the queue has passed them.
    send_mail(
        &daemon,
        "control@example.net",
        &empty_mail("control@example.net"),
    );
    daemon.wait_for_mail("control@example.net");
    let mails = daemon.sent_mails();
    assert_eq!(
        mails.len(),
        1,
        "only the control mail was answered: {:?}",
        mails.iter().map(|m| &m.to).collect::<Vec<_>>()
    );
    for (sender, _, reason) in &cases {
        assert_eq!(daemon.outcomes_for(sender), [*reason], "{sender}");
    }
    assert_eq!(
        daemon.outcomes_for("someone@example.net"),
        ["postmaster_only"]
    );
}

#[test]
fn old_carrier_addresses_get_their_reply() {
    let daemon = TestDaemon::start();
    for sender in [
        "taro..yamada@docomo.ne.jp",
        "hanako.@ezweb.ne.jp",
        "-ichiro-@softbank.ne.jp",
    ] {
        assert_eq!(
            send_mail(&daemon, sender, &empty_mail(sender)),
            250,
            "{sender}"
        );
        let mail = daemon.wait_for_mail(&quoted_if_needed(sender));
        assert!(mail.body.contains("/signup/link/"));
    }
}

/// How a mail header writes an address whose local part is not a dot-atom.
fn quoted_if_needed(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap();
    let dot_atom = !local.starts_with('.') && !local.ends_with('.') && !local.contains("..");
    if dot_atom {
        address.to_string()
    } else {
        format!("\"{local}\"@{domain}")
    }
}

#[test]
fn japanese_html_and_signature_mails_are_answered() {
    let daemon = TestDaemon::start();
    let iso_2022_jp = "From: =?ISO-2022-JP?B?GyRCOzNFRBsoQiAbJEJCQE86GyhC?= <iso@example.net>\r\n\
        To: kc@example.jp\r\nSubject: =?ISO-2022-JP?B?GyRCRVBPPxsoQg==?=\r\nMIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\x1b$B$h$m$7$/\x1b(B\r\n";
    let shift_jis_subject = "From: sjis@example.net\r\nTo: kc@example.jp\r\nSubject: =?Shift_JIS?B?k2+YXg==?=\r\n\r\n--\r\n山田\r\n";
    let html = "From: html@example.net\r\nTo: kc@example.jp\r\nSubject: \r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n\
        --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<div><br></div>\r\n--b1--\r\n";
    for (sender, message) in [
        ("iso@example.net", iso_2022_jp),
        ("sjis@example.net", shift_jis_subject),
        ("html@example.net", html),
    ] {
        assert_eq!(send_mail(&daemon, sender, message), 250);
        daemon.wait_for_mail(sender);
    }
}

#[test]
fn a_truly_empty_mail_with_no_header_at_all_is_answered() {
    let daemon = TestDaemon::start();
    let mut smtp = daemon.smtp();
    smtp.command("EHLO phone.example");
    smtp.command("MAIL FROM:<bare@example.net>");
    smtp.command("RCPT TO:<kc@example.jp>");
    assert_eq!(smtp.command("DATA"), 354);
    assert_eq!(smtp.command("."), 250, "zero bytes of message");
    let mail = daemon.wait_for_mail("bare@example.net");
    assert_eq!(mail.header("In-Reply-To"), None, "nothing to refer to");
    assert!(mail.body.contains("/signup/link/"));
}

#[test]
fn a_sender_gets_three_replies_an_hour_then_silence() {
    let daemon = TestDaemon::start();
    let sender = "eager@example.net";
    for _ in 0..5 {
        assert_eq!(
            send_mail(&daemon, sender, &empty_mail(sender)),
            250,
            "accepted even when not answered"
        );
    }
    daemon.wait_for_mails(sender, 3);
    send_mail(
        &daemon,
        "control@example.net",
        &empty_mail("control@example.net"),
    );
    daemon.wait_for_mail("control@example.net");
    assert_eq!(
        daemon
            .sent_mails()
            .iter()
            .filter(|m| m.to == sender)
            .count(),
        3
    );
    assert_eq!(
        daemon.outcomes_for(sender),
        [
            "queued",
            "queued",
            "queued",
            "rate_limited_address",
            "rate_limited_address"
        ]
    );
}

#[test]
fn one_client_ip_is_limited_across_addresses_unless_it_is_a_trusted_relay() {
    let daemon = TestDaemon::start_with(|c| {
        c.smtp.trusted_relays.clear();
        c.limits.signup_per_ip_hour = 2;
    });
    for n in 0..3 {
        let sender = format!("bot{n}@example.net");
        send_mail(&daemon, &sender, &empty_mail(&sender));
    }
    assert_eq!(daemon.outcomes_for("bot2@example.net"), ["rate_limited_ip"]);

    // Behind a trusted relay, the client the relay recorded is what counts.
    let daemon = TestDaemon::start_with(|c| c.limits.signup_per_ip_hour = 1);
    for (n, client) in ["192.0.2.1", "192.0.2.2", "192.0.2.1"].iter().enumerate() {
        let sender = format!("user{n}@example.net");
        // As Postfix writes it; the HELO names another address, which must not count.
        let received = format!(
            "Received: from [198.51.100.1] (unknown [{client}])\r\n\tby mx.example.jp (Postfix) with ESMTP id {n}\r\n"
        );
        send_mail(
            &daemon,
            &sender,
            &format!("{received}{}", empty_mail(&sender)),
        );
    }
    assert_eq!(daemon.outcomes_for("user0@example.net"), ["queued"]);
    assert_eq!(daemon.outcomes_for("user1@example.net"), ["queued"]);
    assert_eq!(
        daemon.outcomes_for("user2@example.net"),
        ["rate_limited_ip"]
    );
}

#[test]
fn an_oversized_mail_is_refused_and_the_next_connection_works() {
    let daemon = TestDaemon::start_with(|c| c.smtp.max_message_bytes = 4096);
    let mut smtp = daemon.smtp();
    let big = format!("{}{}\r\n", empty_mail("big@example.net"), "x".repeat(8000));
    let code = smtp.send("big@example.net", &["kc@example.jp"], &big);
    assert_eq!(code, 552);
    assert_eq!(
        smtp.command("NOOP"),
        0,
        "the connection is closed rather than stuck in DATA"
    );
    assert_eq!(
        send_mail(
            &daemon,
            "small@example.net",
            &empty_mail("small@example.net")
        ),
        250
    );
    daemon.wait_for_mail("small@example.net");
    assert!(
        daemon.outcomes_for("big@example.net").is_empty(),
        "nothing stored for the refused mail"
    );
}

#[test]
fn rset_starts_a_new_transaction_and_the_reply_goes_to_the_envelope_sender() {
    let daemon = TestDaemon::start();
    let mut smtp = daemon.smtp();
    smtp.command("EHLO client.example");
    assert_eq!(smtp.command("MAIL FROM:<first@example.net>"), 250);
    assert_eq!(smtp.command("RCPT TO:<kc@example.jp>"), 250);
    assert_eq!(smtp.command("RSET"), 250);
    assert_eq!(smtp.command("MAIL FROM:<second@example.net>"), 250);
    assert_eq!(smtp.command("RCPT TO:<kc@example.jp>"), 250);
    assert_eq!(smtp.command("DATA"), 354);
    // From: and Reply-To: name someone else: the envelope sender is who asked.
    let message = "From: forged@example.org\r\nReply-To: other@example.org\r\nSubject: \r\n\r\n";
    assert_eq!(smtp.data(message), 250);
    assert_eq!(
        smtp.command("MAIL FROM:<third@example.net>"),
        250,
        "a second mail on the same connection"
    );
    smtp.command("RCPT TO:<kc@example.jp>");
    smtp.command("DATA");
    assert_eq!(smtp.data(&empty_mail("third@example.net")), 250);
    daemon.wait_for_mail("third@example.net");
    let recipients: Vec<String> = daemon.sent_mails().into_iter().map(|m| m.to).collect();
    assert_eq!(recipients, ["second@example.net", "third@example.net"]);
}
