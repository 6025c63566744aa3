//! Queries on `sessions`. The browser holds a random id; we keep its hash.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The steps after a sign-up link.
    Signup,
    /// The steps after a password reissue link.
    Reset,
    /// A logged-in member.
    Member,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Signup => "signup",
            Kind::Reset => "reset",
            Kind::Member => "member",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub link_id: Option<i64>,
    pub member_id: Option<i64>,
    pub expires_at: i64,
    pub last_seen_at: i64,
}

/// How stale `last_seen_at` may get before a page marks it again: idle timeouts are
/// counted in minutes, and a page view that only reads needs no write.
pub const TOUCH_AFTER_SECS: i64 = 60;

pub struct NewSession<'a> {
    pub id_hash: &'a [u8],
    pub kind: Kind,
    pub link_id: Option<i64>,
    pub member_id: Option<i64>,
    pub expires_at: i64,
}

pub fn insert(conn: &Connection, session: &NewSession, now: i64) -> Result<()> {
    conn.prepare_cached("INSERT INTO sessions (id_hash, kind, link_id, member_id, created_at, expires_at, last_seen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)")?.execute(
        params![
            session.id_hash,
            session.kind.as_str(),
            session.link_id,
            session.member_id,
            now,
            session.expires_at
        ],
    )?;
    Ok(())
}

/// The live session of this kind with this id hash, if any. A session unused for
/// longer than `idle_secs` counts as ended. Only reads: `touch` marks it seen.
pub fn find(
    conn: &Connection,
    id_hash: &[u8],
    kind: Kind,
    now: i64,
    idle_secs: i64,
) -> Result<Option<Session>> {
    let session = conn
        .prepare_cached(
            "SELECT link_id, member_id, expires_at, last_seen_at FROM sessions
             WHERE id_hash = ?1 AND kind = ?2 AND expires_at > ?3 AND last_seen_at > ?3 - ?4",
        )?
        .query_row(params![id_hash, kind.as_str(), now, idle_secs], |row| {
            Ok(Session {
                link_id: row.get(0)?,
                member_id: row.get(1)?,
                expires_at: row.get(2)?,
                last_seen_at: row.get(3)?,
            })
        })
        .optional()?;
    Ok(session)
}

/// Marks a session as seen now (it idles from here).
pub fn touch(conn: &Connection, id_hash: &[u8], now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE sessions SET last_seen_at = ?2 WHERE id_hash = ?1")?
        .execute(params![id_hash, now])?;
    Ok(())
}

pub fn delete(conn: &Connection, id_hash: &[u8]) -> Result<()> {
    conn.prepare_cached("DELETE FROM sessions WHERE id_hash = ?1")?
        .execute([id_hash])?;
    Ok(())
}

/// Ends every session that rode on a link, e.g. once the link is spent.
pub fn delete_for_link(conn: &Connection, link_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM sessions WHERE link_id = ?1")?
        .execute([link_id])?;
    Ok(())
}

/// Ends every session of a member (password reissued, account disabled).
pub fn delete_for_member(conn: &Connection, member_id: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE member_id = ?1")?
        .execute([member_id])?)
}

/// Ends a member's other sessions (after a password change on one of them).
pub fn delete_others(conn: &Connection, member_id: i64, keep: &[u8]) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE member_id = ?1 AND id_hash != ?2")?
        .execute(params![member_id, keep])?)
}

/// How many live sessions a member has besides `keep`.
pub fn count_others(
    conn: &Connection,
    member_id: i64,
    keep: &[u8],
    now: i64,
    idle_secs: i64,
) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM sessions WHERE member_id = ?1 AND id_hash != ?2
             AND kind = 'member' AND expires_at > ?3 AND last_seen_at > ?3 - ?4",
        )?
        .query_row(params![member_id, keep, now, idle_secs], |row| row.get(0))?)
}

/// Forgets sessions past their absolute end (idle ones go once their end passes too).
pub fn delete_expired(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
        .execute([now])?)
}
