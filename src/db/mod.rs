//! SQLite: opening, the schema from `schema.sql`, and a handle that runs queries off
//! the async threads. Query functions live beside this file, one module per table.

pub mod backup;
pub mod documents;
pub mod links;
pub mod login;
pub mod login_history;
pub mod members;
pub mod notices;
pub mod outbox;
pub mod passkeys;
pub mod records;
pub mod report;
pub mod requests;
pub mod reset_requests;
pub mod retention;
pub mod server_key;
pub mod sessions;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};

const SCHEMA: &str = include_str!("../../schema.sql");
/// Bump with every change to `schema.sql`, and add the step to `MIGRATIONS`.
pub const SCHEMA_VERSION: i64 = 11;
/// `MIGRATIONS[n]` turns a version n+1 database into version n+2.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/002.sql"),
    include_str!("migrations/003.sql"),
    include_str!("migrations/004.sql"),
    include_str!("migrations/005.sql"),
    include_str!("migrations/006.sql"),
    include_str!("migrations/007.sql"),
    include_str!("migrations/008.sql"),
    include_str!("migrations/009.sql"),
    include_str!("migrations/010.sql"),
    include_str!("migrations/011.sql"),
];

/// The one writing connection, shared: group-committed writes (`write`) go to it through
/// the writer thread; `call` takes it directly. Reads use read-only connections (`read`).
#[derive(Clone)]
pub struct Db {
    /// Read-only connections for `read` (none for an in-memory database: reads then
    /// use the one connection). Declared first, so dropped before the writer's
    /// connection, which can then checkpoint and remove the WAL as it closes.
    readers: Option<Arc<Readers>>,
    /// Where `write` queues its jobs; dropped (and its thread joined) before `conn`.
    writer: Arc<Writer>,
    conn: Arc<Mutex<Connection>>,
    /// Told after every commit that queued a mail: what the outbox waits on.
    mail_queued: Arc<tokio::sync::Notify>,
    /// A shared lock on `<database>.lock` while this process has the file open: a
    /// restore (which needs it alone) cannot run under a daemon or an import.
    _in_use: Option<Arc<std::fs::File>>,
}

