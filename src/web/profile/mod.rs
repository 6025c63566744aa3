//! プロフィール設定: login ID, password, nickname and up to three addresses. Every change
//! is announced to all registered addresses (「登録情報変更のお知らせ」); a new address
//! is added only once its owner confirms it from a mailed link.

mod email;
mod logins;

pub use email::{
    add_email, confirm_email, confirm_email_form, email_added, open_email_link, remove_email,
    remove_email_form,
};
pub use logins::{change_notify, end_others};

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::http::{self, redirect};
use super::{AppState, Req, Resp, member};
use crate::db::{self, members};
use crate::error::Result;
use crate::flows::login::{self, PasswordCheck};
use crate::flows::profile;
use crate::password;

pub use crate::flows::address::MAX_ADDRESSES;
const NICKNAME_MAX: usize = 20;

#[derive(Serialize, Default)]
struct ProfilePage<'a> {
    csrf: &'a str,
    login_id: String,
    nickname: String,
    emails: Vec<String>,
    can_add: bool,
    new_email: String,
    password_rule: String,
    done: Option<&'static str>,
    errors: Errors,
    #[serde(flatten)]
    logins: logins::Logins,
    /// The passkey section is shown (see `web::passkeys`).
    passkeys_enabled: bool,
}

#[derive(Serialize, Default)]
struct Errors {
    login_id: Option<String>,
    nickname: Option<String>,
    current_password: Option<String>,
    password: Option<String>,
    password_confirm: Option<String>,
    email: Option<String>,
}

impl Errors {
    fn any(&self) -> bool {
        [
            &self.login_id,
            &self.nickname,
            &self.current_password,
            &self.password,
            &self.password_confirm,
            &self.email,
        ]
        .iter()
        .any(|e| e.is_some())
    }
}

/// Renders the page for `member`, with what was typed (never a password) and errors.
async fn render(
    state: &AppState,
    req: &Req,
    member: &member::Member,
    typed: Typed,
    errors: Errors,
) -> Result<Resp> {
    let account = &member.account;
    let (reading, session_hash) = (account.clone(), member.session_hash.clone());
    let idle = state.config.policy.session_idle.as_secs();
    let (emails, logins) = state
        .db
        .read(move |c| {
            let logins = logins::read(c, &reading, &session_hash, idle)?;
            Ok((members::emails(c, reading.id)?, logins))
        })
        .await?;
    let status = if errors.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let done = DONE
        .iter()
        .find(|(key, _)| req.query_param("done").as_deref() == Some(key))
        .map(|(_, text)| *text);
    let page = ProfilePage {
        csrf: &req.csrf,
        login_id: typed
            .login_id
            .unwrap_or_else(|| account.login_id.clone().unwrap_or_default()),
        nickname: typed
            .nickname
            .unwrap_or_else(|| account.nickname.clone().unwrap_or_default()),
        can_add: emails.len() < MAX_ADDRESSES,
        emails,
        new_email: typed.email.unwrap_or_default(),
        password_rule: password::describe_policy(&state.config.policy),
        done: if errors.any() { None } else { done },
        errors,
        logins,
        passkeys_enabled: state.passkeys.is_some(),
    };
    Ok(http::html(status, state.render("profile.html", &page)?))
}

/// Values typed into a form that failed, shown again.
#[derive(Default)]
struct Typed {
    login_id: Option<String>,
    nickname: Option<String>,
    email: Option<String>,
}

const DONE: &[(&str, &str)] = &[
    ("login_id", "ログインIDを変更しました。"),
    ("nickname", "ニックネームを変更しました。"),
    ("password", "パスワードを変更しました。"),
    (
        "email_sent",
        "確認メール「メールアドレス確認のご案内」を送信しました。メールに記載されたURLから登録を完了してください。",
    ),
    ("email_removed", "メールアドレスを削除しました。"),
    ("notify", "メールでのお知らせの設定を変更しました。"),
    ("others_ended", "他の端末からログアウトしました。"),
    (
        "passkey_added",
        "パスキーを登録しました。次回から「パスキーでログイン」でログインできます。",
    ),
    ("passkey_removed", "パスキーを削除しました。"),
];

pub async fn page(state: &AppState, req: &Req) -> Result<Resp> {
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    render(state, req, &member, Typed::default(), Errors::default()).await
}

/// Applies a change (recorded and announced by the flow), and shows the page again.
async fn commit_change(
    state: &AppState,
    req: &Req,
    member_id: i64,
    done: &'static str,
    change: profile::Change,
) -> Result<Resp> {
    let (from, client_ip) = (state.config.mail.from.clone(), req.client_ip());
    state
        .db
        .write(move |tx| {
            let ip = client_ip.as_deref();
            profile::change(tx, member_id, &change, &from, ip, db::now())
        })
        .await?;
    Ok(redirect(&format!("/profile?done={done}")))
}

#[derive(Deserialize)]
struct LoginIdForm {
    #[serde(default)]
    login_id: String,
}

pub const LOGIN_ID_TAKEN: &str =
    "このログインIDは既に使われています。別のログインIDを入力してください。";

