//! プロフィール設定: every change announced to every address; addresses verified first.

use crate::util::member::{
    PASSWORD, enter_password, log_in, mails_with_subject, register, wait_for_nth,
};
use crate::util::{TestDaemon, input_value};

const NOTICE: &str = "登録情報変更のお知らせ";

#[test]
fn nickname_login_id_and_password_changes_are_announced() {
    let daemon = TestDaemon::start();
    register(&daemon, "3001", "p@example.net", "profileme");
    let mut browser = daemon.browser();
    log_in(&daemon, &mut browser, "profileme", "p@example.net", 1);
    browser.open("/profile");

    let page = browser.submit("/profile/nickname", &[("nickname", "はなこ")]);
    assert_eq!(page.location(), "/profile?done=nickname");
    let mail = wait_for_nth(&daemon, "p@example.net", NOTICE, 1);
    assert!(mail.body.contains("ニックネーム"));
    assert!(browser.open("/home").body.contains("はなこさん"));

    browser.open("/profile");
    let refused = browser.submit("/profile/login-id", &[("login_id", "SKE123456")]);
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("7・8桁目に数字は使用できません"));
    assert_eq!(
        input_value(&refused.body, "login_id").as_deref(),
        Some("SKE123456"),
        "the value typed is kept"
    );
    browser.submit("/profile/login-id", &[("login_id", "newnameab")]);
    assert!(
        wait_for_nth(&daemon, "p@example.net", NOTICE, 2)
            .body
            .contains("ログインID")
    );

    let mut other_device = daemon.browser();
    log_in(&daemon, &mut other_device, "newnameab", "p@example.net", 2);
    browser.open("/profile");
    let wrong_current = browser.submit(
        "/profile/password",
        &[
            ("current_password", "notmine1"),
            ("password", "newpass99"),
            ("password_confirm", "newpass99"),
        ],
    );
    assert_eq!(wrong_current.status, 422);
    assert!(
        wrong_current
            .body
            .contains("現在のパスワードが正しくありません")
    );
    let changed = browser.submit(
        "/profile/password",
        &[
            ("current_password", PASSWORD),
            ("password", "newpass99"),
            ("password_confirm", "newpass99"),
        ],
    );
    assert_eq!(changed.location(), "/profile?done=password");
    let notice = wait_for_nth(&daemon, "p@example.net", NOTICE, 3);
    assert!(
        notice.body.contains("パスワード") && !notice.body.contains("newpass99"),
        "never the secret itself"
    );
    assert_eq!(
        enter_password(&mut daemon.browser(), "newnameab", PASSWORD).status,
        401,
        "old password dead"
    );
    assert_eq!(
        other_device.get("/home").status,
        303,
        "the other device was logged out"
    );
    assert_eq!(browser.get("/home").status, 200, "this one stays");
    assert_eq!(
        enter_password(&mut daemon.browser(), "newnameab", "newpass99").status,
        303
    );
}

/// Adds an address through its mailed link, as its owner would.
fn add_address(daemon: &TestDaemon, browser: &mut crate::util::Browser, address: &str) {
    browser.open("/profile");
    let page = browser.submit("/profile/email/add", &[("email", address)]);
    assert_eq!(page.location(), "/profile?done=email_sent", "{}", page.body);
    let mail = wait_for_nth(daemon, address, "メールアドレス確認のご案内", 1);
    let link = mail
        .body
        .split_whitespace()
        .find(|w| w.contains("/profile/email/"))
        .unwrap()
        .to_string();
    // The owner may open it on another device: no login needed, but a button to press.
    let mut owner = daemon.browser();
    let confirm = owner.open(&link);
    assert!(confirm.body.contains(address) && confirm.body.contains("登録する"));
    assert!(!owner.cookies.is_empty(), "the token went into a cookie");
    let done = owner.submit("/profile/email/confirm", &[]);
    assert_eq!(done.location(), "/profile/email/added", "{}", done.body);
    let done = owner.open("/profile/email/added");
    assert!(done.body.contains("メールアドレスを登録しました"));
    assert_eq!(
        daemon.browser().open(&link).status,
        410,
        "the link is spent"
    );
}

