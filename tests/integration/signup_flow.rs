//! Procedures A and B from the first mail to 利用者情報登録完了, and every way a
//! member can go wrong on the way.

use crate::util::{Browser, TestDaemon, empty_mail, input_value, send_mail};

const GOOD_PASSWORD: &str = "kenpo123";

/// From the mailed link to the completion page.
fn complete_signup(
    browser: &mut Browser,
    link: &str,
    temp: &(String, String),
    login_id: &str,
) -> String {
    let page = browser.open(link);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("仮パスワード"),
        "the 本人確認 page asks for the postcard"
    );
    let page = browser.submit(
        "/signup/verify",
        &[("temp_login_id", &temp.0), ("temp_password", &temp.1)],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location(), "/signup/profile");
    let page = browser.open("/signup/profile");
    assert!(page.body.contains("利用者情報入力"));
    let email = input_value(&page.body, "email").expect("email is prefilled");
    let page = browser.submit(
        "/signup/profile",
        &[
            ("login_id", login_id),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
            ("email", &email),
            ("nickname", "たろう"),
        ],
    );
    assert_eq!(page.status, 303, "{}", page.body);
    let done = browser.open(page.location());
    assert!(done.body.contains("利用者情報登録完了"));
    assert!(
        done.body.contains("href=\"/\""),
        "a button to the login page"
    );
    email
}

#[test]
fn procedure_b_empty_mail_to_completion_then_link_and_postcard_are_dead() {
    let daemon = TestDaemon::start();
    let temp = daemon
        .import_members("member_no,name\n1001,山田 太郎\n")
        .remove(0);
    let member = "taro@example.net";
    let message = empty_mail(member);
    assert_eq!(send_mail(&daemon, member, &message), 250);

    let mail = daemon.wait_for_mail(member);
    assert_eq!(mail.subject, "利用登録手続きのご案内");
    assert_eq!(mail.header("Auto-Submitted"), Some("auto-replied"));
    let original_id = message
        .lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap();
    assert_eq!(mail.header("In-Reply-To"), Some(original_id));
    assert_eq!(mail.header("References"), Some(original_id));
    assert!(
        mail.header("Message-ID")
            .is_some_and(|id| id.ends_with("@example.jp>"))
    );
    assert!(mail.header("Date").is_some());
    assert!(
        mail.header("From")
            .is_some_and(|f| f.contains("noreply@example.jp"))
    );
    assert_eq!(
        mail.raw.matches("\nTo:").count() + usize::from(mail.raw.starts_with("To:")),
        1
    );
    for wording in [
        "有効期限は3時間",
        "本メールに覚えがない場合",
        "本メールには返信できません",
        "テスト健康保険組合",
    ] {
        assert!(
            mail.body.contains(wording),
            "mail says {wording}: {}",
            mail.body
        );
    }

    let link = mail.signup_link();
    let mut browser = daemon.browser();
    let email = complete_signup(&mut browser, &link, &temp, "taroyamada");
    assert_eq!(email, member, "the address the link went to");

    let mut again = daemon.browser();
    let page = again.open(&link);
    assert_eq!(page.status, 410);
    assert!(page.body.contains("使用済み") && page.body.contains("03-1234-5678"));

    // A new link works, but the spent postcard does not: its holder is told that the
    // sign-up is done and how to log in, and goes no further.
    assert_eq!(send_mail(&daemon, member, &empty_mail(member)), 250);
    let second = daemon.wait_for_mails(member, 2).pop().unwrap();
    let mut browser = daemon.browser();
    browser.open(&second.signup_link());
    let page = browser.submit(
        "/signup/verify",
        &[("temp_login_id", &temp.0), ("temp_password", &temp.1)],
    );
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("利用登録は完了しています"),
        "{}",
        page.body
    );
    assert!(page.body.contains("パスワードを忘れた方"));
    let profile = browser.open("/signup/profile");
    assert!(!profile.body.contains("利用者情報入力"), "{}", profile.body);
    // Someone without the postcard's password learns nothing of it.
    let mut stranger = daemon.browser();
    stranger.open(&second.signup_link());
    let page = stranger.submit(
        "/signup/verify",
        &[("temp_login_id", &temp.0), ("temp_password", "guessed123")],
    );
    assert!(
        page.body
            .contains("ログインIDまたは仮パスワードが正しくありません")
    );
    assert!(!page.body.contains("完了"));
}

