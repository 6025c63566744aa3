//! パスワード再発行: a member asks by address (`request`); the mail (the outbox's) gives a
//! link, the login ID and a temporary password; after 仮ログイン the member sets a new
//! password (`complete`), and every session of theirs ends.

use rusqlite::Connection;

use crate::address::Address;
use crate::config::LimitsConfig;
use crate::db::AuditEvent;
use crate::db::{self, login as attempts, members, passkeys, reset_requests, sessions};
use crate::error::Result;
use crate::flows::login::login_key;
use crate::mail::{self, OutgoingMail};

/// What became of a request; the same page either way (no account enumeration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Queued,
    UnknownAddress,
    RateLimitedAddress,
    RateLimitedIp,
}

impl Requested {
    pub fn as_str(self) -> &'static str {
        match self {
            Requested::Queued => "queued",
            Requested::UnknownAddress => "unknown_address",
            Requested::RateLimitedAddress => "rate_limited_address",
            Requested::RateLimitedIp => "rate_limited_ip",
        }
    }
}

/// A reissue mail for the registered, enabled member with this address, within the
/// limits per address and per client; every request is recorded.
pub fn request(
    tx: &Connection,
    limits: &LimitsConfig,
    from: &str,
    address: &Address,
    client_ip: Option<&str>,
    now: i64,
) -> Result<Requested> {
    const HOUR: i64 = 3600;
    let account =
        members::account_by_email(tx, &address.to_string())?.filter(|a| a.disabled_at.is_none());
    let by_address = reset_requests::queued_for_address(
        tx,
        &address.key(),
        now - HOUR,
        limits.reset_per_address_hour,
    )?;
    let by_ip = match client_ip {
        Some(ip) => reset_requests::queued_for_ip(tx, ip, now - HOUR, limits.reset_per_ip_hour)?,
        None => 0,
    };
    let outcome = match account {
        _ if by_address >= limits.reset_per_address_hour => Requested::RateLimitedAddress,
        _ if by_ip >= limits.reset_per_ip_hour => Requested::RateLimitedIp,
        None => Requested::UnknownAddress,
        Some(account) => {
            let mail = OutgoingMail::Reset {
                member_id: account.id,
            };
            mail::queue(tx, &mail, &address.to_string(), from, now)?;
            db::audit(
                tx,
                AuditEvent::ResetRequested,
                Some(account.id),
                client_ip,
                "",
            )?;
            Requested::Queued
        }
    };
    reset_requests::insert(tx, &address.key(), client_ip, outcome.as_str(), now)?;
    Ok(outcome)
}

/// The new password (and login ID, if one was chosen) of a member who passed 仮ログイン.
pub struct NewPassword<'a> {
    pub member_id: i64,
    /// The reset session of this browser, which ends here.
    pub session_hash: &'a [u8],
    pub old_login_id: &'a str,
    pub new_login_id: Option<&'a str>,
    pub password_hash: &'a str,
    pub client_ip: Option<&'a str>,
}

/// Sets the new password; whoever was logged in with the old one is logged out, its
/// login attempts and failures end, its passkeys are removed, and every address of the
/// member is told.
pub fn complete(tx: &Connection, change: &NewPassword, from: &str, now: i64) -> Result<()> {
    let member_id = change.member_id;
    members::set_password_hash(tx, member_id, change.password_hash)?;
    if let Some(login_id) = change.new_login_id {
        members::set_login_id(tx, member_id, login_id)?;
    }
    sessions::delete_for_member(tx, member_id)?;
    sessions::delete(tx, change.session_hash)?;
    attempts::end_attempts_of(tx, member_id, now)?;
    attempts::clear_failures(tx, &login_key(change.old_login_id))?;
    // A reissue closes every way in: passkeys too (the member registers them again).
    let label = match passkeys::remove_all(tx, member_id)? {
        0 => "パスワード（再発行）".to_string(),
        n => format!("パスワード（再発行。登録されていたパスキー{n}件は削除されました）"),
    };
    for address in members::emails(tx, member_id)? {
        let mail = OutgoingMail::ProfileChanged {
            change: label.clone(),
        };
        mail::queue(tx, &mail, &address, from, now)?;
    }
    db::audit(
        tx,
        AuditEvent::ResetCompleted,
        Some(member_id),
        change.client_ip,
        "",
    )
}
