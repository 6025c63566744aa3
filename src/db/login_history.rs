//! Queries on `login_history`: a member's logins and the failed tries at their account,
//! for the member's own eyes (プロフィール設定).

use rusqlite::{Connection, params};

use crate::device::Client;
use crate::error::Result;

/// How many rows of each member are kept: the page shows `SHOWN`, and a flood of wrong
/// passwords for one login ID cannot grow the table without end.
pub const KEPT: i64 = 100;
/// How many the page shows.
pub const SHOWN: i64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Login,
    /// Logged in with a passkey.
    Passkey,
    WrongPassword,
    WrongKey,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Login => "login",
            Outcome::Passkey => "passkey",
            Outcome::WrongPassword => "wrong_password",
            Outcome::WrongKey => "wrong_key",
        }
    }

    fn parse(stored: &str) -> Outcome {
        match stored {
            "login" => Outcome::Login,
            "passkey" => Outcome::Passkey,
            "wrong_password" => Outcome::WrongPassword,
            _ => Outcome::WrongKey,
        }
    }

    /// As the page says it.
    pub fn japanese(self) -> &'static str {
        match self {
            Outcome::Login => "ログイン",
            Outcome::Passkey => "ログイン（パスキー）",
            Outcome::WrongPassword => "失敗（パスワードの誤り）",
            Outcome::WrongKey => "失敗（暗証キーの誤り）",
        }
    }
}

/// Records one entry and forgets the member's entries beyond the newest `KEPT`.
pub fn record(
    conn: &Connection,
    member_id: i64,
    outcome: Outcome,
    client: &Client,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO login_history (member_id, at, outcome, client_ip, device)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        member_id,
        now,
        outcome.as_str(),
        client.ip(),
        client.device
    ])?;
    if matches!(outcome, Outcome::Login | Outcome::Passkey) {
        conn.prepare_cached(
            "UPDATE members SET first_login_at = ?2 WHERE id = ?1 AND first_login_at IS NULL",
        )?
        .execute(params![member_id, now])?;
    }
    // By id, the order they were recorded in: a clock set back cannot make the newest
    // row look old.
    conn.prepare_cached(
        "DELETE FROM login_history WHERE member_id = ?1 AND id NOT IN (
             SELECT id FROM login_history WHERE member_id = ?1 ORDER BY id DESC LIMIT ?2)",
    )?
    .execute(params![member_id, KEPT])?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub at: i64,
    pub outcome: Outcome,
    pub client_ip: Option<String>,
    pub device: String,
}

/// The member's newest `SHOWN` entries, newest first.
pub fn recent(conn: &Connection, member_id: i64) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, outcome, client_ip, device FROM login_history
         WHERE member_id = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![member_id, SHOWN], |row| {
        Ok(Entry {
            at: row.get(0)?,
            outcome: Outcome::parse(&row.get::<_, String>(1)?),
            client_ip: row.get(2)?,
            device: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn only_the_newest_entries_are_kept_and_shown_newest_first() {
        let db = Db::open_in_memory().unwrap();
        let client = Client {
            ip: Some("192.0.2.1".into()),
            device: "Chrome（Windows）".into(),
        };
        let (shown, kept) = db
            .call_blocking(move |c| {
                c.execute(
                    "INSERT INTO members (member_no, name, temp_login_id, temp_issued_at, imported_at)
                     VALUES ('1', 'a', 'ABC000001', 0, 0)",
                    [],
                )?;
                for at in 0..KEPT + 30 {
                    record(c, 1, Outcome::WrongPassword, &client, at)?;
                }
                // The clock set back: the newest is still the newest.
                record(c, 1, Outcome::Login, &client, 5)?;
                let kept: i64 =
                    c.query_row("SELECT count(*) FROM login_history", [], |r| r.get(0))?;
                Ok((recent(c, 1)?, kept))
            })
            .unwrap();
        assert_eq!(kept, KEPT);
        assert_eq!(shown.len() as i64, SHOWN);
        assert_eq!(shown[0].outcome, Outcome::Login);
        assert_eq!(shown[1].at, KEPT + 29);
        assert_eq!(shown[0].at, 5);
        assert_eq!(shown[0].device, "Chrome（Windows）");
    }
}