#[test]
fn procedure_a_web_form_to_completion() {
    let daemon = TestDaemon::start();
    let temp = daemon
        .import_members("member_no,name\n2001,佐藤 花子\n")
        .remove(0);
    let mut browser = daemon.browser();
    let entrance = browser.open("/");
    assert!(
        entrance
            .body
            .contains("はじめてご利用になる方（新規利用登録）")
    );
    assert!(entrance.body.contains("パスワードを忘れた方"));
    let form = browser.open("/signup");
    assert!(
        form.body
            .contains("メールアドレスを入力し、送信してください。")
    );
    let sent = browser.submit("/signup", &[("email", "hanako@example.org")]);
    assert_eq!(sent.status, 200);
    assert!(sent.body.contains("利用登録手続きのご案内"));

    let mail = daemon.wait_for_mail("hanako@example.org");
    assert_eq!(mail.header("Auto-Submitted"), Some("auto-generated"));
    complete_signup(&mut browser, &mail.signup_link(), &temp, "hanakosato");
}

#[test]
fn the_form_answers_the_same_for_known_used_and_new_addresses() {
    let daemon = TestDaemon::start();
    let temp = daemon
        .import_members("member_no,name\n3001,鈴木 一郎\n")
        .remove(0);
    let mut browser = daemon.browser();
    browser.open("/signup");
    browser.submit("/signup", &[("email", "ichiro@example.org")]);
    let link = daemon.wait_for_mail("ichiro@example.org").signup_link();
    complete_signup(&mut browser, &link, &temp, "ichirosuzuki");

    let mut answers = Vec::new();
    for address in ["ichiro@example.org", "stranger@example.org"] {
        let mut browser = daemon.browser();
        browser.open("/signup");
        let page = browser.submit("/signup", &[("email", address)]);
        assert_eq!(page.status, 200);
        answers.push(page.body.replace(address, "ADDRESS"));
    }
    assert_eq!(answers[0], answers[1]);
}

#[test]
fn opening_the_link_does_not_spend_it_but_the_postcard_check_does() {
    let daemon = TestDaemon::start();
    let temp = daemon.import_members("member_no,name\n4001,A\n").remove(0);
    send_mail(&daemon, "scan@example.net", &empty_mail("scan@example.net"));
    let link = daemon.wait_for_mail("scan@example.net").signup_link();
    for _ in 0..3 {
        let mut scanner = daemon.browser();
        assert_eq!(scanner.get(&link).status, 303, "a mail scanner's visit");
    }
    let mut browser = daemon.browser();
    let page = browser.open(&link);
    assert!(page.body.contains("仮パスワード"));
    // The token leaves the address bar: the page is served at /signup/verify.
    assert!(!page.body.contains(link.rsplit('/').next().unwrap()));
    let page = browser.submit(
        "/signup/verify",
        &[("temp_login_id", &temp.0), ("temp_password", &temp.1)],
    );
    assert_eq!(page.status, 303);
    assert_eq!(daemon.browser().get(&link).status, 410);
}

#[test]
fn wrong_postcard_entries_are_limited_and_void_the_link() {
    let daemon = TestDaemon::start();
    let temp = daemon.import_members("member_no,name\n5001,A\n").remove(0);
    send_mail(
        &daemon,
        "guess@example.net",
        &empty_mail("guess@example.net"),
    );
    let link = daemon.wait_for_mail("guess@example.net").signup_link();
    let mut browser = daemon.browser();
    browser.open(&link);
    for left in (1..5).rev() {
        let page = browser.submit(
            "/signup/verify",
            &[("temp_login_id", &temp.0), ("temp_password", "wrongpass1")],
        );
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains(&format!("あと{left}回")),
            "{}",
            page.body
        );
        assert!(page.body.contains(&temp.0), "the ID typed is kept");
    }
    let page = browser.submit(
        "/signup/verify",
        &[("temp_login_id", &temp.0), ("temp_password", "wrongpass1")],
    );
    assert_eq!(page.status, 403);
    assert!(page.body.contains("このURLは無効になりました"));
    assert_eq!(
        daemon.browser().get(&link).status,
        410,
        "even with the right postcard now"
    );
}

