//! A member's mail addresses (プロフィール設定): adding one takes a confirmation mail and
//! its link (`ask_to_add`, `confirm`); removing one (`remove`) never leaves none. Every
//! address, the removed one too, is told.

use rusqlite::Connection;

use super::profile::announce;
use crate::db::AuditEvent;
use crate::db::{self, links, members, outbox};
use crate::error::Result;
use crate::mail::{self, OutgoingMail};

/// Most addresses a member may have.
pub const MAX_ADDRESSES: usize = 3;

/// Queues 「メールアドレス確認のご案内」 to the address being added, unless the member
/// had `per_hour` of them queued in the last hour (false then): each goes to an address
/// not yet proven to be theirs, so this keeps the form from mailing strangers.
pub fn ask_to_add(
    tx: &Connection,
    member_id: i64,
    address: &str,
    per_hour: u32,
    from: &str,
    client_ip: Option<&str>,
    now: i64,
) -> Result<bool> {
    if confirmations_since(tx, member_id, now - 3600)? >= per_hour {
        return Ok(false);
    }
    let mail = OutgoingMail::EmailVerify { member_id };
    mail::queue(tx, &mail, address, from, now)?;
    let event = AuditEvent::EmailVerificationSent;
    db::audit(tx, event, Some(member_id), client_ip, "")?;
    Ok(true)
}

/// Confirmation mails queued for the member since `since`.
pub fn confirmations_since(conn: &Connection, member_id: i64, since: i64) -> Result<u32> {
    let params = serde_json::to_string(&OutgoingMail::EmailVerify { member_id })
        .map_err(|e| crate::error::Error::Mail(e.to_string()))?;
    outbox::count_queued_since(conn, "email_verify", &params, since)
}

/// The confirmation link's button: the address is added (and the link spent) unless
/// the member has the most addresses already or the link was spent meanwhile.
pub fn confirm(
    tx: &Connection,
    link_id: i64,
    member_id: i64,
    address: &str,
    from: &str,
    client_ip: Option<&str>,
    now: i64,
) -> Result<bool> {
    if members::emails(tx, member_id)?.len() >= MAX_ADDRESSES
        || !links::mark_used(tx, link_id, Some(member_id), now)?
    {
        return Ok(false);
    }
    members::add_email(tx, member_id, address, now)?;
    announce(tx, member_id, "メールアドレスの追加", from, None, now)?;
    db::audit(
        tx,
        AuditEvent::ProfileChanged,
        Some(member_id),
        client_ip,
        "email added",
    )?;
    Ok(true)
}

/// What became of a removal.
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    Removed,
    /// Gone already (another tab): nothing to announce.
    Gone,
    /// It is the member's last address; it stays.
    LastAddress,
}

/// Removes an address, counted again here: two removals at once (two tabs) must not
/// leave the member without one.
pub fn remove(
    tx: &Connection,
    member_id: i64,
    address: &str,
    from: &str,
    client_ip: Option<&str>,
    now: i64,
) -> Result<Removed> {
    if members::emails(tx, member_id)?.len() <= 1 {
        return Ok(Removed::LastAddress);
    }
    if !members::remove_email(tx, member_id, address)? {
        return Ok(Removed::Gone);
    }
    announce(
        tx,
        member_id,
        "メールアドレスの削除",
        from,
        Some(address),
        now,
    )?;
    db::audit(
        tx,
        AuditEvent::ProfileChanged,
        Some(member_id),
        client_ip,
        "email removed",
    )?;
    Ok(Removed::Removed)
}