/// The rule for a new login ID, and that no other member has it (shared with reissue).
pub async fn check_new_login_id(
    state: &AppState,
    login_id: &str,
    member_id: i64,
) -> Result<Option<String>> {
    if let Err(rule) = password::check_login_id(login_id) {
        return Ok(Some(rule.to_string()));
    }
    let lookup = login_id.to_string();
    let holder = state
        .db
        .read(move |c| members::account_by_login_id(c, &lookup))
        .await?;
    Ok(holder
        .is_some_and(|other| other.id != member_id)
        .then(|| LOGIN_ID_TAKEN.to_string()))
}

/// The page again with one form's error, keeping what was typed in it.
async fn refuse(
    state: &AppState,
    req: &Req,
    member: &member::Member,
    field: Field,
    typed: String,
    error: String,
) -> Result<Resp> {
    let (mut values, mut errors) = (Typed::default(), Errors::default());
    match field {
        Field::LoginId => (values.login_id, errors.login_id) = (Some(typed), Some(error)),
        Field::Nickname => (values.nickname, errors.nickname) = (Some(typed), Some(error)),
        Field::Email => (values.email, errors.email) = (Some(typed), Some(error)),
    }
    render(state, req, member, values, errors).await
}

/// The one-field forms of the page.
enum Field {
    LoginId,
    Nickname,
    Email,
}

pub async fn change_login_id(state: &AppState, req: &Req) -> Result<Resp> {
    let form: LoginIdForm = req.form(state.origin())?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let (login_id, member_id) = (form.login_id.trim().to_string(), member.account.id);
    if let Some(error) = check_new_login_id(state, &login_id, member_id).await? {
        return refuse(state, req, &member, Field::LoginId, form.login_id, error).await;
    }
    let old = member.account.login_id.clone().unwrap_or_default();
    let change = profile::Change::LoginId { old, new: login_id };
    commit_change(state, req, member_id, "login_id", change).await
}

#[derive(Deserialize)]
struct NicknameForm {
    #[serde(default)]
    nickname: String,
}

/// The nickname rule, shared with sign-up.
pub fn check_nickname(nickname: &str) -> Option<String> {
    let nickname = nickname.trim();
    if nickname.is_empty() {
        Some("ニックネームを入力してください。".into())
    } else if nickname.chars().count() > NICKNAME_MAX || nickname.chars().any(char::is_control) {
        Some(format!(
            "ニックネームは{NICKNAME_MAX}文字以内で入力してください。"
        ))
    } else {
        None
    }
}

pub async fn change_nickname(state: &AppState, req: &Req) -> Result<Resp> {
    let form: NicknameForm = req.form(state.origin())?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    if let Some(error) = check_nickname(&form.nickname) {
        return refuse(state, req, &member, Field::Nickname, form.nickname, error).await;
    }
    let (member_id, nickname) = (member.account.id, form.nickname.trim().to_string());
    let change = profile::Change::Nickname(nickname);
    commit_change(state, req, member_id, "nickname", change).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

/// The new-password rules shared by sign-up, profile and reissue.
pub fn check_new_password(
    password: &str,
    confirm: &str,
    login_id: &str,
    state: &AppState,
) -> (Option<String>, Option<String>) {
    let mut error = password::check_password(password, &state.config.policy).err();
    if error.is_none() && password.eq_ignore_ascii_case(login_id) {
        error = Some("ログインIDと同じパスワードは使えません。".into());
    }
    let confirm_error = (password != confirm)
        .then(|| "新パスワードと新パスワード(確認)が一致しません。".to_string());
    (error, confirm_error)
}

/// Checks a logged-in member's current password (see `login::check_current_password`:
/// it spends the login budget); what the form says if it is not right. `held_back`
/// names what a lock holds back, as the sentence says it («パスワードの変更とログインを»).
pub async fn current_password_problem(
    state: &AppState,
    req: &Req,
    account: &members::Account,
    typed: &str,
    held_back: &str,
) -> Result<Option<String>> {
    let check = login::check_current_password(
        &state.db,
        &state.hashing,
        &state.config.policy,
        account,
        typed,
        req.client(),
    )
    .await?;
    Ok(match check {
        PasswordCheck::Right => None,
        PasswordCheck::Locked { minutes }
        | PasswordCheck::Wrong {
            locked_minutes: Some(minutes),
        } => Some(format!(
            "現在のパスワードの誤りが続いたため、{held_back}一時的に制限しています。{minutes}分ほどたってから、もう一度お試しください。"
        )),
        PasswordCheck::Wrong {
            locked_minutes: None,
        } => Some("現在のパスワードが正しくありません。".to_string()),
    })
}

pub async fn change_password(state: &AppState, req: &Req) -> Result<Resp> {
    let form: PasswordForm = req.form(state.origin())?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let login_id = member.account.login_id.clone().unwrap_or_default();
    let (password_error, confirm_error) =
        check_new_password(&form.password, &form.password_confirm, &login_id, state);
    let current_error = current_password_problem(
        state,
        req,
        &member.account,
        &form.current_password,
        "パスワードの変更とログインを",
    )
    .await?;
    let errors = Errors {
        current_password: current_error,
        password: password_error,
        password_confirm: confirm_error,
        ..Default::default()
    };
    if errors.any() {
        return render(state, req, &member, Typed::default(), errors).await;
    }
    let plain = form.password.clone();
    let hash = state.hashing.run(move || password::hash(&plain)).await??;
    let (member_id, keep) = (member.account.id, member.session_hash.clone());
    let change = profile::Change::Password { hash, keep };
    commit_change(state, req, member_id, "password", change).await
}
