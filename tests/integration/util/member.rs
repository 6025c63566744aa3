//! Shortcuts to a registered, logged-in member, for the tests after sign-up.

use super::{Browser, Mail, TestDaemon, empty_mail, send_mail};

pub const PASSWORD: &str = "kenpo123";

/// A member who has signed up by empty mail from `address` with `login_id`.
pub fn register(daemon: &TestDaemon, member_no: &str, address: &str, login_id: &str) {
    let temp = daemon
        .import_members(&format!("member_no,name\n{member_no},会員 {member_no}\n"))
        .remove(0);
    sign_up(
        daemon,
        &temp,
        address,
        login_id,
        &format!("ニック{member_no}"),
    );
}

/// Signs up a member imported already, with the postcard's `temp` credentials.
pub fn sign_up(
    daemon: &TestDaemon,
    temp: &(String, String),
    address: &str,
    login_id: &str,
    nickname: &str,
) {
    assert_eq!(send_mail(daemon, address, &empty_mail(address)), 250);
    let link = daemon.wait_for_mail(address).signup_link();
    let mut browser = daemon.browser();
    browser.open(&link);
    let page = browser.submit(
        "/signup/verify",
        &[("temp_login_id", &temp.0), ("temp_password", &temp.1)],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    browser.open("/signup/profile");
    let page = browser.submit(
        "/signup/profile",
        &[
            ("login_id", login_id),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
            ("email", address),
            ("nickname", nickname),
        ],
    );
    assert_eq!(page.status, 303, "{}", page.body);
}

/// Mails of one subject to `to`, oldest first.
pub fn mails_with_subject(daemon: &TestDaemon, to: &str, subject: &str) -> Vec<Mail> {
    daemon
        .sent_mails()
        .into_iter()
        .filter(|m| m.to == to && m.subject == subject)
        .collect()
}

/// Waits for the `n`th mail of a subject to `to`.
pub fn wait_for_nth(daemon: &TestDaemon, to: &str, subject: &str, n: usize) -> Mail {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mails = mails_with_subject(daemon, to, subject);
        if mails.len() >= n {
            return mails[n - 1].clone();
        }
        if std::time::Instant::now() > deadline {
            let db = daemon.db();
            let mut stmt = db
                .prepare("SELECT kind, recipient, status, last_error FROM outbox")
                .unwrap();
            let rows: Vec<(String, String, String, Option<String>)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            panic!("no mail {n} 「{subject}」 to {to}; outbox: {rows:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The 6-digit key in a 「暗証キーのご案内」 mail.
pub fn key_in(mail: &Mail) -> String {
    let after = mail
        .body
        .split("暗証キー：")
        .nth(1)
        .expect("a key in the mail");
    after.chars().take_while(|c| c.is_ascii_digit()).collect()
}

/// Login ID and password: returns the key page.
pub fn enter_password(browser: &mut Browser, login_id: &str, password: &str) -> super::Page {
    browser.open("/");
    browser.submit("/login", &[("login_id", login_id), ("password", password)])
}

/// A whole login: password, then the `n`th key mailed to `address`.
pub fn log_in(daemon: &TestDaemon, browser: &mut Browser, login_id: &str, address: &str, n: usize) {
    let page = enter_password(browser, login_id, PASSWORD);
    assert_eq!(page.status, 303, "{}", page.body);
    browser.open("/login/key");
    let key = key_in(&wait_for_nth(daemon, address, "暗証キーのご案内", n));
    let page = browser.submit("/login/key", &[("key", &key)]);
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/home");
}
