//! The one place an error becomes a status and a Japanese page: what happened, what to
//! do, and whom to ask, worded for the situation the member is in.

use hyper::StatusCode;
use serde::Serialize;

use super::{AppState, Resp, http};
use crate::error::Error;

/// An error page: what happened, what to do, and whom to ask.
#[derive(Serialize)]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    /// Where to go next: `(href, label)`.
    pub next: Option<(&'a str, &'a str)>,
    /// What the member could not do, for the note on whom to ask (`Trouble`).
    pub trouble: &'a str,
}

/// The situation a member is in when an error page says whom to ask:
/// 「エラーメッセージが表示され、{trouble}場合は…」.
pub struct Trouble;

impl Trouble {
    pub const SIGNUP: &str = "利用登録することができない";
    pub const LOGIN: &str = "ログインすることができない";
    pub const RESET: &str = "パスワードを再発行することができない";
    pub const PROFILE: &str = "登録情報を変更することができない";

    /// The situation of a page, by its path.
    pub fn of(path: &str) -> &'static str {
        match path {
            p if p.starts_with("/signup") => Trouble::SIGNUP,
            p if p.starts_with("/reset") => Trouble::RESET,
            p if p.starts_with("/profile") => Trouble::PROFILE,
            _ => Trouble::LOGIN,
        }
    }
}

pub fn error_response(state: &AppState, status: StatusCode, page: &ErrorPage) -> Resp {
    match state.render("error.html", page) {
        Ok(body) => http::html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the error page");
            http::html(status, "エラーが発生しました。".to_string())
        }
    }
}

pub(super) fn error_page(state: &AppState, error: Error, path: &str) -> Resp {
    let (status, title, message, next) = match &error {
        Error::NotFound => (
            StatusCode::NOT_FOUND,
            "ページが見つかりません",
            "お探しのページは見つかりませんでした。URLをご確認ください。",
            Some(("/", "ログイン画面へ")),
        ),
        Error::Csrf => (
            StatusCode::FORBIDDEN,
            "画面の有効期限が切れました",
            "お手数ですが、前の画面に戻って、もう一度やり直してください。",
            Some(("/", "ログイン画面へ")),
        ),
        Error::Busy => return busy(state, path),
        Error::BadRequest(_) => (
            StatusCode::BAD_REQUEST,
            "入力内容を受け付けられませんでした",
            "送信された内容を読み取れませんでした。お手数ですが、もう一度入力してください。",
            Some(("/", "ログイン画面へ")),
        ),
        _ => {
            tracing::error!(error = %error, "request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "ただいま処理できません",
                "システムで問題が発生しました。しばらくしてから、もう一度お試しください。",
                Some(("/", "ログイン画面へ")),
            )
        }
    };
    error_response(
        state,
        status,
        &ErrorPage {
            title,
            message,
            next,
            trouble: Trouble::of(path),
        },
    )
}

/// How long a member is asked to wait when the site is busy.
pub const BUSY_RETRY_AFTER_SECS: u32 = 5;

/// Every place for password checks is taken: a Japanese 503 that says to try again in a
/// few seconds (`Retry-After`), given at once rather than after an unbounded wait.
pub(super) fn busy(state: &AppState, path: &str) -> Resp {
    let page = ErrorPage {
        trouble: Trouble::of(path),
        title: "ただいま混み合っています",
        message: "ただいまアクセスが集中しているため、処理できませんでした。数秒ほどたってから、もう一度お試しください。入力した内容は保存されていません。",
        next: None,
    };
    let mut response = error_response(state, StatusCode::SERVICE_UNAVAILABLE, &page);
    response.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from(BUSY_RETRY_AFTER_SECS),
    );
    response
}

/// A flood from one client address: a Japanese 429.
pub(super) fn too_many(state: &AppState, path: &str) -> Resp {
    let page = ErrorPage {
        trouble: Trouble::of(path),
        title: "アクセスが集中しています",
        message: "短時間に多くの操作が行われたため、しばらくの間ご利用いただけません。時間をおいて、もう一度お試しください。",
        next: Some(("/", "ログイン画面へ")),
    };
    error_response(state, StatusCode::TOO_MANY_REQUESTS, &page)
}
