//! Queries on `notices`: the society's お知らせ.

use rusqlite::{Connection, params};

use crate::error::Result;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Notice {
    pub id: i64,
    pub title: String,
    pub body: String,
    pub published_at: i64,
    pub ends_on: Option<String>,
}

pub fn insert(
    conn: &Connection,
    title: &str,
    body: &str,
    ends_on: Option<&str>,
    now: i64,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO notices (title, body, published_at, ends_on) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![title, body, now, ends_on])?;
    Ok(conn.last_insert_rowid())
}

fn from_row(row: &rusqlite::Row) -> rusqlite::Result<Notice> {
    Ok(Notice {
        id: row.get(0)?,
        title: row.get(1)?,
        body: row.get(2)?,
        published_at: row.get(3)?,
        ends_on: row.get(4)?,
    })
}

/// Every notice, newest first.
pub fn all(conn: &Connection) -> Result<Vec<Notice>> {
    let mut stmt = conn.prepare_cached("SELECT id, title, body, published_at, ends_on FROM notices ORDER BY published_at DESC, id DESC")?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Notices to show on `today` (YYYY-MM-DD), newest first.
pub fn current(conn: &Connection, today: &str) -> Result<Vec<Notice>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, title, body, published_at, ends_on FROM notices
         WHERE ends_on IS NULL OR ends_on >= ?1 ORDER BY published_at DESC, id DESC",
    )?;
    let rows = stmt.query_map([today], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM notices WHERE id = ?1")?
        .execute([id])?
        == 1)
}
