//! The household columns of `karamail members import`: `insured_no` (被保険者番号, shared
//! by the insured person and their dependants) and `relation` (本人 or 被扶養者). Both are
//! optional columns; a row that has one needs the other, and a row with both empty (in a
//! file that has the columns) belongs to no household: a member already stored leaves
//! theirs. A household has one 本人, in the file and in the database: the 本人 is who
//! sees the dependants' 資格情報のお知らせ.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::db::members::{self, Household, Relation};
use crate::error::Result;
use crate::members::{ImportError, MemberRow};

const INSURED_NO_MAX: usize = 32;

/// What a row of the file says of a member's household.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stated {
    /// The file has no household columns: nothing changes.
    NotInFile,
    /// Both columns empty: in no household.
    None,
    In(Household),
}

impl Stated {
    pub fn household(&self) -> Option<&Household> {
        match self {
            Stated::In(household) => Some(household),
            _ => None,
        }
    }
}

/// Where the household columns are in a file's header, if it has them.
pub struct Columns {
    insured_no: Option<usize>,
    relation: Option<usize>,
}

impl Columns {
    pub fn find(headers: &csv::StringRecord) -> Columns {
        let find = |name: &str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        Columns {
            insured_no: find("insured_no"),
            relation: find("relation"),
        }
    }

    /// The row's household, if it names one; the reason if it is wrong.
    pub fn read(&self, record: &csv::StringRecord) -> std::result::Result<Stated, String> {
        if self.insured_no.is_none() && self.relation.is_none() {
            return Ok(Stated::NotInFile);
        }
        let field = |column: Option<usize>| {
            column
                .and_then(|i| record.get(i))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let (insured_no, relation) = (field(self.insured_no), field(self.relation));
        match (insured_no.is_empty(), relation.is_empty()) {
            (true, true) => return Ok(Stated::None),
            (true, false) => return Err("relation is given but insured_no is empty".into()),
            (false, true) => {
                return Err("insured_no is given but relation is empty (本人 or 被扶養者)".into());
            }
            (false, false) => {}
        }
        if insured_no.chars().count() > INSURED_NO_MAX || insured_no.chars().any(char::is_control) {
            return Err(format!(
                "insured_no {insured_no:?} is longer than {INSURED_NO_MAX} characters or has control characters"
            ));
        }
        let relation = parse_relation(&relation)
            .ok_or_else(|| format!("relation {relation:?} is neither 本人 nor 被扶養者"))?;
        Ok(Stated::In(Household {
            insured_no,
            relation,
        }))
    }
}

/// 本人 / 被扶養者 (also `insured` / `dependant`, and 家族 as many exports say).
pub fn parse_relation(text: &str) -> Option<Relation> {
    match text.trim() {
        "本人" | "被保険者" | "insured" => Some(Relation::Insured),
        "被扶養者" | "家族" | "dependant" | "dependent" => Some(Relation::Dependant),
        _ => None,
    }
}

/// One 本人 per 被保険者番号 within the file.
pub fn check_file(rows: &[MemberRow]) -> std::result::Result<(), ImportError> {
    let mut insured: HashMap<&str, u64> = HashMap::new();
    for row in rows {
        let Some(household) = row.household.household() else {
            continue;
        };
        if household.relation != Relation::Insured {
            continue;
        }
        if let Some(first) = insured.insert(&household.insured_no, row.line) {
            return Err(ImportError::Row {
                line: row.line,
                reason: format!(
                    "insured_no {} has a second 本人 (the first on line {first})",
                    household.insured_no
                ),
            });
        }
    }
    Ok(())
}

/// One 本人 per 被保険者番号 with the members stored: a 本人 in the file whose number
/// already has another 本人 is refused.
pub fn check_stored(
    conn: &Connection,
    rows: &[MemberRow],
) -> Result<std::result::Result<(), ImportError>> {
    for row in rows {
        let Some(household) = row
            .household
            .household()
            .filter(|h| h.relation == Relation::Insured)
        else {
            continue;
        };
        if let Some(other) = members::insured_person(conn, &household.insured_no)?
            && other != row.member_no
        {
            return Ok(Err(ImportError::Row {
                line: row.line,
                reason: format!(
                    "insured_no {} already has member {other} as 本人",
                    household.insured_no
                ),
            }));
        }
    }
    Ok(Ok(()))
}

/// Brings the household of members already stored up to the file (a dependant added to a
/// family, a number changed, a member taken out of one). How many changed. Documents
/// issued before keep the household they were issued in.
pub fn update_stored(conn: &Connection, rows: &[MemberRow]) -> Result<usize> {
    let mut changed = 0;
    for row in rows {
        if row.household == Stated::NotInFile {
            continue;
        }
        let household = row.household.household();
        let wanted = (
            household.map(|h| h.insured_no.clone()),
            household.map(|h| h.relation.as_str().to_string()),
        );
        if members::household_of(conn, &row.member_no)?.is_some_and(|stored| stored != wanted) {
            members::set_household(conn, &row.member_no, household)?;
            changed += 1;
        }
    }
    Ok(changed)
}
