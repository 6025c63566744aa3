//! After sign-up, in a browser: プロフィール設定 (nickname, login ID, password, a second
//! address added, confirmed and removed) and パスワード再発行 to the new password.

use super::in_every_browser;
use crate::util::TestDaemon;
use crate::util::member::{PASSWORD, key_in, register, wait_for_nth};
use crate::util::webdriver::{Engine, Viewport, Web};

const ADDRESS: &str = "jiro@example.net";

/// Password, then the `n`th key mailed to `ADDRESS`: the top page.
async fn log_in(web: &Web<'_>, login_id: &str, password: &str, n: usize) {
    web.open("/").await;
    web.fill("login_id", login_id).await;
    web.fill("password", password).await;
    web.press("form[action='/login'] button").await;
    let key = key_in(&wait_for_nth(web.daemon, ADDRESS, "暗証キーのご案内", n));
    web.fill("key", &key).await;
    web.press("form[action='/login/key'] button").await;
    assert_eq!(web.path().await, "/home");
}

/// The first URL in the `n`th mail of a subject to `to`.
fn url_in(daemon: &TestDaemon, to: &str, subject: &str, n: usize) -> String {
    let mail = wait_for_nth(daemon, to, subject, n);
    mail.body
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap()
        .to_string()
}

async fn profile(daemon: &TestDaemon, engine: Engine, viewport: Viewport) {
    super::outside_runtime(|| register(daemon, "4001", ADDRESS, "jirojiroabc"));
    let mut web = Web::start(daemon, engine, viewport, "profile").await;
    log_in(&web, "jirojiroabc", PASSWORD, 1).await;
    web.press_labelled("プロフィール設定").await;
    web.expect_text("半角英数字、6〜32文字").await;
    web.check("プロフィール設定").await;

    web.fill("nickname", "じろう").await;
    web.press("form[action='/profile/nickname'] button").await;
    web.expect_text("ニックネームを変更しました").await;
    web.fill("login_id", "jiro12").await;
    web.press("form[action='/profile/login-id'] button").await;
    web.expect_text("ログインIDを変更しました").await;
    web.fill("current_password", "notmine12").await;
    web.fill("password", "newpass12").await;
    web.fill("password_confirm", "newpass12").await;
    web.press("form[action='/profile/password'] button").await;
    assert_eq!(web.focused_id().await, "error-summary");
    web.expect_text("現在のパスワードが正しくありません").await;
    web.check("パスワード変更-誤り").await;
    web.fill("current_password", PASSWORD).await;
    web.fill("password", "newpass12").await;
    web.fill("password_confirm", "newpass12").await;
    web.press("form[action='/profile/password'] button").await;
    web.expect_text("パスワードを変更しました").await;

    // A second and a third address, each confirmed from its own mail.
    for (n, address) in ["jiro2@example.org", "jiro3@example.org"]
        .iter()
        .enumerate()
    {
        web.open("/profile").await;
        web.fill("email", address).await;
        web.press("form[action='/profile/email/add'] button").await;
        web.expect_text("確認メール").await;
        let url = url_in(daemon, address, "メールアドレス確認のご案内", 1);
        web.open(&url).await;
        web.check(&format!("メールアドレスの登録-{}", n + 2)).await;
        web.press_labelled("登録する").await;
        web.expect_text("メールアドレスを登録しました").await;
        if n == 0 {
            web.check("メールアドレスの登録完了").await;
        }
        assert_eq!(
            web.path().await,
            "/profile/email/added",
            "no token in the address bar"
        );
    }
    web.open("/profile").await;
    web.expect_text("メールアドレスは3つまで登録できます").await;
    let names = web
        .script("return [...document.querySelectorAll('ul.addresses button')].map(b => b.getAttribute('aria-label'));")
        .await;
    assert_eq!(names.as_array().unwrap().len(), 3);
    assert!(
        names[1].as_str().unwrap().contains("jiro2@example.org"),
        "each 削除 names its address"
    );
    web.scroll_to("ul.addresses").await;
    web.check("メールアドレス3つ").await;
    // 削除 asks first; going back keeps the address.
    web.press("ul.addresses li:nth-child(2) button").await;
    web.expect_text("jiro2@example.org").await;
    web.check("メールアドレスの削除").await;
    web.press_labelled("削除せずにプロフィール設定へ戻る").await;
    web.expect_text("jiro2@example.org").await;
    web.press("ul.addresses li:nth-child(2) button").await;
    web.press_labelled("削除する").await;
    web.expect_text("メールアドレスを削除しました").await;
    assert!(!web.text().await.contains("jiro2@example.org"));

    // The login notice turned off by its checkbox; the history shows this browser.
    web.scroll_to("table.history").await;
    web.expect_text("失敗（パスワードの誤り）").await;
    web.check("ログイン履歴").await;
    web.toggle("notify_login").await;
    web.press("form[action='/profile/notify'] button").await;
    web.expect_text("メールでのお知らせの設定を変更しました")
        .await;
    let ticked = web
        .script("return [document.getElementById('notify_login').checked, document.getElementById('notify_news').checked];")
        .await;
    assert_eq!(ticked, serde_json::json!([false, true]));
    web.press("form[action='/profile/sessions/end-others'] button")
        .await;
    web.expect_text("他の端末からログアウトしました").await;

    // Logout, and in again with the new ID and password.
    web.press_labelled("ログアウト").await;
    log_in(&web, "jiro12", "newpass12", 2).await;
    web.expect_text("じろうさん").await;
    web.finish().await;
}
in_every_browser!(profile);

