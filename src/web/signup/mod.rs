//! Sign-up on the web, from the mailed link to 利用者情報登録完了:
//! `/signup` (Procedure A: ask for the mail) → `/signup/link/{token}` → `/signup/verify`
//! (本人確認: the postcard) → `/signup/profile` (利用者情報入力) → `/signup/done`.
//!
//! Opening the link only swaps the token for a session cookie (mail scanners open links
//! before members do); the link is spent when the postcard check succeeds.

mod profile;
mod request;
mod verify;

pub use profile::{done, profile_form, profile_submit};
pub use request::{request_form, request_submit};
pub use verify::{open_link, verify_form, verify_submit};

use hyper::StatusCode;

use super::http::{clear_cookie, redirect, with_cookie};
use super::{AppState, ErrorPage, Req, Resp, error_response};
use crate::db::{self, links, sessions};
use crate::error::Result;
use crate::token;

const SESSION_COOKIE: &str = "km_signup";
const COOKIE_PATH: &str = "/signup";

/// Where a link that cannot be used sends the member: the page that says so.
fn link_problem(state: &AppState, state_of_link: Option<links::LinkState>) -> Resp {
    let (title, message) = match state_of_link {
        Some(links::LinkState::Expired) => (
            "URLの有効期限が切れています",
            "このURLの有効期限が切れています。お手数ですが、「新規利用登録」の画面からメールアドレスの登録をやり直してください。",
        ),
        Some(links::LinkState::Used) => (
            "このURLは使用済みです",
            "このURLは既に使用されたか、無効になっています。利用登録がお済みの方はログイン画面からログインしてください。お済みでない方は、「新規利用登録」の画面からメールアドレスの登録をやり直してください。",
        ),
        _ => (
            "URLが正しくありません",
            "URLが正しくないか、途中で切れています。メールに記載されたURLを最後まで正しく開いてください。解決しない場合は、「新規利用登録」の画面からメールアドレスの登録をやり直してください。",
        ),
    };
    let status = if state_of_link.is_some() {
        StatusCode::GONE
    } else {
        StatusCode::NOT_FOUND
    };
    let page = ErrorPage {
        title,
        message,
        next: Some(("/signup", "新規利用登録の画面へ")),
    };
    with_cookie(
        error_response(state, status, &page),
        &clear_cookie(SESSION_COOKIE, COOKIE_PATH, state.https()),
    )
}

/// The sign-up session behind this request's cookie, if live.
async fn current_session(
    state: &AppState,
    req: &Req,
) -> Result<Option<(Vec<u8>, sessions::Session)>> {
    let Some(session_id) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = token::hash(&session_id);
    let lookup = id_hash.clone();
    let session = state
        .db
        .call(move |c| sessions::find(c, &lookup, sessions::Kind::Signup, db::now(), i64::MAX / 2))
        .await?;
    Ok(session.map(|s| (id_hash, s)))
}

fn no_session(state: &AppState) -> Resp {
    let page = ErrorPage {
        title: "画面の有効期限が切れました",
        message: "時間が経ったため、この画面は無効になりました。お手数ですが、メールに記載されたURLをもう一度開いてください。URLの有効期限が切れている場合は、「新規利用登録」の画面からやり直してください。",
        next: Some(("/signup", "新規利用登録の画面へ")),
    };
    error_response(state, StatusCode::FORBIDDEN, &page)
}

/// The session's link, if still usable, or the page that says why not.
async fn usable_link(
    state: &AppState,
    session: &sessions::Session,
) -> Result<Result<links::Link, Resp>> {
    let Some(link_id) = session.link_id else {
        return Ok(Err(no_session(state)));
    };
    let link = state.db.call(move |c| links::find(c, link_id)).await?;
    Ok(match link {
        Some(link) if link.state(db::now()) == links::LinkState::Usable => Ok(link),
        Some(link) => Err(link_problem(state, Some(link.state(db::now())))),
        None => Err(link_problem(state, None)),
    })
}
/// The signed-in part of sign-up: a session that passed the postcard check.
async fn verified_session(
    state: &AppState,
    req: &Req,
) -> Result<Result<(Vec<u8>, i64, String), Resp>> {
    let Some((id_hash, session)) = current_session(state, req).await? else {
        return Ok(Err(no_session(state)));
    };
    let (Some(member_id), Some(link_id)) = (session.member_id, session.link_id) else {
        return Ok(Err(redirect("/signup/verify")));
    };
    let link = state.db.call(move |c| links::find(c, link_id)).await?;
    match link {
        Some(link) => Ok(Ok((id_hash, member_id, link.address))),
        None => Ok(Err(no_session(state))),
    }
}
