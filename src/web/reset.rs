//! パスワード再発行: `/reset` (enter an address; the same answer whether or not it is
//! registered) → mail with a URL, the login ID and a temporary password →
//! `/reset/link/{token}` → 仮ログイン (`/reset/login`) → パスワード変更
//! (`/reset/password`, optionally a new login ID) → done. Old sessions end.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::http::{self, clear_cookie, redirect, set_cookie, with_cookie};
use super::profile::check_new_password;
use super::{AppState, ErrorPage, Req, Resp, error_response};
use crate::address::{Address, to_half_width};
use crate::db::sessions::{self, Kind, NewSession};
use crate::db::{self, links, login as attempts, members};
use crate::error::Result;
use crate::outbox::{self, OutgoingMail};
use crate::{login, password, token};

const SESSION_COOKIE: &str = "km_reset";
const COOKIE_PATH: &str = "/reset";

#[derive(Serialize, Default)]
struct RequestPage<'a> {
    csrf: &'a str,
    email: String,
    error: Option<&'static str>,
    sent: bool,
}

pub fn request_form(state: &AppState, req: &Req) -> Result<Resp> {
    state.page(
        "reset_request.html",
        &RequestPage {
            csrf: &req.csrf,
            ..Default::default()
        },
    )
}

#[derive(Deserialize)]
struct RequestForm {
    #[serde(default)]
    email: String,
}

/// Registered or not, limited or not: the same page, after the same work (one lookup
/// and one insert; the mail's secrets are made later, by the outbox).
pub async fn request_submit(state: &AppState, req: &Req) -> Result<Resp> {
    let form: RequestForm = req.form(state.origin())?;
    let Ok(address) = Address::parse_typed(&form.email) else {
        let page = RequestPage {
            csrf: &req.csrf,
            email: form.email,
            error: Some("メールアドレスを正しく入力してください。"),
            sent: false,
        };
        return state.page("reset_request.html", &page);
    };
    let (config, client_ip) = (state.config.clone(), req.client_ip());
    let queued = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let now = db::now();
            let account = members::account_by_email(&tx, &address.to_string())?.filter(|a| a.disabled_at.is_none());
            let (by_address, by_ip) = (
                count_requests(&tx, "address_key", &address.key(), now)?,
                client_ip.as_deref().map(|ip| count_requests(&tx, "client_ip", ip, now)).transpose()?.unwrap_or(0),
            );
            let outcome = match account {
                _ if by_address >= config.limits.reset_per_address_hour => "rate_limited_address",
                _ if by_ip >= config.limits.reset_per_ip_hour => "rate_limited_ip",
                None => "unknown_address",
                Some(account) => {
                    let mail = OutgoingMail::Reset { member_id: account.id };
                    outbox::enqueue(&tx, &mail, &address.to_string(), &config.mail.from, now)?;
                    db::audit(&tx, "reset_requested", Some(account.id), client_ip.as_deref(), "")?;
                    "queued"
                }
            };
            tx.execute(
                "INSERT INTO reset_requests (requested_at, address_key, client_ip, outcome) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![now, address.key(), client_ip, outcome],
            )?;
            tx.commit()?;
            Ok(outcome == "queued")
        })
        .await?;
    if queued {
        state.outbox_wake.notify_one();
    }
    state.page(
        "reset_request.html",
        &RequestPage {
            csrf: &req.csrf,
            email: String::new(),
            error: None,
            sent: true,
        },
    )
}

/// Requests in the last hour by one address or one client.
fn count_requests(c: &rusqlite::Connection, column: &str, value: &str, now: i64) -> Result<u32> {
    let sql = format!(
        "SELECT count(*) FROM reset_requests WHERE {column} = ?1 AND requested_at >= ?2 AND outcome = 'queued'"
    );
    Ok(c.query_row(&sql, rusqlite::params![value, now - 3600], |r| r.get(0))?)
}

fn link_problem(state: &AppState) -> Resp {
    let page = ErrorPage {
        title: "URLが無効です",
        message: "このURLは正しくないか、使用済みか、有効期限（仮パスワードの発行から3時間）が切れています。お手数ですが、「パスワードを忘れた方」から再発行の手続きをやり直してください。",
        next: Some(("/reset", "パスワード再発行の画面へ")),
    };
    let response = error_response(state, StatusCode::GONE, &page);
    with_cookie(
        response,
        &clear_cookie(SESSION_COOKIE, COOKIE_PATH, state.https()),
    )
}

