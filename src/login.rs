//! The first half of logging in: login ID and password, with a progressive lockout
//! per typed login ID that looks the same whether or not the ID exists.

use crate::address::to_half_width;
use crate::config::PolicyConfig;
use crate::db::{self, Db, login, members};
use crate::error::Result;
use crate::password;

/// What a login ID and password amount to.
#[derive(Debug)]
pub enum PasswordCheck {
    /// Too many failures: wait this many minutes (rounded up).
    Locked {
        minutes: i64,
    },
    /// Wrong ID or password; `locked_minutes` if this failure started a lock.
    Wrong {
        locked_minutes: Option<i64>,
    },
    /// Right, but `karamail members disable` turned the account off.
    Disabled,
    Right(members::Account),
}

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

/// Checks a login ID and password, counting failures and locking as configured. The
/// attempt is counted (and a lock it reaches is set) *before* the password is checked,
/// in the same statement-group that reads the count: N parallel guesses cost N
/// attempts, and those past the lock are never checked. A right password undoes it.
pub async fn check_password(
    db: &Db,
    policy: &PolicyConfig,
    typed_id: &str,
    typed_password: &str,
    client_ip: Option<String>,
) -> Result<PasswordCheck> {
    let key = login_key(typed_id);
    let lookup = key.clone();
    let now = db::now();
    let policy_now = policy.clone();
    let (counted, account) = db
        .call(move |c| {
            let tx = c.transaction()?;
            let failures = login::failures(&tx, &lookup)?;
            if let Some(until) = failures.locked_until.filter(|until| *until > now) {
                return Ok((Err(until), None));
            }
            let count = failures.failures + 1;
            let lock = lock_secs(count, &policy_now);
            login::record_failure(&tx, &lookup, count, lock.map(|secs| now + secs), now)?;
            let account = members::account_by_login_id(&tx, &lookup)?;
            tx.commit()?;
            Ok((Ok((count, lock)), account))
        })
        .await?;
    let (count, lock) = match counted {
        Err(until) => {
            return Ok(PasswordCheck::Locked {
                minutes: minutes(until - now),
            });
        }
        Ok(counted) => counted,
    };
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let typed = typed_password.to_string();
    let right =
        tokio::task::spawn_blocking(move || password::verify(&typed, stored.as_deref())).await?;
    let member_id = account.as_ref().map(|a| a.id);
    if !right {
        db.call(move |c| {
            db::audit(
                c,
                "login_failed",
                member_id,
                client_ip.as_deref(),
                &format!("failure {count}"),
            )?;
            if let Some(secs) = lock {
                db::audit(
                    c,
                    "login_locked",
                    member_id,
                    client_ip.as_deref(),
                    &format!("{secs} s"),
                )?;
            }
            Ok(())
        })
        .await?;
        return Ok(PasswordCheck::Wrong {
            locked_minutes: lock.map(minutes),
        });
    }
    let account = account.expect("a right password belongs to an account");
    db.call(move |c| login::clear_failures(c, &key)).await?;
    if account.disabled_at.is_some() {
        return Ok(PasswordCheck::Disabled);
    }
    Ok(PasswordCheck::Right(account))
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
