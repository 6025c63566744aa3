//! 健幸マイポータルログイン: the login form (`/`), then the one-time key (暗証キー)
//! mailed to every registered address (`/login/key`), then the top page. The pending
//! login lives in a cookie that dies with the browser, so closing the key screen voids it.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::http::{self, clear_cookie, redirect, set_session_cookie, with_cookie};
use super::{AppState, ErrorPage, Req, Resp, Trouble, error_response, member};
use crate::db::login_history::Outcome;
use crate::db::{self, login as attempts, members};
use crate::error::Result;
use crate::flows::login::{self, LoginCheck, PasswordCheck};
use crate::flows::login_key::{self, KeyAnswer};
use crate::secrets::SecretKind;

const PENDING_COOKIE: &str = "km_login";
const PENDING_PATH: &str = "/login";
/// How long a login may wait between the password and the key.
const ATTEMPT_SECS: i64 = 30 * 60;
const WRONG: &str = "ログインIDまたはパスワードが正しくありません。";

#[derive(Serialize, Default)]
struct LoginPage<'a> {
    /// Left empty for the page shown on a GET, which `token_page` gives each visitor's.
    csrf: &'a str,
    login_id: String,
    error: Option<String>,
    notice: Option<&'static str>,
    /// 「パスキーでログイン」 is offered.
    passkeys: bool,
}

pub fn page(state: &AppState, req: &Req) -> Result<Resp> {
    let notice = [
        (
            "expired",
            "ログインの有効期限が切れました。もう一度ログインしてください。",
        ),
        ("logged_out", "ログアウトしました。"),
        (
            "reset",
            "パスワードを変更しました。新しいパスワードでログインしてください。",
        ),
    ]
    .into_iter()
    .find(|(param, _)| req.query_param(param).is_some())
    .map(|(_, text)| text);
    // The page most often shown, and the same for everyone but its token.
    let page = LoginPage {
        notice,
        passkeys: state.passkeys.is_some(),
        ..Default::default()
    };
    state.token_page("login.html", &page, &req.csrf)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    login_id: String,
    #[serde(default)]
    password: String,
}

fn locked_message(minutes: i64) -> String {
    format!(
        "ログインに続けて失敗したため、ログインを一時的に制限しています。{minutes}分ほどたってから、もう一度お試しください。パスワードを忘れた方は「パスワードを忘れた方」から再発行できます。"
    )
}

pub async fn submit(state: &AppState, req: &Req) -> Result<Resp> {
    let form: LoginForm = req.form(state.origin())?;
    let check = login::check_password(
        &state.db,
        &state.hashing,
        &state.config.policy,
        &form.login_id,
        &form.password,
        req.client(),
    )
    .await?;
    let error = match check {
        LoginCheck::Right(account) => return start_attempt(state, req, account).await,
        LoginCheck::Refused(
            PasswordCheck::Locked { minutes }
            | PasswordCheck::Wrong {
                locked_minutes: Some(minutes),
            },
        ) => locked_message(minutes),
        LoginCheck::Refused(_) => WRONG.to_string(),
        LoginCheck::Disabled => format!(
            "このアカウントは現在ご利用いただけません。{}までお問い合わせください。",
            state.config.site.society
        ),
    };
    let page = LoginPage {
        csrf: &req.csrf,
        login_id: form.login_id,
        error: Some(error),
        notice: None,
        passkeys: state.passkeys.is_some(),
    };
    Ok(http::html(
        StatusCode::UNAUTHORIZED,
        state.render("login.html", &page)?,
    ))
}

/// The password was right: a new attempt (ending older ones) and a key to every address.
async fn start_attempt(state: &AppState, req: &Req, account: members::Account) -> Result<Resp> {
    let minted = state.key.mint(SecretKind::PendingLogin);
    let (pending, pending_hash) = (minted.secret, minted.hash);
    let (member_id, from, client_ip) =
        (account.id, state.config.mail.from.clone(), req.client_ip());
    state
        .db
        .write(move |tx| {
            let ip = client_ip.as_deref();
            let now = db::now();
            login_key::start(tx, member_id, &pending_hash, ATTEMPT_SECS, &from, ip, now)
        })
        .await?;
    let cookie = set_session_cookie(PENDING_COOKIE, &pending, PENDING_PATH, state.https());
    Ok(with_cookie(redirect("/login/key"), &cookie))
}

#[derive(Serialize)]
struct KeyPage<'a> {
    csrf: &'a str,
    ttl: String,
    error: Option<String>,
    notice: Option<String>,
}

impl AppState {
    fn key_page(
        &self,
        req: &Req,
        status: StatusCode,
        error: Option<String>,
        notice: Option<String>,
    ) -> Result<Resp> {
        let page = KeyPage {
            csrf: &req.csrf,
            ttl: self.config.policy.login_key_ttl.japanese(),
            error,
            notice,
        };
        Ok(http::html(status, self.render("login_key.html", &page)?))
    }
}

/// The open attempt behind this browser's pending cookie.
async fn pending_attempt(state: &AppState, req: &Req) -> Result<Option<attempts::Attempt>> {
    let Some(pending) = req.cookie(PENDING_COOKIE) else {
        return Ok(None);
    };
    let hash = state.key.hash(SecretKind::PendingLogin, &pending);
    state
        .db
        .read(move |c| attempts::find_open_attempt(c, &hash, db::now()))
        .await
}

