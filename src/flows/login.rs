//! The first half of logging in: login ID and password, with a progressive lockout
//! per typed login ID that looks the same whether or not the ID exists. An attempt is
//! counted (`count_attempt`) before its password is hashed, and settled after
//! (`settle`): two writes around the hash, which runs in the hashing pool.

use rusqlite::Connection;

use crate::address::to_half_width;
use crate::config::PolicyConfig;
use crate::db::AuditEvent;
use crate::db::login_history::{self, Outcome};
use crate::db::sessions::{self, NewSession};
use crate::db::{self, Db, login, members};
use crate::device::Client;
use crate::error::Result;
use crate::hashing::{HashPool, Ticket};
use crate::mail::{self, OutgoingMail};
use crate::password;

/// How long the `failures`th failure locks the ID: none below the threshold, then
/// `initial`, doubling with every further failure, up to `max`.
pub fn lock_secs(failures: u32, policy: &PolicyConfig) -> Option<i64> {
    let after = policy.login_lockout_after.max(1);
    if failures < after {
        return None;
    }
    let doublings = (failures - after).min(20);
    let secs = policy
        .login_lockout_initial
        .as_secs()
        .saturating_mul(1 << doublings);
    Some(secs.min(policy.login_lockout_max.as_secs()))
}

/// The key lockouts count by: the ID as typed, half-width and lower-cased.
pub fn login_key(typed: &str) -> String {
    to_half_width(typed.trim()).to_ascii_lowercase()
}

fn minutes(secs: i64) -> i64 {
    (secs + 59) / 60
}

/// An attempt counted (and a lock it reached set) before its secret is checked.
pub struct Counted {
    key: String,
    count: u32,
    lock_secs: Option<i64>,
}

/// Counts one attempt for the login ID `key`, in the transaction that reads the count:
/// N parallel guesses cost N attempts, and those past the lock are never checked.
/// `Err(minutes)` when the ID is locked already (that try is not counted).
pub fn count_attempt(
    tx: &Connection,
    policy: &PolicyConfig,
    key: String,
    now: i64,
) -> Result<Result<Counted, i64>> {
    let failures = login::failures(tx, &key)?;
    if let Some(until) = failures.locked_until.filter(|until| *until > now) {
        return Ok(Err(minutes(until - now)));
    }
    let count = failures.failures + 1;
    let lock_secs = lock_secs(count, policy);
    login::record_failure(tx, &key, count, lock_secs.map(|secs| now + secs), now)?;
    Ok(Ok(Counted {
        key,
        count,
        lock_secs,
    }))
}

/// A wrong secret, audited as `event` (and the lock it started as `login_locked`), and
/// shown in the member's login history when the ID is a member's.
pub struct Failure {
    pub event: AuditEvent,
    pub member_id: Option<i64>,
    pub client: Client,
}

/// Settles a counted attempt: a right secret undoes the count, a wrong one is audited.
pub fn settle(
    tx: &Connection,
    counted: &Counted,
    right: bool,
    failure: &Failure,
) -> Result<PasswordCheck> {
    if right {
        login::clear_failures(tx, &counted.key)?;
        return Ok(PasswordCheck::Right);
    }
    let (member_id, client_ip) = (failure.member_id, failure.client.ip());
    let detail = format!("failure {}", counted.count);
    db::audit(tx, failure.event, member_id, client_ip, &detail)?;
    if let Some(member_id) = member_id {
        let now = db::now();
        login_history::record(tx, member_id, Outcome::WrongPassword, &failure.client, now)?;
    }
    if let Some(secs) = counted.lock_secs {
        db::audit(
            tx,
            AuditEvent::LoginLocked,
            member_id,
            client_ip,
            &format!("{secs} s"),
        )?;
    }
    Ok(PasswordCheck::Wrong {
        locked_minutes: counted.lock_secs.map(minutes),
    })
}

/// What a password check amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum PasswordCheck {
    /// Too many failures: wait this many minutes (rounded up).
    Locked {
        minutes: i64,
    },
    /// Wrong ID or password; `locked_minutes` if this failure started a lock.
    Wrong {
        locked_minutes: Option<i64>,
    },
    Right,
}

/// What logging in with an ID and password amounts to.
#[derive(Debug)]
pub enum LoginCheck {
    Refused(PasswordCheck),
    /// Right, but `karamail members disable` turned the account off.
    Disabled,
    Right(members::Account),
}

