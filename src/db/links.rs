//! Queries on `links`: the emailed links, known only by their token's hash.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Signup,
    /// パスワード再発行: the link carries a temporary password too (`secret_hash`).
    Reset,
    /// A new address for a member, confirmed by its owner.
    EmailVerify,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Signup => "signup",
            Purpose::Reset => "reset",
            Purpose::EmailVerify => "email_verify",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Link {
    pub id: i64,
    pub address: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub failed_attempts: u32,
    pub member_id: Option<i64>,
    pub secret_hash: Option<String>,
}

/// What a link is good for right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Usable,
    Used,
    Expired,
}

impl Link {
    pub fn state(&self, now: i64) -> LinkState {
        if self.used_at.is_some() {
            LinkState::Used
        } else if now >= self.expires_at {
            LinkState::Expired
        } else {
            LinkState::Usable
        }
    }
}

pub struct NewLink<'a> {
    pub purpose: Purpose,
    pub token_hash: &'a [u8],
    pub address: &'a str,
    pub member_id: Option<i64>,
    pub secret_hash: Option<&'a str>,
    pub ttl: i64,
}

pub fn insert(conn: &Connection, link: &NewLink, now: i64) -> Result<i64> {
    conn.prepare_cached("INSERT INTO links (purpose, token_hash, address, member_id, secret_hash, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(
        params![
            link.purpose.as_str(),
            link.token_hash,
            link.address,
            link.member_id,
            link.secret_hash,
            now,
            now + link.ttl
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Ends a member's unused links of one purpose (a new reissue mail voids the last).
pub fn void_open(conn: &Connection, purpose: Purpose, member_id: i64, now: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE links SET used_at = ?3 WHERE purpose = ?1 AND member_id = ?2 AND used_at IS NULL",
    )?
    .execute(params![purpose.as_str(), member_id, now])?;
    Ok(())
}

const COLUMNS: &str = "id, address, expires_at, used_at, failed_attempts, member_id, secret_hash";

fn from_row(row: &rusqlite::Row) -> rusqlite::Result<Link> {
    Ok(Link {
        id: row.get(0)?,
        address: row.get(1)?,
        expires_at: row.get(2)?,
        used_at: row.get(3)?,
        failed_attempts: row.get(4)?,
        member_id: row.get(5)?,
        secret_hash: row.get(6)?,
    })
}

pub fn find_by_token_hash(
    conn: &Connection,
    purpose: Purpose,
    token_hash: &[u8],
) -> Result<Option<Link>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM links WHERE purpose = ?1 AND token_hash = ?2"),
            params![purpose.as_str(), token_hash],
            from_row,
        )
        .optional()?)
}

pub fn find(conn: &Connection, id: i64) -> Result<Option<Link>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM links WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()?)
}

/// Spends the link for `member_id`. False when it was spent meanwhile.
pub fn mark_used(conn: &Connection, id: i64, member_id: Option<i64>, now: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE links SET used_at = ?2, member_id = ?3 WHERE id = ?1 AND used_at IS NULL",
        )?
        .execute(params![id, now, member_id])?;
    Ok(changed == 1)
}

/// Counts a wrong postcard entry; returns the new count.
/// Counts an answer before it is checked: the attempts so far with this one, or None
/// when the link is spent or has had `max` already.
pub fn count_attempt(conn: &Connection, id: i64, max: u32) -> Result<Option<u32>> {
    Ok(conn
        .prepare_cached(
            "UPDATE links SET failed_attempts = failed_attempts + 1
             WHERE id = ?1 AND used_at IS NULL AND failed_attempts < ?2 RETURNING failed_attempts",
        )?
        .query_row(params![id, max], |row| row.get(0))
        .optional()?)
}