async fn password_reissue(daemon: &TestDaemon, engine: Engine, viewport: Viewport) {
    super::outside_runtime(|| register(daemon, "4002", ADDRESS, "forgetfulabc"));
    let mut web = Web::start(daemon, engine, viewport, "reset").await;
    web.open("/").await;
    web.press_labelled("パスワードを忘れた方").await;
    web.check("パスワード再発行").await;
    web.fill("email", ADDRESS).await;
    web.press("form[action='/reset'] button").await;
    web.expect_text("パスワード再発行のご案内").await;
    web.expect_text("example.jp からのメールを受信できるよう設定してください")
        .await;
    web.check("パスワード再発行-送信").await;
    web.reload().await;
    let mail = wait_for_nth(daemon, ADDRESS, "パスワード再発行のご案内", 1);
    let url = mail
        .body
        .split_whitespace()
        .find(|w| w.contains("/reset/link/"))
        .unwrap()
        .to_string();
    let temp = mail
        .body
        .split("仮パスワード　")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    web.open(&url).await;
    assert_eq!(
        web.value("login_id").await,
        "forgetfulabc",
        "the login ID is filled in"
    );
    web.check("仮ログイン").await;
    web.fill("temp_password", "wrongtemp1").await;
    web.press("form[action='/reset/login'] button").await;
    web.expect_text("正しくありません").await;
    web.fill("temp_password", &temp).await;
    web.press("form[action='/reset/login'] button").await;
    assert_eq!(web.path().await, "/reset/password");
    let username = web
        .script("return document.querySelector('input[autocomplete=username][hidden]').value;")
        .await;
    assert_eq!(username, "forgetfulabc", "password managers learn the ID");
    web.check("パスワード変更").await;
    web.fill("password", "renewed12").await;
    web.fill("password_confirm", "renewed13").await;
    web.press("form[action='/reset/password'] button").await;
    web.expect_text("新パスワード(確認)").await;
    assert_eq!(web.focused_id().await, "error-summary");
    web.check("パスワード変更-誤り").await;
    web.fill("password", "renewed12").await;
    web.fill("password_confirm", "renewed12").await;
    web.press("form[action='/reset/password'] button").await;
    web.expect_text("パスワードを変更しました").await;
    web.check("パスワード変更完了").await;
    assert_eq!(
        wait_for_nth(daemon, ADDRESS, "パスワード再発行のご案内", 1).subject,
        "パスワード再発行のご案内"
    );
    assert_eq!(
        crate::util::member::mails_with_subject(daemon, ADDRESS, "パスワード再発行のご案内").len(),
        1,
        "reload sent no second mail"
    );
    web.press_labelled("ログイン画面").await;
    log_in(&web, "forgetfulabc", "renewed12", 1).await;
    web.finish().await;
}
in_every_browser!(password_reissue);
