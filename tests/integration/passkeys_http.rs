//! Passkeys over plain HTTP: where they are offered (a site with a domain name, not an
//! address), what a browser without script is told, and every ceremony step refused
//! without its form token, its login or its own challenge. The ceremony itself runs in
//! Chromium (`browser::passkey`).

use crate::util::TestDaemon;
use crate::util::member::{log_in, register};

fn on_localhost() -> TestDaemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    TestDaemon::start_with(|c| {
        c.http.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.http.public_url = format!("http://localhost:{port}");
    })
}

#[test]
fn passkeys_are_offered_only_where_browsers_allow_them() {
    let on_address = TestDaemon::start();
    let page = on_address.browser().open("/");
    assert!(!page.body.contains("パスキーでログイン") && !page.body.contains("passkey.js"));
    let mut browser = on_address.browser();
    browser.open("/");
    assert_eq!(browser.submit("/login/passkey/options", &[]).status, 404);

    let daemon = on_localhost();
    let mut browser = daemon.browser();
    let page = browser.open("/");
    assert!(page.body.contains("パスキーでログイン"));
    assert!(
        page.body
            .contains(r#"<script src="/assets/passkey.js" defer></script>"#)
    );
    let script = browser.get("/assets/passkey.js");
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    // Without script the form leads to a page that says what is needed.
    let fallback = browser.submit("/login/passkey", &[]);
    assert_eq!(fallback.status, 200);
    assert!(
        fallback
            .body
            .contains("パスキーに対応したブラウザで、JavaScriptを有効にしてください")
    );
}

#[test]
fn each_step_needs_its_token_its_login_and_its_own_challenge() {
    let daemon = on_localhost();
    register(&daemon, "4201", "ren@example.net", "renrenabc");
    let mut stranger = daemon.browser();
    stranger.headers = vec![("x-forwarded-for", "198.51.100.7".into())];
    stranger.open("/");
    assert_eq!(
        stranger
            .post_raw("/login/passkey/options", "csrf=forged")
            .status,
        403
    );
    let options = stranger.submit("/login/passkey/options", &[]);
    assert_eq!(options.status, 200);
    let options: serde_json::Value = serde_json::from_str(&options.body).unwrap();
    assert!(options["publicKey"]["challenge"].is_string());
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "nothing about any member"
    );
    // An answer that is no passkey's: refused, and the challenge is spent.
    stranger.open("/");
    let forged = stranger.submit("/login/passkey/finish", &[("credential", "{\"id\":\"x\"}")]);
    assert_eq!(forged.status, 401);
    assert!(forged.body.contains("パスキーでログインできませんでした"));
    stranger.open("/");
    assert_eq!(
        stranger
            .submit("/login/passkey/finish", &[("credential", "{}")])
            .status,
        401
    );
    assert_eq!(stranger.get("/home").status, 303, "not logged in");

    // Registering needs a login; a name is required.
    stranger.open("/");
    assert_eq!(
        stranger
            .submit("/passkeys/register/options", &[("name", "x")])
            .status,
        401
    );
    let mut member = daemon.browser();
    log_in(&daemon, &mut member, "renrenabc", "ren@example.net", 1);
    member.open("/profile");
    assert!(
        member
            .last_page()
            .contains("登録されているパスキーはありません")
    );
    let unnamed = member.submit(
        "/passkeys/register/options",
        &[
            ("name", " "),
            ("current_password", crate::util::member::PASSWORD),
        ],
    );
    assert_eq!(unnamed.status, 422);
    assert!(unnamed.body.contains("パスキーの名前を入力してください"));
    member.open("/profile");
    let wrong = member.submit(
        "/passkeys/register/options",
        &[("name", "iPhone"), ("current_password", "notmine12")],
    );
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("現在のパスワードが正しくありません"));
    member.open("/profile");
    let started = member.submit(
        "/passkeys/register/options",
        &[
            ("name", "iPhone"),
            ("current_password", crate::util::member::PASSWORD),
        ],
    );
    let options: serde_json::Value = serde_json::from_str(&started.body).unwrap();
    assert_eq!(
        options["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    assert_eq!(options["publicKey"]["user"]["name"], "renrenabc");
    member.open("/profile");
    let refused = member.submit("/passkeys/register/finish", &[("credential", "{}")]);
    assert_eq!(refused.status, 400);
    // A passkey id that is not theirs: the same 404 as none.
    member.open("/profile");
    assert_eq!(
        member.submit("/passkeys/remove", &[("id", "1")]).status,
        404
    );
}
