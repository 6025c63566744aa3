//! The second half of logging in: after the right password, an attempt starts and a
//! 暗証キー goes to every address of the member (`start`); the typed key is compared and
//! counted in one step (`check`); new keys on request (`resend`).

use rusqlite::Connection;

use crate::db::AuditEvent;
use crate::db::login_history::{self, Outcome};
use crate::db::{self, login as attempts, members};
use crate::device::Client;
use crate::error::Result;
use crate::mail::{self, OutgoingMail};
use crate::secrets;

/// A new attempt (ending the member's older ones) and a key to every address. The
/// attempt's id.
pub fn start(
    tx: &Connection,
    member_id: i64,
    pending_hash: &[u8],
    lasts_secs: i64,
    from: &str,
    client_ip: Option<&str>,
    now: i64,
) -> Result<i64> {
    let attempt_id = attempts::start_attempt(tx, member_id, pending_hash, now, now + lasts_secs)?;
    queue_keys(tx, member_id, attempt_id, from, now)?;
    db::audit(tx, AuditEvent::LoginKeySent, Some(member_id), client_ip, "")?;
    Ok(attempt_id)
}

/// What a typed 暗証キー amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyAnswer {
    Right,
    Wrong {
        left: u32,
    },
    /// This wrong key was the last one allowed: the attempt is over.
    Over,
    /// The attempt had ended before this key was looked at (by a parallel guess, a
    /// newer login or time).
    Ended,
}

/// A typed key, by its keyed hash, against the attempt's live keys. The attempt is
/// looked at again in the transaction that compares and counts: parallel guesses that
/// all found it open before the last allowed failure ended it are refused, unchecked.
pub fn check(
    tx: &Connection,
    attempt_id: i64,
    member_id: i64,
    typed_hash: &[u8],
    max_failures: u32,
    client: &Client,
    now: i64,
) -> Result<KeyAnswer> {
    if !attempts::is_open(tx, attempt_id, now)? {
        return Ok(KeyAnswer::Ended);
    }
    let right = attempts::live_key_hashes(tx, attempt_id, now)?
        .iter()
        .fold(false, |found, hash| {
            found | secrets::constant_time_eq(hash, typed_hash)
        });
    if right {
        attempts::end_attempt(tx, attempt_id, now)?;
        return Ok(KeyAnswer::Right);
    }
    let failed = attempts::add_failed_key(tx, attempt_id)?;
    if failed >= max_failures {
        attempts::end_attempt(tx, attempt_id, now)?;
    }
    let detail = format!("failure {failed}");
    db::audit(
        tx,
        AuditEvent::LoginKeyFailed,
        Some(member_id),
        client.ip(),
        &detail,
    )?;
    login_history::record(tx, member_id, Outcome::WrongKey, client, now)?;
    Ok(if failed >= max_failures {
        KeyAnswer::Over
    } else {
        KeyAnswer::Wrong {
            left: max_failures - failed,
        }
    })
}

/// 暗証キーの再請求: the attempt's keys are void, new ones go to every address; not
/// within `cooldown` seconds of the last ones (false then, and nothing changes).
pub fn resend(
    tx: &Connection,
    attempt_id: i64,
    member_id: i64,
    cooldown: i64,
    from: &str,
    client_ip: Option<&str>,
    now: i64,
) -> Result<bool> {
    if !attempts::renew_keys(tx, attempt_id, now, cooldown)? {
        return Ok(false);
    }
    queue_keys(tx, member_id, attempt_id, from, now)?;
    db::audit(
        tx,
        AuditEvent::LoginKeyResent,
        Some(member_id),
        client_ip,
        "",
    )?;
    Ok(true)
}

fn queue_keys(
    tx: &Connection,
    member_id: i64,
    attempt_id: i64,
    from: &str,
    now: i64,
) -> Result<()> {
    for address in members::emails(tx, member_id)? {
        mail::queue(
            tx,
            &OutgoingMail::LoginKey { attempt_id },
            &address,
            from,
            now,
        )?;
    }
    Ok(())
}
