//! Passkeys: a logged-in member registers one (named), or removes one; each is
//! announced to every address (「登録情報変更のお知らせ」) and audited. Logging in with
//! one is `flows::login::logged_in`, after `used`.

use rusqlite::Connection;

use crate::db::passkeys::{self, NewPasskey};
use crate::db::{self, AuditEvent};
use crate::error::Result;
use crate::flows::profile::announce;

pub fn add(
    tx: &Connection,
    passkey: &NewPasskey,
    from: &str,
    client_ip: Option<&str>,
    now: i64,
) -> Result<()> {
    passkeys::insert(tx, passkey, now)?;
    let change = format!("パスキーの登録（{}）", passkey.name);
    announce(tx, passkey.member_id, &change, from, None, now)?;
    db::audit(
        tx,
        AuditEvent::PasskeyAdded,
        Some(passkey.member_id),
        client_ip,
        passkey.name,
    )
}

/// Removes one of the member's passkeys; false if they have no such one.
pub fn remove(
    tx: &Connection,
    member_id: i64,
    id: i64,
    from: &str,
    client_ip: Option<&str>,
    now: i64,
) -> Result<bool> {
    let Some(name) = passkeys::remove(tx, member_id, id)? else {
        return Ok(false);
    };
    let change = format!("パスキーの削除（{name}）");
    announce(tx, member_id, &change, from, None, now)?;
    db::audit(
        tx,
        AuditEvent::PasskeyRemoved,
        Some(member_id),
        client_ip,
        &name,
    )?;
    Ok(true)
}
