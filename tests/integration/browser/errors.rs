//! The pages a member lands on when something is wrong: each says what happened, what
//! to do, and whom to ask for the situation they are in, and passes axe-core.

use super::in_every_browser;
use crate::util::TestDaemon;
use crate::util::webdriver::{Engine, Viewport, Web};

async fn error_pages(daemon: &TestDaemon, engine: Engine, viewport: Viewport) {
    let mut web = Web::start(daemon, engine, viewport, "errors").await;
    let pages = [
        (
            "/nothing-here",
            "ページが見つかりません",
            "ログインすることができない",
        ),
        (
            "/login/key",
            "もう一度ログインしてください",
            "ログインすることができない",
        ),
        (
            "/signup/verify",
            "画面の有効期限が切れました",
            "利用登録することができない",
        ),
        (
            "/signup/link/0123",
            "URLが正しくありません",
            "利用登録することができない",
        ),
        (
            "/reset/link/0123",
            "URLが無効です",
            "パスワードを再発行することができない",
        ),
        (
            "/profile/email/0123",
            "URLが無効です",
            "登録情報を変更することができない",
        ),
        ("/profile", "", ""),
    ];
    for (path, title, trouble) in pages {
        web.open(path).await;
        if title.is_empty() {
            // Not logged in: the member page asks for a login first.
            assert_eq!(web.path().await, "/?expired=1");
            continue;
        }
        assert_eq!(web.heading().await, title, "{path}");
        web.expect_text(trouble).await;
        web.expect_text("03-1234-5678").await;
        web.check(&format!("{title}{}", path.replace('/', "_")))
            .await;
    }
    web.finish().await;
}
in_every_browser!(error_pages);
