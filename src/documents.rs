//! `karamail documents import --kind qualification|medical-expense|checkup DIR`: PDFs
//! for members, each file named by its member's number (`1001.pdf`). A `documents.csv`
//! beside them (header `file,date,title`, optionally `member_no`; UTF-8 or Shift_JIS)
//! gives each file its date and title; without one, `--date` and `--title` (or today and
//! the kind's name) apply to all. Every file is checked before anything is stored, then
//! all are stored in one transaction, and each member concerned gets one
//! 「新しいお知らせがあります」 (the insured person too, for a dependant's 資格情報のお知らせ).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::db::AuditEvent;
use crate::db::documents::{self, Kind, NewDocument};
use crate::db::{self, Db, members};
use crate::flows::news;
use crate::jst;
use crate::members::{ImportError, decode, read_table};
use crate::progress::Progress;

/// The index a folder may hold beside its PDFs.
pub const INDEX: &str = "documents.csv";
const TITLE_MAX: usize = 100;

/// What the command line says of every file.
pub struct Options {
    pub kind: Kind,
    pub date: Option<String>,
    pub title: Option<String>,
    pub max_bytes: u64,
}

/// One PDF to import, checked.
#[derive(Debug, Clone)]
pub struct DocumentFile {
    pub path: PathBuf,
    pub file_name: String,
    pub member_no: String,
    pub date: String,
    pub title: String,
    /// Where an error about it points: `documents.csv line 3` or the file name.
    pub origin: String,
}

fn bad(origin: &str, reason: impl Into<String>) -> ImportError {
    ImportError::Document {
        origin: origin.to_string(),
        reason: reason.into(),
    }
}

/// Finds and checks every file of `dir`; the first bad one fails the whole import.
pub fn scan(dir: &Path, options: &Options) -> Result<Vec<DocumentFile>, ImportError> {
    let read_error = |source| ImportError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let index = dir.join(INDEX);
    let files = if index.exists() {
        from_index(dir, &index, options)?
    } else {
        from_names(dir, options).map_err(read_error)??
    };
    if files.is_empty() {
        return Err(bad(&dir.display().to_string(), "holds no PDF"));
    }
    let mut seen = std::collections::HashMap::new();
    for file in &files {
        check_title(&file.title).map_err(|reason| bad(&file.origin, reason))?;
        check_pdf(&file.path, options.max_bytes).map_err(|reason| bad(&file.origin, reason))?;
        let key = (&file.member_no, &file.date, &file.title);
        if let Some(first) = seen.insert(key, &file.origin) {
            return Err(bad(
                &file.origin,
                format!("the same member, date and title as {first}: one would be lost"),
            ));
        }
    }
    Ok(files)
}

fn check_title(title: &str) -> Result<(), String> {
    if title.is_empty() || title.chars().count() > TITLE_MAX || title.chars().any(char::is_control)
    {
        return Err(format!(
            "title {title:?} is empty, longer than {TITLE_MAX} characters or has control characters"
        ));
    }
    Ok(())
}

