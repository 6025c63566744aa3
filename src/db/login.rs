//! Queries on `login_failures`, `login_attempts` and `login_keys`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// Failed logins recorded for a typed login ID.
#[derive(Debug, Clone, Copy, Default)]
pub struct Failures {
    pub failures: u32,
    pub locked_until: Option<i64>,
}

pub fn failures(conn: &Connection, login_key: &str) -> Result<Failures> {
    Ok(conn
        .prepare_cached("SELECT failures, locked_until FROM login_failures WHERE login_key = ?1")?
        .query_row([login_key], |row| {
            Ok(Failures {
                failures: row.get(0)?,
                locked_until: row.get(1)?,
            })
        })
        .optional()?
        .unwrap_or_default())
}

pub fn record_failure(
    conn: &Connection,
    login_key: &str,
    failures: u32,
    locked_until: Option<i64>,
    now: i64,
) -> Result<()> {
    conn.prepare_cached("INSERT INTO login_failures (login_key, failures, last_failure_at, locked_until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (login_key) DO UPDATE SET failures = ?2, last_failure_at = ?3, locked_until = ?4")?.execute(
        params![login_key, failures, now, locked_until],
    )?;
    Ok(())
}

/// The failures of one login key become another's (a member changed login ID): the
/// new key keeps the higher count and the later lock of the two.
pub fn move_failures(conn: &Connection, from: &str, to: &str) -> Result<()> {
    if from == to {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO login_failures (login_key, failures, last_failure_at, locked_until)
         SELECT ?2, failures, last_failure_at, locked_until FROM login_failures WHERE login_key = ?1
         ON CONFLICT (login_key) DO UPDATE SET
             failures = max(failures, excluded.failures),
             last_failure_at = max(last_failure_at, excluded.last_failure_at),
             locked_until = max(coalesce(locked_until, 0), coalesce(excluded.locked_until, 0))",
    )?
    .execute(params![from, to])?;
    conn.prepare_cached("DELETE FROM login_failures WHERE login_key = ?1")?
        .execute([from])?;
    Ok(())
}

pub fn clear_failures(conn: &Connection, login_key: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM login_failures WHERE login_key = ?1")?
        .execute([login_key])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: i64,
    pub member_id: i64,
    pub expires_at: i64,
    pub keys_sent_at: i64,
    pub failed_keys: u32,
}

/// Starts an attempt, ending the member's earlier ones (their keys die with them).
pub fn start_attempt(
    conn: &Connection,
    member_id: i64,
    pending_hash: &[u8],
    now: i64,
    expires_at: i64,
) -> Result<i64> {
    end_attempts_of(conn, member_id, now)?;
    conn.prepare_cached(
        "INSERT INTO login_attempts (member_id, pending_hash, created_at, expires_at, keys_sent_at)
         VALUES (?1, ?2, ?3, ?4, ?3)",
    )?
    .execute(params![member_id, pending_hash, now, expires_at])?;
    Ok(conn.last_insert_rowid())
}

pub fn end_attempts_of(conn: &Connection, member_id: i64, now: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE login_attempts SET ended_at = ?2 WHERE member_id = ?1 AND ended_at IS NULL",
    )?
    .execute(params![member_id, now])?;
    Ok(())
}

/// The open attempt behind a pending cookie.
pub fn find_open_attempt(
    conn: &Connection,
    pending_hash: &[u8],
    now: i64,
) -> Result<Option<Attempt>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, member_id, expires_at, keys_sent_at, failed_keys FROM login_attempts
             WHERE pending_hash = ?1 AND ended_at IS NULL AND expires_at > ?2",
        )?
        .query_row(params![pending_hash, now], |row| {
            Ok(Attempt {
                id: row.get(0)?,
                member_id: row.get(1)?,
                expires_at: row.get(2)?,
                keys_sent_at: row.get(3)?,
                failed_keys: row.get(4)?,
            })
        })
        .optional()?)
}

pub fn is_open(conn: &Connection, attempt_id: i64, now: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM login_attempts WHERE id = ?1 AND ended_at IS NULL AND expires_at > ?2",
        )?
        .query_row(params![attempt_id, now], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn end_attempt(conn: &Connection, attempt_id: i64, now: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE login_attempts SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
    )?
    .execute(params![attempt_id, now])?;
    Ok(())
}

/// Counts a wrong key; returns the new count.
pub fn add_failed_key(conn: &Connection, attempt_id: i64) -> Result<u32> {
    Ok(conn.prepare_cached("UPDATE login_attempts SET failed_keys = failed_keys + 1 WHERE id = ?1 RETURNING failed_keys")?.query_row(
        [attempt_id],
        |row| row.get(0),
    )?)
}

/// 再請求: the old keys die (new ones are minted as the new mails go out), unless the
/// last keys were sent less than `cooldown` seconds ago: then nothing changes and the
/// answer is false. Checked and set in one statement, so parallel requests get one.
pub fn renew_keys(conn: &Connection, attempt_id: i64, now: i64, cooldown: i64) -> Result<bool> {
    let renewed = conn
        .prepare_cached(
            "UPDATE login_attempts SET keys_sent_at = ?2 WHERE id = ?1 AND keys_sent_at <= ?2 - ?3",
        )?
        .execute(params![attempt_id, now, cooldown])?;
    if renewed == 0 {
        return Ok(false);
    }
    conn.prepare_cached("DELETE FROM login_keys WHERE attempt_id = ?1")?
        .execute([attempt_id])?;
    Ok(true)
}

/// Stores the key one mail carries; a retry of that mail replaces it.
pub fn put_key(
    conn: &Connection,
    attempt_id: i64,
    outbox_id: i64,
    key_hash: &[u8],
    expires_at: i64,
) -> Result<()> {
    conn.prepare_cached("INSERT INTO login_keys (attempt_id, outbox_id, key_hash, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (attempt_id, outbox_id) DO UPDATE SET key_hash = ?3, expires_at = ?4")?.execute(
        params![attempt_id, outbox_id, key_hash, expires_at],
    )?;
    Ok(())
}

/// Hashes of the keys of an attempt still within their time.
pub fn live_key_hashes(conn: &Connection, attempt_id: i64, now: i64) -> Result<Vec<Vec<u8>>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key_hash FROM login_keys WHERE attempt_id = ?1 AND expires_at > ?2",
    )?;
    let rows = stmt.query_map(params![attempt_id, now], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
