//! Queries on `members` and `member_emails`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// A member as the postcard check needs it.
#[derive(Debug, Clone)]
pub struct PostcardHolder {
    pub id: i64,
    pub temp_password_hash: Option<String>,
    /// The postcard was used to register: its password is kept only to tell its holder so.
    pub registered: bool,
}

pub struct NewMember<'a> {
    pub member_no: &'a str,
    pub name: &'a str,
    pub temp_login_id: &'a str,
    pub temp_password_hash: &'a str,
    pub household: Option<&'a Household>,
}

pub fn insert(conn: &Connection, member: &NewMember, now: i64) -> Result<i64> {
    let (insured_no, relation) = household_columns(member.household);
    conn.prepare_cached("INSERT INTO members (member_no, name, temp_login_id, temp_password_hash, temp_issued_at, imported_at, insured_no, relation)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)")?.execute(
        params![member.member_no, member.name, member.temp_login_id, member.temp_password_hash, now, insured_no, relation],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Which member of a household someone is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// 本人: the insured person.
    Insured,
    /// 被扶養者.
    Dependant,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Insured => "insured",
            Relation::Dependant => "dependant",
        }
    }
}

/// A member's place in a household: the 被保険者番号 they share, and who they are in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Household {
    pub insured_no: String,
    pub relation: Relation,
}

fn household_columns(household: Option<&Household>) -> (Option<&str>, Option<&'static str>) {
    household.map_or((None, None), |h| {
        (Some(h.insured_no.as_str()), Some(h.relation.as_str()))
    })
}

/// The household columns of a member as stored: (insured_no, relation).
pub fn household_of(
    conn: &Connection,
    member_no: &str,
) -> Result<Option<(Option<String>, Option<String>)>> {
    Ok(conn
        .prepare_cached("SELECT insured_no, relation FROM members WHERE member_no = ?1")?
        .query_row([member_no], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?)
}

/// Sets (or with None, clears) a member's household.
pub fn set_household(
    conn: &Connection,
    member_no: &str,
    household: Option<&Household>,
) -> Result<()> {
    let (insured_no, relation) = household_columns(household);
    conn.prepare_cached("UPDATE members SET insured_no = ?2, relation = ?3 WHERE member_no = ?1")?
        .execute(params![member_no, insured_no, relation])?;
    Ok(())
}

/// The member_no of the insured person (本人) of a 被保険者番号, if one is stored.
pub fn insured_person(conn: &Connection, insured_no: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT member_no FROM members WHERE insured_no = ?1 AND relation = 'insured'",
        )?
        .query_row([insured_no], |row| row.get(0))
        .optional()?)
}

pub fn exists_member_no(conn: &Connection, member_no: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM members WHERE member_no = ?1")?
        .query_row([member_no], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Every temporary login ID given out so far (a new one must differ from all).
pub fn temp_login_ids(conn: &mut Connection) -> Result<std::collections::HashSet<String>> {
    let mut stmt = conn.prepare_cached("SELECT temp_login_id FROM members")?;
    let ids = stmt.query_map([], |row| row.get(0))?;
    Ok(ids.collect::<Result<_, _>>()?)
}

pub fn find_by_temp_login_id(
    conn: &Connection,
    temp_login_id: &str,
) -> Result<Option<PostcardHolder>> {
    Ok(conn
        .prepare_cached("SELECT id, temp_password_hash, registered_at IS NOT NULL FROM members WHERE temp_login_id = ?1")?.query_row(
            [temp_login_id],
            |row| {
                Ok(PostcardHolder {
                    id: row.get(0)?,
                    temp_password_hash: row.get(1)?,
                    registered: row.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Whether a login ID is taken (IDs are unique whatever their case).
pub fn login_id_taken(conn: &Connection, login_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM members WHERE login_id = ?1")?
        .query_row([login_id], |_| Ok(()))
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
    let changed = conn.prepare_cached("UPDATE members SET login_id = ?2, password_hash = ?3, nickname = ?4, registered_at = ?5
         WHERE id = ?1 AND registered_at IS NULL AND temp_password_hash IS NOT NULL")?.execute(
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
    conn.prepare_cached(
        "INSERT INTO member_emails (member_id, address, added_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![reg.member_id, reg.address, now])?;
    Ok(true)
}

/// A member as the portal sees it.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub member_no: String,
    pub name: String,
    pub temp_login_id: String,
    pub login_id: Option<String>,
    pub password_hash: Option<String>,
    pub nickname: Option<String>,
    pub registered_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub temp_pending: bool,
    pub notify: Notify,
}

/// The mails a member may turn off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notify {
    /// 「ログインが行われました」 after each login.
    pub login: bool,
    /// 「新しいお知らせがあります」 when something is published for them.
    pub news: bool,
}

const ACCOUNT_COLUMNS: &str = "id, member_no, name, temp_login_id, login_id, password_hash, nickname, registered_at, disabled_at, temp_password_hash IS NOT NULL AND registered_at IS NULL, notify_login, notify_news";

fn account_from_row(row: &rusqlite::Row) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(0)?,
        member_no: row.get(1)?,
        name: row.get(2)?,
        temp_login_id: row.get(3)?,
        login_id: row.get(4)?,
        password_hash: row.get(5)?,
        nickname: row.get(6)?,
        registered_at: row.get(7)?,
        disabled_at: row.get(8)?,
        temp_pending: row.get(9)?,
        notify: Notify {
            login: row.get(10)?,
            news: row.get(11)?,
        },
    })
}

fn account_where(
    conn: &Connection,
    condition: &str,
    value: impl rusqlite::ToSql,
) -> Result<Option<Account>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM members WHERE {condition}"
        ))?
        .query_row([value], account_from_row)
        .optional()?)
}

pub fn account(conn: &Connection, id: i64) -> Result<Option<Account>> {
    account_where(conn, "id = ?1", id)
}

/// By login ID, whatever the case it is typed in.
pub fn account_by_login_id(conn: &Connection, login_id: &str) -> Result<Option<Account>> {
    account_where(conn, "login_id = ?1", login_id)
}

pub fn account_by_member_no(conn: &Connection, member_no: &str) -> Result<Option<Account>> {
    account_where(conn, "member_no = ?1", member_no)
}

/// The registered member with this address, if any.
pub fn account_by_email(conn: &Connection, address: &str) -> Result<Option<Account>> {
    account_where(
        conn,
        "registered_at IS NOT NULL AND id = (SELECT member_id FROM member_emails WHERE address = ?1 COLLATE NOCASE LIMIT 1)",
        address,
    )
}

pub fn all_accounts(conn: &Connection) -> Result<Vec<Account>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM members ORDER BY member_no"
    ))?;
    let rows = stmt.query_map([], account_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every member who has signed up and is not disabled.
pub fn registered_ids(conn: &Connection) -> Result<std::collections::BTreeSet<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM members WHERE registered_at IS NOT NULL AND disabled_at IS NULL",
    )?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The insured person (本人) of the household a dependant belongs to now, if any.
