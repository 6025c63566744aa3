//! `karamail members import`: members from a CSV export, each new one issued a
//! temporary login ID and password, written once to the postcards file for printing.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::db::AuditEvent;
use crate::db::{self, Db, members};
use crate::error::Error;
use crate::household;
use crate::postcards::{Postcard, Printed, Printer, Sheet};
use crate::progress::Progress;
use crate::secrets::{self, ServerKey};
use crate::templates::Loaded;

const MEMBER_NO_MAX: usize = 32;
const NAME_MAX: usize = 100;

/// One member as read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub line: u64,
    pub member_no: String,
    pub name: String,
    /// From the optional `insured_no` and `relation` columns (see `household`).
    pub household: household::Stated,
}

/// What went wrong, precisely enough for the sysadmin to fix the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is neither UTF-8 nor Shift_JIS text")]
    Encoding(String),
    #[error("the header must have the columns member_no and name (found: {0})")]
    Header(String),
    #[error("line {line}: {reason}")]
    Row { line: u64, reason: String },
    /// A document of `karamail documents import`: the file, or its line in the index.
    #[error("{origin}: {reason}")]
    Document { origin: String, reason: String },
    #[error("{0} already exists; choose a new file name (it may hold passwords not yet printed)")]
    PostcardsExist(PathBuf),
    #[error("{0}")]
    Member(String),
    #[error(transparent)]
    Karamail(#[from] Error),
}

#[derive(Debug, PartialEq, Eq)]
pub struct ImportSummary {
    pub imported: usize,
    pub skipped: usize,
    /// Members already there whose household the file changed.
    pub households_updated: usize,
    /// The PDF of the new members' postcards, when one was asked for.
    pub printed: Option<Printed>,
}

/// A PDF of the postcards, written beside the CSV (`--pdf`).
pub struct PdfJob<'a> {
    pub path: &'a Path,
    pub printer: &'a Printer,
    pub templates: &'a Loaded,
    pub sheet: Sheet,
}

/// Text from Excel: UTF-8 with or without BOM, or Shift_JIS (CP932).
pub fn decode(bytes: &[u8], origin: &str) -> Result<String, ImportError> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8(rest.to_vec()).map_err(|_| ImportError::Encoding(origin.into()));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_string());
    }
    let (text, _, had_errors) = encoding_rs::SHIFT_JIS.decode(bytes);
    if had_errors {
        return Err(ImportError::Encoding(origin.into()));
    }
    Ok(text.into_owned())
}

/// A CSV file as the imports read it: where the required columns are, the header, and
/// every row that is not blank, with its line number.
pub struct CsvTable {
    pub headers: csv::StringRecord,
    pub columns: Vec<usize>,
    pub rows: Vec<(u64, csv::StringRecord)>,
}

/// Reads `text` as CSV whose header has every `required` column (any order, any case,
/// other columns allowed). A row the CSV reader cannot read fails with its line.
pub fn read_table(text: &str, required: &[&str]) -> Result<CsvTable, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ImportError::Header(e.to_string()))?
        .clone();
    let column = |name: &&str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let Some(columns) = required.iter().map(column).collect::<Option<Vec<usize>>>() else {
        let found = headers.iter().collect::<Vec<_>>().join(",");
        return Err(ImportError::Header(format!(
            "need {}; found {found}",
            required.join(",")
        )));
    };
    let mut rows = Vec::new();
    let mut lines = LineCounter::new(text);
    for record in reader.records() {
        let record = record.map_err(|e| ImportError::Row {
            line: e.position().map_or(0, |p| lines.line_at(p.byte())),
            reason: e.to_string(),
        })?;
        if !record.iter().all(|field| field.trim().is_empty()) {
            let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
            rows.push((line, record));
        }
    }
    Ok(CsvTable {
        headers,
        columns,
        rows,
    })
}

/// The line a byte offset is on, counted by `\n` (the CSV reader's own count is one
/// short for every line of a file with `\r\n` ends, as Excel writes them). Offsets come
/// in order, so the count goes on from the last one.
struct LineCounter<'a> {
    text: &'a [u8],
    counted_to: usize,
    line: u64,
}