#[test]
fn up_to_three_addresses_each_verified_and_the_last_cannot_go() {
    let daemon = TestDaemon::start();
    register(&daemon, "3002", "first@example.net", "addresses");
    let mut browser = daemon.browser();
    log_in(&daemon, &mut browser, "addresses", "first@example.net", 1);

    // Opening the link alone (a mail scanner) adds nothing.
    browser.open("/profile");
    browser.submit("/profile/email/add", &[("email", "scanned@example.net")]);
    let mail = wait_for_nth(
        &daemon,
        "scanned@example.net",
        "メールアドレス確認のご案内",
        1,
    );
    let link = mail
        .body
        .split_whitespace()
        .find(|w| w.contains("/profile/email/"))
        .unwrap()
        .to_string();
    daemon.browser().open(&link);
    assert!(
        !browser
            .open("/profile")
            .body
            .contains("<li>scanned@example.net")
    );

    add_address(&daemon, &mut browser, "second@example.net");
    add_address(&daemon, &mut browser, "third@example.net");
    let profile = browser.open("/profile");
    assert!(
        profile.body.contains("second@example.net") && profile.body.contains("third@example.net")
    );
    assert!(
        !profile.body.contains("/profile/email/add"),
        "no add form with three addresses"
    );
    let fourth = browser.submit("/profile/email/add", &[("email", "fourth@example.net")]);
    assert_eq!(fourth.status, 422);
    assert!(fourth.body.contains("最大3つまで"));
    // Each addition was announced to every address registered at the time.
    assert!(!mails_with_subject(&daemon, "first@example.net", NOTICE).is_empty());
    // The next login sends a key to all three.
    let mut again = daemon.browser();
    enter_password(&mut again, "addresses", PASSWORD);
    for address in [
        "first@example.net",
        "second@example.net",
        "third@example.net",
    ] {
        wait_for_nth(
            &daemon,
            address,
            "暗証キーのご案内",
            if address == "first@example.net" { 2 } else { 1 },
        );
    }

    browser.open("/profile");
    for address in ["second@example.net", "third@example.net"] {
        let page = browser.submit("/profile/email/remove", &[("email", address)]);
        assert_eq!(page.location(), "/profile?done=email_removed");
        browser.open("/profile");
    }
    let last = browser.submit("/profile/email/remove", &[("email", "first@example.net")]);
    assert_eq!(last.status, 422);
    assert!(last.body.contains("最後のメールアドレスは削除できません"));
    assert!(
        !mails_with_subject(&daemon, "third@example.net", NOTICE).is_empty(),
        "a removed address is told too"
    );
}

#[test]
fn profile_pages_need_a_login() {
    let daemon = TestDaemon::start();
    let page = daemon.browser().get("/profile");
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), "/?expired=1");
}

/// A stolen session guessing the current password in parallel: every guess counts
/// against the same lock as the login page, so the right password is refused after.
#[test]
fn wrong_current_passwords_are_counted_and_lock() {
    let daemon = TestDaemon::start();
    register(&daemon, "3101", "guess@example.net", "guessedid");
    let mut browser = daemon.browser();
    log_in(&daemon, &mut browser, "guessedid", "guess@example.net", 1);
    browser.open("/profile");
    let mut tabs: Vec<_> = (0..30).map(|_| browser.tab()).collect();
    std::thread::scope(|scope| {
        for tab in &mut tabs {
            scope.spawn(move || {
                tab.submit(
                    "/profile/password",
                    &[
                        ("current_password", "guessing1"),
                        ("password", "newpass99"),
                        ("password_confirm", "newpass99"),
                    ],
                )
            });
        }
    });
    let checked: u32 = daemon
        .db()
        .query_row(
            "SELECT count(*) FROM audit WHERE event = 'password_change_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        checked <= 5,
        "no more guesses checked than the lock allows: {checked}"
    );
    browser.open("/profile");
    let right = browser.submit(
        "/profile/password",
        &[
            ("current_password", PASSWORD),
            ("password", "newpass99"),
            ("password_confirm", "newpass99"),
        ],
    );
    assert_eq!(right.status, 422, "locked: {}", right.body);
    assert!(right.body.contains("一時的に制限"), "{}", right.body);
    assert_eq!(
        enter_password(&mut daemon.browser(), "guessedid", PASSWORD).status,
        401,
        "the login page shares the lock"
    );
}

/// A new login ID is not a new budget: the failures counted against the old one move
/// with the member, so 4 wrong guesses, a new ID and 1 more reach the lock.
#[test]
fn a_new_login_id_keeps_the_count_of_wrong_passwords() {
    let daemon = TestDaemon::start();
    register(&daemon, "3102", "move@example.net", "movingidab");
    let mut browser = daemon.browser();
    log_in(&daemon, &mut browser, "movingidab", "move@example.net", 1);
    let guess = |browser: &mut crate::util::Browser, password: &str| {
        browser.open("/profile");
        browser.submit(
            "/profile/password",
            &[
                ("current_password", password),
                ("password", "newpass99"),
                ("password_confirm", "newpass99"),
            ],
        )
    };
    for _ in 0..4 {
        guess(&mut browser, "guessing1");
    }
    browser.open("/profile");
    let changed = browser.submit("/profile/login-id", &[("login_id", "freshidab")]);
    assert_eq!(changed.location(), "/profile?done=login_id");
    let fifth = guess(&mut browser, "guessing1");
    assert!(fifth.body.contains("一時的に制限"), "{}", fifth.body);
    let right = guess(&mut browser, PASSWORD);
    assert!(right.body.contains("一時的に制限"), "{}", right.body);
}

/// Two tabs removing the member's two addresses at the same moment: one goes, the other
/// is refused — the member is never left without an address.
#[test]
fn two_removals_at_once_leave_an_address() {
    let daemon = TestDaemon::start();
    register(&daemon, "3103", "one@example.net", "tworemove");
    let mut browser = daemon.browser();
    log_in(&daemon, &mut browser, "tworemove", "one@example.net", 1);
    add_address(&daemon, &mut browser, "two@example.net");
    browser.open("/profile");
    let mut tabs = [browser.tab(), browser.tab()];
    let [first, second] = &mut tabs;
    std::thread::scope(|scope| {
        scope.spawn(|| first.submit("/profile/email/remove", &[("email", "one@example.net")]));
        scope.spawn(|| second.submit("/profile/email/remove", &[("email", "two@example.net")]));
    });
    let left: i64 = daemon
        .db()
        .query_row("SELECT count(*) FROM member_emails", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 1, "one address is always left");
}
