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

/// Connects to the web listener from a chosen loopback address.
fn web_from(daemon: &TestDaemon, source: [u8; 4]) -> std::net::TcpStream {
    let target: std::net::SocketAddr = daemon
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let stream = daemon.rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind((std::net::Ipv4Addr::from(source), 0).into())
            .unwrap();
        socket.connect(target).await.unwrap()
    });
    let stream = stream.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(4)))
        .unwrap();
    stream
}

/// Whether the server closed `stream` (EOF) within its read timeout.
fn closed(stream: &std::net::TcpStream) -> bool {
    use std::io::Read;
    let mut byte = [0u8; 1];
    matches!((&*stream).read(&mut byte), Ok(0))
}

/// One client opening idle sockets gets its share and no more: a member from another
/// address is still served. Idle sockets are closed after the header timeout, on a new
/// connection and between requests.
#[test]
fn one_client_cannot_take_all_web_connections() {
    use std::io::{Read, Write};
    let daemon = TestDaemon::start_with(|c| {
        c.http.max_connections = 16;
        c.http.max_connections_per_ip = 4;
        c.http.header_timeout = "1s".parse().unwrap();
    });
    let held: Vec<_> = (0..20).map(|_| web_from(&daemon, [127, 0, 5, 1])).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let dropped = held.iter().skip(4).filter(|s| {
        s.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        closed(s)
    });
    assert_eq!(
        dropped.count(),
        16,
        "past its 4 places, each socket is closed at once"
    );
    let mut member = web_from(&daemon, [127, 0, 6, 1]);
    member
        .write_all(b"GET / HTTP/1.1\r\nHost: portal\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = String::new();
    member.read_to_string(&mut page).unwrap();
    assert!(
        page.starts_with("HTTP/1.1 200"),
        "{}",
        &page[..page.len().min(200)]
    );

    let started = std::time::Instant::now();
    assert!(closed(&held[0]), "an idle socket is closed");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let mut keep_alive = web_from(&daemon, [127, 0, 7, 1]);
    keep_alive
        .write_all(b"GET / HTTP/1.1\r\nHost: portal\r\n\r\n")
        .unwrap();
    let mut buffer = vec![0u8; 64 * 1024];
    let first = keep_alive.read(&mut buffer).unwrap();
    assert!(String::from_utf8_lossy(&buffer[..first]).starts_with("HTTP/1.1 200"));
    // Drain the rest of the page, then wait: the idle keep-alive socket is closed too.
    let started = std::time::Instant::now();
    loop {
        match keep_alive.read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) => panic!("not closed: {e}"),
        }
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

/// Two hundred logins at once (unknown IDs, as from a botnet behind the proxy): no more
/// password hashes run than the pool has threads, no more wait than its queue, and the
/// rest are told at once, in Japanese, to try again in a few seconds — no unbounded
/// wait, no unbounded memory. A member logs in normally afterwards.
#[test]
fn two_hundred_logins_at_once_are_bounded() {
    let daemon = TestDaemon::start_with(|c| {
        c.limits.hashing_threads = 2;
        c.limits.hashing_queue = 8;
        c.limits.secret_entries_per_ip_hour = 10_000;
    });
    register(&daemon, "9201", "crowd@example.net", "crowdmember");
    let pages: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..200)
            .map(|n| {
                let daemon = &daemon;
                scope.spawn(move || {
                    enter_password(&mut daemon.browser(), &format!("nobody{n:04}"), "wrong123")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy: Vec<_> = pages.iter().filter(|p| p.status == 503).collect();
    assert!(
        pages.iter().all(|p| p.status == 401 || p.status == 503),
        "{:?}",
        pages.iter().map(|p| p.status).collect::<Vec<_>>()
    );
    assert!(!busy.is_empty(), "the queue was full at some point");
    for page in &busy {
        assert!(page.body.contains("ただいま混み合っています"));
        assert_eq!(page.headers["retry-after"], "5");
    }
    let addr = daemon.daemon.as_ref().unwrap().metrics_addr.unwrap();
    let metrics = daemon.browser().get(&format!("http://{addr}/metrics")).body;
    let figure = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(figure("karamail_password_hashing_peak") <= 2, "{metrics}");
    assert_eq!(
        figure("karamail_password_hashing_busy_total"),
        busy.len() as u64
    );
    let mut member = daemon.browser();
    log_in(&daemon, &mut member, "crowdmember", "crowd@example.net", 1);
    assert_eq!(member.get("/home").status, 200);
}
