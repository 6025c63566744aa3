//! パスワード再発行: `/reset` (enter an address; the same answer whether or not it is
//! registered) → mail with a URL, the login ID and a temporary password →
//! `/reset/link/{token}` → 仮ログイン (`/reset/login`) → パスワード変更
//! (`/reset/password`, optionally a new login ID) → done. Old sessions end.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::http::{self, redirect, with_cookie};
use super::linked::{Current, LinkFlow};
use super::profile::{check_new_login_id, check_new_password};
use super::{AppState, ErrorPage, Req, Resp, Trouble, error_response};
use crate::address::{Address, to_half_width};
use crate::db::AuditEvent;
use crate::db::links::{LinkState, Purpose};
use crate::db::sessions::Kind;
use crate::db::{self, members};
use crate::error::Result;
use crate::flows::login;
use crate::flows::reset;
use crate::password;

const FLOW: LinkFlow = LinkFlow {
    purpose: Purpose::Reset,
    kind: Kind::Reset,
    cookie: "km_reset",
    path: "/reset",
    lasts_as_link: false,
};

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
    let address = match Address::parse_typed(&form.email) {
        Ok(address) => address,
        Err(e) => {
            let page = RequestPage {
                csrf: &req.csrf,
                email: form.email,
                error: Some(e.japanese()),
                sent: false,
            };
            return state.page("reset_request.html", &page);
        }
    };
    let (config, client_ip) = (state.config.clone(), req.client_ip());
    state
        .db
        .write(move |tx| {
            let (limits, from) = (&config.limits, &config.mail.from);
            reset::request(tx, limits, from, &address, client_ip.as_deref(), db::now())
        })
        .await?;
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

fn link_problem(state: &AppState) -> Resp {
    let page = ErrorPage {
        title: "URLが無効です",
        message: "このURLは正しくないか、使用済みか、有効期限（仮パスワードの発行から3時間）が切れています。お手数ですが、「パスワードを忘れた方」から再発行の手続きをやり直してください。",
        next: Some(("/reset", "パスワード再発行の画面へ")),
        trouble: Trouble::RESET,
    };
    let response = error_response(state, StatusCode::GONE, &page);
    with_cookie(response, &FLOW.clear_cookie(state))
}

/// GET of the mailed link: trades it for a session without spending it.
pub async fn open_link(state: &AppState, token: &str) -> Result<Resp> {
    Ok(match FLOW.open(state, token).await? {
        Ok(cookie) => with_cookie(redirect("/reset/login"), &cookie),
        Err(_) => link_problem(state),
    })
}

/// The browser's reset session before 仮ログイン, with its usable link's member.
async fn before_temp_login(
    state: &AppState,
    req: &Req,
) -> Result<Result<(Current, i64, i64), Resp>> {
    let Some(current) = FLOW.current(state, req).await? else {
        return Ok(Err(link_problem(state)));
    };
    if current.session.member_id.is_some() {
        return Ok(Err(redirect("/reset/password")));
    }
    match current
        .link
        .as_ref()
        .map(|l| (l.state(db::now()), l.id, l.member_id))
    {
        Some((LinkState::Usable, link_id, Some(member_id))) => {
            Ok(Ok((current, link_id, member_id)))
        }
        _ => Ok(Err(link_problem(state))),
    }
}

#[derive(Serialize, Default)]
struct TempLoginPage<'a> {
    csrf: &'a str,
    login_id: String,
    error: Option<String>,
}

