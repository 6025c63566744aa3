//! Passkeys in Chromium with its virtual authenticator: registered on プロフィール設定
//! (announced by mail), then a login with the passkey alone (no password, no 暗証キー),
//! removal, and a removed passkey refused. The site must be `localhost`: browsers refuse
//! passkeys on an IP address.

use crate::util::TestDaemon;
use crate::util::member::{PASSWORD, key_in, register, wait_for_nth};
use crate::util::webdriver::{Engine, Viewport, Web};

const ADDRESS: &str = "kaori@example.net";
const CHANGED: &str = "登録情報変更のお知らせ";

fn run(viewport: Viewport) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = TestDaemon::start_with(|c| {
        c.http.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.http.public_url = format!("http://localhost:{port}");
    });
    daemon.rt.block_on(passkeys(&daemon, viewport));
}

#[test]
fn chromium_phone() {
    run(Viewport::Phone);
}

#[test]
fn chromium_desktop() {
    run(Viewport::Desktop);
}

async fn passkeys(daemon: &TestDaemon, viewport: Viewport) {
    super::outside_runtime(|| register(daemon, "4101", ADDRESS, "kaorikaori"));
    let mut web = Web::start(daemon, Engine::Chromium, viewport, "passkey").await;
    web.add_virtual_authenticator().await;

    // In with password and key, then a passkey registered on プロフィール設定.
    web.open("/").await;
    web.fill("login_id", "kaorikaori").await;
    web.fill("password", PASSWORD).await;
    web.press("form[action='/login'] button").await;
    let key = key_in(&wait_for_nth(daemon, ADDRESS, "暗証キーのご案内", 1));
    web.fill("key", &key).await;
    web.press("form[action='/login/key'] button").await;
    web.open("/profile").await;
    web.scroll_to("form[data-passkey=register]").await;
    web.expect_text("登録されているパスキーはありません").await;
    web.check("パスキー").await;
    // The password is asked for: an open session alone adds no way in.
    web.fill("passkey_name", "テスト端末").await;
    web.fill("passkey_password", "notmine12").await;
    web.click("form[data-passkey=register] button").await;
    web.wait_for_text("現在のパスワードが正しくありません")
        .await;
    web.check("パスキー-誤り").await;
    web.fill("passkey_password", PASSWORD).await;
    web.press("form[data-passkey=register] button").await;
    web.expect_text("パスキーを登録しました").await;
    web.expect_text("テスト端末").await;
    web.scroll_to("ul.passkeys").await;
    web.check("パスキー登録済み").await;
    let announced = wait_for_nth(daemon, ADDRESS, CHANGED, 1);
    assert!(
        announced.body.contains("パスキーの登録（テスト端末）"),
        "{}",
        announced.body
    );

    // Out, and in again with the passkey alone.
    web.press_labelled("ログアウト").await;
    web.expect_text("パスキーでログイン").await;
    web.check("ログイン-パスキー").await;
    web.press("form[data-passkey=login] button").await;
    assert_eq!(web.path().await, "/home");
    web.expect_text("ニック4101さん").await;
    let notice = wait_for_nth(daemon, ADDRESS, "ログインが行われました", 2);
    assert!(
        notice.body.contains("ブラウザ・端末：Chrome"),
        "{}",
        notice.body
    );
    assert_eq!(
        crate::util::member::mails_with_subject(daemon, ADDRESS, "暗証キーのご案内").len(),
        1,
        "no 暗証キー for a passkey login"
    );
    web.open("/profile").await;
    web.expect_text("ログイン（パスキー）").await;
    let last_used = web
        .script("return document.querySelector('ul.passkeys small').textContent;")
        .await;
    assert!(
        !last_used.as_str().unwrap().contains("最終利用 なし"),
        "{last_used}"
    );

    // A signed answer is good once: sent again, to its own spent challenge or to a new
    // one, it is refused. (The ceremony by hand, as an attacker who copied it would.)
    web.press_labelled("ログアウト").await;
    let statuses = web.script_async(REPLAY).await;
    assert_eq!(statuses, serde_json::json!([200, 401, 401]), "{statuses}");
    web.open("/home").await;
    assert_eq!(web.path().await, "/home", "the first answer logged in");
    web.open("/profile").await;

    // Another member cannot remove it.
    let passkey_id: i64 = daemon
        .db()
        .query_row("SELECT id FROM passkeys", [], |r| r.get(0))
        .unwrap();
    super::outside_runtime(|| {
        register(daemon, "4102", "other@example.net", "otherabcd");
        let mut other = daemon.browser();
        crate::util::member::log_in(daemon, &mut other, "otherabcd", "other@example.net", 1);
        other.open("/profile");
        let id = passkey_id.to_string();
        assert_eq!(other.submit("/passkeys/remove", &[("id", &id)]).status, 404);
    });

    // Removed: announced, and the authenticator's copy no longer logs in.
    web.scroll_to("ul.passkeys").await;
    web.press("ul.passkeys button").await;
    web.expect_text("パスキーを削除しました").await;
    let removed = wait_for_nth(daemon, ADDRESS, CHANGED, 2);
    assert!(removed.body.contains("パスキーの削除（テスト端末）"));
    web.press_labelled("ログアウト").await;
    web.click("form[data-passkey=login] button").await;
    web.wait_for_text("パスキーでログインできませんでした")
        .await;
    assert!(web.path().await.starts_with("/?"), "still the login page");
    web.check("ログイン-パスキー-誤り").await;
    web.finish().await;
}

/// Asks for a challenge, has the authenticator sign it, sends the answer, then sends
/// the same answer again twice: with the spent ceremony, and after a new challenge.
const REPLAY: &str = r#"
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const bytes = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)).buffer;
let csrf = document.querySelector("form[data-passkey=login] input[name=csrf]").value;
const post = (path, fields) => {
  const body = new URLSearchParams({ csrf, ...fields });
  return fetch(path, { method: "POST", body, credentials: "same-origin" });
};
// The form token is bound to the login session: after the first answer, the new one's.
const freshToken = async () => {
  const page = await (await fetch("/profile", { credentials: "same-origin" })).text();
  return page.match(/name="csrf" value="([^"]+)"/)[1];
};
(async () => {
  const options = await (await post("/login/passkey/options", {})).json();
  options.publicKey.challenge = bytes(options.publicKey.challenge);
  const used = await navigator.credentials.get({ publicKey: options.publicKey });
  const r = used.response;
  const credential = JSON.stringify({
    id: used.id, rawId: b64(used.rawId), type: used.type, extensions: {},
    response: {
      authenticatorData: b64(r.authenticatorData), clientDataJSON: b64(r.clientDataJSON),
      signature: b64(r.signature), userHandle: r.userHandle ? b64(r.userHandle) : null,
    },
  });
  const first = (await post("/login/passkey/finish", { credential })).status;
  csrf = await freshToken();
  const again = (await post("/login/passkey/finish", { credential })).status;
  await post("/login/passkey/options", {});
  const later = (await post("/login/passkey/finish", { credential })).status;
  return [first, again, later];
})().then(done, (e) => done(String(e)));
"#;