thread_local! {
    /// Set by a write that queues a mail (`outbox::insert`), read after its commit.
    static QUEUED_MAIL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by the queries that make a mail due: once the transaction commits, the
/// outbox is woken (no flow wakes it itself).
pub(crate) fn mail_was_queued() {
    QUEUED_MAIL.set(true);
}

/// A write waiting for a commit: it runs in its own savepoint of the batch's transaction
/// (or, given `None`, learns the batch cannot run) and hands back what tells its caller
/// the outcome once the commit is (or is not) durable. It clears the flag when the
/// transaction is no longer sound (SQLite rolled it back, a savepoint would not close).
type WriteJob = Box<dyn FnOnce(Option<&Connection>, &mut bool) -> Finisher + Send>;
type Finisher = Box<dyn FnOnce(Result<()>) + Send>;

/// The thread that commits the queued writes, a batch at a time.
struct Writer {
    jobs: Option<std::sync::mpsc::Sender<WriteJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Most writes in one commit: a batch is what waited while the last commit was under
/// way, and a caller waits for the whole of its batch.
const MAX_BATCH: usize = 256;

/// Commits and writes since start, for `/metrics` (writes per commit: the batching).
pub static COMMITS: AtomicU64 = AtomicU64::new(0);
pub static WRITES: AtomicU64 = AtomicU64::new(0);

impl Writer {
    fn start(
        conn: Arc<Mutex<Connection>>,
        mail_queued: Arc<tokio::sync::Notify>,
    ) -> Result<Writer> {
        let (jobs, queued) = std::sync::mpsc::channel::<WriteJob>();
        let thread = std::thread::Builder::new()
            .name("karamail-db-writer".into())
            .spawn(move || {
                while let Ok(first) = queued.recv() {
                    let mut batch = vec![first];
                    batch.extend(queued.try_iter().take(MAX_BATCH - 1));
                    let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                    COMMITS.fetch_add(1, Ordering::Relaxed);
                    WRITES.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    QUEUED_MAIL.set(false);
                    commit_batch(&conn, batch);
                    if QUEUED_MAIL.take() {
                        mail_queued.notify_one();
                    }
                }
            })?;
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }
}

impl Drop for Writer {
    /// The queue closes; the thread commits what is left and ends.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read-only connections kept open between reads.
const MAX_IDLE_READERS: usize = 8;

/// Idle read-only connections on the database file, opened as needed.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Turns for `read`: `MAX_IDLE_READERS` of them.
    turns: Arc<tokio::sync::Semaphore>,
}

impl Db {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_private_dir(dir)?;
        }
        let in_use = lock_shared(path)?;
        let mut db = Db::from_connection(Connection::open(path)?)?;
        db._in_use = Some(Arc::new(in_use));
        db.readers = Some(Arc::new(Readers {
            path: path.to_path_buf(),
            idle: Mutex::default(),
            turns: Arc::new(tokio::sync::Semaphore::new(MAX_IDLE_READERS)),
        }));
        // Made 0600 under karamail's umask; one made before (or by hand) is made so.
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            crate::files::make_private(Path::new(&file));
        }
        Ok(db)
    }

    pub fn open_in_memory() -> Result<Db> {
        Db::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Db> {
        conn.busy_timeout(Duration::from_secs(5))?;
        // FULL: a mail is acknowledged with 250 only after its row is on disk.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )?;
        // Every transaction takes the write lock at BEGIN. A deferred one that reads and
        // then writes fails at once (SQLITE_BUSY, no waiting) when another process — the
        // daemon beside a CLI import — wrote in between; an immediate one waits its turn.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        keep_plans(&conn)?;
        migrate(&mut conn)?;
        let conn = Arc::new(Mutex::new(conn));
        let mail_queued = Arc::new(tokio::sync::Notify::new());
        Ok(Db {
            readers: None,
            writer: Arc::new(Writer::start(conn.clone(), mail_queued.clone())?),
            conn,
            mail_queued,
            _in_use: None,
        })
    }

    /// Whether the writer thread still runs (for the watchdog: writes would all fail).
    pub fn writer_alive(&self) -> bool {
        self.writer
            .thread
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }

    /// Notified after each commit that queued a mail (see `mail_was_queued`).
    pub fn mail_queued(&self) -> Arc<tokio::sync::Notify> {
        self.mail_queued.clone()
    }

    /// Runs the write `f` and answers once it is committed and on disk. Writes queue for
    /// the writer thread, which commits whatever waited while its last commit was under
    /// way in one transaction — one fsync for the lot (group commit). Each runs in a
    /// savepoint of its own: one that fails is rolled back alone and its caller gets its
    /// error; if the commit fails, every caller of the batch gets an error and nothing
    /// of it was written.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queue_write(f, answer);
        answered.await.map_err(|_| lost_write())?
    }

    /// `write` on this thread (the CLI, blocking code); never from async code.
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queue_write(f, answer);
        answered.blocking_recv().map_err(|_| lost_write())?
    }

    fn queue_write<T, F>(&self, f: F, answer: tokio::sync::oneshot::Sender<Result<T>>)
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let job: WriteJob = Box::new(move |conn, sound| {
            let outcome = match conn {
                Some(conn) => in_savepoint(conn, f, sound),
                None => Err(Error::Task(
                    "not written: the batch's transaction could not go on".into(),
                )),
            };
            Box::new(move |committed: Result<()>| {
                let result = match (outcome, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => Err(e),
                };
                let _ = answer.send(result);
            })
        });
        if let Some(jobs) = &self.writer.jobs {
            // A send fails only when the thread is gone; the answer's sender is then
            // dropped with the job, and the caller hears the write was lost.
            let _ = jobs.send(job);
        }
    }

    /// Runs the read `f` on a read-only connection: it sees the last commit and never
    /// waits behind a write (SQLite's WAL).
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        // At most as many reads at once as connections kept: more would not finish
        // sooner on a few cores, and each extra connection is opened (its schema parsed,
        // its statements prepared) only to be closed again.
        let _turn = match &self.readers {
            Some(readers) => Some(readers.turns.clone().acquire_owned().await),
            None => None,
        };
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(f)).await?
    }

    /// `read` for a page's own few rows, looked up by index (a member's session,
    /// account, notices and records: tens of microseconds from SQLite's cache): on this
    /// thread when a read-only connection is idle, since the hop to a blocking thread and
    /// back costs more than such a read; otherwise as `read`. Never for a scan
    /// (`/metrics`, the CLI's lists).
    pub async fn read_small<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        if let Some(readers) = &self.readers {
            let idle = readers.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            if let Some(conn) = idle {
                return readers.read_on(conn, f);
            }
        }
        self.read(f).await
    }

    pub fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let Some(readers) = &self.readers else {
            return f(&self.lock_conn());
        };
        let idle = readers.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => readers.open()?,
        };
        readers.read_on(conn, f)
    }

    fn lock_conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent (a transaction
        // not committed is rolled back), so the poisoned guard is still safe to use.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the writing connection itself, on this thread: for the CLI (an import
    /// is one transaction of its own) and tests. The daemon writes through `write`.
    pub fn call_blocking<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.lock_conn();
        QUEUED_MAIL.set(false);
        let result = f(&mut conn);
        if QUEUED_MAIL.take() {
            self.mail_queued.notify_one();
        }
        result
    }
}

