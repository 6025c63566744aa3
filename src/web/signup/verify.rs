//! The mailed link and 本人確認: the postcard's temporary login ID and password.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::super::http::{redirect, with_cookie};
use super::super::{AppState, ErrorPage, Req, Resp, error_response};
use super::{FLOW, before_postcard, link_problem};
use crate::address::to_half_width;
use crate::db::links::LinkState;
use crate::db::members;
use crate::error::Result;
use crate::password;

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
    let Some(member_id) = postcard_holder(state, &form).await? else {
        let wrong = FLOW
            .wrong_answer(state, req, link.id, None, "signup_postcard_failed")
            .await?;
        if wrong.voided {
            let page = ErrorPage {
                title: "このURLは無効になりました",
                message: "ログインIDまたは仮パスワードの誤りが続いたため、このURLは無効になりました。お手数ですが、「新規利用登録」の画面からメールアドレスの登録をやり直してください。",
                next: Some(("/signup", "新規利用登録の画面へ")),
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
            "signup_postcard_verified",
        )
        .await?
    {
        Some(cookie) => Ok(with_cookie(redirect("/signup/profile"), &cookie)),
        None => Ok(link_problem(state, Some(LinkState::Used))),
    }
}

/// The member whose postcard this is, if the password matches and is still unspent.
/// Full-width input is read as half-width; the ID is printed in capitals.
async fn postcard_holder(state: &AppState, form: &VerifyForm) -> Result<Option<i64>> {
    let temp_login_id = to_half_width(form.temp_login_id.trim()).to_ascii_uppercase();
    let holder = state
        .db
        .call(move |c| members::find_by_temp_login_id(c, &temp_login_id))
        .await?;
    let stored = holder.as_ref().and_then(|h| h.temp_password_hash.clone());
    let typed = to_half_width(form.temp_password.trim());
    let matches =
        tokio::task::spawn_blocking(move || password::verify(&typed, stored.as_deref())).await?;
    Ok(holder.map(|h| h.id).filter(|_| matches))
}
