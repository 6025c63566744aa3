//! Login with the mailed one-time key (暗証キー), lockouts, and the top page.

use std::time::Duration;

use crate::util::member::{
    PASSWORD, enter_password, key_in, log_in, mails_with_subject, register, wait_for_nth,
};
use crate::util::{TestDaemon, hidden_field};

const KEY_MAIL: &str = "暗証キーのご案内";

#[test]
fn password_then_mailed_key_then_top_page_then_logout() {
    let daemon = TestDaemon::start();
    register(&daemon, "1001", "taro@example.net", "taroyamada");
    let mut browser = daemon.browser();
    let page = enter_password(&mut browser, "TaroYamada", PASSWORD);
    assert_eq!(page.status, 303, "login IDs ignore case");
    let key_page = browser.open("/login/key");
    assert!(
        key_page
            .body
            .contains(r#"inputmode="numeric" autocomplete="one-time-code""#)
    );
    assert!(key_page.body.contains("暗証キーの再請求"));
    let mail = wait_for_nth(&daemon, "taro@example.net", KEY_MAIL, 1);
    let key = key_in(&mail);
    assert_eq!(key.len(), 6);
    assert!(mail.body.contains("10分"));
    let done = browser.submit("/login/key", &[("key", &key)]);
    assert_eq!(done.status, 303);
    let home = browser.open("/home");
    assert!(home.body.contains("ニック1001さん"), "{}", home.body);
    // The key is single-use: the same key in a new attempt's screen does not work.
    let mut other = daemon.browser();
    enter_password(&mut other, "taroyamada", PASSWORD);
    other.open("/login/key");
    assert_eq!(other.submit("/login/key", &[("key", &key)]).status, 401);

    let home = browser.open("/home");
    browser.submit("/logout", &[]);
    assert!(home.status == 200);
    let after = browser.get("/home");
    assert_eq!(after.status, 303, "logged out");
}

/// The login page is kept rendered (in pieces around its token): every browser still
/// gets a token of its own, only its own works, and each notice shows where it belongs.
#[test]
fn the_login_page_is_each_browsers_own_with_its_own_notice() {
    let daemon = TestDaemon::start();
    register(&daemon, "1009", "ken@example.net", "kenichiro");
    let (mut one, mut other) = (daemon.browser(), daemon.browser());
    let first = one.open("/");
    let second = other.open("/");
    let token = |page: &crate::util::Page| hidden_field(&page.body, "csrf").unwrap();
    let (mine, theirs) = (token(&first), token(&second));
    assert_ne!(mine, theirs);
    assert_eq!(first.body.replace(&mine, &theirs), second.body);

    let notices = [
        ("/?expired=1", "ログインの有効期限が切れました"),
        ("/?logged_out=1", "ログアウトしました。"),
        ("/?reset=1", "パスワードを変更しました。"),
    ];
    for _ in 0..2 {
        for (path, notice) in notices {
            let page = one.open(path);
            assert!(page.body.contains(notice), "{path}: {}", page.body);
            for (_, elsewhere) in notices.iter().filter(|(p, _)| *p != path) {
                assert!(!page.body.contains(elsewhere), "{path} shows {elsewhere}");
            }
            assert_eq!(token(&page), mine, "the same browser keeps its token");
        }
        let plain = one.open("/");
        assert!(notices.iter().all(|(_, n)| !plain.body.contains(n)));
    }

    // The other browser's token is refused; one's own logs in.
    let body = serde_urlencoded::to_string([
        ("csrf", theirs.as_str()),
        ("login_id", "kenichiro"),
        ("password", PASSWORD),
    ])
    .unwrap();
    assert_eq!(one.post_raw("/login", &body).status, 403);
    assert_eq!(enter_password(&mut one, "kenichiro", PASSWORD).status, 303);
}

#[test]
fn wrong_id_or_password_says_the_same_thing() {
    let daemon = TestDaemon::start();
    register(&daemon, "1002", "hanako@example.net", "hanakosato");
    let mut browser = daemon.browser();
    let wrong_password = enter_password(&mut browser, "hanakosato", "wrong123");
    let unknown_id = enter_password(&mut browser, "nobodyhere", "wrong123");
    assert_eq!(wrong_password.status, 401);
    assert_eq!(unknown_id.status, 401);
    let message = "ログインIDまたはパスワードが正しくありません。";
    assert!(wrong_password.body.contains(message) && unknown_id.body.contains(message));
}

#[test]
fn five_wrong_keys_void_the_attempt() {
    let daemon = TestDaemon::start();
    register(&daemon, "1003", "k@example.net", "keyholder");
    let mut browser = daemon.browser();
    enter_password(&mut browser, "keyholder", PASSWORD);
    browser.open("/login/key");
    let key = key_in(&wait_for_nth(&daemon, "k@example.net", KEY_MAIL, 1));
    let wrong = if key == "000000" { "111111" } else { "000000" };
    for left in (1..5).rev() {
        let page = browser.submit("/login/key", &[("key", wrong)]);
        assert_eq!(page.status, 401);
        assert!(
            page.body.contains(&format!("あと{left}回")),
            "{}",
            page.body
        );
    }
    let page = browser.submit("/login/key", &[("key", wrong)]);
    assert_eq!(page.status, 403);
    assert!(page.body.contains("暗証キーの誤りが続いたため"));
    assert_eq!(
        browser.submit("/login/key", &[("key", &key)]).status,
        403,
        "even the right key is dead now"
    );
}

#[test]
fn an_expired_key_is_refused() {
    // Long enough for the key's mail to go out on a loaded CI machine (at 1 s it was
    // sometimes expired unsent, as it should be), short enough to wait out.
    let daemon = TestDaemon::start_with(|c| c.policy.login_key_ttl = "3s".parse().unwrap());
    register(&daemon, "1004", "slow@example.net", "slowreader");
    let mut browser = daemon.browser();
    enter_password(&mut browser, "slowreader", PASSWORD);
    browser.open("/login/key");
    let key = key_in(&wait_for_nth(&daemon, "slow@example.net", KEY_MAIL, 1));
    std::thread::sleep(Duration::from_millis(3100));
    let page = browser.submit("/login/key", &[("key", &key)]);
    assert_eq!(page.status, 401);
    assert!(page.body.contains("有効期限が切れています"));
}

#[test]
fn a_new_attempt_voids_the_key_of_the_old_one() {
    let daemon = TestDaemon::start();
    register(&daemon, "1005", "two@example.net", "twotabsxx");
    let mut first = daemon.browser();
    enter_password(&mut first, "twotabsxx", PASSWORD);
    first.open("/login/key");
    let first_key = key_in(&wait_for_nth(&daemon, "two@example.net", KEY_MAIL, 1));
    let mut second = daemon.browser();
    enter_password(&mut second, "twotabsxx", PASSWORD);
    let second_key = key_in(&wait_for_nth(&daemon, "two@example.net", KEY_MAIL, 2));
    let page = first.submit("/login/key", &[("key", &first_key)]);
    assert_eq!(
        page.status, 403,
        "the first screen's attempt was ended by the second login"
    );
    second.open("/login/key");
    assert_eq!(
        second.submit("/login/key", &[("key", &second_key)]).status,
        303
    );
}

#[test]
fn the_key_can_be_re_requested_after_a_cooldown() {
    let daemon =
        TestDaemon::start_with(|c| c.policy.login_key_resend_cooldown = "2s".parse().unwrap());
    register(&daemon, "1006", "again@example.net", "againplz");
    let mut browser = daemon.browser();
    enter_password(&mut browser, "againplz", PASSWORD);
    browser.open("/login/key");
    let old_key = key_in(&wait_for_nth(&daemon, "again@example.net", KEY_MAIL, 1));
    let too_soon = browser.submit("/login/key/resend", &[]);
    assert_eq!(too_soon.status, 429);
    assert!(too_soon.body.contains("送信したばかりです"));
    // Times are whole seconds: 2.1 s is past a 2 s cooldown however the seconds fall.
    std::thread::sleep(Duration::from_millis(2100));
    let resent = browser.submit("/login/key/resend", &[]);
    assert_eq!(resent.status, 200);
    assert!(resent.body.contains("再送信しました"));
    let new_key = key_in(&wait_for_nth(&daemon, "again@example.net", KEY_MAIL, 2));
    if old_key != new_key {
        assert_eq!(
            browser.submit("/login/key", &[("key", &old_key)]).status,
            401,
            "the old key is void"
        );
    }
    assert_eq!(
        browser.submit("/login/key", &[("key", &new_key)]).status,
        303
    );
}

/// Twenty 再請求 at once after the cooldown: the cooldown is checked where the keys are
/// renewed, so one request sends new keys and the others are told to wait.
#[test]
fn parallel_re_requests_send_one_new_key() {
    let daemon =
        TestDaemon::start_with(|c| c.policy.login_key_resend_cooldown = "1s".parse().unwrap());
    register(&daemon, "1016", "racer2@example.net", "resendracer");
    let mut browser = daemon.browser();
    enter_password(&mut browser, "resendracer", PASSWORD);
    browser.open("/login/key");
    wait_for_nth(&daemon, "racer2@example.net", KEY_MAIL, 1);
    std::thread::sleep(Duration::from_millis(2100));
    let mut tabs: Vec<_> = (0..20).map(|_| browser.tab()).collect();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let answers: Vec<_> = tabs
            .iter_mut()
            .map(|tab| scope.spawn(move || tab.submit("/login/key/resend", &[]).status))
            .collect();
        answers.into_iter().map(|a| a.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        19,
        "{statuses:?}"
    );
    let resent: u32 = daemon
        .db()
        .query_row(
            "SELECT count(*) FROM audit WHERE event = 'login_key_resent'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(resent, 1);
}

#[test]
fn repeated_failures_lock_any_id_for_a_while_then_it_ends() {
    let daemon = TestDaemon::start_with(|c| {
        c.policy.login_lockout_after = 3;
        c.policy.login_lockout_initial = "2s".parse().unwrap();
    });
    register(&daemon, "1007", "lock@example.net", "lockedout");
    let mut browser = daemon.browser();
    for id in ["lockedout", "ghostuser"] {
        for _ in 0..2 {
            assert!(
                enter_password(&mut browser, id, "wrong123")
                    .body
                    .contains("正しくありません")
            );
        }
        let third = enter_password(&mut browser, id, "wrong123");
        assert!(
            third.body.contains("一時的に制限しています"),
            "{id}: a real and an unknown ID look the same"
        );
    }
    let during = enter_password(&mut browser, "lockedout", PASSWORD);
    assert_eq!(during.status, 401);
    assert!(
        during.body.contains("一時的に制限しています"),
        "even the right password waits"
    );
    assert!(mails_with_subject(&daemon, "lock@example.net", KEY_MAIL).is_empty());
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        enter_password(&mut browser, "lockedout", PASSWORD).status,
        303,
        "the lock ends"
    );
    let audit: i64 = daemon
        .db()
        .query_row(
            "SELECT count(*) FROM audit WHERE event = 'login_locked'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(audit, 2);
}

#[test]
fn the_top_page_shows_only_the_members_own_records_and_current_notices() {
    let daemon = TestDaemon::start();
    register(&daemon, "2001", "a@example.net", "memberaaa");
    register(&daemon, "2002", "b@example.net", "memberbbb");
    let db = karamail::db::Db::open(&daemon.config.database.path).unwrap();
    let rows = karamail::records::parse(
        "member_no,date,title,body,BMI\n2001,2026-04-01,2026年度 定期健診,異常なし,22.5\n2002,2026-04-02,2026年度 定期健診,要経過観察,27.0\n2001,2026-05-01,<script>alert(1)</script>,x,1\n",
    )
    .unwrap();
    karamail::records::import(
        &db,
        karamail::db::records::Kind::Checkup,
        &rows,
        "noreply@example.jp",
    )
    .unwrap();
    db.call_blocking(|c| {
        karamail::db::notices::insert(c, "古いお知らせ", "終わった", Some("2000-01-01"), 100)?;
        karamail::db::notices::insert(c, "健診のご案内", "<b>予約</b>してください", None, 200)?;
        karamail::db::notices::insert(c, "年末年始の休業", "12/29〜1/3", Some("2999-12-31"), 300)
    })
    .unwrap();
    let other_id: i64 = daemon
        .db()
        .query_row("SELECT r.id FROM records r JOIN members m ON m.id = r.member_id WHERE m.member_no = '2002'", [], |r| r.get(0))
        .unwrap();

    let mut browser = daemon.browser();
    log_in(&daemon, &mut browser, "memberaaa", "a@example.net", 1);
    let home = browser.open("/home");
    assert!(home.body.contains("2026年度 定期健診"));
    assert_eq!(
        home.body.matches("/records/checkup/").count(),
        2,
        "only the member's own records are listed"
    );
    assert!(
        home.body
            .contains("&lt;script&gt;alert(1)&lt;&#x2F;script&gt;")
            && !home.body.contains("<script>")
    );
    assert!(
        !home.body.contains("古いお知らせ"),
        "an ended notice is not shown"
    );
    let newest = home.body.find("年末年始の休業").unwrap();
    let older = home.body.find("健診のご案内").unwrap();
    assert!(newest < older, "newest first");
    assert!(
        home.body.contains("&lt;b&gt;予約&lt;&#x2F;b&gt;"),
        "notice text is escaped"
    );
    let own_link = home
        .body
        .split("/records/checkup/")
        .nth(2)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let detail = browser.open(&format!("/records/checkup/{own_link}"));
    assert_eq!(detail.status, 200);
    assert!(
        detail.body.contains("異常なし")
            && detail.body.contains("BMI")
            && detail.body.contains("22.5")
    );
    assert_eq!(
        browser.open(&format!("/records/checkup/{other_id}")).status,
        404,
        "another member's record"
    );
    assert_eq!(
        browser
            .open(&format!("/records/medical-expense/{own_link}"))
            .status,
        404,
        "wrong kind"
    );
    assert_eq!(
        daemon
            .browser()
            .get(&format!("/records/checkup/{own_link}"))
            .status,
        303,
        "needs a login"
    );
}

#[test]
fn an_idle_session_ends() {
    let daemon = TestDaemon::start_with(|c| c.policy.session_idle = "1s".parse().unwrap());
    register(&daemon, "1008", "idle@example.net", "idlemember");
    let mut browser = daemon.browser();
    log_in(&daemon, &mut browser, "idlemember", "idle@example.net", 1);
    assert_eq!(browser.get("/home").status, 200);
    std::thread::sleep(Duration::from_millis(2100));
    let page = browser.get("/home");
    assert_eq!(page.location(), "/?expired=1");
    assert!(
        browser
            .open(page.location())
            .body
            .contains("ログインの有効期限が切れました")
    );
}

/// Forty guesses at once for one ID: each is counted before its password is checked, so
/// the lock fires and the right password, guessed among them or after, is refused.
#[test]
fn forty_parallel_guesses_cost_forty_attempts() {
    let daemon = TestDaemon::start();
    register(&daemon, "8001", "racer@example.net", "racermember");
    std::thread::scope(|scope| {
        for _ in 0..40 {
            scope.spawn(|| enter_password(&mut daemon.browser(), "racermember", "wrongpass1"));
        }
    });
    let counted: u32 = daemon
        .db()
        .query_row(
            "SELECT failures FROM login_failures WHERE login_key = 'racermember'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(counted >= 5, "the lock's threshold was reached: {counted}");
    let page = enter_password(
        &mut daemon.browser(),
        "racermember",
        crate::util::member::PASSWORD,
    );
    assert_eq!(page.status, 401);
    assert!(page.body.contains("一時的に制限"), "{}", page.body);
}

/// Thirty 暗証キー guesses at once on one login: the attempt is looked at again where the
/// guess is compared and counted, so no more than the allowed five are checked, and the
/// right key after them is refused.
#[test]
fn parallel_key_guesses_are_each_counted() {
    let daemon = TestDaemon::start();
    register(&daemon, "8002", "keyracer@example.net", "keyracerid");
    let mut browser = daemon.browser();
    assert_eq!(
        enter_password(&mut browser, "keyracerid", PASSWORD).status,
        303
    );
    browser.open("/login/key");
    let key = key_in(&wait_for_nth(&daemon, "keyracer@example.net", KEY_MAIL, 1));
    let wrong = if key == "000000" { "000001" } else { "000000" };
    let mut tabs: Vec<_> = (0..30).map(|_| browser.tab()).collect();
    std::thread::scope(|scope| {
        for tab in &mut tabs {
            scope.spawn(move || tab.submit("/login/key", &[("key", wrong)]));
        }
    });
    let checked: u32 = daemon
        .db()
        .query_row(
            "SELECT count(*) FROM audit WHERE event = 'login_key_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(checked, 5, "only the allowed guesses were checked");
    let late = browser.submit("/login/key", &[("key", &key)]);
    assert_eq!(late.status, 403, "the attempt is over: {}", late.body);
    assert_eq!(browser.get("/home").status, 303, "not logged in");
}

/// A copy of the database alone reveals no 暗証キー and no session: the hashes it holds
/// are keyed with the server key, which lives in a file of its own (0600). The attack
/// that once worked — all 10⁶ keys hashed as `BLAKE2b("login-key:{attempt}:{key}")` —
/// finds nothing; with the key file, the mailed key is found.
#[test]
fn a_copied_database_reveals_no_key_or_session() {
    use blake2::digest::consts::U32;
    use blake2::{Blake2b, Digest};
    use karamail::secrets::{SecretKind, ServerKey};
    use std::os::unix::fs::PermissionsExt;

    let daemon = TestDaemon::start();
    register(&daemon, "8003", "copied@example.net", "copiedmember");
    let mut browser = daemon.browser();
    enter_password(&mut browser, "copiedmember", PASSWORD);
    let key = key_in(&wait_for_nth(&daemon, "copied@example.net", KEY_MAIL, 1));
    let (attempt, stored): (i64, Vec<u8>) = daemon
        .db()
        .query_row("SELECT attempt_id, key_hash FROM login_keys", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    let old_scheme = |text: &str| Blake2b::<U32>::digest(text.as_bytes()).to_vec();
    let found = (0..1_000_000)
        .map(|n| format!("{n:06}"))
        .find(|guess| old_scheme(&format!("login-key:{attempt}:{guess}")) == stored);
    assert_eq!(found, None, "the database alone gives the key away");

    let key_file = daemon.config.key_file();
    assert_eq!(key_file, daemon.dir.path().join("karamail.key"));
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let db = karamail::db::Db::open(&daemon.config.database.path).unwrap();
    let server_key = ServerKey::open(&db, &key_file, false).unwrap();
    assert_eq!(server_key.hash(SecretKind::LoginKey(attempt), &key), stored);

    browser.submit("/login/key", &[("key", &key)]);
    let session = browser.cookies["km_session"].clone();
    let stored: Vec<u8> = daemon
        .db()
        .query_row(
            "SELECT id_hash FROM sessions WHERE kind = 'member'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_ne!(old_scheme(&session), stored);
    assert_eq!(server_key.hash(SecretKind::Session, &session), stored);
}

/// The server key survives a restart: a member logged in before it stays logged in.
#[test]
fn the_server_key_is_kept_across_restarts() {
    let daemon = TestDaemon::start();
    register(&daemon, "8004", "restart@example.net", "restartmember");
    let mut browser = daemon.browser();
    log_in(
        &daemon,
        &mut browser,
        "restartmember",
        "restart@example.net",
        1,
    );
    let cookies = browser.cookies.clone();
    let daemon = daemon.restart_with(|_| {});
    let mut again = daemon.browser();
    again.cookies = cookies;
    assert_eq!(again.get("/home").status, 200);
}
