//! Procedures B and A to 利用者情報登録完了 in a browser, with the mistakes members make,
//! then the first login with the mailed 暗証キー, the top page, a record, and logout.

use super::in_every_browser;
use crate::util::member::{key_in, wait_for_nth};
use crate::util::webdriver::{Engine, Viewport, Web};
use crate::util::{TestDaemon, empty_mail, send_mail};

const ADDRESS: &str = "hanako@example.net";

/// Postcard, then the form's mistakes, then 完了 (from the mailed link on).
async fn postcard_and_profile(
    web: &mut Web<'_>,
    link: &str,
    temp: &(String, String),
    login_id: &str,
) {
    web.open(link).await;
    assert_eq!(web.path().await, "/signup/verify");
    web.check("本人確認").await;
    web.fill("temp_login_id", &temp.0).await;
    web.fill("temp_password", "wrongpass9").await;
    web.press("form[action='/signup/verify'] button").await;
    web.expect_text("ログインIDまたは仮パスワードが正しくありません")
        .await;
    web.expect_text("あと4回").await;
    assert_eq!(
        web.focused_id().await,
        "error-summary",
        "focus on the error"
    );
    web.check("本人確認-誤り").await;
    // Reload repeats the GET of the answer, not the POST: no attempt is counted.
    web.reload().await;
    web.expect_text("あと4回").await;
    web.fill("temp_login_id", &temp.0.to_lowercase()).await;
    web.fill("temp_password", &temp.1).await;
    web.press("form[action='/signup/verify'] button").await;
    assert_eq!(web.path().await, "/signup/profile");
    assert_eq!(
        web.value("email").await,
        ADDRESS,
        "prefilled with the link's address"
    );
    web.check("利用者情報入力").await;

    // 7th and 8th digits, a mismatched confirmation, full-width letters.
    web.fill("login_id", "SKE123456").await;
    web.fill("password", "kenpo123").await;
    web.fill("password_confirm", "kenpo124").await;
    web.fill("nickname", "はなこ").await;
    web.press("form[action='/signup/profile'] button").await;
    web.expect_text("7・8桁目に数字は使用できません").await;
    web.expect_text("確認").await;
    assert_eq!(web.focused_id().await, "error-summary");
    assert_eq!(
        web.value("login_id").await,
        "SKE123456",
        "the value is kept"
    );
    assert_eq!(web.value("password").await, "", "never the password");
    assert_eq!(web.value("nickname").await, "はなこ");
    web.check("利用者情報入力-誤り").await;
    web.fill("login_id", "ｈａｎａｋｏ１２３").await;
    web.fill("password", "kenpo123").await;
    web.fill("password_confirm", "kenpo123").await;
    web.press("form[action='/signup/profile'] button").await;
    web.expect_text("半角英数字で入力してください").await;
    web.check("利用者情報入力-全角").await;
    web.fill("login_id", login_id).await;
    web.fill("password", "kenpo123").await;
    web.fill("password_confirm", "kenpo123").await;
    web.press("form[action='/signup/profile'] button").await;
    assert_eq!(web.heading().await, "利用者情報登録完了");
    web.check("利用者情報登録完了").await;
    // Back shows where the member stands, not an error.
    web.back().await;
    assert_eq!(web.heading().await, "利用者情報登録完了");
    web.reload().await;
    assert_eq!(web.heading().await, "利用者情報登録完了");
}

/// Procedure B: the empty mail, then through to the top page and out again.
async fn procedure_b(daemon: &TestDaemon, engine: Engine, viewport: Viewport) {
    let temp = daemon
        .import_members("member_no,name\n3001,山田 花子\n")
        .remove(0);
    assert_eq!(send_mail(daemon, ADDRESS, &empty_mail(ADDRESS)), 250);
    let mail = daemon.wait_for_mail(ADDRESS);
    assert!(
        mail.body
            .contains("example.jp からのメールを受信できるよう設定してください")
    );
    let link = mail.signup_link();
    let db = karamail::db::Db::open(&daemon.config.database.path).unwrap();
    let rows = karamail::records::parse(
        "member_no,date,title,body,BMI\n3001,2026-04-01,2026年度 定期健診,異常なし,22.5\n",
    )
    .unwrap();
    karamail::records::import(
        &db,
        karamail::db::records::Kind::Checkup,
        &rows,
        "noreply@example.jp",
    )
    .unwrap();
    let folder = tempfile::tempdir().unwrap();
    crate::documents::write_pdf(&folder.path().join("3001.pdf"), "3001");
    let options = karamail::documents::Options {
        kind: karamail::db::documents::Kind::Qualification,
        date: Some("2026-11-01".into()),
        title: None,
        max_bytes: 1_000_000,
    };
    karamail::cli::documents::import(&daemon.config, &options, folder.path()).unwrap();

    let mut web = Web::start(daemon, engine, viewport, "procedure-b").await;
    postcard_and_profile(&mut web, &link, &temp, "hanakoabc123").await;

    // The used link says so, with the way on.
    web.open(&link).await;
    web.expect_text("このURLは使用済みです").await;
    web.expect_text("登録することができない場合").await;
    web.check("使用済みのURL").await;

    // Login with the key from the mail; a wrong key first.
    web.open("/").await;
    web.fill("login_id", "hanakoabc123").await;
    web.fill("password", "kenpo123").await;
    web.press("form[action='/login'] button").await;
    assert_eq!(web.path().await, "/login/key");
    web.check("暗証キー入力").await;
    web.fill("key", "000000").await;
    web.press("form[action='/login/key'] button").await;
    web.expect_text("暗証キーが正しくないか").await;
    assert_eq!(web.focused_id().await, "key-error");
    web.check("暗証キー-誤り").await;
    let key = key_in(&wait_for_nth(daemon, ADDRESS, "暗証キーのご案内", 1));
    web.fill("key", &key).await;
    web.press("form[action='/login/key'] button").await;
    assert_eq!(web.path().await, "/home");
    web.expect_text("はなこさん").await;
    web.expect_text("2026年4月1日 2026年度 定期健診").await;
    web.expect_text("2026年11月1日 資格情報のお知らせ").await;
    web.check("トップ").await;
    // Every link and button a thumb must hit is at least 44 px high.
    let small = web
        .script("return [...document.querySelectorAll('nav a, nav button, ul.records a, footer a, .links a')].filter(e => e.getBoundingClientRect().height < 44).map(e => e.textContent);")
        .await;
    assert_eq!(small, serde_json::json!([]), "tap targets under 44 px");
    let ring = web
        .script("const a = document.querySelector('ul.records a'); a.focus(); return getComputedStyle(a).outlineStyle;")
        .await;
    assert_ne!(ring, "none", "a visible focus ring");
    // Back right after the key login: still logged in, not "the key is void".
    web.back().await;
    assert_eq!(web.path().await, "/home");

    web.press_labelled("2026年4月1日 2026年度 定期健診").await;
    web.expect_text("異常なし").await;
    web.check("健診結果").await;
    web.press_labelled("ログアウト").await;
    web.expect_text("ログアウトしました").await;
    web.check("ログアウト").await;
    web.open("/home").await;
    assert_eq!(web.path().await, "/?expired=1", "logged out for real");
    web.finish().await;
}
in_every_browser!(procedure_b);

