//! Sign-up on the web, from the mailed link to 利用者情報登録完了:
//! `/signup` (Procedure A: ask for the mail) → `/signup/link/{token}` → `/signup/verify`
//! (本人確認: the postcard) → `/signup/profile` (利用者情報入力) → `/signup/done`.
//!
//! Opening the link only swaps the token for a session cookie (mail scanners open links
//! before members do); the link is spent when the postcard check succeeds.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::http::{self, clear_cookie, redirect, set_cookie, with_cookie};
use super::{AppState, ErrorPage, Req, Resp, error_response};
use crate::address::{Address, to_half_width};
use crate::db::{self, links, members, sessions};
use crate::error::Result;
use crate::password;
use crate::signup::{self as requests, LinkRequest, Via};
use crate::token;

const SESSION_COOKIE: &str = "km_signup";
const COOKIE_PATH: &str = "/signup";
const NICKNAME_MAX: usize = 20;

#[derive(Serialize, Default)]
struct RequestPage<'a> {
    csrf: &'a str,
    email: String,
    error: Option<&'static str>,
}

pub fn request_form(state: &AppState, req: &Req) -> Result<Resp> {
    state.page(
        "signup_request.html",
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

/// Procedure A. Known, unknown, registered or rate-limited: the page is the same.
pub async fn request_submit(state: &AppState, req: &Req) -> Result<Resp> {
    let form: RequestForm = req.form(state.origin())?;
    let address = match Address::parse_typed(&form.email) {
        Ok(address) => address.to_string(),
        Err(_) => {
            let page = RequestPage {
                csrf: &req.csrf,
                email: form.email,
                error: Some("メールアドレスを正しく入力してください。"),
            };
            return state.page("signup_request.html", &page);
        }
    };
    let (config, client_ip) = (state.config.clone(), req.client_ip());
    let shown = address.clone();
    let outcome = state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let request = LinkRequest {
                via: Via::Web,
                address: &address,
                client_ip: Some(&client_ip),
                smtp_client_ip: None,
                message_id: None,
                size: None,
                suppressed: None,
            };
            let outcome = requests::request_link(&tx, &config.limits, &config.mail.from, &request)?;
            tx.commit()?;
            Ok(outcome)
        })
        .await?;
    tracing::info!(
        outcome = outcome.as_str(),
        "sign-up mail requested on the web"
    );
    if outcome == requests::Outcome::Queued {
        state.outbox_wake.notify_one();
    }
    state.page(
        "signup_sent.html",
        &SentPage {
            email: shown,
            ttl: state.config.policy.signup_link_ttl.japanese(),
        },
    )
}

