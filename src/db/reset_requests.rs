//! Queries on `reset_requests`: who asked for a パスワード再発行 mail, for its limits.

use rusqlite::{Connection, params};

use crate::error::Result;

pub fn insert(
    conn: &Connection,
    address_key: &str,
    client_ip: Option<&str>,
    outcome: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO reset_requests (requested_at, address_key, client_ip, outcome)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![now, address_key, client_ip, outcome])?;
    Ok(())
}

/// Mails sent to this address since `since`, counted up to `limit` (all a limit needs).
pub fn queued_for_address(
    conn: &Connection,
    address_key: &str,
    since: i64,
    limit: u32,
) -> Result<u32> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM reset_requests
              WHERE address_key = ?1 AND outcome = 'queued' AND requested_at >= ?2 LIMIT ?3)",
        )?
        .query_row(params![address_key, since, limit], |row| row.get(0))?)
}

/// Mails sent on behalf of this client since `since`, counted up to `limit`.
pub fn queued_for_ip(conn: &Connection, client_ip: &str, since: i64, limit: u32) -> Result<u32> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM reset_requests
              WHERE client_ip = ?1 AND outcome = 'queued' AND requested_at >= ?2 LIMIT ?3)",
        )?
        .query_row(params![client_ip, since, limit], |row| row.get(0))?)
}
