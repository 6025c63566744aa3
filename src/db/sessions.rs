//! Queries on `sessions`. The browser holds a random id; we keep its hash.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone)]
pub struct Session {
    pub link_id: Option<i64>,
    pub member_id: Option<i64>,
    pub expires_at: i64,
}

pub fn insert_signup(
    conn: &Connection,
    id_hash: &[u8],
    link_id: i64,
    member_id: Option<i64>,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO sessions (id_hash, kind, link_id, member_id, created_at, expires_at)
         VALUES (?1, 'signup', ?2, ?3, ?4, ?5)",
        params![id_hash, link_id, member_id, now, expires_at],
    )?;
    Ok(())
}

/// The live sign-up session with this id hash, if any.
pub fn find_signup(conn: &Connection, id_hash: &[u8], now: i64) -> Result<Option<Session>> {
    Ok(conn
        .query_row(
            "SELECT link_id, member_id, expires_at FROM sessions
             WHERE id_hash = ?1 AND kind = 'signup' AND expires_at > ?2",
            params![id_hash, now],
            |row| {
                Ok(Session {
                    link_id: row.get(0)?,
                    member_id: row.get(1)?,
                    expires_at: row.get(2)?,
                })
            },
        )
        .optional()?)
}

pub fn delete(conn: &Connection, id_hash: &[u8]) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
    Ok(())
}

/// Ends every sign-up session that rode on a link, e.g. once the link is spent.
pub fn delete_for_link(conn: &Connection, link_id: i64) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE link_id = ?1", [link_id])?;
    Ok(())
}

pub fn delete_expired(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?)
}
