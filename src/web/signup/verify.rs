//! The mailed link and 本人確認: the postcard's temporary login ID and password.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::super::http::{redirect, set_cookie, with_cookie};
use super::super::{AppState, ErrorPage, Req, Resp, error_response};
use super::{COOKIE_PATH, SESSION_COOKIE, current_session, link_problem, no_session, usable_link};
use crate::address::to_half_width;
use crate::db::sessions::{Kind, NewSession};
use crate::db::{self, links, members, sessions};
use crate::error::Result;
use crate::password;
use crate::token;

/// GET of the mailed link: checks it without spending it, and trades it for a session.
pub async fn open_link(state: &AppState, token: &str) -> Result<Resp> {
    let token_hash = token::hash(token);
    let link = state
        .db
        .call(move |c| links::find_by_token_hash(c, links::Purpose::Signup, &token_hash))
        .await?;
    let now = db::now();
    let Some(link) = link else {
        return Ok(link_problem(state, None));
    };
    if link.state(now) != links::LinkState::Usable {
        return Ok(link_problem(state, Some(link.state(now))));
    }
    let session_id = token::new_token();
    let (id_hash, link_id, expires_at) = (token::hash(&session_id), link.id, link.expires_at);
    state
        .db
        .call(move |c| {
            let session = NewSession {
                id_hash: &id_hash,
                kind: Kind::Signup,
                link_id: Some(link_id),
                member_id: None,
                expires_at,
            };
            sessions::insert(c, &session, now)
        })
        .await?;
    let cookie = set_cookie(
        SESSION_COOKIE,
        &session_id,
        COOKIE_PATH,
        expires_at - now,
        state.https(),
    );
    Ok(with_cookie(redirect("/signup/verify"), &cookie))
}

#[derive(Serialize, Default)]
struct VerifyPage<'a> {
    csrf: &'a str,
    temp_login_id: String,
    error: Option<String>,
}

pub async fn verify_form(state: &AppState, req: &Req) -> Result<Resp> {
    let Some((_, session)) = current_session(state, req).await? else {
        return Ok(no_session(state));
    };
    if session.member_id.is_some() {
        return Ok(redirect("/signup/profile"));
    }
    if let Err(problem) = usable_link(state, &session).await? {
        return Ok(problem);
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
    let Some((id_hash, session)) = current_session(state, req).await? else {
        return Ok(no_session(state));
    };
    let link = match usable_link(state, &session).await? {
        Ok(link) => link,
        Err(problem) => return Ok(problem),
    };
    let Some(member_id) = postcard_holder(state, &form).await? else {
        return wrong_postcard(state, req, link.id, form.temp_login_id).await;
    };
    // Spend the link and replace the session id, so the id seen before the check is void.
    let new_session = token::new_token();
    let (new_hash, link_id) = (token::hash(&new_session), link.id);
    let ttl = state.config.policy.signup_session_ttl.as_secs();
    let client_ip = req.client_ip();
    let spent = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let now = db::now();
            if !links::mark_used(&tx, link_id, Some(member_id), now)? {
                return Ok(false);
            }
            sessions::delete(&tx, &id_hash)?;
            let session = NewSession {
                id_hash: &new_hash,
                kind: Kind::Signup,
                link_id: Some(link_id),
                member_id: Some(member_id),
                expires_at: now + ttl,
            };
            sessions::insert(&tx, &session, now)?;
            let detail = format!("link {link_id}");
            db::audit(
                &tx,
                "signup_postcard_verified",
                Some(member_id),
                client_ip.as_deref(),
                &detail,
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await?;
    if !spent {
        return Ok(link_problem(state, Some(links::LinkState::Used)));
    }
    let cookie = set_cookie(
        SESSION_COOKIE,
        &new_session,
        COOKIE_PATH,
        ttl,
        state.https(),
    );
    Ok(with_cookie(redirect("/signup/profile"), &cookie))
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

/// Counts a wrong entry; at the limit the link and its sessions are void.
async fn wrong_postcard(
    state: &AppState,
    req: &Req,
    link_id: i64,
    typed_id: String,
) -> Result<Resp> {
    let max_attempts = state.config.policy.signup_max_attempts;
    let client_ip = req.client_ip();
    let attempts = state
        .db
        .call(move |c| {
            let attempts = links::add_failed_attempt(c, link_id)?;
            if attempts >= max_attempts {
                links::mark_used(c, link_id, None, db::now())?;
                sessions::delete_for_link(c, link_id)?;
            }
            let detail = format!("link {link_id}, attempt {attempts}");
            db::audit(
                c,
                "signup_postcard_failed",
                None,
                client_ip.as_deref(),
                &detail,
            )?;
            Ok(attempts)
        })
        .await?;
    if attempts >= max_attempts {
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
        max_attempts - attempts
    );
    let page = VerifyPage {
        csrf: &req.csrf,
        temp_login_id: typed_id,
        error: Some(error),
    };
    state.page("signup_verify.html", &page)
}
