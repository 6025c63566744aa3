//! The steps after a mailed link, shared by sign-up and password reissue: opening it
//! (a session, the link not yet spent: mail scanners open links first), a wrong answer
//! (a few void the link), the right one (the link spent, the session replaced by one
//! that knows the member). Answers are counted before they are checked
//! (`db::links::count_attempt`).

use rusqlite::Connection;

use crate::db::AuditEvent;
use crate::db::links::{self, LinkState, Purpose};
use crate::db::sessions::{self, Kind, NewSession};
use crate::db::{self};
use crate::error::Result;

/// GET of the mailed link: a session (`id_hash`) for a usable link, ending with it; the
/// link's end, or why not.
pub fn open(
    tx: &Connection,
    purpose: Purpose,
    token_hash: &[u8],
    kind: Kind,
    id_hash: &[u8],
    now: i64,
) -> Result<Result<i64, Option<LinkState>>> {
    let Some(link) = links::find_by_token_hash(tx, purpose, token_hash)? else {
        return Ok(Err(None));
    };
    if link.state(now) != LinkState::Usable {
        return Ok(Err(Some(link.state(now))));
    }
    let session = NewSession {
        id_hash,
        kind,
        link_id: Some(link.id),
        member_id: None,
        expires_at: link.expires_at,
    };
    sessions::insert(tx, &session, now)?;
    Ok(Ok(link.expires_at))
}

/// What wrong answers have done to the link.
pub struct Wrong {
    pub attempts: u32,
    pub voided: bool,
}

/// Who answered, for the audit trail.
pub struct Answer {
    pub link_id: i64,
    pub member_id: Option<i64>,
    pub event: AuditEvent,
    pub client_ip: Option<String>,
}

/// A wrong answer (already counted: `attempts`); at `max` the link and its sessions die.
pub fn wrong_answer(
    tx: &Connection,
    answer: &Answer,
    attempts: u32,
    max: u32,
    now: i64,
) -> Result<Wrong> {
    let voided = attempts >= max;
    if voided {
        links::mark_used(tx, answer.link_id, None, now)?;
        sessions::delete_for_link(tx, answer.link_id)?;
    }
    let detail = format!("link {}, attempt {attempts}", answer.link_id);
    db::audit(
        tx,
        answer.event,
        answer.member_id,
        answer.client_ip.as_deref(),
        &detail,
    )?;
    Ok(Wrong { attempts, voided })
}

/// The session that replaces the opening one after the right answer.
pub struct Passed<'a> {
    pub old_hash: &'a [u8],
    pub new_hash: &'a [u8],
    pub kind: Kind,
    pub expires_at: i64,
}

/// The right answer: spends the link for the member and replaces the session. False
/// if the link was spent meanwhile (another tab).
pub fn pass(
    tx: &Connection,
    answer: &Answer,
    member_id: i64,
    passed: &Passed,
    now: i64,
) -> Result<bool> {
    let link_id = answer.link_id;
    if !links::mark_used(tx, link_id, Some(member_id), now)? {
        return Ok(false);
    }
    sessions::delete(tx, passed.old_hash)?;
    let session = NewSession {
        id_hash: passed.new_hash,
        kind: passed.kind,
        link_id: Some(link_id),
        member_id: Some(member_id),
        expires_at: passed.expires_at,
    };
    sessions::insert(tx, &session, now)?;
    let detail = format!("link {link_id}");
    db::audit(
        tx,
        answer.event,
        Some(member_id),
        answer.client_ip.as_deref(),
        &detail,
    )?;
    Ok(true)
}