pub fn insured_person_of(conn: &Connection, dependant: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT i.id FROM members d JOIN members i
               ON i.insured_no = d.insured_no AND i.relation = 'insured'
             WHERE d.id = ?1 AND d.relation = 'dependant' AND i.id != d.id",
        )?
        .query_row([dependant], |row| row.get(0))
        .optional()?)
}

/// A member's addresses, oldest first.
pub fn emails(conn: &Connection, member_id: i64) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT address FROM member_emails WHERE member_id = ?1 ORDER BY added_at, id",
    )?;
    let rows = stmt.query_map([member_id], |row| row.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds an address unless the member has it already; false if it was there.
pub fn add_email(conn: &Connection, member_id: i64, address: &str, now: i64) -> Result<bool> {
    if emails(conn, member_id)?
        .iter()
        .any(|a| a.eq_ignore_ascii_case(address))
    {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO member_emails (member_id, address, added_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![member_id, address, now])?;
    Ok(true)
}

pub fn remove_email(conn: &Connection, member_id: i64, address: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM member_emails WHERE member_id = ?1 AND address = ?2 COLLATE NOCASE",
        )?
        .execute(params![member_id, address])?
        > 0)
}

pub fn set_login_id(conn: &Connection, member_id: i64, login_id: &str) -> Result<()> {
    conn.prepare_cached("UPDATE members SET login_id = ?2 WHERE id = ?1")?
        .execute(params![member_id, login_id])?;
    Ok(())
}

pub fn set_password_hash(conn: &Connection, member_id: i64, hash: &str) -> Result<()> {
    conn.prepare_cached("UPDATE members SET password_hash = ?2 WHERE id = ?1")?
        .execute(params![member_id, hash])?;
    Ok(())
}

pub fn set_nickname(conn: &Connection, member_id: i64, nickname: &str) -> Result<()> {
    conn.prepare_cached("UPDATE members SET nickname = ?2 WHERE id = ?1")?
        .execute(params![member_id, nickname])?;
    Ok(())
}

pub fn set_notify(conn: &Connection, member_id: i64, notify: Notify) -> Result<()> {
    conn.prepare_cached("UPDATE members SET notify_login = ?2, notify_news = ?3 WHERE id = ?1")?
        .execute(params![member_id, notify.login, notify.news])?;
    Ok(())
}

pub fn set_disabled(conn: &Connection, member_id: i64, disabled_at: Option<i64>) -> Result<()> {
    conn.prepare_cached("UPDATE members SET disabled_at = ?2 WHERE id = ?1")?
        .execute(params![member_id, disabled_at])?;
    Ok(())
}

/// New postcard credentials for a member who has not signed up; the old ones die.
pub fn replace_postcard(
    conn: &Connection,
    member_id: i64,
    temp_login_id: &str,
    temp_password_hash: &str,
    now: i64,
) -> Result<()> {
    conn.prepare_cached("UPDATE members SET temp_login_id = ?2, temp_password_hash = ?3, temp_issued_at = ?4 WHERE id = ?1")?.execute(
        params![member_id, temp_login_id, temp_password_hash, now],
    )?;
    Ok(())
}