fn attempt_over(state: &AppState, message: &'static str) -> Resp {
    let page = ErrorPage {
        title: "もう一度ログインしてください",
        message,
        next: Some(("/", "ログイン画面へ")),
        trouble: Trouble::LOGIN,
    };
    let response = error_response(state, StatusCode::FORBIDDEN, &page);
    with_cookie(
        response,
        &clear_cookie(PENDING_COOKIE, PENDING_PATH, state.https()),
    )
}

const NO_ATTEMPT: &str = "暗証キー入力画面を閉じた、別の画面からログインした、または時間が経ったため、発行された暗証キーは無効になりました。お手数ですが、再度ログイン画面から手続きを行ってください。";

pub async fn key_form(state: &AppState, req: &Req) -> Result<Resp> {
    // Back from the top page right after the key: the member is in, not stranded.
    if member::current(state, req).await?.is_some() {
        return Ok(redirect("/home"));
    }
    if pending_attempt(state, req).await?.is_none() {
        return Ok(attempt_over(state, NO_ATTEMPT));
    }
    state.key_page(req, StatusCode::OK, None, None)
}

#[derive(Deserialize)]
struct KeyForm {
    #[serde(default)]
    key: String,
}

pub async fn key_submit(state: &AppState, req: &Req) -> Result<Resp> {
    let form: KeyForm = req.form(state.origin())?;
    let Some(attempt) = pending_attempt(state, req).await? else {
        return Ok(attempt_over(state, NO_ATTEMPT));
    };
    let typed = crate::address::to_half_width(form.key.trim());
    let typed_hash = state.key.hash(SecretKind::LoginKey(attempt.id), &typed);
    let (attempt_id, max, client) = (
        attempt.id,
        state.config.policy.login_key_max_attempts,
        req.client(),
    );
    let outcome = state
        .db
        .write(move |tx| {
            let member_id = attempt.member_id;
            login_key::check(
                tx,
                attempt_id,
                member_id,
                &typed_hash,
                max,
                &client,
                db::now(),
            )
        })
        .await?;
    match outcome {
        KeyAnswer::Right => {
            let how = Outcome::Login;
            let session = member::start(state, attempt.member_id, how, req.client()).await?;
            let response = with_cookie(redirect("/home"), &session);
            Ok(with_cookie(
                response,
                &clear_cookie(PENDING_COOKIE, PENDING_PATH, state.https()),
            ))
        }
        KeyAnswer::Ended => Ok(attempt_over(state, NO_ATTEMPT)),
        KeyAnswer::Over => Ok(attempt_over(
            state,
            "暗証キーの誤りが続いたため、発行された暗証キーは無効になりました。お手数ですが、再度ログイン画面から手続きを行ってください。",
        )),
        KeyAnswer::Wrong { left } => {
            let error = format!(
                "暗証キーが正しくないか、有効期限が切れています（あと{left}回入力できます）。有効期限が切れた場合は、暗証キーの再請求をクリックしてください。"
            );
            state.key_page(req, StatusCode::UNAUTHORIZED, Some(error), None)
        }
    }
}

/// 暗証キーの再請求: new keys to every address, the old ones void; not too often.
pub async fn resend(state: &AppState, req: &Req) -> Result<Resp> {
    let _: Vec<(String, String)> = req.form(state.origin())?;
    let Some(attempt) = pending_attempt(state, req).await? else {
        return Ok(attempt_over(state, NO_ATTEMPT));
    };
    let cooldown = state.config.policy.login_key_resend_cooldown.as_secs();
    let too_soon = |wait: i64| {
        let notice = format!(
            "暗証キーを送信したばかりです。{wait}秒ほどたってから、もう一度再請求してください。"
        );
        state.key_page(req, StatusCode::TOO_MANY_REQUESTS, None, Some(notice))
    };
    let wait = attempt.keys_sent_at + cooldown - db::now();
    if wait > 0 {
        return too_soon(wait);
    }
    let (attempt_id, member_id, from, client_ip) = (
        attempt.id,
        attempt.member_id,
        state.config.mail.from.clone(),
        req.client_ip(),
    );
    // Checked again where the keys are renewed: of parallel requests, one sends.
    let resent = state
        .db
        .write(move |tx| {
            let ip = client_ip.as_deref();
            login_key::resend(tx, attempt_id, member_id, cooldown, &from, ip, db::now())
        })
        .await?;
    if !resent {
        return too_soon(cooldown);
    }
    state.key_page(
        req,
        StatusCode::OK,
        None,
        Some(
            "暗証キーを再送信しました。新しいメールに記載された暗証キーを入力してください。".into(),
        ),
    )
}

pub async fn logout(state: &AppState, req: &Req) -> Result<Resp> {
    let _: Vec<(String, String)> = req.form(state.origin())?;
    match member::current(state, req).await? {
        Some(member) => {
            let cookie = member::end(state, &member).await?;
            Ok(with_cookie(redirect("/?logged_out=1"), &cookie))
        }
        None => Ok(redirect("/")),
    }
}
