//! `karamail backup` under write load and `karamail restore`, as the real binary
//! beside a running daemon: the copy is consistent, every row comes back, and a
//! restore never runs under the daemon.

use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;

use crate::cli_postcards::{config_beside, failed, ok, run};
use crate::util::{TestDaemon, empty_mail, send_mail};

/// Every sign-up request and outbox row, as text, in id order.
fn rows(db: &Connection, table: &str, columns: &str, up_to: i64) -> Vec<String> {
    let sql = format!("SELECT {columns} FROM {table} WHERE id <= ?1 ORDER BY id");
    let mut stmt = db.prepare(&sql).unwrap();
    let columns = stmt.column_count();
    stmt.query_map([up_to], |r| {
        let cells: Vec<String> = (0..columns)
            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
            .collect();
        Ok(cells.join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn max_id(db: &Connection, table: &str) -> i64 {
    db.query_row(
        &format!("SELECT coalesce(max(id), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_backup_under_write_load_is_consistent_and_restores_every_row() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "");
    daemon.import_members("member_no,name\n7001,山田 太郎\n7002,佐藤 花子\n");

    // Empty mails keep arriving while the backup runs: rows in signup_requests and
    // the outbox, commits all the time.
    let stop = AtomicBool::new(false);
    let out = std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                let from = format!("load{sent}@example.net");
                assert_eq!(send_mail(&daemon, &from, &empty_mail(&from)), 250);
                sent += 1;
            }
            sent
        });
        while max_id(&daemon.db(), "signup_requests") < 20 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = run(&dir, &["backup", "nightly.db"]);
        std::thread::sleep(std::time::Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        assert!(load.join().unwrap() > 20);
        out
    });
    let stdout = ok(&out);
    assert!(stdout.contains("backup written: nightly.db"), "{stdout}");
    assert!(
        stdout.contains("integrity_check ok; schema version"),
        "{stdout}"
    );
    assert!(stdout.contains("members              2"), "{stdout}");

    // The copy is the database at one moment: every row it has is the live row, and
    // no row is missing below the newest it has (no torn or half-copied table).
    let backup = Connection::open(dir.join("nightly.db")).unwrap();
    let live = daemon.db();
    // (An outbox row changes as its mail is sent: its unchanging columns are compared.)
    for (table, columns) in [
        ("signup_requests", "*"),
        ("audit", "*"),
        (
            "outbox",
            "id, kind, recipient, params, message_id, created_at",
        ),
    ] {
        let newest = max_id(&backup, table);
        assert!(newest > 0, "{table} copied");
        assert_eq!(
            rows(&backup, table, columns, newest),
            rows(&live, table, columns, newest),
            "{table}"
        );
    }
    let in_backup = max_id(&backup, "signup_requests");
    assert!(
        max_id(&live, "signup_requests") > in_backup,
        "mails kept coming after the copy began"
    );
    let backed_up_rows = rows(&backup, "signup_requests", "*", i64::MAX);
    drop((backup, live));

    // No restore under a running daemon; nothing touched.
    let err = failed(&run(&dir, &["restore", "nightly.db"]));
    assert!(err.contains("is in use"), "{err}");
    assert!(err.contains("stop the daemon first"), "{err}");

    let (folder, config) = daemon.stop();
    let out = run(folder.path(), &["restore", "nightly.db"]);
    let stdout = ok(&out);
    assert!(stdout.contains("restored nightly.db into"), "{stdout}");
    let kept = stdout
        .lines()
        .find_map(|l| l.strip_prefix("the database it replaced is kept as "))
        .and_then(|rest| rest.split(" (").next())
        .expect("the old database kept")
        .to_string();
    let kept = Connection::open(folder.path().join(&kept)).unwrap();
    assert!(
        max_id(&kept, "signup_requests") > in_backup,
        "the kept one is the newer"
    );

    // The daemon starts on the restored database and every row is there.
    let daemon = TestDaemon::start_in(folder, config);
    assert_eq!(
        rows(&daemon.db(), "signup_requests", "*", i64::MAX),
        backed_up_rows
    );
    let from = "after@example.net";
    assert_eq!(send_mail(&daemon, from, &empty_mail(from)), 250);
    daemon.wait_for_mail(from);
}

#[test]
fn a_bad_file_or_another_key_is_refused_before_anything_changes() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "");
    daemon.import_members("member_no,name\n7101,山田 太郎\n");
    ok(&run(&dir, &["backup", "good.db"]));
    let err = failed(&run(&dir, &["backup", "good.db"]));
    assert!(err.contains("good.db already exists"), "{err}");
    let (folder, _config) = daemon.stop();
    let dir = folder.path();

    std::fs::write(dir.join("junk.db"), "not a database").unwrap();
    let err = failed(&run(dir, &["restore", "junk.db"]));
    assert!(err.contains("junk.db: not an SQLite database"), "{err}");
    let mut damaged = std::fs::read(dir.join("good.db")).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle..middle + 4096].fill(0x55);
    std::fs::write(dir.join("damaged.db"), damaged).unwrap();
    let err = failed(&run(dir, &["restore", "damaged.db"]));
    assert!(err.contains("damaged.db"), "{err}");

    // Another society's key: every link, session and postcard would be void.
    std::fs::rename(dir.join("karamail.key"), dir.join("karamail.key.orig")).unwrap();
    std::fs::write(dir.join("karamail.key"), "ab".repeat(32)).unwrap();
    let err = failed(&run(dir, &["restore", "good.db"]));
    assert!(err.contains("made under another server key"), "{err}");
    std::fs::rename(dir.join("karamail.key.orig"), dir.join("karamail.key")).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("before-restore")),
        "{names:?}"
    );
    ok(&run(dir, &["restore", "good.db"]));
}

#[test]
fn a_damaged_database_is_kept_byte_for_byte_and_replaced() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "");
    daemon.import_members("member_no,name\n7201,山田 太郎\n");
    ok(&run(&dir, &["backup", "good.db"]));
    let (folder, config) = daemon.stop();
    let dir = folder.path();
    let mut damaged = std::fs::read(dir.join("karamail.db")).unwrap();
    damaged[..100].fill(0);
    std::fs::write(dir.join("karamail.db"), &damaged).unwrap();
    let stdout = ok(&run(dir, &["restore", "good.db"]));
    assert!(
        stdout.contains("cannot be read by SQLite (damaged): kept byte for byte"),
        "{stdout}"
    );
    let kept: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("before-restore"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read(&kept[0]).unwrap(), damaged);
    let daemon = TestDaemon::start_in(folder, config);
    let members: i64 = daemon
        .db()
        .query_row("SELECT count(*) FROM members", [], |r| r.get(0))
        .unwrap();
    assert_eq!(members, 1);
}
