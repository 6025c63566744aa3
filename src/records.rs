//! `karamail records import --kind checkup|medical-expense FILE.csv`: a member's 健診結果
//! or 医療費のお知らせ, header `member_no,date,title,body`, any other columns kept and
//! shown as a table. Same encodings and error rules as the members import.

use crate::db::AuditEvent;
use crate::db::records::{self, Kind, NewRecord};
use crate::db::{self, Db, members};
use crate::jst;
use crate::members::{ImportError, read_table};
use crate::progress::Progress;

/// One record as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub line: u64,
    pub member_no: String,
    pub date: String,
    pub title: String,
    pub body: String,
    pub extra: Vec<(String, String)>,
}

const REQUIRED: [&str; 4] = ["member_no", "date", "title", "body"];

/// Parses and checks every row; the first bad one fails the whole file.
pub fn parse(text: &str) -> Result<Vec<RecordRow>, ImportError> {
    let table = read_table(text, &REQUIRED)?;
    let (headers, columns) = (&table.headers, &table.columns);
    let mut rows = Vec::new();
    for (line, record) in &table.rows {
        let line = *line;
        let field = |i: usize| record.get(columns[i]).unwrap_or("").trim().to_string();
        let bad = |reason: String| ImportError::Row { line, reason };
        let (member_no, date, title, body) =
            (field(0), field(1).replace('/', "-"), field(2), field(3));
        if member_no.is_empty() {
            return Err(bad("member_no is empty".into()));
        }
        if !jst::is_date(&date) {
            return Err(bad(format!(
                "date {:?} is not a date like 2026-04-01",
                field(1)
            )));
        }
        if title.is_empty() {
            return Err(bad("title is empty".into()));
        }
        let extra = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| !columns.contains(i))
            .map(|(i, name)| {
                (
                    name.trim().to_string(),
                    record.get(i).unwrap_or("").trim().to_string(),
                )
            })
            .collect();
        rows.push(RecordRow {
            line,
            member_no,
            date,
            title,
            body,
            extra,
        });
    }
    Ok(rows)
}

/// What an import stored, and the 「新しいお知らせがあります」 mails it queued.
#[derive(Debug, PartialEq, Eq)]
pub struct Imported {
    pub records: usize,
    pub mails: usize,
}

/// Stores all rows in one transaction; a member_no nobody has fails the whole file.
/// Each member concerned gets one 「新しいお知らせがあります」.
pub fn import(
    db: &Db,
    kind: Kind,
    rows: &[RecordRow],
    from: &str,
) -> Result<Imported, ImportError> {
    db.call_blocking(|c| {
        let tx = c.transaction()?;
        let now = db::now();
        let mut audience = std::collections::BTreeSet::new();
        let mut progress = Progress::new("storing records", "rows", rows.len() as u64);
        for row in rows {
            progress.inc(1);
            let Some(account) = members::account_by_member_no(&tx, &row.member_no)? else {
                return Ok(Err(ImportError::Row {
                    line: row.line,
                    reason: format!("no member with member_no {}", row.member_no),
                }));
            };
            let record = NewRecord {
                member_id: account.id,
                kind,
                date: &row.date,
                title: &row.title,
                body: &row.body,
                extra: &row.extra,
            };
            records::insert(&tx, &record, now)?;
            audience.insert(account.id);
        }
        progress.finish();
        let mails = crate::flows::news::announce(&tx, &audience, from, now)?;
        db::audit(
            &tx,
            AuditEvent::RecordsImported,
            None,
            None,
            &format!("{} {}", rows.len(), kind.as_str()),
        )?;
        tx.commit()?;
        Ok(Ok(Imported {
            records: rows.len(),
            mails,
        }))
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_their_extra_columns() {
        let rows = parse(
            "member_no,date,title,body,BMI,血圧\n1001,2026/04/01,定期健診,異常なし,22.1,120/80\n",
        )
        .unwrap();
        assert_eq!(rows[0].date, "2026-04-01");
        assert_eq!(
            rows[0].extra,
            [
                ("BMI".to_string(), "22.1".to_string()),
                ("血圧".to_string(), "120/80".to_string())
            ]
        );
    }

    #[test]
    fn bad_rows_are_named_by_line() {
        let err =
            parse("member_no,date,title,body\n1,2026-01-01,a,b\n2,2026-02-30,a,b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: date \"2026-02-30\" is not a date like 2026-04-01"
        );
        assert!(matches!(
            parse("member_no,title\n"),
            Err(ImportError::Header(_))
        ));
    }

    #[test]
    fn an_unknown_member_fails_the_whole_import() {
        let db = Db::open_in_memory().unwrap();
        let members = crate::members::parse("member_no,name\n1,A\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        crate::members::import(
            &db,
            &crate::secrets::ServerKey::ephemeral(),
            members,
            &dir.path().join("p.csv"),
            None,
        )
        .unwrap();
        let rows =
            parse("member_no,date,title,body\n1,2026-01-01,a,b\n9,2026-01-01,a,b\n").unwrap();
        let err = import(&db, Kind::Checkup, &rows, "noreply@example.jp").unwrap_err();
        assert_eq!(err.to_string(), "line 3: no member with member_no 9");
        let count: i64 = db
            .call_blocking(|c| Ok(c.query_row("SELECT count(*) FROM records", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(count, 0);
    }
}
