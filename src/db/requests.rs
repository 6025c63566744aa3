//! Queries on `signup_requests`: what was asked for, and what became of it.

use rusqlite::{Connection, params};

use crate::error::Result;

pub struct NewRequest<'a> {
    pub via: &'a str,
    pub address: &'a str,
    pub address_key: &'a str,
    pub client_ip: Option<&'a str>,
    pub smtp_client_ip: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub size: Option<usize>,
    pub outcome: &'a str,
}

pub fn insert(conn: &Connection, request: &NewRequest, now: i64) -> Result<i64> {
    conn.prepare_cached("INSERT INTO signup_requests
           (requested_at, via, address, address_key, client_ip, smtp_client_ip, message_id, size, outcome)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(
        params![
            now,
            request.via,
            request.address,
            request.address_key,
            request.client_ip,
            request.smtp_client_ip,
            request.message_id,
            request.size.map(|s| s as i64),
            request.outcome
        ],
    )?;
    Ok(conn.last_insert_rowid())
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
            "SELECT count(*) FROM (SELECT 1 FROM signup_requests
          WHERE address_key = ?1 AND outcome = 'queued' AND requested_at >= ?2 LIMIT ?3)",
        )?
        .query_row(params![address_key, since, limit], |row| row.get(0))?)
}

/// Mails sent on behalf of this client address since `since`, counted up to `limit`.
pub fn queued_for_ip(conn: &Connection, client_ip: &str, since: i64, limit: u32) -> Result<u32> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM signup_requests
          WHERE client_ip = ?1 AND outcome = 'queued' AND requested_at >= ?2 LIMIT ?3)",
        )?
        .query_row(params![client_ip, since, limit], |row| row.get(0))?)
}