/// Procedure A: the web form; reload sends no second mail; expired and old links; a
/// registered member who asks again is told the postcard is used.
async fn procedure_a(daemon: &TestDaemon, engine: Engine, viewport: Viewport) {
    let temp = daemon
        .import_members("member_no,name\n3002,佐藤 花子\n")
        .remove(0);
    let mut web = Web::start(daemon, engine, viewport, "procedure-a").await;
    web.open("/").await;
    web.press_labelled("はじめてご利用になる方（新規利用登録）")
        .await;
    web.expect_text("example.jp からのメールを受信できるよう設定してください")
        .await;
    web.check("新規利用登録").await;
    web.fill("email", "hanako@").await;
    web.press("form[action='/signup'] button").await;
    web.expect_text("メールアドレスを正しく入力してください")
        .await;
    assert_eq!(web.focused_id().await, "email-error");
    web.check("新規利用登録-誤り").await;
    web.fill("email", ADDRESS).await;
    web.press("form[action='/signup'] button").await;
    web.expect_text("ご案内メールをお送りします").await;
    web.check("ご案内メールを送信しました").await;
    let first = daemon.wait_for_mail(ADDRESS).signup_link();
    web.reload().await;
    web.back().await;
    web.expect_text("新規利用登録").await;
    web.open("/signup").await;
    web.fill("email", ADDRESS).await;
    web.press("form[action='/signup'] button").await;
    let second = daemon
        .wait_for_mails(ADDRESS, 2)
        .pop()
        .unwrap()
        .signup_link();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        daemon.wait_for_mails(ADDRESS, 2).len(),
        2,
        "reload and Back sent no mail"
    );

    // An expired link.
    daemon
        .db()
        .execute(
            "UPDATE links SET expires_at = 0 WHERE id = (SELECT min(id) FROM links)",
            [],
        )
        .unwrap();
    web.open(&first).await;
    web.expect_text("URLの有効期限が切れています").await;
    web.check("期限切れのURL").await;

    // 利用者情報入力 after its session ended: the way on is true, and works.
    web.open(&second).await;
    web.fill("temp_login_id", &temp.0).await;
    web.fill("temp_password", &temp.1).await;
    web.press("form[action='/signup/verify'] button").await;
    assert_eq!(web.path().await, "/signup/profile");
    daemon
        .db()
        .execute(
            "UPDATE sessions SET expires_at = 0 WHERE kind = 'signup'",
            [],
        )
        .unwrap();
    web.reload().await;
    web.expect_text("ハガキのログインIDと仮パスワードは、そのままお使いいただけます")
        .await;
    web.check("利用者情報入力-期限切れ").await;
    web.press_labelled("新規利用登録の画面へ").await;
    web.fill("email", ADDRESS).await;
    web.press("form[action='/signup'] button").await;
    let third = daemon
        .wait_for_mails(ADDRESS, 3)
        .pop()
        .unwrap()
        .signup_link();
    let fourth_request = third.clone();
    postcard_and_profile(&mut web, &third, &temp, "satohanako").await;

    // A day later the registered member asks again and types the postcard: told it is
    // used. (A day: three requests an hour is the limit for one address.)
    daemon
        .db()
        .execute(
            "UPDATE signup_requests SET requested_at = requested_at - 86400",
            [],
        )
        .unwrap();
    web.open("/signup").await;
    web.fill("email", ADDRESS).await;
    web.press("form[action='/signup'] button").await;
    let fourth = daemon
        .wait_for_mails(ADDRESS, 4)
        .pop()
        .unwrap()
        .signup_link();
    assert_ne!(fourth, fourth_request);
    web.open(&fourth).await;
    web.fill("temp_login_id", &temp.0).await;
    web.fill("temp_password", &temp.1).await;
    web.press("form[action='/signup/verify'] button").await;
    web.expect_text("利用登録は完了しています").await;
    web.expect_text("パスワードを忘れた方").await;
    web.check("利用登録済みのハガキ").await;
    web.finish().await;
}
in_every_browser!(procedure_a);
