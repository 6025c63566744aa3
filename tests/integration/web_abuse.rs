//! The web side under abuse: request floods and guessing from one address.

use crate::util::TestDaemon;
use crate::util::member::{enter_password, register};

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