#[test]
fn user_info_errors_are_shown_by_their_field_with_values_kept() {
    let daemon = TestDaemon::start();
    let temps = daemon.import_members("member_no,name\n6001,A\n6002,B\n");
    send_mail(
        &daemon,
        "first@example.net",
        &empty_mail("first@example.net"),
    );
    let link = daemon.wait_for_mail("first@example.net").signup_link();
    let mut browser = daemon.browser();
    complete_signup(&mut browser, &link, &temps[0], "takenname");

    send_mail(
        &daemon,
        "second@example.net",
        &empty_mail("second@example.net"),
    );
    let link = daemon.wait_for_mail("second@example.net").signup_link();
    let mut browser = daemon.browser();
    browser.open(&link);
    browser.submit(
        "/signup/verify",
        &[
            ("temp_login_id", &temps[1].0),
            ("temp_password", &temps[1].1),
        ],
    );
    browser.open("/signup/profile");
    let page = browser.submit(
        "/signup/profile",
        &[
            ("login_id", "SKE123456"),
            ("password", "short"),
            ("password_confirm", "other"),
            ("email", "someone-else@example.net"),
            ("nickname", "<script>alert(1)</script>"),
        ],
    );
    assert_eq!(page.status, 422);
    assert!(page.body.contains("7・8桁目に数字は使用できません"));
    assert!(
        page.body
            .contains("半角英小文字、半角数字を組み合わせた8文字以上")
    );
    assert!(page.body.contains("一致しません"));
    assert!(
        page.body
            .contains("ご案内メールを受け取ったアドレスから変更できません")
    );
    assert_eq!(
        input_value(&page.body, "login_id").as_deref(),
        Some("SKE123456")
    );
    assert!(
        !page.body.contains("short"),
        "a password is never sent back"
    );
    assert!(
        !page.body.contains("<script>alert(1)"),
        "the nickname is escaped"
    );
    assert!(page.body.contains("&lt;script&gt;"));

    let page = browser.submit(
        "/signup/profile",
        &[
            ("login_id", "TakenName"),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
            ("email", "second@example.net"),
            ("nickname", "B"),
        ],
    );
    assert_eq!(page.status, 422);
    assert!(page.body.contains("このログインIDは既に使われています"));
}

#[test]
fn an_expired_link_says_so_and_how_to_start_again() {
    let daemon = TestDaemon::start_with(|c| c.policy.signup_link_ttl = "1s".parse().unwrap());
    send_mail(&daemon, "late@example.net", &empty_mail("late@example.net"));
    let mail = daemon.wait_for_mail("late@example.net");
    assert!(mail.body.contains("有効期限は1秒"));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let page = daemon.browser().open(&mail.signup_link());
    assert_eq!(page.status, 410);
    assert!(page.body.contains("有効期限が切れています"));
    assert!(
        page.body.contains("href=\"/signup\""),
        "how to start again: {}",
        page.body
    );
    assert!(page.body.contains("03-1234-5678"), "the society's contact");
}

#[test]
fn a_garbled_link_and_a_stale_screen_get_clear_pages() {
    let daemon = TestDaemon::start();
    let page = daemon.browser().open("/signup/link/abc123");
    assert_eq!(page.status, 404);
    assert!(page.body.contains("URLが正しくありません"));
    let page = daemon.browser().open("/signup/verify");
    assert_eq!(page.status, 403);
    assert!(page.body.contains("画面の有効期限が切れました"));
}

#[test]
fn forms_without_the_csrf_token_are_refused() {
    let daemon = TestDaemon::start();
    let mut browser = daemon.browser();
    browser.open("/signup");
    let page = browser.post_raw("/signup", "email=victim%40example.org");
    assert_eq!(page.status, 403);
    let page = browser.post_raw("/signup", "email=victim%40example.org&csrf=0000");
    assert_eq!(page.status, 403);
    assert!(
        daemon.outcomes_for("victim@example.org").is_empty(),
        "nothing was requested"
    );
}

#[test]
fn pages_carry_protective_headers() {
    let daemon = TestDaemon::start();
    let page = daemon.browser().open("/signup");
    let header = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("referrer-policy"), "same-origin");
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(
        header("set-cookie").contains("HttpOnly") && header("set-cookie").contains("SameSite=Lax")
    );
}

#[test]
fn the_favicon_is_an_icon_not_a_404() {
    let daemon = TestDaemon::start();
    let page = daemon.browser().get("/favicon.ico");
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "image/x-icon");
}

/// Thirty postcard guesses at once on one link: each is counted before its password is
/// checked, so five are checked at most and the link is void after them.
#[test]
fn parallel_postcard_guesses_are_each_counted() {
    let daemon = TestDaemon::start();
    let temp = daemon
        .import_members("member_no,name\n8101,並列 花子\n")
        .remove(0);
    let address = "parallel@example.net";
    assert_eq!(send_mail(&daemon, address, &empty_mail(address)), 250);
    let link = daemon.wait_for_mail(address).signup_link();
    let mut guessers: Vec<Browser> = (0..30).map(|_| daemon.browser()).collect();
    for browser in &mut guessers {
        browser.open(&link);
    }
    std::thread::scope(|scope| {
        for browser in &mut guessers {
            let temp_id = temp.0.clone();
            scope.spawn(move || {
                browser.submit(
                    "/signup/verify",
                    &[("temp_login_id", &temp_id), ("temp_password", "guessing12")],
                )
            });
        }
    });
    let attempts: u32 = daemon
        .db()
        .query_row("SELECT failed_attempts FROM links", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        attempts, 5,
        "no more than the limit were counted, and so checked"
    );
    let mut late = daemon.browser();
    let page = late.open(&link);
    assert_ne!(page.status, 200, "the link is void: {}", page.body);
}