impl LineCounter<'_> {
    fn new(text: &str) -> LineCounter<'_> {
        LineCounter {
            text: text.as_bytes(),
            counted_to: 0,
            line: 1,
        }
    }

    /// The line of the record the reader says starts at `byte` (where it started
    /// reading: blank lines it skipped come first).
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut byte = (byte as usize).min(self.text.len());
        while matches!(self.text.get(byte), Some(b'\r' | b'\n')) {
            byte += 1;
        }
        if byte < self.counted_to {
            (self.counted_to, self.line) = (0, 1);
        }
        let newlines = self.text[self.counted_to..byte]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.line += newlines as u64;
        self.counted_to = byte;
        self.line
    }
}

/// Parses and checks every row; the first bad one fails the whole file.
pub fn parse(text: &str) -> Result<Vec<MemberRow>, ImportError> {
    let table = read_table(text, &["member_no", "name"])?;
    let (no_col, name_col) = (table.columns[0], table.columns[1]);
    let household_columns = household::Columns::find(&table.headers);
    let mut rows: Vec<MemberRow> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (line, record) in table.rows {
        let bad = |reason: String| ImportError::Row { line, reason };
        let member_no = record.get(no_col).unwrap_or("").trim().to_string();
        let name = record.get(name_col).unwrap_or("").trim().to_string();
        if member_no.is_empty() {
            return Err(bad("member_no is empty".into()));
        }
        if member_no.chars().count() > MEMBER_NO_MAX || member_no.chars().any(|c| c.is_control()) {
            return Err(bad(format!(
                "member_no {member_no:?} is longer than {MEMBER_NO_MAX} characters or has control characters"
            )));
        }
        if name.is_empty() {
            return Err(bad(format!("name is empty for member_no {member_no}")));
        }
        if name.chars().count() > NAME_MAX || name.chars().any(|c| c.is_control()) {
            return Err(bad(format!(
                "name for member_no {member_no} is longer than {NAME_MAX} characters or has control characters"
            )));
        }
        if let Some(first) = seen.insert(member_no.clone(), line) {
            return Err(bad(format!(
                "member_no {member_no} appears twice (first on line {first})"
            )));
        }
        let household = household_columns
            .read(&record)
            .map_err(|reason| bad(format!("member_no {member_no}: {reason}")))?;
        rows.push(MemberRow {
            line,
            member_no,
            name,
            household,
        });
    }
    household::check_file(&rows)?;
    Ok(rows)
}

/// A member with fresh temporary credentials (the password in clear, for the postcard).
struct Issued {
    row: MemberRow,
    temp_login_id: String,
    temp_password: String,
    temp_password_hash: String,
}

impl Issued {
    fn postcard(&self) -> Postcard {
        Postcard {
            member_no: self.row.member_no.clone(),
            name: self.row.name.clone(),
            temp_login_id: self.temp_login_id.clone(),
            temp_password: self.temp_password.clone(),
        }
    }
}

