//! パスワード再発行 end to end, and its answer that never tells who is registered.

use crate::util::TestDaemon;
use crate::util::member::{PASSWORD, enter_password, log_in, register, wait_for_nth};

const RESET_MAIL: &str = "パスワード再発行のご案内";

fn field_after<'a>(body: &'a str, label: &str) -> &'a str {
    body.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap()
        .trim()
}

#[test]
fn reissue_end_to_end_kills_the_old_password_and_sessions() {
    let daemon = TestDaemon::start();
    register(&daemon, "4001", "forgot@example.net", "forgetful");
    let mut old_session = daemon.browser();
    log_in(
        &daemon,
        &mut old_session,
        "forgetful",
        "forgot@example.net",
        1,
    );
    assert_eq!(old_session.open("/home").status, 200);
    // A passkey registered earlier (as the browser suite makes one; here its row).
    daemon
        .db()
        .execute(
            "INSERT INTO passkeys (member_id, credential_id, passkey, name, created_at)
             SELECT id, x'0102', '{}', 'iPhone', 0 FROM members WHERE member_no = '4001'",
            [],
        )
        .unwrap();

    let mut browser = daemon.browser();
    browser.open("/reset");
    let sent = browser.submit("/reset", &[("email", "forgot@example.net")]);
    assert_eq!(sent.status, 200);
    let mail = wait_for_nth(&daemon, "forgot@example.net", RESET_MAIL, 1);
    assert_eq!(field_after(&mail.body, "ログインID"), "forgetful");
    let temp_password = field_after(&mail.body, "仮パスワード").to_string();
    assert!(mail.body.contains("有効期限は発行から3時間"));
    let link = mail
        .body
        .split_whitespace()
        .find(|w| w.contains("/reset/link/"))
        .unwrap()
        .to_string();

    let login = browser.open(&link);
    assert!(login.body.contains("仮ログイン"));
    let wrong = browser.submit(
        "/reset/login",
        &[("login_id", "forgetful"), ("temp_password", "nottheone")],
    );
    assert_eq!(wrong.status, 401);
    let ok = browser.submit(
        "/reset/login",
        &[("login_id", "Forgetful"), ("temp_password", &temp_password)],
    );
    assert_eq!(ok.location(), "/reset/password", "{}", ok.body);
    browser.open("/reset/password");
    let answer = browser.submit_unfollowed(
        "/reset/password",
        &[
            ("password", "short"),
            ("password_confirm", "short"),
            ("login_id", ""),
        ],
    );
    let kept = answer.location().to_string();
    let bad = browser.get(&kept);
    assert_eq!(bad.status, 422);
    let done = browser.submit(
        "/reset/password",
        &[
            ("password", "fresh2026"),
            ("password_confirm", "fresh2026"),
            ("login_id", "rememberme"),
        ],
    );
    assert_eq!(done.location(), "/reset/done");
    assert!(browser.open("/reset/done").body.contains("ログイン画面"));
    // Back to the form's kept answer: the finished reissue says so, no live form.
    let back = browser.get(&kept);
    assert_eq!(back.status, 410, "{}", back.body);
    assert!(!back.body.contains("password_confirm"));

    assert_eq!(
        old_session.get("/home").status,
        303,
        "the old session ended"
    );
    assert_eq!(
        enter_password(&mut daemon.browser(), "forgetful", PASSWORD).status,
        401,
        "old ID and password dead"
    );
    assert_eq!(
        enter_password(&mut daemon.browser(), "rememberme", PASSWORD).status,
        401,
        "old password dead"
    );
    assert_eq!(
        enter_password(&mut daemon.browser(), "rememberme", "fresh2026").status,
        303
    );
    assert_eq!(
        daemon.browser().open(&link).status,
        410,
        "the reset link is spent"
    );
    let told = wait_for_nth(&daemon, "forgot@example.net", "登録情報変更のお知らせ", 1);
    assert!(
        told.body.contains("パスキー1件は削除されました"),
        "{}",
        told.body
    );
    let passkeys: i64 = daemon
        .db()
        .query_row("SELECT count(*) FROM passkeys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(passkeys, 0, "a reissue closes every way in");
}

#[test]
fn the_reset_page_answers_the_same_for_known_and_unknown_addresses() {
    let daemon = TestDaemon::start();
    register(&daemon, "4002", "known@example.net", "knownuser");
    let mut answers = Vec::new();
    for address in ["known@example.net", "unknown@example.net"] {
        let mut browser = daemon.browser();
        browser.open("/reset");
        let page = browser.submit("/reset", &[("email", address)]);
        assert_eq!(page.status, 200);
        answers.push(page.body);
    }
    assert_eq!(answers[0], answers[1]);
    wait_for_nth(&daemon, "known@example.net", RESET_MAIL, 1);
    let outcomes: Vec<String> = {
        let db = daemon.db();
        let mut stmt = db
            .prepare("SELECT outcome FROM reset_requests ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(outcomes, ["queued", "unknown_address"]);
}
