//! `karamail report` and retention, with the real binary beside a running daemon: the
//! week-by-week counts, the chart, and the same counts before and after old rows are
//! purged (in the report and in /metrics).

use rusqlite::Connection;

use crate::cli_postcards::{config_beside, ok, run};
use crate::util::{TestDaemon, empty_mail, member, send_mail};

const DAY: i64 = 86_400;

fn metrics(daemon: &TestDaemon) -> String {
    let addr = daemon.daemon.as_ref().unwrap().metrics_addr.unwrap();
    daemon.browser().get(&format!("http://{addr}/metrics")).body
}

fn metric_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            [
                "karamail_mails_",
                "karamail_web_signup",
                "karamail_signups_total",
                "karamail_logins_total",
                "karamail_members{",
                "karamail_postcards_reissued",
                "karamail_outbox_send_failures",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(str::to_string)
        .collect()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn the_report_counts_the_roll_out_and_keeps_its_counts_when_old_rows_are_purged() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "");
    daemon.import_members("member_no,name\n8001,未登録 一郎\n8002,未登録 二郎\n");
    member::register(&daemon, "8101", "hanako@example.jp", "hanakosato");
    member::register(&daemon, "8102", "taro@example.jp", "taroyamada");
    let mut browser = daemon.browser();
    member::log_in(&daemon, &mut browser, "hanakosato", "hanako@example.jp", 1);
    // A fourth mail from one address within the hour is not answered (rate limit).
    let eager = || {
        send_mail(
            &daemon,
            "eager@example.net",
            &empty_mail("eager@example.net"),
        )
    };
    for _ in 0..3 {
        assert_eq!(eager(), 250);
    }
    daemon.wait_for_mails("eager@example.net", 3);
    assert_eq!(eager(), 250);
    let db = daemon.db();
    while count(
        &db,
        "SELECT count(*) FROM signup_requests WHERE address = 'eager@example.net'",
    ) < 4
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ok(&run(
        &dir,
        &["members", "reissue", "8001", "--postcards", "r.csv"],
    ));

    let report = json(&run(&dir, &["report", "--format", "json"]));
    let weeks = report["weeks"].as_array().unwrap();
    let sum = |key: &str| weeks.iter().map(|w| w[key].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("imported"), 4, "{report}");
    assert_eq!(sum("reissued"), 1, "{report}");
    assert_eq!(sum("registered"), 2, "{report}");
    assert_eq!(sum("first_logins"), 1, "{report}");
    assert_eq!(
        sum("signup_by_mail"),
        6,
        "two sign-ups and four eager mails: {report}"
    );
    assert_eq!(sum("answered"), 5, "{report}");
    let reasons: i64 = weeks
        .iter()
        .map(|w| {
            w["not_answered"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_i64().unwrap())
                .sum::<i64>()
        })
        .sum();
    assert_eq!(reasons, 1, "{report}");
    assert_eq!(report["funnel"]["members"], 4);
    assert_eq!(report["funnel"]["registered"], 2);
    assert_eq!(report["funnel"]["logged_in"], 1);
    assert_eq!(report["funnel"]["active_30d"], 1);

    let text = ok(&run(&dir, &["report"]));
    assert!(text.contains("funnel now: 4 member(s) → 2 registered (50.0%) → 1 logged in (25.0%) → 1 active in the last 30 days (25.0%)"), "{text}");
    assert!(text.contains("not answered, by reason: "), "{text}");
    let csv = ok(&run(&dir, &["report", "--format", "csv"]));
    assert!(csv.starts_with("week,imported,reissued,signup_by_mail,signup_by_web,answered,not_answered,registered,first_logins,active_30d,not_answered_"), "{csv}");

    // The chart, as SVG and as PNG, with its Japanese legend.
    ok(&run(&dir, &["report", "--chart", "funnel.svg"]));
    let svg = std::fs::read_to_string(dir.join("funnel.svg")).unwrap();
    for label in [
        "利用登録の推移",
        "取込(累計)",
        "登録(累計)",
        "初ログイン(累計)",
        "利用中(30日)",
    ] {
        assert!(svg.contains(label), "{label}");
    }
    ok(&run(&dir, &["report", "--chart", "funnel.png"]));
    let png = image::open(dir.join("funnel.png")).unwrap().to_rgb8();
    assert_eq!(png.dimensions(), (1000, 560));
    assert!(
        png.pixels().any(|p| p.0 == [0, 0, 255]),
        "the blue line is drawn"
    );

    // Make last year's rows of it: retention purges them, the counts stay.
    let before_metrics = metric_lines(&metrics(&daemon));
    db.execute_batch(&format!(
        "UPDATE signup_requests SET requested_at = requested_at - 100 * {DAY};
         UPDATE audit SET at = at - 400 * {DAY};
         UPDATE outbox SET created_at = created_at - 40 * {DAY}, sent_at = sent_at - 40 * {DAY} WHERE status = 'sent';
         UPDATE links SET created_at = created_at - 10 * {DAY}, expires_at = expires_at - 10 * {DAY};"
    ))
    .unwrap();
    let since = "2020-01-06";
    let aged = json(&run(
        &dir,
        &["report", "--format", "json", "--since", since],
    ));
    // The sysadmin's own purge of sent mail counts what it removes too.
    let out = ok(&run(&dir, &["outbox", "purge", "--older-than", "30d"]));
    assert!(!out.starts_with("0 sent mail(s)"), "{out}");
    assert_eq!(
        metric_lines(&metrics(&daemon)),
        before_metrics,
        "counters never go down"
    );
    let out = ok(&run(&dir, &["retention"]));
    assert!(
        out.contains("purged 6 sign-up request(s) older than 90日"),
        "{out}"
    );
    assert!(out.contains("mail record(s) older than 30日"), "{out}");
    assert_eq!(count(&db, "SELECT count(*) FROM signup_requests"), 0);
    assert_eq!(count(&db, "SELECT count(*) FROM audit"), 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM outbox WHERE status = 'sent'"),
        0
    );
    assert_eq!(count(&db, "SELECT count(*) FROM links"), 0);
    let purged = json(&run(
        &dir,
        &["report", "--format", "json", "--since", since],
    ));
    assert_eq!(
        aged["weeks"], purged["weeks"],
        "every week counts the same after the purge"
    );
    assert_eq!(
        metric_lines(&metrics(&daemon)),
        before_metrics,
        "counters never go down"
    );

    // The daemon purges by itself, at start and daily.
    let aged_at = ok(&run(&dir, &["members", "list"]));
    assert!(aged_at.contains("4 member(s)"));
    db.execute(
        "INSERT INTO audit (at, event) VALUES (?1, 'login')",
        [karamail::db::now() - 400 * DAY],
    )
    .unwrap();
    drop(db);
    let daemon = daemon.restart_with(|_| {});
    let db = daemon.db();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count(
        &db,
        "SELECT count(*) FROM audit WHERE at < strftime('%s', 'now') - 300 * 86400",
    ) > 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon's retention did not run"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn retention_settings_are_checked() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "[retention]\nsignup_requests = \"1h\"\n");
    let out = run(&dir, &["retention"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[retention] signup_requests: at least 1日"),
        "{err}"
    );
}