/// Imports `rows`: skips members already there, issues the others their postcard
/// credentials, writes the postcards file, and stores everything in one transaction.
/// The postcards file is complete on disk before the transaction commits, so no member
/// can be stored whose password was not written down.
pub fn import(
    db: &Db,
    key: &ServerKey,
    rows: Vec<MemberRow>,
    postcards: &Path,
    pdf: Option<&PdfJob>,
) -> Result<ImportSummary, ImportError> {
    refuse_existing(postcards, pdf)?;
    let (new_rows, known_rows) = db.call_blocking(|c| {
        if let Err(e) = household::check_stored(c, &rows)? {
            return Ok(Err(e));
        }
        let mut new_rows = Vec::new();
        let mut known_rows = Vec::new();
        for row in rows {
            if members::exists_member_no(c, &row.member_no)? {
                known_rows.push(row);
            } else {
                new_rows.push(row);
            }
        }
        Ok(Ok((new_rows, known_rows)))
    })??;
    let skipped = known_rows.len();
    let issued = issue_credentials(db, key, new_rows)?;
    if issued.is_empty() {
        let households_updated = db.call_blocking(|c| {
            let tx = c.transaction()?;
            let changed = household::update_stored(&tx, &known_rows)?;
            tx.commit()?;
            Ok(changed)
        })?;
        return Ok(ImportSummary {
            imported: 0,
            skipped,
            households_updated,
            printed: None,
        });
    }
    let mut households_updated = 0;
    let printed = store_with_postcards(db, &issued, postcards, pdf, |tx| {
        let now = db::now();
        for member in &issued {
            let new = members::NewMember {
                member_no: &member.row.member_no,
                name: &member.row.name,
                temp_login_id: &member.temp_login_id,
                temp_password_hash: &member.temp_password_hash,
                household: member.row.household.household(),
            };
            members::insert(tx, &new, now)?;
        }
        households_updated = household::update_stored(tx, &known_rows)?;
        let detail = format!("{} imported, {} skipped", issued.len(), skipped);
        db::audit(tx, AuditEvent::MembersImported, None, None, &detail)
    })?;
    Ok(ImportSummary {
        imported: issued.len(),
        skipped,
        households_updated,
        printed,
    })
}

fn refuse_existing(postcards: &Path, pdf: Option<&PdfJob>) -> Result<(), ImportError> {
    for path in std::iter::once(postcards).chain(pdf.map(|job| job.path)) {
        if path.exists() {
            return Err(ImportError::PostcardsExist(path.into()));
        }
    }
    Ok(())
}

/// A lost postcard: new temporary credentials for a member who has not signed up yet,
/// written to `postcards` like an import's; the old ones stop working.
pub fn reissue(
    db: &Db,
    key: &ServerKey,
    member_no: &str,
    postcards: &Path,
    pdf: Option<&PdfJob>,
) -> Result<Option<Printed>, ImportError> {
    refuse_existing(postcards, pdf)?;
    let lookup = member_no.to_string();
    let account = db
        .call_blocking(|c| members::account_by_member_no(c, &lookup))?
        .ok_or_else(|| ImportError::Member(format!("no member with member_no {member_no}")))?;
    if account.registered_at.is_some() {
        return Err(ImportError::Member(format!(
            "member {member_no} has already signed up; a forgotten password is reissued on the portal (パスワードを忘れた方)"
        )));
    }
    let row = MemberRow {
        line: 0,
        member_no: account.member_no,
        name: account.name,
        household: household::Stated::NotInFile,
    };
    let issued = issue_credentials(db, key, vec![row])?;
    let member = &issued[0];
    store_with_postcards(db, &issued, postcards, pdf, |tx| {
        let (id, hash) = (&member.temp_login_id, &member.temp_password_hash);
        members::replace_postcard(tx, account.id, id, hash, db::now())?;
        db::audit(tx, AuditEvent::PostcardReissued, Some(account.id), None, "")
    })
}

/// Writes the postcards file (and the PDF) whole, then stores the members in one
/// transaction, then gives the files their names: no member can be stored whose
/// password was not written down, and a failed store leaves no file behind.
fn store_with_postcards(
    db: &Db,
    issued: &[Issued],
    postcards: &Path,
    pdf: Option<&PdfJob>,
    store: impl FnOnce(&rusqlite::Transaction) -> Result<(), Error>,
) -> Result<Option<Printed>, ImportError> {
    let written = write_files(issued, postcards, pdf)?;
    let stored = db.call_blocking(|c| {
        let tx = c.transaction()?;
        store(&tx)?;
        tx.commit()?;
        Ok(())
    });
    if let Err(e) = stored {
        for (partial, _) in &written.files {
            let _ = std::fs::remove_file(partial);
        }
        return Err(e.into());
    }
    for (partial, path) in written.files {
        std::fs::rename(&partial, &path).map_err(|source| ImportError::Read { path, source })?;
    }
    Ok(written.printed)
}

