//! The mailed link and 本人確認: the postcard's temporary login ID and password.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::super::http::{redirect, with_cookie};
use super::super::{AppState, ErrorPage, Req, Resp, Trouble, error_response};
use super::{FLOW, before_postcard, link_problem};
use crate::address::to_half_width;
use crate::db::AuditEvent;
use crate::db::links::LinkState;
use crate::db::members;
use crate::error::Result;
use crate::hashing::Ticket;

/// GET of the mailed link: checks it without spending it, and trades it for a session.
pub async fn open_link(state: &AppState, token: &str) -> Result<Resp> {
    Ok(match FLOW.open(state, token).await? {
        Ok(cookie) => with_cookie(redirect("/signup/verify"), &cookie),
        Err(problem) => link_problem(state, problem),
    })
}

#[derive(Serialize, Default)]
struct VerifyPage<'a> {
    csrf: &'a str,
    temp_login_id: String,
    error: Option<String>,
}

pub async fn verify_form(state: &AppState, req: &Req) -> Result<Resp> {
    if let Err(response) = before_postcard(state, req).await? {
        return Ok(response);
    }
    state.page(
        "signup_verify.html",
        &VerifyPage {
            csrf: &req.csrf,
            ..Default::default()
        },
    )
}

#[derive(Deserialize)]
struct VerifyForm {
    #[serde(default)]
    temp_login_id: String,
    #[serde(default)]
    temp_password: String,
}

/// 本人確認: the postcard's temporary ID and password. A few wrong tries void the link.
pub async fn verify_submit(state: &AppState, req: &Req) -> Result<Resp> {
    let form: VerifyForm = req.form(state.origin())?;
    let (current, link) = match before_postcard(state, req).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    // A place to check the postcard first (or 503 at once): an answer is counted only
    // when it will be checked, so a crowd of logins cannot spend a member's tries.
    let ticket = state.hashing.reserve()?;
    let Some(attempts) = FLOW.count_attempt(state, link.id).await? else {
        return Ok(link_problem(state, Some(LinkState::Used)));
    };
    let holder = postcard_holder(state, ticket, &form).await?;
    if let Postcard::Used = holder {
        return Ok(postcard_used(state));
    }
    let Postcard::Unused(member_id) = holder else {
        let wrong = FLOW
            .wrong_answer(
                state,
                req,
                link.id,
                None,
                AuditEvent::SignupPostcardFailed,
                attempts,
            )
            .await?;
        if wrong.voided {
            let page = ErrorPage {
                title: "このURLは無効になりました",
                message: "ログインIDまたは仮パスワードの誤りが続いたため、このURLは無効になりました。お手数ですが、「新規利用登録」の画面からメールアドレスの登録をやり直してください。",
                next: Some(("/signup", "新規利用登録の画面へ")),
                trouble: Trouble::SIGNUP,
            };
            return Ok(error_response(state, StatusCode::FORBIDDEN, &page));
        }
        let error = format!(
            "ログインIDまたは仮パスワードが正しくありません。「{}への登録について」に記載のとおり入力してください（あと{}回入力できます）。",
            state.config.site.name,
            state.config.policy.signup_max_attempts - wrong.attempts
        );
        let page = VerifyPage {
            csrf: &req.csrf,
            temp_login_id: form.temp_login_id,
            error: Some(error),
        };
        return state.page("signup_verify.html", &page);
    };
    match FLOW
        .pass(
            state,
            req,
            &current,
            link.id,
            member_id,
            AuditEvent::SignupPostcardVerified,
        )
        .await?
    {
        Some(cookie) => Ok(with_cookie(redirect("/signup/profile"), &cookie)),
        None => Ok(link_problem(state, Some(LinkState::Used))),
    }
}

/// What the typed postcard credentials are.
enum Postcard {
    /// Right, and not yet used: this member's.
    Unused(i64),
    /// Right, but already used to register: only its holder learns this.
    Used,
    Wrong,
}

/// The right postcard of a member who has registered with it already: not an error of
/// typing, so say where the member stands (the link is not spent; the attempt was
/// counted before the check, as every attempt is).
fn postcard_used(state: &AppState) -> Resp {
    error_response(state, StatusCode::OK, &POSTCARD_USED)
}

const POSTCARD_USED: ErrorPage<'static> = ErrorPage {
    title: "利用登録は完了しています",
    message: "このハガキのログインIDと仮パスワードは、すでに利用登録に使われています。登録したログインIDとパスワードでログインしてください。パスワードを忘れた方は、ログイン画面の「パスワードを忘れた方」から再発行できます。",
    next: Some(("/", "ログイン画面へ")),
    trouble: Trouble::LOGIN,
};

/// Whose postcard this is, if the password matches. Full-width input is read as
/// half-width; the ID is printed in capitals.
async fn postcard_holder(state: &AppState, ticket: Ticket, form: &VerifyForm) -> Result<Postcard> {
    let temp_login_id = to_half_width(form.temp_login_id.trim()).to_ascii_uppercase();
    let holder = state
        .db
        .read(move |c| members::find_by_temp_login_id(c, &temp_login_id))
        .await?;
    let stored = holder.as_ref().and_then(|h| h.temp_password_hash.clone());
    let typed = to_half_width(form.temp_password.trim());
    let key = state.key.clone();
    // Off the async threads: a postcard from before the server key is argon2id.
    let matches = ticket
        .run(move || key.verify_temp_password(&typed, stored.as_deref()))
        .await?;
    Ok(match holder {
        Some(h) if matches && h.registered => Postcard::Used,
        Some(h) if matches => Postcard::Unused(h.id),
        _ => Postcard::Wrong,
    })
}