#[derive(Serialize)]
struct SentPage {
    email: String,
    ttl: String,
}

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
        .call(move |c| sessions::insert_signup(c, &id_hash, link_id, None, now, expires_at))
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
        .call(move |c| sessions::find_signup(c, &lookup, db::now()))
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
    let temp_login_id = to_half_width(form.temp_login_id.trim()).to_ascii_uppercase();
    let lookup = temp_login_id.clone();
    let holder = state
        .db
        .call(move |c| members::find_by_temp_login_id(c, &lookup))
        .await?;
    let stored = holder.as_ref().and_then(|h| h.temp_password_hash.clone());
    let typed = to_half_width(form.temp_password.trim());
    let matches =
        tokio::task::spawn_blocking(move || password::verify(&typed, stored.as_deref())).await?;
    let client_ip = req.client_ip();
    let (link_id, max_attempts) = (link.id, state.config.policy.signup_max_attempts);
    let member_id = holder.as_ref().map(|h| h.id).filter(|_| matches);
    let Some(member_id) = member_id else {
        let attempts = state
            .db
            .call(move |c| {
                let attempts = links::add_failed_attempt(c, link_id)?;
                if attempts >= max_attempts {
                    links::mark_used(c, link_id, None, db::now())?;
                    sessions::delete_for_link(c, link_id)?;
                }
                db::audit(
                    c,
                    "signup_postcard_failed",
                    None,
                    Some(&client_ip),
                    &format!("link {link_id}, attempt {attempts}"),
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
        return state.page(
            "signup_verify.html",
            &VerifyPage {
                csrf: &req.csrf,
                temp_login_id: form.temp_login_id,
                error: Some(error),
            },
        );
    };
    // Spend the link and replace the session id, so the id seen before the check is void.
    let new_session = token::new_token();
    let new_hash = token::hash(&new_session);
    let ttl = state.config.policy.signup_session_ttl.as_secs();
    let spent = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let now = db::now();
            if !links::mark_used(&tx, link_id, Some(member_id), now)? {
                return Ok(false);
            }
            sessions::delete(&tx, &id_hash)?;
            sessions::insert_signup(&tx, &new_hash, link_id, Some(member_id), now, now + ttl)?;
            db::audit(
                &tx,
                "signup_postcard_verified",
                Some(member_id),
                Some(&client_ip),
                &format!("link {link_id}"),
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

/// 利用者情報入力: the values typed (never the passwords) and an error per field.
#[derive(Serialize, Default)]
struct ProfilePage<'a> {
    csrf: &'a str,
    login_id: String,
    email: String,
    nickname: String,
    password_rule: String,
    errors: ProfileErrors,
}

#[derive(Serialize, Default)]
struct ProfileErrors {
    login_id: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
    email: Option<String>,
    nickname: Option<String>,
}

impl ProfileErrors {
    fn any(&self) -> bool {
        self.login_id.is_some()
            || self.password.is_some()
            || self.password_confirm.is_some()
            || self.email.is_some()
            || self.nickname.is_some()
    }
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

pub async fn profile_form(state: &AppState, req: &Req) -> Result<Resp> {
    let (_, _, address) = match verified_session(state, req).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let page = ProfilePage {
        csrf: &req.csrf,
        email: address,
        password_rule: password::describe_policy(&state.config.policy),
        ..Default::default()
    };
    state.page("signup_profile.html", &page)
}

#[derive(Deserialize)]
struct ProfileForm {
    #[serde(default)]
    login_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    nickname: String,
}

fn check_profile(form: &ProfileForm, link_address: &str, state: &AppState) -> ProfileErrors {
    let mut errors = ProfileErrors {
        login_id: password::check_login_id(&form.login_id)
            .err()
            .map(str::to_string),
        password: password::check_password(&form.password, &state.config.policy).err(),
        ..Default::default()
    };
    if errors.password.is_none() && form.password.eq_ignore_ascii_case(&form.login_id) {
        errors.password = Some("ログインIDと同じパスワードは使えません。".into());
    }
    if form.password_confirm != form.password {
        errors.password_confirm = Some("新パスワードと新パスワード(確認)が一致しません。".into());
    }
    let same_address = Address::parse_typed(&form.email)
        .is_ok_and(|a| a.key() == link_address.to_ascii_lowercase());
    if !same_address {
        errors.email = Some("メールアドレスは、ご案内メールを受け取ったアドレスから変更できません。ほかのアドレスは登録後にプロフィール設定で追加できます。".into());
    }
    let nickname = form.nickname.trim();
    if nickname.is_empty() {
        errors.nickname = Some("ニックネームを入力してください。".into());
    } else if nickname.chars().count() > NICKNAME_MAX || nickname.chars().any(char::is_control) {
        errors.nickname = Some(format!(
            "ニックネームは{NICKNAME_MAX}文字以内で入力してください。"
        ));
    }
    errors
}

pub async fn profile_submit(state: &AppState, req: &Req) -> Result<Resp> {
    let form: ProfileForm = req.form(state.origin())?;
    let (id_hash, member_id, address) = match verified_session(state, req).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let mut errors = check_profile(&form, &address, state);
    if !errors.any() {
        let plain = form.password.clone();
        let hash = tokio::task::spawn_blocking(move || password::hash(&plain)).await??;
        let (login_id, nickname, client_ip) = (
            form.login_id.clone(),
            form.nickname.trim().to_string(),
            req.client_ip(),
        );
        let registered = state
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                if members::login_id_taken(&tx, &login_id)? {
                    return Ok(None);
                }
                let registration = members::Registration {
                    member_id,
                    login_id: &login_id,
                    password_hash: &hash,
                    nickname: &nickname,
                    address: &address,
                };
                let done = members::register(&tx, &registration, db::now())?;
                sessions::delete(&tx, &id_hash)?;
                if done {
                    db::audit(
                        &tx,
                        "signup_completed",
                        Some(member_id),
                        Some(&client_ip),
                        "",
                    )?;
                }
                tx.commit()?;
                Ok(Some(done))
            })
            .await?;
        match registered {
            Some(true) => {
                tracing::info!(member_id, "sign-up completed");
                let cookie = clear_cookie(SESSION_COOKIE, COOKIE_PATH, state.https());
                return Ok(with_cookie(redirect("/signup/done"), &cookie));
            }
            Some(false) => return Ok(no_session(state)),
            None => {
                errors.login_id = Some(
                    "このログインIDは既に使われています。別のログインIDを入力してください。".into(),
                )
            }
        }
    }
    let page = ProfilePage {
        csrf: &req.csrf,
        login_id: form.login_id,
        email: form.email,
        nickname: form.nickname,
        password_rule: password::describe_policy(&state.config.policy),
        errors,
    };
    Ok(http::html(
        StatusCode::UNPROCESSABLE_ENTITY,
        state.render("signup_profile.html", &page)?,
    ))
}

#[derive(Serialize)]
struct DonePage {}

pub fn done(state: &AppState) -> Result<Resp> {
    state.page("signup_done.html", &DonePage {})
}
