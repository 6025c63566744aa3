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

use super::http::{redirect, with_cookie};
use super::linked::{Current, LinkFlow};
use super::{AppState, ErrorPage, Req, Resp, Trouble, error_response};
use crate::db::links::{Link, LinkState, Purpose};
use crate::db::{self, members, sessions::Kind};
use crate::error::Result;

const FLOW: LinkFlow = LinkFlow {
    purpose: Purpose::Signup,
    kind: Kind::Signup,
    cookie: "km_signup",
    path: "/signup",
    lasts_as_link: true,
};

/// Where a link that cannot be used sends the member: the page that says so.
fn link_problem(state: &AppState, state_of_link: Option<LinkState>) -> Resp {
    let (title, message) = match state_of_link {
        Some(LinkState::Expired) => (
            "URLの有効期限が切れています",
            "このURLの有効期限が切れています。お手数ですが、「新規利用登録」の画面からメールアドレスの登録をやり直してください。",
        ),
        Some(LinkState::Used) => (
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
        trouble: Trouble::SIGNUP,
    };
    with_cookie(
        error_response(state, status, &page),
        &FLOW.clear_cookie(state),
    )
}

/// Before the postcard check the mailed link is unspent: opening it again works.
const BEFORE_POSTCARD: &str = "時間が経ったか、ブラウザが変わったため、この画面は無効になりました。お手数ですが、メールに記載されたURLをもう一度開いてください。URLの有効期限が切れている場合は、「新規利用登録」の画面からメールアドレスの登録をやり直してください。";
/// After it the link is spent, but the postcard is not until 利用者情報入力 is done.
const AFTER_POSTCARD: &str = "時間が経ったか、ブラウザが変わったため、この画面は無効になりました。利用登録はまだ完了していません。お手数ですが、「新規利用登録」の画面からメールアドレスの登録をやり直してください。ハガキのログインIDと仮パスワードは、そのままお使いいただけます。";

fn no_session(state: &AppState, message: &'static str) -> Resp {
    let page = ErrorPage {
        title: "画面の有効期限が切れました",
        message,
        next: Some(("/signup", "新規利用登録の画面へ")),
        trouble: Trouble::SIGNUP,
    };
    error_response(state, StatusCode::FORBIDDEN, &page)
}

/// The browser's sign-up session and its still-usable link, or the page that says why not.
async fn before_postcard(state: &AppState, req: &Req) -> Result<Result<(Current, Link), Resp>> {
    let Some(current) = FLOW.current(state, req).await? else {
        return Ok(Err(no_session(state, BEFORE_POSTCARD)));
    };
    if current.session.member_id.is_some() {
        return Ok(Err(redirect("/signup/profile")));
    }
    Ok(match current.link.clone() {
        Some(link) if link.state(db::now()) == LinkState::Usable => Ok((current, link)),
        Some(link) => Err(link_problem(state, Some(link.state(db::now())))),
        None => Err(link_problem(state, None)),
    })
}

/// The part after the postcard check: (member, the link's address). A member who has
/// finished (Back after 完了) is shown 完了 again.
async fn verified_session(state: &AppState, req: &Req) -> Result<Result<(i64, String), Resp>> {
    let Some(current) = FLOW.current(state, req).await? else {
        return Ok(Err(no_session(state, AFTER_POSTCARD)));
    };
    let Some(member_id) = current.session.member_id else {
        return Ok(Err(redirect("/signup/verify")));
    };
    let account = state
        .db
        .read(move |c| members::account(c, member_id))
        .await?;
    if account.is_some_and(|a| a.registered_at.is_some()) {
        return Ok(Err(redirect("/signup/done")));
    }
    match current.link {
        Some(link) => Ok(Ok((member_id, link.address))),
        None => Ok(Err(no_session(state, AFTER_POSTCARD))),
    }
}
