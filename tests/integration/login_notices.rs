//! After each login: 「ログインが行われました」 to every address (unless turned off), the
//! login history on プロフィール設定, and 「他の端末からログアウト」.

use crate::util::TestDaemon;
use crate::util::member::{
    PASSWORD, enter_password, key_in, log_in, mails_with_subject, register, wait_for_nth,
};

const NOTICE: &str = "ログインが行われました";
const CHANGED: &str = "登録情報変更のお知らせ";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
const WINDOWS_EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";

fn login_notices_queued(daemon: &TestDaemon) -> i64 {
    daemon
        .db()
        .query_row(
            "SELECT count(*) FROM outbox WHERE kind = 'login_notice'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_login_is_announced_and_listed_with_the_failed_tries_before_it() {
    let daemon = TestDaemon::start();
    register(&daemon, "5001", "hana@example.net", "hanakoabc");
    let mut phone = daemon.browser();
    phone.headers = vec![
        ("user-agent", IPHONE.into()),
        ("x-forwarded-for", "203.0.113.9".into()),
    ];
    assert_eq!(
        enter_password(&mut phone, "hanakoabc", "wrongpass1").status,
        401
    );
    assert_eq!(
        enter_password(&mut phone, "hanakoabc", PASSWORD).status,
        303
    );
    phone.open("/login/key");
    let key = key_in(&wait_for_nth(
        &daemon,
        "hana@example.net",
        "暗証キーのご案内",
        1,
    ));
    let wrong = if key == "000000" { "111111" } else { "000000" };
    assert_eq!(phone.submit("/login/key", &[("key", wrong)]).status, 401);
    assert_eq!(phone.submit("/login/key", &[("key", &key)]).status, 303);

    let notice = wait_for_nth(&daemon, "hana@example.net", NOTICE, 1);
    assert!(
        notice.body.contains("ブラウザ・端末：Safari（iPhone）"),
        "{}",
        notice.body
    );
    assert!(
        notice.body.contains("接続元IPアドレス：203.0.113.9"),
        "{}",
        notice.body
    );
    assert!(notice.body.contains("（日本時間）") && notice.body.contains("年"));
    assert!(
        notice.body.contains("他の端末からログアウト"),
        "what to do if it was not them"
    );
    assert!(!notice.body.contains(&key) && !notice.body.contains(PASSWORD));
    assert_eq!(notice.header("Auto-Submitted"), Some("auto-generated"));

    let profile = phone.open("/profile");
    let history = &profile.body[profile.body.find("ログイン履歴").unwrap()..];
    let rows: Vec<&str> = history.split("<tr").skip(2).collect();
    assert_eq!(rows.len(), 3, "{history}");
    assert!(rows[0].contains(">ログイン<") && rows[0].contains("Safari（iPhone）"));
    assert!(rows[1].contains("失敗（暗証キーの誤り）") && rows[1].contains("203.0.113.9"));
    assert!(rows[2].contains("失敗（パスワードの誤り）"));
    assert!(history.contains("ほかにログイン中のブラウザはありません"));

    // A wrong password for an ID that is nobody's is in no one's history.
    enter_password(&mut daemon.browser(), "nobodyabc", PASSWORD);
    let rows: i64 = daemon
        .db()
        .query_row("SELECT count(*) FROM login_history", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3);
}

#[test]
fn a_member_turns_the_login_notice_off_and_is_told_of_it() {
    let daemon = TestDaemon::start();
    register(&daemon, "5002", "jun@example.net", "junichiab");
    let mut browser = daemon.browser();
    log_in(&daemon, &mut browser, "junichiab", "jun@example.net", 1);
    wait_for_nth(&daemon, "jun@example.net", NOTICE, 1);
    let profile = browser.open("/profile");
    assert!(
        profile
            .body
            .contains(r#"name="notify_login" type="checkbox" value="1" checked"#)
    );

    // Unticked boxes are not sent: only the news stays on.
    let page = browser.submit("/profile/notify", &[("notify_news", "1")]);
    assert_eq!(page.location(), "/profile?done=notify");
    let page = browser.open("/profile?done=notify");
    assert!(page.body.contains("メールでのお知らせの設定を変更しました"));
    assert!(
        page.body
            .contains(r#"name="notify_login" type="checkbox" value="1">"#)
    );
    assert!(
        page.body
            .contains(r#"name="notify_news" type="checkbox" value="1" checked"#)
    );
    let changed = wait_for_nth(&daemon, "jun@example.net", CHANGED, 1);
    assert!(
        changed.body.contains("メールでのお知らせの設定"),
        "turning it off is no secret from the member"
    );

    let queued = login_notices_queued(&daemon);
    log_in(
        &daemon,
        &mut daemon.browser(),
        "junichiab",
        "jun@example.net",
        2,
    );
    assert_eq!(
        login_notices_queued(&daemon),
        queued,
        "no notice for the second login"
    );
    assert_eq!(
        mails_with_subject(&daemon, "jun@example.net", NOTICE).len(),
        1
    );

    // The same setting sent again changes nothing and announces nothing.
    browser.open("/profile");
    browser.submit("/profile/notify", &[("notify_news", "1")]);
    browser.submit("/profile/nickname", &[("nickname", "じゅん")]);
    let second = wait_for_nth(&daemon, "jun@example.net", CHANGED, 2);
    assert!(second.body.contains("ニックネーム"));
}

#[test]
fn other_browsers_are_logged_out_on_request() {
    let daemon = TestDaemon::start();
    register(&daemon, "5003", "ken@example.net", "kentaroab");
    let mut pc = daemon.browser();
    pc.headers = vec![("user-agent", WINDOWS_EDGE.into())];
    log_in(&daemon, &mut pc, "kentaroab", "ken@example.net", 1);
    let mut phone = daemon.browser();
    log_in(&daemon, &mut phone, "kentaroab", "ken@example.net", 2);
    let mut tablet = daemon.browser();
    log_in(&daemon, &mut tablet, "kentaroab", "ken@example.net", 3);

    let profile = pc.open("/profile");
    assert!(
        profile
            .body
            .contains("この端末のほかに、2件のブラウザでログインしています")
    );
    assert!(profile.body.contains("Edge（Windows）") && profile.body.contains("不明なブラウザ"));
    let page = pc.submit("/profile/sessions/end-others", &[]);
    assert_eq!(page.location(), "/profile?done=others_ended");
    assert!(
        pc.open("/profile?done=others_ended")
            .body
            .contains("他の端末からログアウトしました")
    );
    assert_eq!(phone.get("/home").status, 303, "logged out");
    assert_eq!(tablet.get("/home").status, 303, "logged out");
    assert_eq!(pc.get("/home").status, 200, "this browser stays");
    assert!(
        pc.open("/profile")
            .body
            .contains("ほかにログイン中のブラウザはありません")
    );

    // Without the form's token, nobody is logged out.
    log_in(&daemon, &mut phone, "kentaroab", "ken@example.net", 4);
    let forged = pc.post_raw("/profile/sessions/end-others", "csrf=forged");
    assert_eq!(forged.status, 403);
    assert_eq!(phone.get("/home").status, 200);
}
