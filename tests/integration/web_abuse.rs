//! The web side under abuse: request floods and guessing from one address.

use crate::util::TestDaemon;
use crate::util::member::{enter_password, log_in, register};

#[test]
fn one_address_gets_a_japanese_429_past_its_request_limit() {
    let daemon = TestDaemon::start_with(|c| {
        c.http.trusted_proxies.clear();
        c.limits.web_requests_per_ip_minute = 5;
    });
    let mut browser = daemon.browser();
    for _ in 0..5 {
        assert_eq!(browser.get("/").status, 200);
    }
    let page = browser.get("/");
    assert_eq!(page.status, 429);
    assert!(page.body.contains("アクセスが集中しています") && page.body.contains("03-1234-5678"));
}

#[test]
fn guessing_from_one_address_is_cut_off_across_accounts() {
    let daemon = TestDaemon::start_with(|c| {
        c.http.trusted_proxies.clear();
        c.limits.secret_entries_per_ip_hour = 4;
    });
    // Signing up types the postcard once: one secret entry of the four.
    register(&daemon, "5001", "g@example.net", "guessable");
    let mut browser = daemon.browser();
    for id in ["firstguess", "secondguess", "thirdguess"] {
        assert_eq!(enter_password(&mut browser, id, "wrong123").status, 401);
    }
    let cut_off = enter_password(&mut browser, "guessable", "kenpo123");
    assert_eq!(
        cut_off.status, 429,
        "even a right password waits once the address is over its limit"
    );
    assert_eq!(browser.get("/signup").status, 200, "other pages still work");
}

/// The pages kept after a POST (Post/Redirect/Get) open no door: no redirect off-site,
/// no page on another path, nothing personal after logout, nothing for a refused form.
#[test]
fn kept_answer_pages_stay_with_their_page_browser_and_login() {
    let daemon = TestDaemon::start();
    register(&daemon, "5001", "kept@example.net", "keptmember");
    let mut browser = daemon.browser();

    // No open redirect through a view id or a POST to a path of someone else's choosing.
    let page = browser.get("//evil.example/x?view=1");
    assert_ne!(page.status, 303, "{:?}", page.headers);
    browser.open("/");
    let page = browser.submit_unfollowed("//evil.example/x", &[("a", "1")]);
    assert_eq!(page.status, 404);
    assert!(!page.location().contains("evil"));

    // A refused form (no token) is answered at once, not kept.
    let page = browser.post_raw("/login", "login_id=x&password=y");
    assert_eq!(page.status, 403);

    // A profile error, kept for this browser in this login.
    log_in(&daemon, &mut browser, "keptmember", "kept@example.net", 1);
    browser.open("/profile");
    let answer = browser.submit_unfollowed("/profile/nickname", &[("nickname", "")]);
    assert_eq!(answer.status, 303);
    let kept = answer.location().to_string();
    assert!(kept.starts_with("/profile?view="), "{kept}");
    let shown = browser.get(&kept);
    assert_eq!(shown.status, 422);
    assert!(shown.body.contains("kept@example.net"));
    // The same id on another page shows nothing of it.
    let elsewhere = browser.get(&kept.replacen("/profile", "/", 1));
    assert!(!elsewhere.body.contains("kept@example.net"));
    // After logout neither the page nor its id on any page shows the member's data.
    browser.open("/home");
    browser.submit("/logout", &[]);
    for url in [
        kept.clone(),
        kept.replacen("/profile", "/", 1),
        kept.replacen("/profile", "/reset", 1),
    ] {
        let page = browser.open(&url);
        assert!(
            !page.body.contains("kept@example.net"),
            "{url}: {}",
            page.body
        );
    }
}