/// The PDFs of a folder (dot files left out), by name.
fn pdfs_in(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && name != INDEX {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Every file of the folder, named `MEMBER_NO.pdf`; anything else in it is an error
/// (a stray file is more likely a mistake than something to skip). Dot files are left.
fn from_names(
    dir: &Path,
    options: &Options,
) -> std::io::Result<Result<Vec<DocumentFile>, ImportError>> {
    let date = match &options.date {
        Some(date) => date.replace('/', "-"),
        None => jst::date(db::now()),
    };
    if !jst::is_date(&date) {
        return Ok(Err(bad(
            "--date",
            format!("{date:?} is not a date like 2026-04-01"),
        )));
    }
    let title = options
        .title
        .clone()
        .unwrap_or_else(|| options.kind.japanese().to_string());
    let mut files = Vec::new();
    for file_name in pdfs_in(dir)? {
        let Some(member_no) = pdf_stem(&file_name) else {
            return Ok(Err(bad(&file_name, "is not a PDF (name it MEMBER_NO.pdf)")));
        };
        files.push(DocumentFile {
            path: dir.join(&file_name),
            member_no: member_no.to_string(),
            date: date.clone(),
            title: title.clone(),
            origin: file_name.clone(),
            file_name,
        });
    }
    Ok(Ok(files))
}

fn pdf_stem(file_name: &str) -> Option<&str> {
    let (stem, extension) = file_name.rsplit_once('.')?;
    (extension.eq_ignore_ascii_case("pdf") && !stem.is_empty()).then_some(stem)
}

/// The files `documents.csv` lists, each with its line.
fn from_index(
    dir: &Path,
    index: &Path,
    options: &Options,
) -> Result<Vec<DocumentFile>, ImportError> {
    let bytes = std::fs::read(index).map_err(|source| ImportError::Read {
        path: index.to_path_buf(),
        source,
    })?;
    let table = read_table(
        &decode(&bytes, &index.display().to_string())?,
        &["file", "date", "title"],
    )?;
    let member_column = table
        .headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("member_no"));
    let mut files = Vec::new();
    for (line, record) in &table.rows {
        let origin = format!("{INDEX} line {line}");
        let field = |i: Option<usize>| {
            i.and_then(|i| record.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let (file_name, date, title) = (
            field(Some(table.columns[0])),
            field(Some(table.columns[1])).replace('/', "-"),
            field(Some(table.columns[2])),
        );
        let Some(stem) = pdf_stem(&file_name).filter(|_| !file_name.contains(['/', '\\'])) else {
            return Err(bad(
                &origin,
                format!("file {file_name:?} is not a PDF in this folder"),
            ));
        };
        let member_no = Some(field(member_column))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| stem.to_string());
        if !jst::is_date(&date) {
            return Err(bad(
                &origin,
                format!("date {date:?} is not a date like 2026-04-01"),
            ));
        }
        let title = if title.is_empty() {
            options
                .title
                .clone()
                .unwrap_or_else(|| options.kind.japanese().to_string())
        } else {
            title
        };
        let path = dir.join(&file_name);
        if !path.is_file() {
            return Err(bad(
                &origin,
                format!("{file_name} is not in {}", dir.display()),
            ));
        }
        files.push(DocumentFile {
            path,
            file_name,
            member_no,
            date,
            title,
            origin,
        });
    }
    // A file beside the index that it does not name is more likely a mistake than
    // something to leave out.
    let listed: std::collections::HashSet<&str> =
        files.iter().map(|f| f.file_name.as_str()).collect();
    let names = pdfs_in(dir).map_err(|source| ImportError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    if let Some(stray) = names.iter().find(|n| !listed.contains(n.as_str())) {
        return Err(bad(stray, format!("is in the folder but not in {INDEX}")));
    }
    Ok(files)
}

/// A PDF starts with `%PDF-`; refused when over `max_bytes`.
fn check_pdf(path: &Path, max_bytes: u64) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let size = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    if size > max_bytes {
        return Err(format!(
            "is {:.1} MB, over the limit of {:.1} MB (--max-size)",
            size as f64 / 1e6,
            max_bytes as f64 / 1e6
        ));
    }
    let mut start = [0u8; 5];
    if file.read_exact(&mut start).is_err() || &start != b"%PDF-" {
        return Err("is not a PDF (it does not start with %PDF-)".into());
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub imported: usize,
    /// Already there (same member, kind, date and title): an import run twice.
    pub already: usize,
    pub members: usize,
    /// 「新しいお知らせがあります」 mails queued.
    pub mails: usize,
}

/// Stores every file in one transaction: an unknown member fails it all.
pub fn import(
    db: &Db,
    kind: Kind,
    files: &[DocumentFile],
    from: &str,
) -> Result<Summary, ImportError> {
    db.call_blocking(|c| {
        let tx = c.transaction()?;
        let now = db::now();
        let (mut imported, mut already) = (0, 0);
        let mut audience = BTreeSet::new();
        let mut owners = BTreeSet::new();
        let mut progress = Progress::new("storing documents", "files", files.len() as u64);
        for file in files {
            progress.inc(1);
            let Some(account) = members::account_by_member_no(&tx, &file.member_no)? else {
                return Ok(Err(bad(
                    &file.origin,
                    format!("no member with member_no {}", file.member_no),
                )));
            };
            owners.insert(account.id);
            if documents::exists(&tx, account.id, kind, &file.date, &file.title)? {
                already += 1;
                continue;
            }
            let pdf = match std::fs::read(&file.path) {
                Ok(pdf) => pdf,
                Err(e) => return Ok(Err(bad(&file.origin, format!("cannot read: {e}")))),
            };
            let document = NewDocument {
                member_id: account.id,
                kind,
                date: &file.date,
                title: &file.title,
                file_name: &file.file_name,
                pdf: &pdf,
            };
            documents::insert(&tx, &document, now)?;
            imported += 1;
            audience.insert(account.id);
            if kind == Kind::Qualification
                && let Some(insured) = members::insured_person_of(&tx, account.id)?
            {
                audience.insert(insured);
            }
        }
        progress.finish();
        let mails = news::announce(&tx, &audience, from, now)?;
        let detail = format!("{imported} {}, {already} already there", kind.as_str());
        db::audit(&tx, AuditEvent::DocumentsImported, None, None, &detail)?;
        tx.commit()?;
        Ok(Ok(Summary {
            imported,
            already,
            members: owners.len(),
            mails,
        }))
    })?
}