impl Readers {
    /// `f` in one read transaction on `conn`: its queries see one state of the
    /// database, and take SQLite's shared lock once rather than each. The connection
    /// goes back to the idle ones after.
    fn read_on<T>(&self, conn: Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        run_cached(&conn, "BEGIN")?;
        let result = f(&conn);
        if run_cached(&conn, "COMMIT").is_err() {
            return result; // the connection is dropped, not kept in a transaction
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // A few are kept; more were only needed at a peak of blocking callers.
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    fn open(&self) -> Result<Connection> {
        use rusqlite::OpenFlags;
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        keep_plans(&conn)?;
        Ok(conn)
    }
}

/// Statements are prepared once per connection and kept (`prepare_cached`). SQLite
/// would prepare a statement again whenever a parameter its plan looked at changed —
/// every `LIMIT ?` and, with the bundled build's STAT4, range bounds such as a time —
/// so nearly every run parsed its SQL anew; plan stability (QPSG) keeps the plan.
fn keep_plans(conn: &Connection) -> Result<()> {
    use rusqlite::config::DbConfig;
    conn.set_prepared_statement_cache_capacity(64);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// `f` in a savepoint: kept if it succeeds, undone if it fails or panics (a panic is
/// its caller's error, not the batch's end). `sound` is cleared when the transaction
/// cannot go on: the savepoint would not close, or SQLite rolled everything back.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T>,
    sound: &mut bool,
) -> Result<T> {
    if let Err(e) = run_cached(conn, "SAVEPOINT write") {
        *sound = false;
        return Err(e.into());
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(Error::Task("a database write panicked".into())));
    let closed = match &outcome {
        Ok(_) => run_cached(conn, "RELEASE write"),
        Err(_) => conn.execute_batch("ROLLBACK TO write; RELEASE write"),
    };
    if closed.is_err() || conn.is_autocommit() {
        *sound = false;
    }
    outcome
}

/// A statement of one word or two, run without parsing it again each time.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// One transaction for every waiting write, then each caller told the outcome. Once
/// the transaction is not sound, the rest of the batch does not run and nothing of it
/// is committed: every caller hears so.
fn commit_batch(conn: &Connection, batch: Vec<WriteJob>) {
    // Never build on a transaction something else left open.
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let begun = run_cached(conn, "BEGIN IMMEDIATE").map_err(Error::from);
    let mut sound = begun.is_ok();
    let finishers: Vec<Finisher> = batch
        .into_iter()
        .map(|job| match sound {
            true => job(Some(conn), &mut sound),
            false => job(None, &mut sound),
        })
        .collect();
    let committed = match (&begun, sound) {
        (Err(e), _) => Err(Error::Task(format!("cannot begin a write: {e}"))),
        (Ok(()), false) => Err(Error::Task("a write broke the batch's transaction".into())),
        (Ok(()), true) => run_cached(conn, "COMMIT").map_err(Error::from),
    };
    if committed.is_err() {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        if let Err(e) = &committed {
            tracing::error!(error = %e, writes = finishers.len(), "a group of writes was not committed");
        }
    }
    for finish in finishers {
        finish(match &committed {
            Ok(()) => Ok(()),
            Err(e) => Err(Error::Task(format!("not committed: {e}"))),
        });
    }
}

/// The shared lock every process that opens the database holds (see `backup`).
fn lock_shared(path: &Path) -> Result<std::fs::File> {
    let lock_path = backup::lock_path(path);
    let file = open_lock(&lock_path)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Backup(format!(
            "{}: a restore is under way ({} is held); wait for `karamail restore` to end",
            path.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Config(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}

/// `<database>.lock`, made 0600 if missing; it holds nothing, only its lock matters.
/// Made by root (a sysadmin's command before the daemon's first start), it is given to
/// the owner of its folder — the service user — so the daemon can still open it.
pub fn open_lock(lock_path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path)
        .map_err(|e| {
            Error::Backup(format!(
                "cannot open {}: {e} (it must belong to the user karamail runs as: chown it, or run the command as that user)",
                lock_path.display()
            ))
        })?;
    let folder = lock_path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let (Ok(mine), Ok(folder)) = (file.metadata(), std::fs::metadata(folder))
        && mine.uid() != folder.uid()
        && mine.uid() == 0
    {
        let _ = std::os::unix::fs::fchown(&file, Some(folder.uid()), Some(folder.gid()));
    }
    Ok(file)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    // Rebuilding a table others refer to needs foreign keys off, which SQLite only
    // allows outside a transaction; the check afterwards proves nothing dangles.
    conn.pragma_update(None, "foreign_keys", false)?;
    let tx = conn.transaction()?;
    if found == 0 {
        tx.execute_batch(SCHEMA)?;
    } else {
        for step in &MIGRATIONS[(found - 1) as usize..] {
            tx.execute_batch(step)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    let dangling: i64 = tx
        .prepare_cached("SELECT count(*) FROM pragma_foreign_key_check")?
        .query_row([], |r| r.get(0))?;
    if dangling > 0 {
        return Err(Error::Migration(format!(
            "{dangling} rows would refer to nothing"
        )));
    }
    tx.commit()?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

fn lost_write() -> Error {
    Error::Task("a database write was lost".into())
}

/// Seconds since the Unix epoch; every time in the database is one of these.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What the audit trail records (`audit.event`); `/metrics` counts some of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    SignupPostcardVerified,
    SignupPostcardFailed,
    SignupCompleted,
    LoginFailed,
    LoginLocked,
    LoginKeySent,
    LoginKeyResent,
    LoginKeyFailed,
    Login,
    PasswordChangeFailed,
    ProfileChanged,
    OtherSessionsEnded,
    PasskeyAdded,
    PasskeyRemoved,
    PasskeyRefused,
    EmailVerificationSent,
    ResetRequested,
    ResetTempLogin,
    ResetTempLoginFailed,
    ResetCompleted,
    MembersImported,
    RecordsImported,
    DocumentsImported,
    DocumentDownloaded,
    PostcardReissued,
    MemberDisabled,
    MemberEnabled,
}

impl AuditEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::SignupPostcardVerified => "signup_postcard_verified",
            AuditEvent::SignupPostcardFailed => "signup_postcard_failed",
            AuditEvent::SignupCompleted => "signup_completed",
            AuditEvent::LoginFailed => "login_failed",
            AuditEvent::LoginLocked => "login_locked",
            AuditEvent::LoginKeySent => "login_key_sent",
            AuditEvent::LoginKeyResent => "login_key_resent",
            AuditEvent::LoginKeyFailed => "login_key_failed",
            AuditEvent::Login => "login",
            AuditEvent::PasswordChangeFailed => "password_change_failed",
            AuditEvent::ProfileChanged => "profile_changed",
            AuditEvent::OtherSessionsEnded => "other_sessions_ended",
            AuditEvent::PasskeyAdded => "passkey_added",
            AuditEvent::PasskeyRemoved => "passkey_removed",
            AuditEvent::PasskeyRefused => "passkey_refused",
            AuditEvent::EmailVerificationSent => "email_verification_sent",
            AuditEvent::ResetRequested => "reset_requested",
            AuditEvent::ResetTempLogin => "reset_temp_login",
            AuditEvent::ResetTempLoginFailed => "reset_temp_login_failed",
            AuditEvent::ResetCompleted => "reset_completed",
            AuditEvent::MembersImported => "members_imported",
            AuditEvent::RecordsImported => "records_imported",
            AuditEvent::DocumentsImported => "documents_imported",
            AuditEvent::DocumentDownloaded => "document_downloaded",
            AuditEvent::PostcardReissued => "postcard_reissued",
            AuditEvent::MemberDisabled => "member_disabled",
            AuditEvent::MemberEnabled => "member_enabled",
        }
    }
}

/// Appends to the audit trail. `detail` must never hold a secret.
pub fn audit(
    conn: &Connection,
    event: AuditEvent,
    member_id: Option<i64>,
    client_ip: Option<&str>,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit (at, event, member_id, client_ip, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(rusqlite::params![
        now(),
        event.as_str(),
        member_id,
        client_ip,
        detail
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that panics fails its own caller only; the connection is left in no
    /// transaction, so later writes — batched or not — are committed.
    #[test]
    fn a_panicking_write_breaks_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("p.db")).unwrap();
        db.call_blocking(|c| Ok(c.execute_batch("CREATE TABLE t (n INTEGER)")?))
            .unwrap();
        let failed = db.write_blocking(|c| -> Result<()> {
            c.execute("INSERT INTO t (n) VALUES (1)", [])?;
            panic!("a bug in a write");
        });
        assert!(failed.is_err());
        db.write_blocking(|c| Ok(c.execute("INSERT INTO t (n) VALUES (2)", [])?))
            .unwrap();
        db.call_blocking(|c| Ok(c.execute("INSERT INTO t (n) VALUES (3)", [])?))
            .unwrap();
        let seen: Vec<i64> = db
            .read_blocking(|c| {
                let mut stmt = c.prepare("SELECT n FROM t ORDER BY n")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(seen, [2, 3]);
    }

    /// Writes from many threads at once: each is committed (and visible to a fresh
    /// read-only connection) when its caller hears back; one that fails is undone alone.
    #[test]
    fn group_commit_keeps_each_write_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("g.db")).unwrap();
        db.call_blocking(|c| Ok(c.execute_batch("CREATE TABLE t (n INTEGER)")?))
            .unwrap();
        let results: Vec<Result<i64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..40)
                .map(|n: i64| {
                    let db = db.clone();
                    scope.spawn(move || {
                        db.write_blocking(move |c| {
                            c.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
                            if n == 7 {
                                return Err(Error::Task("refused".into()));
                            }
                            Ok(n)
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (n, result) in results.iter().enumerate() {
            assert_eq!(result.is_ok(), n != 7, "{n}: {result:?}");
        }
        let rows: i64 = db
            .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(rows, 39, "every write but the failed one");
        let seven: i64 = db
            .read_blocking(|c| {
                Ok(c.query_row("SELECT count(*) FROM t WHERE n = 7", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(seven, 0);
    }

    /// A commit that queued a mail wakes the outbox; one that did not, does not.
    #[test]
    fn a_commit_that_queues_mail_wakes_the_outbox() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let db = Db::open_in_memory().unwrap();
        let woken = db.mail_queued();
        let wait = || {
            let woken = woken.clone();
            runtime.block_on(async move {
                tokio::time::timeout(Duration::from_millis(200), woken.notified())
                    .await
                    .is_ok()
            })
        };
        db.write_blocking(|c| audit(c, AuditEvent::Login, None, None, ""))
            .unwrap();
        assert!(!wait(), "nothing was queued");
        db.write_blocking(|c| {
            outbox::insert(
                c,
                "signup_link",
                "a@example.jp",
                "{}",
                "<1@example.jp>",
                false,
                now(),
            )
        })
        .unwrap();
        assert!(wait(), "a mail was queued");
    }

    #[test]
    fn schema_applies_and_is_versioned() {
        let db = Db::open_in_memory().unwrap();
        let version: i64 = db
            .call_blocking(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    /// Every table and column as `table.column type`, to compare two databases.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT m.name || '.' || p.name || ' ' || p.type FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' ORDER BY 1",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn a_transaction_holds_the_write_lock_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let db = Db::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();
        db.call_blocking(|c| {
            let tx = c.transaction()?;
            // Another process (the CLI beside the daemon) cannot slip a write in between
            // this transaction's reads and writes.
            let refused = other.execute(
                "INSERT INTO notices (title, body, published_at) VALUES ('x', 'y', 1)",
                [],
            );
            assert!(refused.is_err(), "the other writer had to wait");
            tx.commit()?;
            Ok(())
        })
        .unwrap();
        other
            .execute(
                "INSERT INTO notices (title, body, published_at) VALUES ('x', 'y', 1)",
                [],
            )
            .unwrap();
    }

    #[test]
    fn a_version_1_database_migrates_to_the_schema_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(include_str!("migrations/001-schema.sql"))
                .unwrap();
            old.execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO members (member_no, name, temp_login_id, temp_issued_at, imported_at) VALUES ('1', 'A', 'ABC123456', 0, 0);
                 INSERT INTO links (purpose, token_hash, address, created_at, expires_at, member_id) VALUES ('signup', x'01', 'a@example.jp', 0, 9, 1);",
            )
            .unwrap();
        }
        let migrated = Db::open(&path).unwrap();
        let fresh = Db::open_in_memory().unwrap();
        let (a, b) = (
            migrated.call_blocking(|c| Ok(shape(c))).unwrap(),
            fresh.call_blocking(|c| Ok(shape(c))).unwrap(),
        );
        assert_eq!(a, b);
        let address: String = migrated
            .call_blocking(|c| {
                Ok(
                    c.query_row("SELECT address FROM links WHERE member_id = 1", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .unwrap();
        assert_eq!(address, "a@example.jp");
    }

    #[test]
    fn reopening_a_file_keeps_its_data_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let db = Db::open(&path).unwrap();
        db.call_blocking(|c| audit(c, AuditEvent::Login, None, None, "kept"))
            .unwrap();
        drop(db);
        let db = Db::open(&path).unwrap();
        let n: i64 = db
            .call_blocking(|c| Ok(c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 1);
        db.call_blocking(|c| Ok(c.pragma_update(None, "user_version", 99)?))
            .unwrap();
        drop(db);
        assert!(matches!(
            Db::open(&path),
            Err(Error::SchemaTooNew { found: 99, .. })
        ));
    }
}
