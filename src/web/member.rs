//! The logged-in member: the session behind the `km_session` cookie.

use super::http::{clear_cookie, redirect, set_session_cookie, with_cookie};
use super::{AppState, Req, Resp};
use crate::db::login_history::Outcome;
use crate::db::sessions::{self, Kind, NewSession};
use crate::db::{self, members};
use crate::device::Client;
use crate::error::Result;
use crate::flows::login;
use crate::secrets::SecretKind;

pub const SESSION_COOKIE: &str = "km_session";

pub struct Member {
    pub account: members::Account,
    pub session_hash: Vec<u8>,
}

/// The member logged in on this browser, if the session is live and the account usable.
pub async fn current(state: &AppState, req: &Req) -> Result<Option<Member>> {
    Ok(current_with(state, req, |_, _| Ok(()))
        .await?
        .map(|(member, ())| member))
}

/// `current`, and what `page` reads for that member in the same read (one trip to the
/// database for a page).
pub async fn current_with<T, F>(state: &AppState, req: &Req, page: F) -> Result<Option<(Member, T)>>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection, &members::Account) -> Result<T> + Send + 'static,
{
    let Some(id) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let session_hash = state.key.hash(SecretKind::Session, &id);
    let idle = state.config.policy.session_idle.as_secs();
    let lookup = session_hash.clone();
    let now = db::now();
    // A member's page reads its own few rows by index (see `Db::read_small`).
    let found = state
        .db
        .read_small(move |c| {
            let Some(session) = sessions::find(c, &lookup, Kind::Member, now, idle)? else {
                return Ok(None);
            };
            let Some(member_id) = session.member_id else {
                return Ok(None);
            };
            let Some(account) = members::account(c, member_id)? else {
                return Ok(None);
            };
            if account.disabled_at.is_some() {
                return Ok(None);
            }
            let read = page(c, &account)?;
            Ok(Some((session, account, read)))
        })
        .await?;
    let Some((session, account, read)) = found else {
        return Ok(None);
    };
    // A page view only reads; the session is marked seen when the mark is getting old
    // (a minute, or a quarter of the idle time if that is shorter).
    let touch_after = sessions::TOUCH_AFTER_SECS.min(idle / 4);
    if now - session.last_seen_at >= touch_after {
        let hash = session_hash.clone();
        // Best effort: a page is not refused because its seen-mark could not be set.
        if let Err(e) = state
            .db
            .write(move |c| sessions::touch(c, &hash, now))
            .await
        {
            tracing::warn!(error = %e, "cannot mark a session as seen");
        }
    }
    let member = Member {
        account,
        session_hash,
    };
    Ok(Some((member, read)))
}

/// Where a page that needs a login sends a visitor without one.
pub fn login_first(state: &AppState) -> Resp {
    with_cookie(
        redirect("/?expired=1"),
        &clear_cookie(SESSION_COOKIE, "/", state.https()),
    )
}

/// Logs a member in (see `flows::login::logged_in`): a new session with a new id, in a
/// cookie that dies with the browser.
pub async fn start(
    state: &AppState,
    member_id: i64,
    how: Outcome,
    client: Client,
) -> Result<String> {
    let session = state.key.mint(SecretKind::Session);
    let (id, id_hash) = (session.secret, session.hash);
    let absolute = state.config.policy.session_absolute.as_secs();
    let from = state.config.mail.from.clone();
    state
        .db
        .write(move |tx| {
            let now = db::now();
            let session = NewSession {
                id_hash: &id_hash,
                kind: Kind::Member,
                link_id: None,
                member_id: Some(member_id),
                expires_at: now + absolute,
            };
            login::logged_in(tx, &session, how, &client, &from, now)
        })
        .await?;
    Ok(set_session_cookie(SESSION_COOKIE, &id, "/", state.https()))
}

/// Logs out this browser.
pub async fn end(state: &AppState, member: &Member) -> Result<String> {
    let hash = member.session_hash.clone();
    state.db.write(move |c| sessions::delete(c, &hash)).await?;
    Ok(clear_cookie(SESSION_COOKIE, "/", state.https()))
}
