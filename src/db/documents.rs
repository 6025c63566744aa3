//! Queries on `documents` and `document_contents`: a member's PDFs, and who may see
//! them (the owner; the insured person also their dependants' 資格情報のお知らせ).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 資格情報のお知らせ
    Qualification,
    /// 医療費のお知らせ
    MedicalExpense,
    /// 健診結果
    Checkup,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Qualification => "qualification",
            Kind::MedicalExpense => "medical_expense",
            Kind::Checkup => "checkup",
        }
    }

    fn parse(stored: &str) -> Kind {
        match stored {
            "qualification" => Kind::Qualification,
            "medical_expense" => Kind::MedicalExpense,
            _ => Kind::Checkup,
        }
    }

    /// As the pages and the default titles say it.
    pub fn japanese(self) -> &'static str {
        match self {
            Kind::Qualification => "資格情報のお知らせ",
            Kind::MedicalExpense => "医療費のお知らせ",
            Kind::Checkup => "健診結果",
        }
    }
}

pub struct NewDocument<'a> {
    pub member_id: i64,
    pub kind: Kind,
    pub date: &'a str,
    pub title: &'a str,
    pub file_name: &'a str,
    pub pdf: &'a [u8],
}

/// Stores a document; a dependant's carries their 被保険者番号 as it is now (see
/// `VISIBLE`).
pub fn insert(conn: &Connection, document: &NewDocument, now: i64) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO documents (member_id, kind, date, title, file_name, size, imported_at, household_no)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                 (SELECT insured_no FROM members WHERE id = ?1 AND relation = 'dependant'))",
    )?
    .execute(params![
        document.member_id,
        document.kind.as_str(),
        document.date,
        document.title,
        document.file_name,
        document.pdf.len() as i64,
        now
    ])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO document_contents (document_id, pdf) VALUES (?1, ?2)")?
        .execute(params![id, document.pdf])?;
    Ok(id)
}

/// Whether the member has a document of this kind, date and title already (an import
/// run twice adds nothing the second time).
pub fn exists(
    conn: &Connection,
    member_id: i64,
    kind: Kind,
    date: &str,
    title: &str,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM documents WHERE member_id = ?1 AND kind = ?2 AND date = ?3 AND title = ?4",
        )?
        .query_row(params![member_id, kind.as_str(), date, title], |_| Ok(()))
        .optional()?
        .is_some())
}

/// A document as a member sees it listed.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: i64,
    pub kind: Kind,
    pub date: String,
    pub title: String,
    pub size: i64,
    /// Whose it is: None for the viewer's own, else the dependant's name.
    pub dependant: Option<String>,
}

/// The most a page lists of one member's documents.
const LISTED_MAX: usize = 200;

/// What `viewer` may see, newest first: their own documents, and if they are an insured
/// person (本人) the 資格情報のお知らせ of the dependants in their household. (Two
/// indexed lookups: `VISIBLE` as one condition would scan every document. Sorted here:
/// SQLite sorts a compound SELECT with a LIMIT in temporary b-trees, opened and closed
/// for every top page, a tenth of its time even when there is nothing to sort.)
pub fn visible_to(conn: &Connection, viewer: i64) -> Result<Vec<Listed>> {
    let mut listed = Vec::new();
    for sql in [
        "SELECT d.id, d.kind, d.date, d.title, d.size, NULL
         FROM documents d WHERE d.member_id = ?1",
        "SELECT d.id, d.kind, d.date, d.title, d.size, m.name
         FROM members v
         JOIN documents d ON d.household_no = v.insured_no AND d.kind = 'qualification'
         JOIN members m ON m.id = d.member_id
         WHERE v.id = ?1 AND v.relation = 'insured' AND d.member_id != v.id",
    ] {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([viewer], |row| {
            Ok(Listed {
                id: row.get(0)?,
                kind: Kind::parse(&row.get::<_, String>(1)?),
                date: row.get(2)?,
                title: row.get(3)?,
                size: row.get(4)?,
                dependant: row.get(5)?,
            })
        })?;
        for row in rows {
            listed.push(row?);
        }
    }
    listed.sort_by(|a, b| (&b.date, b.id).cmp(&(&a.date, a.id)));
    listed.truncate(LISTED_MAX);
    Ok(listed)
}