/// GET of the mailed link: trades it for a session without spending it.
pub async fn open_link(state: &AppState, token: &str) -> Result<Resp> {
    let hash = token::hash(token);
    let link = state
        .db
        .call(move |c| links::find_by_token_hash(c, links::Purpose::Reset, &hash))
        .await?;
    let now = db::now();
    let Some(link) = link.filter(|l| l.state(now) == links::LinkState::Usable) else {
        return Ok(link_problem(state));
    };
    let id = token::new_token();
    let id_hash = token::hash(&id);
    let (link_id, expires_at) = (link.id, link.expires_at);
    state
        .db
        .call(move |c| {
            let session = NewSession {
                id_hash: &id_hash,
                kind: Kind::Reset,
                link_id: Some(link_id),
                member_id: None,
                expires_at,
            };
            sessions::insert(c, &session, now)
        })
        .await?;
    let cookie = set_cookie(
        SESSION_COOKIE,
        &id,
        COOKIE_PATH,
        expires_at - now,
        state.https(),
    );
    Ok(with_cookie(redirect("/reset/login"), &cookie))
}

/// The reset session and its still-usable link.
async fn current(
    state: &AppState,
    req: &Req,
) -> Result<Option<(Vec<u8>, sessions::Session, links::Link)>> {
    let Some(id) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = token::hash(&id);
    let lookup = hash.clone();
    let found = state
        .db
        .call(move |c| {
            let now = db::now();
            let Some(session) = sessions::find(c, &lookup, Kind::Reset, now, i64::MAX / 2)? else {
                return Ok(None);
            };
            let link = session
                .link_id
                .map(|id| links::find(c, id))
                .transpose()?
                .flatten();
            Ok(link.map(|link| (session, link)))
        })
        .await?;
    Ok(found.map(|(session, link)| (hash, session, link)))
}

#[derive(Serialize, Default)]
struct TempLoginPage<'a> {
    csrf: &'a str,
    login_id: String,
    error: Option<String>,
}

pub async fn temp_login_form(state: &AppState, req: &Req) -> Result<Resp> {
    match current(state, req).await? {
        Some((_, session, _)) if session.member_id.is_some() => Ok(redirect("/reset/password")),
        Some((_, _, link)) if link.state(db::now()) == links::LinkState::Usable => state.page(
            "reset_login.html",
            &TempLoginPage {
                csrf: &req.csrf,
                ..Default::default()
            },
        ),
        _ => Ok(link_problem(state)),
    }
}

#[derive(Deserialize)]
struct TempLoginForm {
    #[serde(default)]
    login_id: String,
    #[serde(default)]
    temp_password: String,
}

/// 仮ログイン: the login ID and temporary password from the mail.
pub async fn temp_login(state: &AppState, req: &Req) -> Result<Resp> {
    let form: TempLoginForm = req.form(state.origin())?;
    let Some((id_hash, _, link)) = current(state, req).await? else {
        return Ok(link_problem(state));
    };
    if link.state(db::now()) != links::LinkState::Usable {
        return Ok(link_problem(state));
    }
    let Some(member_id) = link.member_id else {
        return Ok(link_problem(state));
    };
    let account = state
        .db
        .call(move |c| members::account(c, member_id))
        .await?;
    let id_matches = account
        .as_ref()
        .and_then(|a| a.login_id.as_deref())
        .is_some_and(|id| login::login_key(&form.login_id) == id.to_ascii_lowercase());
    let (stored, typed) = (
        link.secret_hash.clone(),
        to_half_width(form.temp_password.trim()),
    );
    let password_ok =
        tokio::task::spawn_blocking(move || password::verify(&typed, stored.as_deref())).await?;
    let (link_id, max, client_ip) = (
        link.id,
        state.config.policy.signup_max_attempts,
        req.client_ip(),
    );
    if !(id_matches && password_ok) {
        let attempts = state
            .db
            .call(move |c| {
                let attempts = links::add_failed_attempt(c, link_id)?;
                if attempts >= max {
                    links::mark_used(c, link_id, None, db::now())?;
                    sessions::delete_for_link(c, link_id)?;
                }
                db::audit(
                    c,
                    "reset_temp_login_failed",
                    Some(member_id),
                    client_ip.as_deref(),
                    &format!("attempt {attempts}"),
                )?;
                Ok(attempts)
            })
            .await?;
        if attempts >= max {
            return Ok(link_problem(state));
        }
        let error = format!(
            "ログインIDまたは仮パスワードが正しくありません（あと{}回入力できます）。",
            max - attempts
        );
        let page = TempLoginPage {
            csrf: &req.csrf,
            login_id: form.login_id,
            error: Some(error),
        };
        return Ok(http::html(
            StatusCode::UNAUTHORIZED,
            state.render("reset_login.html", &page)?,
        ));
    }
    let new_id = token::new_token();
    let new_hash = token::hash(&new_id);
    let ttl = state.config.policy.signup_session_ttl.as_secs();
    state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let now = db::now();
            links::mark_used(&tx, link_id, Some(member_id), now)?;
            sessions::delete(&tx, &id_hash)?;
            let session = NewSession {
                id_hash: &new_hash,
                kind: Kind::Reset,
                link_id: Some(link_id),
                member_id: Some(member_id),
                expires_at: now + ttl,
            };
            sessions::insert(&tx, &session, now)?;
            db::audit(
                &tx,
                "reset_temp_login",
                Some(member_id),
                client_ip.as_deref(),
                "",
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    let cookie = set_cookie(SESSION_COOKIE, &new_id, COOKIE_PATH, ttl, state.https());
    Ok(with_cookie(redirect("/reset/password"), &cookie))
}

#[derive(Serialize, Default)]
struct PasswordPage<'a> {
    csrf: &'a str,
    login_id: String,
    password_rule: String,
    errors: PasswordErrors,
}

