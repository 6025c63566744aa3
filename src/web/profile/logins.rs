//! The login side of プロフィール設定: which mails the member wants (「ログインが行われました」,
//! 「新しいお知らせがあります」), their last logins and failed tries, and
//! 「他の端末からログアウト」.

use serde::{Deserialize, Serialize};

use super::super::http::redirect;
use super::super::{AppState, Req, Resp, member};
use crate::db::members::{self, Notify};
use crate::db::{self, sessions};
use crate::db::{login_history, passkeys};
use crate::error::Result;
use crate::flows::profile;
use crate::jst;

/// What the page shows of the member's logins.
#[derive(Serialize, Default)]
pub struct Logins {
    notify_login: bool,
    notify_news: bool,
    history: Vec<Entry>,
    /// Live sessions of the member on other browsers.
    other_sessions: i64,
    passkeys: Vec<PasskeyView>,
}

#[derive(Serialize)]
struct PasskeyView {
    id: i64,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Serialize)]
struct Entry {
    at: String,
    outcome: &'static str,
    failed: bool,
    device: String,
    client_ip: String,
}

/// Reads, in the page's read, what `Logins` shows.
pub fn read(
    c: &rusqlite::Connection,
    account: &members::Account,
    session_hash: &[u8],
    idle_secs: i64,
) -> Result<Logins> {
    let history = login_history::recent(c, account.id)?
        .into_iter()
        .map(|entry| Entry {
            at: jst::datetime(entry.at),
            outcome: entry.outcome.japanese(),
            failed: matches!(
                entry.outcome,
                login_history::Outcome::WrongPassword | login_history::Outcome::WrongKey
            ),
            device: entry.device,
            client_ip: entry.client_ip.unwrap_or_else(|| "不明".into()),
        })
        .collect();
    let passkeys = passkeys::for_member(c, account.id)?
        .into_iter()
        .map(|p| PasskeyView {
            id: p.id,
            name: p.name,
            created: jst::date(p.created_at),
            last_used: p.last_used_at.map_or("なし".into(), jst::datetime),
        })
        .collect();
    let now = db::now();
    Ok(Logins {
        passkeys,
        notify_login: account.notify.login,
        notify_news: account.notify.news,
        history,
        other_sessions: sessions::count_others(c, account.id, session_hash, now, idle_secs)?,
    })
}

/// A checkbox is sent only when ticked.
#[derive(Deserialize)]
struct NotifyForm {
    notify_login: Option<String>,
    notify_news: Option<String>,
}

pub async fn change_notify(state: &AppState, req: &Req) -> Result<Resp> {
    let form: NotifyForm = req.form(state.origin())?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let notify = Notify {
        login: form.notify_login.is_some(),
        news: form.notify_news.is_some(),
    };
    if notify == member.account.notify {
        return Ok(redirect("/profile?done=notify"));
    }
    let change = profile::Change::Notify(notify);
    super::commit_change(state, req, member.account.id, "notify", change).await
}

pub async fn end_others(state: &AppState, req: &Req) -> Result<Resp> {
    let _: Vec<(String, String)> = req.form(state.origin())?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let (member_id, keep, client_ip) = (member.account.id, member.session_hash, req.client_ip());
    state
        .db
        .write(move |tx| profile::end_other_sessions(tx, member_id, &keep, client_ip.as_deref()))
        .await?;
    Ok(redirect("/profile?done=others_ended"))
}
