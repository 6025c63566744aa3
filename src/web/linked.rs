//! The steps after a mailed link, shared by sign-up and password reissue: opening the
//! link trades its token for a session cookie without spending it (mail scanners open
//! links first); the check of what only the member knows (the postcard, the temporary
//! password) spends it and replaces the session id; a few wrong tries void it.

use super::http::{clear_cookie, set_cookie, set_session_cookie};
use super::{AppState, Req};
use crate::db::AuditEvent;
use crate::db::links::{self, Link, LinkState, Purpose};
use crate::db::sessions::{self, Kind, Session};
use crate::db::{self};
use crate::error::Result;
use crate::flows::link::{self, Wrong};
use crate::secrets::SecretKind;

pub struct LinkFlow {
    pub purpose: Purpose,
    pub kind: Kind,
    pub cookie: &'static str,
    pub path: &'static str,
    /// Whether the session after the check lasts as long as the link would have
    /// (sign-up: the member may need a while for 利用者情報入力), or only
    /// `[policy] signup_session_ttl` (reissue: a password form on a shared device).
    pub lasts_as_link: bool,
}

/// A browser's place in the flow.
pub struct Current {
    pub id_hash: Vec<u8>,
    pub session: Session,
    pub link: Option<Link>,
}

impl LinkFlow {
    /// GET of the mailed link: a session for a usable link (its `Set-Cookie`), or why not.
    pub async fn open(
        &self,
        state: &AppState,
        token: &str,
    ) -> Result<Result<String, Option<LinkState>>> {
        let (hash, purpose, kind) = (
            state.key.hash(SecretKind::Link, token),
            self.purpose,
            self.kind,
        );
        let now = db::now();
        let session = state.key.mint(SecretKind::Session);
        let (id, id_hash) = (session.secret, session.hash);
        let opened = state
            .db
            .write(move |tx| link::open(tx, purpose, &hash, kind, &id_hash, now))
            .await?;
        Ok(opened.map(|expires_at| {
            set_cookie(self.cookie, &id, self.path, expires_at - now, state.https())
        }))
    }

    /// The session behind this browser's cookie, with its link.
    pub async fn current(&self, state: &AppState, req: &Req) -> Result<Option<Current>> {
        let Some(id) = req.cookie(self.cookie) else {
            return Ok(None);
        };
        let (id_hash, kind) = (state.key.hash(SecretKind::Session, &id), self.kind);
        let lookup = id_hash.clone();
        let found = state
            .db
            .read(move |c| {
                // These sessions end with their link or their own short time, not by idling.
                let Some(session) = sessions::find(c, &lookup, kind, db::now(), i64::MAX / 2)?
                else {
                    return Ok(None);
                };
                let link = session
                    .link_id
                    .map(|id| links::find(c, id))
                    .transpose()?
                    .flatten();
                Ok(Some((session, link)))
            })
            .await?;
        Ok(found.map(|(session, link)| Current {
            id_hash,
            session,
            link,
        }))
    }

    /// Counts an answer *before* its secret is checked, so that parallel guesses each
    /// cost one (`[policy] signup_max_attempts` in all); None when none is left.
    pub async fn count_attempt(&self, state: &AppState, link_id: i64) -> Result<Option<u32>> {
        let max = state.config.policy.signup_max_attempts;
        state
            .db
            .write(move |tx| links::count_attempt(tx, link_id, max))
            .await
    }

    /// A wrong answer (already counted: `attempts`); at `[policy] signup_max_attempts`
    /// the link and its sessions die.
    pub async fn wrong_answer(
        &self,
        state: &AppState,
        req: &Req,
        link_id: i64,
        member_id: Option<i64>,
        event: AuditEvent,
        attempts: u32,
    ) -> Result<Wrong> {
        let max = state.config.policy.signup_max_attempts;
        let answer = link::Answer {
            link_id,
            member_id,
            event,
            client_ip: req.client_ip(),
        };
        state
            .db
            .write(move |tx| link::wrong_answer(tx, &answer, attempts, max, db::now()))
            .await
    }

    /// The right answer: spends the link for `member_id` and replaces the session by one
    /// that knows the member, in a cookie that dies with the browser. It lasts
    /// `[policy] signup_session_ttl`, or (`lasts_as_link`) as long as the link would have
    /// if that is longer: a member who needs an hour on the next form is not sent back to
    /// a link that is spent by now. None if the link was spent meanwhile (another tab).
    pub async fn pass(
        &self,
        state: &AppState,
        req: &Req,
        current: &Current,
        link_id: i64,
        member_id: i64,
        event: AuditEvent,
    ) -> Result<Option<String>> {
        let session = state.key.mint(SecretKind::Session);
        let (new_id, new_hash) = (session.secret, session.hash);
        let (old_hash, kind) = (current.id_hash.clone(), self.kind);
        let link_ends = match self.lasts_as_link {
            true => current.link.as_ref().map_or(0, |l| l.expires_at),
            false => 0,
        };
        let ttl = state.config.policy.signup_session_ttl.as_secs();
        let answer = link::Answer {
            link_id,
            member_id: Some(member_id),
            event,
            client_ip: req.client_ip(),
        };
        let spent = state
            .db
            .write(move |tx| {
                let now = db::now();
                let passed = link::Passed {
                    old_hash: &old_hash,
                    new_hash: &new_hash,
                    kind,
                    expires_at: (now + ttl).max(link_ends),
                };
                link::pass(tx, &answer, member_id, &passed, now)
            })
            .await?;
        Ok(spent.then(|| set_session_cookie(self.cookie, &new_id, self.path, state.https())))
    }

    pub fn clear_cookie(&self, state: &AppState) -> String {
        clear_cookie(self.cookie, self.path, state.https())
    }
}
