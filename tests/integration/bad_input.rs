//! Bad input is answered, never crashes: broken encodings, NUL bytes, huge fields,
//! header injection, full-width typing.

use crate::util::member::{log_in, register};
use crate::util::{TestDaemon, empty_mail, send_mail};

#[test]
fn broken_form_bodies_get_a_page_not_a_crash() {
    let daemon = TestDaemon::start();
    let mut browser = daemon.browser();
    let form = browser.open("/signup");
    let csrf = crate::util::hidden_field(&form.body, "csrf").unwrap();
    for body in [
        format!("csrf={csrf}&email=%FF%FE%00"),
        format!("csrf={csrf}&email={}", "a".repeat(20_000)),
        format!("csrf={csrf}&email=%E3%81"),
        format!("csrf={csrf}&email=taro%40example.net%0D%0ABcc%3A+victim%40example.org"),
        "%%%".to_string(),
    ] {
        let page = browser.post_raw("/signup", &body);
        assert!(
            [200, 400, 403].contains(&page.status),
            "{}: {}",
            page.status,
            &body[..body.len().min(60)]
        );
        assert!(page.body.contains("</html>"), "a whole page");
    }
    assert!(daemon.outcomes_for("victim@example.org").is_empty());
    assert_eq!(browser.get("/").status, 200, "still serving");
}

#[test]
fn full_width_addresses_are_read_as_half_width() {
    let daemon = TestDaemon::start();
    let mut browser = daemon.browser();
    browser.open("/signup");
    let page = browser.submit(
        "/signup",
        &[("email", "ｚｅｎｋａｋｕ＠ｅｘａｍｐｌｅ．ｎｅｔ")],
    );
    assert_eq!(page.status, 200);
    daemon.wait_for_mail("zenkaku@example.net");
}

#[test]
fn nicknames_with_nul_or_script_are_refused_or_escaped() {
    let daemon = TestDaemon::start();
    register(&daemon, "6001", "n@example.net", "nicknamer");
    let mut browser = daemon.browser();
    log_in(&daemon, &mut browser, "nicknamer", "n@example.net", 1);
    browser.open("/profile");
    let nul = browser.submit("/profile/nickname", &[("nickname", "a\u{0}b")]);
    assert_eq!(nul.status, 422);
    browser.open("/profile");
    browser.submit("/profile/nickname", &[("nickname", "<img src=x>")]);
    let home = browser.open("/home");
    assert!(home.body.contains("&lt;img src=x&gt;さん") && !home.body.contains("<img src=x>"));
}

#[test]
fn crlf_in_a_sender_never_reaches_a_header() {
    let daemon = TestDaemon::start();
    let mut smtp = daemon.smtp();
    smtp.command("EHLO x");
    // A bare CR inside the address: refused as a sender, so nothing is written anywhere.
    let code = smtp.command("MAIL FROM:<a\rBcc: victim@example.org@example.net>");
    if code == 250 {
        smtp.command("RCPT TO:<kc@example.jp>");
        smtp.command("DATA");
        smtp.data("Subject: x\r\n\r\n");
    }
    send_mail(
        &daemon,
        "control@example.net",
        &empty_mail("control@example.net"),
    );
    daemon.wait_for_mail("control@example.net");
    assert!(
        daemon
            .sent_mails()
            .iter()
            .all(|m| !m.raw.contains("victim@example.org"))
    );
}
