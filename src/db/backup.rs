//! `karamail backup` and `karamail restore`: a consistent copy of the live database by
//! SQLite's online backup API, checked before it is called a backup; and the way back,
//! which keeps the database it replaces.

use std::path::{Path, PathBuf};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// Pages copied per step (4 KiB each): a progress bar moves, a step stays short.
const PAGES_PER_STEP: i32 = 1024;

/// What a checked copy holds, to say so.
#[derive(Debug)]
pub struct Contents {
    pub schema_version: i64,
    pub pages: i64,
    pub bytes: u64,
    /// `(what, rows)` for the tables a sysadmin cares about.
    pub rows: Vec<(&'static str, i64)>,
    pub fingerprint: Option<Vec<u8>>,
}

const COUNTED: &[(&str, &str)] = &[
    ("members", "SELECT count(*) FROM members"),
    (
        "registered members",
        "SELECT count(*) FROM members WHERE registered_at IS NOT NULL",
    ),
    ("member addresses", "SELECT count(*) FROM member_emails"),
    ("passkeys", "SELECT count(*) FROM passkeys"),
    ("notices", "SELECT count(*) FROM notices"),
    ("records", "SELECT count(*) FROM records"),
    ("documents", "SELECT count(*) FROM documents"),
    ("sign-up requests", "SELECT count(*) FROM signup_requests"),
    (
        "queued mails",
        "SELECT count(*) FROM outbox WHERE status = 'queued'",
    ),
    ("mails in all", "SELECT count(*) FROM outbox"),
    ("audit rows", "SELECT count(*) FROM audit"),
];

/// Copies the database at `source` (which a daemon may be writing) to `target`, page
/// by page under one read transaction: the copy is the database as it was when the
/// copy began, whatever is committed meanwhile. `tick(copied, total)` after each step.
pub fn copy(source: &Path, target: &Path, tick: &mut dyn FnMut(i64, i64)) -> Result<()> {
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(std::time::Duration::from_secs(5))?;
    // The read transaction pins one snapshot (WAL: writers go on); without it the
    // backup would start over after every commit of the daemon's.
    src.execute_batch("BEGIN")?;
    src.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })?;
    let mut dst = Connection::open(target)?;
    run(&src, &mut dst, PAGES_PER_STEP, tick)?;
    src.execute_batch("COMMIT")?;
    // One file, no -wal beside it: a backup is a plain file to move around.
    dst.pragma_update(None, "journal_mode", "DELETE")?;
    dst.close().map_err(|(_, e)| e)?;
    std::fs::File::open(target)?.sync_all()?;
    Ok(())
}

/// Opens `path` read-only and checks it whole: SQLite's `integrity_check`, a schema
/// this karamail knows, and karamail's tables; then counts what it holds.
pub fn inspect(path: &Path, known_version: i64) -> Result<Contents> {
    let bad = |why: String| Error::Backup(format!("{}: {why}", path.display()));
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| bad(format!("cannot open: {e}")))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
        .map_err(|e| bad(format!("not an SQLite database ({e})")))?;
    if integrity != "ok" {
        return Err(bad(format!("damaged: integrity_check says {integrity:?}")));
    }
    let schema_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if schema_version == 0 || schema_version > known_version {
        return Err(bad(format!(
            "schema version {schema_version}: not a karamail database this version knows (1 to {known_version})"
        )));
    }
    let mut rows = Vec::new();
    for (what, sql) in COUNTED {
        let count = conn
            .query_row(sql, [], |r| r.get(0))
            .map_err(|e| bad(format!("not a karamail database: {e}")))?;
        rows.push((*what, count));
    }
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let fingerprint = super::server_key::fingerprint(&conn)?;
    Ok(Contents {
        schema_version,
        pages,
        bytes: std::fs::metadata(path)?.len(),
        rows,
        fingerprint,
    })
}

/// The lock file beside the database: every process that opens it holds a shared
/// lock; `restore` needs it alone.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Replaces the database at `target` by the checked copy `source`, through SQLite (one
/// transaction: a crash leaves the old database or the new one, never a mix). The
/// caller holds the lock alone and has saved the old database.
pub fn replace(source: &Path, target: &Path, tick: &mut dyn FnMut(i64, i64)) -> Result<()> {
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut dst = Connection::open(target)?;
    dst.busy_timeout(std::time::Duration::from_secs(5))?;
    run(&src, &mut dst, -1, tick)?;
    dst.pragma_update(None, "journal_mode", "WAL")?;
    Ok(())
}

/// SQLite's backup from `src` into `dst`, `pages` at a step (-1: all), waiting out a
/// busy destination; `tick(copied, total)` after each step.
fn run(
    src: &Connection,
    dst: &mut Connection,
    pages: i32,
    tick: &mut dyn FnMut(i64, i64),
) -> Result<()> {
    let backup = Backup::new(src, dst)?;
    loop {
        let step = backup.step(pages)?;
        let progress = backup.progress();
        tick(
            i64::from(progress.pagecount - progress.remaining),
            i64::from(progress.pagecount),
        );
        match step {
            StepResult::Done => return Ok(()),
            StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            _ => {}
        }
    }
}
