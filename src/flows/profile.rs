//! プロフィール設定: a logged-in member changes their login ID, nickname or password. Each
//! change is applied, announced to every address of the member (「登録情報変更のお知らせ」)
//! and audited in one step.

use rusqlite::Connection;

use crate::db::AuditEvent;
use crate::db::{self, login as attempts, members, sessions};
use crate::error::Result;
use crate::flows::login::login_key;
use crate::mail::{self, OutgoingMail};

/// One change of the profile page.
pub enum Change {
    /// The failures counted against the old ID (and any lock) go with the member: a
    /// new ID is not a new budget of password guesses.
    LoginId {
        old: String,
        new: String,
    },
    Nickname(String),
    /// Whoever else was logged in with the old password is logged out (all sessions but
    /// `keep`, this browser's).
    Password {
        hash: String,
        keep: Vec<u8>,
    },
    /// Which of the mails a member may turn off they want. Announced like the others:
    /// whoever turns the login notices off is not hidden from the member.
    Notify(members::Notify),
}

impl Change {
    /// What changed, as the mail and the audit trail say it.
    pub fn label(&self) -> &'static str {
        match self {
            Change::LoginId { .. } => "ログインID",
            Change::Nickname(_) => "ニックネーム",
            Change::Password { .. } => "パスワード",
            Change::Notify(_) => "メールでのお知らせの設定",
        }
    }
}

pub fn change(
    tx: &Connection,
    member_id: i64,
    change: &Change,
    from: &str,
    client_ip: Option<&str>,
    now: i64,
) -> Result<()> {
    match change {
        Change::LoginId { old, new } => {
            members::set_login_id(tx, member_id, new)?;
            attempts::move_failures(tx, &login_key(old), &login_key(new))?;
        }
        Change::Nickname(nickname) => members::set_nickname(tx, member_id, nickname)?,
        Change::Password { hash, keep } => {
            members::set_password_hash(tx, member_id, hash)?;
            sessions::delete_others(tx, member_id, keep)?;
        }
        Change::Notify(notify) => members::set_notify(tx, member_id, *notify)?,
    }
    announce(tx, member_id, change.label(), from, None, now)?;
    db::audit(
        tx,
        AuditEvent::ProfileChanged,
        Some(member_id),
        client_ip,
        change.label(),
    )
}

/// 「他の端末からログアウト」: every session of the member but `keep` (this browser's)
/// ends. How many did.
pub fn end_other_sessions(
    tx: &Connection,
    member_id: i64,
    keep: &[u8],
    client_ip: Option<&str>,
) -> Result<usize> {
    let ended = sessions::delete_others(tx, member_id, keep)?;
    let detail = format!("{ended} sessions");
    db::audit(
        tx,
        AuditEvent::OtherSessionsEnded,
        Some(member_id),
        client_ip,
        &detail,
    )?;
    Ok(ended)
}

/// Queues 「登録情報変更のお知らせ」 to every address of the member, plus `also` (an
/// address just removed).
pub(crate) fn announce(
    tx: &Connection,
    member_id: i64,
    change: &str,
    from: &str,
    also: Option<&str>,
    now: i64,
) -> Result<()> {
    let mut addresses = members::emails(tx, member_id)?;
    addresses.extend(also.map(str::to_string));
    for address in addresses {
        let mail = OutgoingMail::ProfileChanged {
            change: change.to_string(),
        };
        mail::queue(tx, &mail, &address, from, now)?;
    }
    Ok(())
}
