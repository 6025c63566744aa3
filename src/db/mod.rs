//! SQLite: opening, the schema from `schema.sql`, and a handle that runs queries off
//! the async threads. Query functions live beside this file, one module per table.

pub mod links;
pub mod login;
pub mod members;
pub mod notices;
pub mod outbox;
pub mod records;
pub mod requests;
pub mod server_key;
pub mod sessions;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};

const SCHEMA: &str = include_str!("../../schema.sql");
/// Bump with every change to `schema.sql`, and add the step to `MIGRATIONS`.
const SCHEMA_VERSION: i64 = 5;
/// `MIGRATIONS[n]` turns a version n+1 database into version n+2.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/002.sql"),
    include_str!("migrations/003.sql"),
    include_str!("migrations/004.sql"),
    include_str!("migrations/005.sql"),
];

/// The one connection, shared. SQLite serialises writers anyway; one connection keeps
/// every transaction simple and is far from the limit at this service's load.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_private_dir(dir)?;
        }
        let db = Db::from_connection(Connection::open(path)?)?;
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
        migrate(&mut conn)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on a blocking thread; for async code.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.call_blocking(f)).await?
    }

    /// Runs `f` on this thread; for the SMTP threads and the CLI.
    pub fn call_blocking<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        // A panic while holding the lock leaves SQLite itself consistent (a transaction
        // not committed is rolled back), so the poisoned guard is still safe to use.
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn)
    }
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
    let dangling: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
        r.get(0)
    })?;
    if dangling > 0 {
        return Err(Error::Migration(format!(
            "{dangling} rows would refer to nothing"
        )));
    }
    tx.commit()?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Seconds since the Unix epoch; every time in the database is one of these.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Appends to the audit trail. `detail` must never hold a secret.
pub fn audit(
    conn: &Connection,
    event: &str,
    member_id: Option<i64>,
    client_ip: Option<&str>,
    detail: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO audit (at, event, member_id, client_ip, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        rusqlite::params![now(), event, member_id, client_ip, detail],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        db.call_blocking(|c| audit(c, "test", None, None, "kept"))
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
