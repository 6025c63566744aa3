//! Queries on `records`: a member's 健診結果 and 医療費のお知らせ.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Checkup,
    MedicalExpense,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Checkup => "checkup",
            Kind::MedicalExpense => "medical_expense",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Record {
    pub id: i64,
    pub date: String,
    pub title: String,
    pub body: String,
    /// The file's other columns, as (name, value).
    pub extra: Vec<(String, String)>,
}

pub struct NewRecord<'a> {
    pub member_id: i64,
    pub kind: Kind,
    pub date: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub extra: &'a [(String, String)],
}

pub fn insert(conn: &Connection, record: &NewRecord, now: i64) -> Result<i64> {
    let extra = serde_json::to_string(record.extra).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached("INSERT INTO records (member_id, kind, date, title, body, extra, imported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(
        params![record.member_id, record.kind.as_str(), record.date, record.title, record.body, extra, now],
    )?;
    Ok(conn.last_insert_rowid())
}

fn from_row(row: &rusqlite::Row) -> rusqlite::Result<Record> {
    let extra: String = row.get(4)?;
    Ok(Record {
        id: row.get(0)?,
        date: row.get(1)?,
        title: row.get(2)?,
        body: row.get(3)?,
        extra: serde_json::from_str(&extra).unwrap_or_default(),
    })
}

/// A member's records of one kind, newest first.
pub fn for_member(conn: &Connection, member_id: i64, kind: Kind) -> Result<Vec<Record>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, date, title, body, extra FROM records WHERE member_id = ?1 AND kind = ?2 ORDER BY date DESC, id DESC",
    )?;
    let rows = stmt.query_map(params![member_id, kind.as_str()], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One record, only if it is this member's: another member's id finds nothing.
pub fn find_for_member(
    conn: &Connection,
    member_id: i64,
    kind: Kind,
    id: i64,
) -> Result<Option<Record>> {
    Ok(conn
        .prepare_cached("SELECT id, date, title, body, extra FROM records WHERE id = ?1 AND member_id = ?2 AND kind = ?3")?.query_row(
            params![id, member_id, kind.as_str()],
            from_row,
        )
        .optional()?)
}
