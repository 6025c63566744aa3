use super::in_every_browser;
use crate::util::TestDaemon;
use crate::util::webdriver::{Engine, Viewport, Web};

async fn login_page(daemon: &TestDaemon, engine: Engine, viewport: Viewport) {
    let mut web = Web::start(daemon, engine, viewport, "smoke").await;
    web.open("/").await;
    web.check("ログイン").await;
    web.fill("login_id", "nobody1abc").await;
    web.fill("password", "wrong123").await;
    web.press("form[action='/login'] button").await;
    web.expect_text("ログインIDまたはパスワードが正しくありません")
        .await;
    web.check("ログイン失敗").await;
    web.finish().await;
}
in_every_browser!(login_page);