/// Which documents `d` the member `?1` may see (as `visible_to` lists them): their own,
/// and as the insured person (本人) of a 被保険者番号 the 資格情報のお知らせ issued to a
/// dependant under that number. The household is the society's word (the members
/// import), never the member's, and is the one of the day the document was issued.
const VISIBLE: &str = "d.member_id = ?1 OR (d.kind = 'qualification' AND d.household_no IS NOT NULL
      AND d.household_no = (
          SELECT v.insured_no FROM members v WHERE v.id = ?1 AND v.relation = 'insured'))";

/// A document's file, for download.
pub struct File {
    pub kind: Kind,
    pub title: String,
    pub date: String,
    pub pdf: Vec<u8>,
}

/// Document `id` with its file, if `viewer` may see it (else None, as if it did not exist).
pub fn file_for(conn: &Connection, viewer: i64, id: i64) -> Result<Option<File>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT d.kind, d.title, d.date, c.pdf
             FROM documents d JOIN document_contents c ON c.document_id = d.id
             WHERE d.id = ?2 AND ({VISIBLE})"
        ))?
        .query_row(params![viewer, id], |row| {
            Ok(File {
                kind: Kind::parse(&row.get::<_, String>(0)?),
                title: row.get(1)?,
                date: row.get(2)?,
                pdf: row.get(3)?,
            })
        })
        .optional()?)
}

/// For the sysadmin: every document of a member (or all), without the files.
pub struct Stored {
    pub id: i64,
    pub member_no: String,
    pub kind: Kind,
    pub date: String,
    pub title: String,
    pub file_name: String,
    pub size: i64,
}

pub fn list(conn: &Connection, member_no: Option<&str>) -> Result<Vec<Stored>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, m.member_no, d.kind, d.date, d.title, d.file_name, d.size
         FROM documents d JOIN members m ON m.id = d.member_id
         WHERE ?1 IS NULL OR m.member_no = ?1 ORDER BY m.member_no, d.date, d.id",
    )?;
    let rows = stmt.query_map([member_no], |row| {
        Ok(Stored {
            id: row.get(0)?,
            member_no: row.get(1)?,
            kind: Kind::parse(&row.get::<_, String>(2)?),
            date: row.get(3)?,
            title: row.get(4)?,
            file_name: row.get(5)?,
            size: row.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes a document and its file; false if there was none.
pub fn remove(conn: &Connection, id: i64) -> Result<bool> {
    conn.prepare_cached("DELETE FROM document_contents WHERE document_id = ?1")?
        .execute([id])?;
    Ok(conn
        .prepare_cached("DELETE FROM documents WHERE id = ?1")?
        .execute([id])?
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn own_and_dependants_documents_are_listed_newest_first_together() {
        let db = Db::open_in_memory().unwrap();
        let listed = db
            .call_blocking(|c| {
                c.execute_batch(
                    "INSERT INTO members (id, member_no, name, temp_login_id, temp_issued_at, imported_at, insured_no, relation)
                     VALUES (1, '1', '山田 太郎', 'ABC000001', 0, 0, 'H-1', 'insured'),
                            (2, '2', '山田 花子', 'ABC000002', 0, 0, 'H-1', 'dependant'),
                            (3, '3', '佐藤 一郎', 'ABC000003', 0, 0, 'H-2', 'dependant')",
                )?;
                let document = |member_id, kind, date| {
                    let new = NewDocument {
                        member_id,
                        kind,
                        date,
                        title: "t",
                        file_name: "f.pdf",
                        pdf: b"%PDF-",
                    };
                    insert(c, &new, 0)
                };
                let own_old = document(1, Kind::Checkup, "2026-04-01")?;
                let dependants = document(2, Kind::Qualification, "2026-08-01")?;
                let own_new = document(1, Kind::Qualification, "2026-10-01")?;
                let same_day = document(1, Kind::MedicalExpense, "2026-10-01")?;
                // Neither the dependant's other kinds nor another household's.
                document(2, Kind::Checkup, "2026-09-01")?;
                document(3, Kind::Qualification, "2026-09-01")?;
                let listed = visible_to(c, 1)?;
                let order: Vec<(i64, Option<String>)> =
                    listed.into_iter().map(|d| (d.id, d.dependant)).collect();
                let expected = vec![
                    (same_day, None),
                    (own_new, None),
                    (dependants, Some("山田 花子".to_string())),
                    (own_old, None),
                ];
                assert_eq!(order, expected);
                Ok(())
            });
        listed.unwrap();
    }
}
