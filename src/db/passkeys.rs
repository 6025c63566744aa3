//! Queries on `passkeys` and the members' WebAuthn user handles.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// The member's user handle, if they have one.
pub fn webauthn_id(conn: &Connection, member_id: i64) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT webauthn_id FROM members WHERE id = ?1")?
        .query_row([member_id], |row| row.get(0))
        .optional()?
        .flatten())
}

/// Gives the member a user handle unless they have one; the one they have after.
pub fn ensure_webauthn_id(conn: &Connection, member_id: i64, fresh: &[u8]) -> Result<Vec<u8>> {
    conn.prepare_cached(
        "UPDATE members SET webauthn_id = ?2 WHERE id = ?1 AND webauthn_id IS NULL",
    )?
    .execute(params![member_id, fresh])?;
    Ok(webauthn_id(conn, member_id)?.unwrap_or_else(|| fresh.to_vec()))
}

/// The member a user handle names.
pub fn member_by_webauthn_id(conn: &Connection, handle: &[u8]) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM members WHERE webauthn_id = ?1")?
        .query_row([handle], |row| row.get(0))
        .optional()?)
}

pub struct NewPasskey<'a> {
    pub member_id: i64,
    pub credential_id: &'a [u8],
    pub passkey_json: &'a str,
    pub name: &'a str,
}

pub fn insert(conn: &Connection, passkey: &NewPasskey, now: i64) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO passkeys (member_id, credential_id, passkey, name, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        passkey.member_id,
        passkey.credential_id,
        passkey.passkey_json,
        passkey.name,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

/// A passkey as its member sees it listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

pub fn for_member(conn: &Connection, member_id: i64) -> Result<Vec<Listed>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, created_at, last_used_at FROM passkeys WHERE member_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([member_id], |row| {
        Ok(Listed {
            id: row.get(0)?,
            name: row.get(1)?,
            created_at: row.get(2)?,
            last_used_at: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The stored record of every passkey of a member, as JSON (to exclude on registration).
pub fn records_of(conn: &Connection, member_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT passkey FROM passkeys WHERE member_id = ?1")?;
    let rows = stmt.query_map([member_id], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A passkey found by its credential id: (its row id, its member, its record as JSON).
pub fn by_credential(
    conn: &Connection,
    credential_id: &[u8],
) -> Result<Option<(i64, i64, String)>> {
    Ok(conn
        .prepare_cached("SELECT id, member_id, passkey FROM passkeys WHERE credential_id = ?1")?
        .query_row([credential_id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?)
}

/// After a login with it: its record (a new signature counter) and when.
pub fn used(conn: &Connection, id: i64, passkey_json: &str, now: i64) -> Result<()> {
    conn.prepare_cached("UPDATE passkeys SET passkey = ?2, last_used_at = ?3 WHERE id = ?1")?
        .execute(params![id, passkey_json, now])?;
    Ok(())
}

/// Removes one of the member's passkeys; its name if there was one.
pub fn remove(conn: &Connection, member_id: i64, id: i64) -> Result<Option<String>> {
    let name: Option<String> = conn
        .prepare_cached("SELECT name FROM passkeys WHERE id = ?1 AND member_id = ?2")?
        .query_row(params![id, member_id], |row| row.get(0))
        .optional()?;
    if name.is_some() {
        conn.prepare_cached("DELETE FROM passkeys WHERE id = ?1")?
            .execute([id])?;
    }
    Ok(name)
}

/// Removes every passkey of a member (a password reissue); how many there were.
pub fn remove_all(conn: &Connection, member_id: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM passkeys WHERE member_id = ?1")?
        .execute([member_id])?)
}