/// 仮ログイン, with the login ID the mail gave already filled in.
pub async fn temp_login_form(state: &AppState, req: &Req) -> Result<Resp> {
    let member_id = match before_temp_login(state, req).await? {
        Ok((_, _, member_id)) => member_id,
        Err(response) => return Ok(response),
    };
    let account = state
        .db
        .read(move |c| members::account(c, member_id))
        .await?;
    let page = TempLoginPage {
        csrf: &req.csrf,
        login_id: account.and_then(|a| a.login_id).unwrap_or_default(),
        error: None,
    };
    state.page("reset_login.html", &page)
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
    let (current, link_id, member_id) = match before_temp_login(state, req).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    // A place to check the password first (or 503 at once): an answer is counted only
    // when it will be checked, so a crowd of logins cannot spend a member's tries.
    let ticket = state.hashing.reserve()?;
    let Some(attempts) = FLOW.count_attempt(state, link_id).await? else {
        return Ok(link_problem(state));
    };
    let account = state
        .db
        .read(move |c| members::account(c, member_id))
        .await?;
    let id_matches = account
        .as_ref()
        .and_then(|a| a.login_id.as_deref())
        .is_some_and(|id| login::login_key(&form.login_id) == id.to_ascii_lowercase());
    let stored = current.link.as_ref().and_then(|l| l.secret_hash.clone());
    let typed = to_half_width(form.temp_password.trim());
    let key = state.key.clone();
    let password_ok = ticket
        .run(move || key.verify_temp_password(&typed, stored.as_deref()))
        .await?;
    if !(id_matches && password_ok) {
        let wrong = FLOW
            .wrong_answer(
                state,
                req,
                link_id,
                Some(member_id),
                AuditEvent::ResetTempLoginFailed,
                attempts,
            )
            .await?;
        if wrong.voided {
            return Ok(link_problem(state));
        }
        let left = state.config.policy.signup_max_attempts - wrong.attempts;
        let error =
            format!("ログインIDまたは仮パスワードが正しくありません（あと{left}回入力できます）。");
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
    match FLOW
        .pass(
            state,
            req,
            &current,
            link_id,
            member_id,
            AuditEvent::ResetTempLogin,
        )
        .await?
    {
        Some(cookie) => Ok(with_cookie(redirect("/reset/password"), &cookie)),
        None => Ok(link_problem(state)),
    }
}

#[derive(Serialize, Default)]
struct PasswordPage<'a> {
    csrf: &'a str,
    /// For password managers: the ID this password belongs to (a hidden field).
    current_login_id: String,
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
    let Some(current) = FLOW.current(state, req).await? else {
        return Ok(None);
    };
    let Some(member_id) = current.session.member_id else {
        return Ok(None);
    };
    let account = state
        .db
        .read(move |c| members::account(c, member_id))
        .await?;
    Ok(account.map(|a| (current.id_hash, a)))
}

pub async fn password_form(state: &AppState, req: &Req) -> Result<Resp> {
    let Some((_, account)) = verified(state, req).await? else {
        return Ok(link_problem(state));
    };
    let page = PasswordPage {
        csrf: &req.csrf,
        current_login_id: account.login_id.unwrap_or_default(),
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
        errors.login_id = check_new_login_id(state, &new_login_id, account.id).await?;
    }
    if errors.login_id.is_some() || errors.password.is_some() || errors.password_confirm.is_some() {
        let page = PasswordPage {
            csrf: &req.csrf,
            current_login_id: account.login_id.clone().unwrap_or_default(),
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
    let hash = state.hashing.run(move || password::hash(&plain)).await??;
    let (from, client_ip) = (state.config.mail.from.clone(), req.client_ip());
    let old_login_id = account.login_id.clone().unwrap_or_default();
    state
        .db
        .write(move |tx| {
            let change = reset::NewPassword {
                member_id: account.id,
                session_hash: &session_hash,
                old_login_id: &old_login_id,
                new_login_id: Some(new_login_id.as_str()).filter(|id| !id.is_empty()),
                password_hash: &hash,
                client_ip: client_ip.as_deref(),
            };
            reset::complete(tx, &change, &from, db::now())
        })
        .await?;
    let response = redirect("/reset/done");
    Ok(with_cookie(response, &FLOW.clear_cookie(state)))
}

#[derive(Serialize)]
struct DonePage {}

pub fn done(state: &AppState) -> Result<Resp> {
    state.page("reset_done.html", &DonePage {})
}