#[derive(Serialize, Default)]
struct PasswordErrors {
    login_id: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
}

/// The member who passed 仮ログイン on this browser.
async fn verified(state: &AppState, req: &Req) -> Result<Option<(Vec<u8>, members::Account)>> {
    let Some((hash, session, _)) = current(state, req).await? else {
        return Ok(None);
    };
    let Some(member_id) = session.member_id else {
        return Ok(None);
    };
    let account = state
        .db
        .call(move |c| members::account(c, member_id))
        .await?;
    Ok(account.map(|a| (hash, a)))
}

pub async fn password_form(state: &AppState, req: &Req) -> Result<Resp> {
    let Some(_) = verified(state, req).await? else {
        return Ok(link_problem(state));
    };
    let page = PasswordPage {
        csrf: &req.csrf,
        password_rule: password::describe_policy(&state.config.policy),
        ..Default::default()
    };
    state.page("reset_password.html", &page)
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    login_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

pub async fn password_submit(state: &AppState, req: &Req) -> Result<Resp> {
    let form: PasswordForm = req.form(state.origin())?;
    let Some((session_hash, account)) = verified(state, req).await? else {
        return Ok(link_problem(state));
    };
    let new_login_id = form.login_id.trim().to_string();
    let effective_id = if new_login_id.is_empty() {
        account.login_id.clone().unwrap_or_default()
    } else {
        new_login_id.clone()
    };
    let (password, password_confirm) =
        check_new_password(&form.password, &form.password_confirm, &effective_id, state);
    let mut errors = PasswordErrors {
        login_id: None,
        password,
        password_confirm,
    };
    if !new_login_id.is_empty() {
        errors.login_id = password::check_login_id(&new_login_id)
            .err()
            .map(str::to_string);
        let (lookup, member_id) = (new_login_id.clone(), account.id);
        if errors.login_id.is_none()
            && state
                .db
                .call(move |c| members::account_by_login_id(c, &lookup))
                .await?
                .is_some_and(|o| o.id != member_id)
        {
            errors.login_id = Some(
                "このログインIDは既に使われています。別のログインIDを入力してください。".into(),
            );
        }
    }
    if errors.login_id.is_some() || errors.password.is_some() || errors.password_confirm.is_some() {
        let page = PasswordPage {
            csrf: &req.csrf,
            login_id: form.login_id,
            password_rule: password::describe_policy(&state.config.policy),
            errors,
        };
        return Ok(http::html(
            StatusCode::UNPROCESSABLE_ENTITY,
            state.render("reset_password.html", &page)?,
        ));
    }
    let plain = form.password.clone();
    let hash = tokio::task::spawn_blocking(move || password::hash(&plain)).await??;
    let (member_id, old_login_id, from, client_ip) = (
        account.id,
        account.login_id.clone().unwrap_or_default(),
        state.config.mail.from.clone(),
        req.client_ip(),
    );
    state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let now = db::now();
            members::set_password_hash(&tx, member_id, &hash)?;
            if !new_login_id.is_empty() {
                members::set_login_id(&tx, member_id, &new_login_id)?;
            }
            // Whoever was logged in with the old password is logged out.
            sessions::delete_for_member(&tx, member_id)?;
            sessions::delete(&tx, &session_hash)?;
            attempts::end_attempts_of(&tx, member_id, now)?;
            attempts::clear_failures(&tx, &login::login_key(&old_login_id))?;
            for address in members::emails(&tx, member_id)? {
                let mail = OutgoingMail::ProfileChanged {
                    change: "パスワード（再発行）".into(),
                };
                outbox::enqueue(&tx, &mail, &address, &from, now)?;
            }
            db::audit(
                &tx,
                "reset_completed",
                Some(member_id),
                client_ip.as_deref(),
                "",
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    state.outbox_wake.notify_one();
    let response = redirect("/reset/done");
    Ok(with_cookie(
        response,
        &clear_cookie(SESSION_COOKIE, COOKIE_PATH, state.https()),
    ))
}

#[derive(Serialize)]
struct DonePage {}

pub fn done(state: &AppState) -> Result<Resp> {
    state.page("reset_done.html", &DonePage {})
}