/// The files written under a temporary name, each with the name it gets once stored.
struct Written {
    files: Vec<(PathBuf, PathBuf)>,
    printed: Option<Printed>,
}

fn write_files(
    issued: &[Issued],
    postcards: &Path,
    pdf: Option<&PdfJob>,
) -> Result<Written, ImportError> {
    let csv_partial = postcards.with_extension("csv.partial");
    write_postcards(&csv_partial, issued).map_err(|source| ImportError::Read {
        path: csv_partial.clone(),
        source,
    })?;
    let mut written = Written {
        files: vec![(csv_partial, postcards.to_path_buf())],
        printed: None,
    };
    let Some(job) = pdf else {
        return Ok(written);
    };
    let cards: Vec<Postcard> = issued.iter().map(Issued::postcard).collect();
    let pdf_partial = job.path.with_extension("pdf.partial");
    let printed = print_pdf(job, &cards, &pdf_partial);
    if let Err(e) = printed {
        let _ = std::fs::remove_file(&written.files[0].0);
        return Err(e);
    }
    written.printed = printed.ok();
    written.files.push((pdf_partial, job.path.to_path_buf()));
    Ok(written)
}

/// The postcards as a PDF at `path` (which must not exist), with a progress bar.
pub fn print_pdf(job: &PdfJob, cards: &[Postcard], path: &Path) -> Result<Printed, ImportError> {
    let mut progress = Progress::new("postcards", "cards", cards.len() as u64);
    let rendered = job
        .printer
        .render(job.templates, cards, job.sheet, &mut || progress.inc(1));
    progress.finish();
    let (bytes, printed) = rendered.map_err(|e| ImportError::Member(e.to_string()))?;
    if let Err(source) = crate::postcards::write_private(path, &bytes) {
        // A file half written (a full disk) holds passwords: it goes.
        if source.kind() != std::io::ErrorKind::AlreadyExists {
            let _ = std::fs::remove_file(path);
        }
        return Err(ImportError::Read {
            path: path.into(),
            source,
        });
    }
    Ok(printed)
}

/// Draws unique temporary IDs and passwords, the passwords kept as keyed hashes
/// (`ServerKey::temp_password_hash`). The IDs already taken are read in one go.
fn issue_credentials(
    db: &Db,
    key: &ServerKey,
    rows: Vec<MemberRow>,
) -> Result<Vec<Issued>, ImportError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut taken = db.call_blocking(members::temp_login_ids)?;
    let mut issued = Vec::with_capacity(rows.len());
    let mut progress = Progress::new("issuing credentials", "members", rows.len() as u64);
    for row in rows {
        progress.inc(1);
        let temp_login_id = loop {
            let candidate = secrets::new_temp_login_id();
            if taken.insert(candidate.clone()) {
                break candidate;
            }
        };
        let temp_password = secrets::new_temp_password();
        issued.push(Issued {
            temp_password_hash: key.temp_password_hash(&temp_password),
            row,
            temp_login_id,
            temp_password,
        });
    }
    progress.finish();
    Ok(issued)
}

