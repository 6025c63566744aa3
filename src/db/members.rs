//! Queries on `members` and `member_emails`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// A member as the postcard check needs it.
#[derive(Debug, Clone)]
pub struct PostcardHolder {
    pub id: i64,
    pub temp_password_hash: Option<String>,
}

pub struct NewMember<'a> {
    pub member_no: &'a str,
    pub name: &'a str,
    pub temp_login_id: &'a str,
    pub temp_password_hash: &'a str,
}

pub fn insert(conn: &Connection, member: &NewMember, now: i64) -> Result<i64> {
    conn.execute(
        "INSERT INTO members (member_no, name, temp_login_id, temp_password_hash, temp_issued_at, imported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![member.member_no, member.name, member.temp_login_id, member.temp_password_hash, now],
    )?;
    Ok(conn.last_insert_rowid())
}

pub fn exists_member_no(conn: &Connection, member_no: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM members WHERE member_no = ?1",
            [member_no],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn exists_temp_login_id(conn: &Connection, temp_login_id: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM members WHERE temp_login_id = ?1",
            [temp_login_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn find_by_temp_login_id(
    conn: &Connection,
    temp_login_id: &str,
) -> Result<Option<PostcardHolder>> {
    Ok(conn
        .query_row(
            "SELECT id, temp_password_hash FROM members WHERE temp_login_id = ?1",
            [temp_login_id],
            |row| {
                Ok(PostcardHolder {
                    id: row.get(0)?,
                    temp_password_hash: row.get(1)?,
                })
            },
        )
        .optional()?)
}

/// Whether a login ID is taken (IDs are unique whatever their case).
pub fn login_id_taken(conn: &Connection, login_id: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM members WHERE login_id = ?1",
            [login_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub struct Registration<'a> {
    pub member_id: i64,
    pub login_id: &'a str,
    pub password_hash: &'a str,
    pub nickname: &'a str,
    pub address: &'a str,
}

/// Completes sign-up: sets the chosen credentials, spends the postcard, records the
/// address. Returns false when the member had already completed it meanwhile.
pub fn register(conn: &Connection, reg: &Registration, now: i64) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE members SET login_id = ?2, password_hash = ?3, nickname = ?4, registered_at = ?5,
                temp_password_hash = NULL
         WHERE id = ?1 AND registered_at IS NULL AND temp_password_hash IS NOT NULL",
        params![
            reg.member_id,
            reg.login_id,
            reg.password_hash,
            reg.nickname,
            now
        ],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    conn.execute(
        "INSERT INTO member_emails (member_id, address, added_at) VALUES (?1, ?2, ?3)",
        params![reg.member_id, reg.address, now],
    )?;
    Ok(true)
}
