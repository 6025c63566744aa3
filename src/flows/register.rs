//! 利用者情報入力: after the postcard check, the member's login ID, password, nickname and
//! address are stored in one step, and the postcard is spent.

use rusqlite::Connection;

use crate::db::AuditEvent;
use crate::db::{self, members};
use crate::error::Result;

/// What became of a registration.
#[derive(Debug, PartialEq, Eq)]
pub enum Registered {
    Done,
    /// Another tab or device completed this member's sign-up first.
    AlreadyDone,
    LoginIdTaken,
}

/// Stores the member's choices (the password already hashed) unless the login ID is
/// taken or the member registered meanwhile.
pub fn register(
    tx: &Connection,
    registration: &members::Registration,
    client_ip: Option<&str>,
    now: i64,
) -> Result<Registered> {
    if members::login_id_taken(tx, registration.login_id)? {
        return Ok(Registered::LoginIdTaken);
    }
    if !members::register(tx, registration, now)? {
        return Ok(Registered::AlreadyDone);
    }
    let member_id = Some(registration.member_id);
    db::audit(tx, AuditEvent::SignupCompleted, member_id, client_ip, "")?;
    Ok(Registered::Done)
}