/// `member_no,name,temp_login_id,temp_password`, UTF-8 with a BOM so Excel opens it
/// right, readable by its owner only, flushed to disk.
fn write_postcards(path: &Path, issued: &[Issued]) -> std::io::Result<()> {
    let file = crate::files::create_private(path)?;
    let mut out = std::io::BufWriter::new(file);
    out.write_all(b"\xEF\xBB\xBF")?;
    let mut writer = csv::Writer::from_writer(&mut out);
    writer.write_record(["member_no", "name", "temp_login_id", "temp_password"])?;
    for member in issued {
        writer.write_record([
            as_text(&member.row.member_no).as_ref(),
            as_text(&member.row.name).as_ref(),
            &member.temp_login_id,
            &member.temp_password,
        ])?;
    }
    writer.flush()?;
    drop(writer);
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// A cell Excel and LibreOffice take as text, never run as a formula (OWASP's CSV
/// injection rule): one that begins with `=`, `+`, `-`, `@`, a tab or a CR (or the
/// full-width `＝＋－＠` Japanese input may give) gets a `'` in front. The `'` may
/// show in the spreadsheet; a program reading the file back takes it off.
pub fn as_text(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r', '＝', '＋', '－', '＠']) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The cell `as_text` wrote, as it was: the `'` put before `=`, `+`, `-`… taken off.
pub fn from_text(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if as_text(rest).len() != rest.len() => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_bom_and_extra_columns() {
        let text = decode(
            "\u{FEFF}member_no,name,dept\n1001,山田 太郎,総務\n1002,\"佐藤, 花子\",営業\n"
                .as_bytes(),
            "t",
        )
        .unwrap();
        let rows = parse(&text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            MemberRow {
                line: 2,
                member_no: "1001".into(),
                name: "山田 太郎".into(),
                household: crate::household::Stated::NotInFile,
            }
        );
        assert_eq!(rows[1].name, "佐藤, 花子");
    }

    #[test]
    fn lines_are_counted_alike_whatever_the_line_ends() {
        for text in [
            "member_no,name\n1,A\n\n2,\n",
            "member_no,name\r\n1,A\r\n\r\n2,\r\n",
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(
                err.to_string(),
                "line 4: name is empty for member_no 2",
                "{text:?}"
            );
        }
    }

    #[test]
    fn shift_jis_from_excel() {
        let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode("name,member_no\r\n髙橋 一郎,2001\r\n");
        let rows = parse(&decode(&bytes, "t").unwrap()).unwrap();
        assert_eq!(rows[0].name, "髙橋 一郎");
        assert_eq!(rows[0].member_no, "2001");
    }

    #[test]
    fn bad_rows_are_named_by_line() {
        let err = parse("member_no,name\n1,A\n,B\n").unwrap_err().to_string();
        assert_eq!(err, "line 3: member_no is empty");
        let err = parse("member_no,name\n1,A\n2,\n").unwrap_err().to_string();
        assert_eq!(err, "line 3: name is empty for member_no 2");
        let err = parse("member_no,name\n1,A\n1,B\n").unwrap_err().to_string();
        assert_eq!(err, "line 3: member_no 1 appears twice (first on line 2)");
        assert!(matches!(
            parse("id,name\n1,A\n"),
            Err(ImportError::Header(_))
        ));
        assert!(matches!(
            decode(b"\xff\xfe\xfd", "t"),
            Err(ImportError::Encoding(_))
        ));
    }

    #[test]
    fn import_issues_credentials_once_and_skips_known_members() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("k.db")).unwrap();
        let key = ServerKey::ephemeral();
        let rows = parse("member_no,name\n1,A\n2,B\n").unwrap();
        let first = dir.path().join("postcards1.csv");
        assert_eq!(
            import(&db, &key, rows.clone(), &first, None).unwrap(),
            ImportSummary {
                imported: 2,
                skipped: 0,
                households_updated: 0,
                printed: None,
            }
        );
        let written = std::fs::read_to_string(&first).unwrap();
        let lines: Vec<_> = written.trim_start_matches('\u{FEFF}').lines().collect();
        assert_eq!(lines[0], "member_no,name,temp_login_id,temp_password");
        let fields: Vec<_> = lines[1].split(',').collect();
        let hash: String = db
            .call_blocking(|c| {
                Ok(c.query_row(
                    "SELECT temp_password_hash FROM members WHERE member_no = '1'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert!(
            key.verify_temp_password(fields[3], Some(&hash)),
            "the database keeps only a hash of the postcard's password"
        );
        assert!(!hash.contains(fields[3]));
        assert!(matches!(
            import(&db, &key, rows.clone(), &first, None),
            Err(ImportError::PostcardsExist(_))
        ));
        let again = import(&db, &key, rows, &dir.path().join("postcards2.csv"), None).unwrap();
        assert_eq!(
            again,
            ImportSummary {
                imported: 0,
                skipped: 2,
                households_updated: 0,
                printed: None,
            }
        );
    }
}