/// Checks a login ID and password, counting failures and locking as configured (see
/// `count_attempt`). A right password undoes the count.
pub async fn check_password(
    db: &Db,
    hashing: &HashPool,
    policy: &PolicyConfig,
    typed_id: &str,
    typed_password: &str,
    client: Client,
) -> Result<LoginCheck> {
    // A place to check the password first (or 503 at once): an attempt is counted only
    // when it will be checked.
    let ticket = hashing.reserve()?;
    let key = login_key(typed_id);
    let policy = policy.clone();
    let counted = match db
        .write(move |tx| count_attempt(tx, &policy, key, db::now()))
        .await?
    {
        Err(minutes) => return Ok(LoginCheck::Refused(PasswordCheck::Locked { minutes })),
        Ok(counted) => counted,
    };
    let key = counted.key.clone();
    let account = db
        .read(move |c| members::account_by_login_id(c, &key))
        .await?;
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let right = verify(ticket, typed_password, stored).await?;
    let failure = Failure {
        event: AuditEvent::LoginFailed,
        member_id: account.as_ref().map(|a| a.id),
        client,
    };
    match db
        .write(move |tx| settle(tx, &counted, right, &failure))
        .await?
    {
        PasswordCheck::Right => {}
        refused => return Ok(LoginCheck::Refused(refused)),
    }
    let account = account.expect("a right password belongs to an account");
    if account.disabled_at.is_some() {
        return Ok(LoginCheck::Disabled);
    }
    Ok(LoginCheck::Right(account))
}

/// Checks a logged-in member's current password (プロフィール設定's password change).
/// It spends the same budget as logging in with their ID, so a stolen session cannot
/// guess the password faster here than at the login page.
pub async fn check_current_password(
    db: &Db,
    hashing: &HashPool,
    policy: &PolicyConfig,
    account: &members::Account,
    typed_password: &str,
    client: Client,
) -> Result<PasswordCheck> {
    let ticket = hashing.reserve()?;
    let key = login_key(account.login_id.as_deref().unwrap_or_default());
    let policy = policy.clone();
    let counted = match db
        .write(move |tx| count_attempt(tx, &policy, key, db::now()))
        .await?
    {
        Err(minutes) => return Ok(PasswordCheck::Locked { minutes }),
        Ok(counted) => counted,
    };
    let right = verify(ticket, typed_password, account.password_hash.clone()).await?;
    let failure = Failure {
        event: AuditEvent::PasswordChangeFailed,
        member_id: Some(account.id),
        client,
    };
    db.write(move |tx| settle(tx, &counted, right, &failure))
        .await
}

/// The member is in (the 暗証キー was right, or a passkey `how` says): their session starts, the login is
/// audited and goes into their history, and 「ログインが行われました」 goes to every
/// address unless they turned it off.
pub fn logged_in(
    tx: &Connection,
    session: &NewSession,
    how: Outcome,
    client: &Client,
    from: &str,
    now: i64,
) -> Result<()> {
    let member_id = session.member_id.expect("a member's session");
    sessions::insert(tx, session, now)?;
    db::audit(tx, AuditEvent::Login, Some(member_id), client.ip(), "")?;
    login_history::record(tx, member_id, how, client, now)?;
    let wanted = members::account(tx, member_id)?.is_some_and(|a| a.notify.login);
    if !wanted {
        return Ok(());
    }
    let notice = OutgoingMail::LoginNotice {
        at: now,
        device: client.device.clone(),
        client_ip: client.ip.clone(),
    };
    for address in members::emails(tx, member_id)? {
        mail::queue(tx, &notice, &address, from, now)?;
    }
    Ok(())
}

async fn verify(ticket: Ticket, typed: &str, stored: Option<String>) -> Result<bool> {
    let typed = typed.to_string();
    ticket
        .run(move || password::verify(&typed, stored.as_deref()))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_grows_and_is_capped() {
        let policy = PolicyConfig::default();
        assert_eq!(lock_secs(4, &policy), None);
        assert_eq!(lock_secs(5, &policy), Some(60));
        assert_eq!(lock_secs(6, &policy), Some(120));
        assert_eq!(lock_secs(8, &policy), Some(480));
        assert_eq!(lock_secs(30, &policy), Some(3600));
        assert_eq!(lock_secs(u32::MAX, &policy), Some(3600));
    }

    #[test]
    fn the_key_ignores_case_and_full_width() {
        assert_eq!(login_key(" ＴａｒｏＹａｍａｄａ "), "taroyamada");
    }
}
