//! 利用者情報入力 and 利用者情報登録完了: the member chooses a login ID and password.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::super::http::{self, redirect};
use super::super::profile::{LOGIN_ID_TAKEN, check_new_password, check_nickname};
use super::super::{AppState, Req, Resp};
use super::verified_session;
use crate::address::Address;
use crate::db::{self, members};
use crate::error::Result;
use crate::flows::register::{self, Registered};
use crate::password;

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

pub async fn profile_form(state: &AppState, req: &Req) -> Result<Resp> {
    let (_, address) = match verified_session(state, req).await? {
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
    let (password, password_confirm) = check_new_password(
        &form.password,
        &form.password_confirm,
        &form.login_id,
        state,
    );
    let same_address = Address::parse_typed(&form.email)
        .is_ok_and(|a| a.key() == link_address.to_ascii_lowercase());
    ProfileErrors {
        login_id: password::check_login_id(&form.login_id).err().map(str::to_string),
        password,
        password_confirm,
        email: (!same_address).then(|| "メールアドレスは、ご案内メールを受け取ったアドレスから変更できません。ほかのアドレスは登録後にプロフィール設定で追加できます。".to_string()),
        nickname: check_nickname(&form.nickname),
    }
}

pub async fn profile_submit(state: &AppState, req: &Req) -> Result<Resp> {
    let form: ProfileForm = req.form(state.origin())?;
    let (member_id, address) = match verified_session(state, req).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let mut errors = check_profile(&form, &address, state);
    if !errors.any() {
        match register(state, req, &form, member_id, address).await? {
            // The session stays (until its time ends) so that Back leads to 完了.
            Registered::Done => {
                tracing::info!(member_id, "sign-up completed");
                return Ok(redirect("/signup/done"));
            }
            Registered::AlreadyDone => return Ok(redirect("/signup/done")),
            Registered::LoginIdTaken => errors.login_id = Some(LOGIN_ID_TAKEN.into()),
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
    let body = state.render("signup_profile.html", &page)?;
    Ok(http::html(StatusCode::UNPROCESSABLE_ENTITY, body))
}

/// Stores the member's choices and spends the postcard.
async fn register(
    state: &AppState,
    req: &Req,
    form: &ProfileForm,
    member_id: i64,
    address: String,
) -> Result<Registered> {
    let plain = form.password.clone();
    let hash = state.hashing.run(move || password::hash(&plain)).await??;
    let (login_id, nickname) = (form.login_id.clone(), form.nickname.trim().to_string());
    let client_ip = req.client_ip();
    state
        .db
        .write(move |tx| {
            let registration = members::Registration {
                member_id,
                login_id: &login_id,
                password_hash: &hash,
                nickname: &nickname,
                address: &address,
            };
            register::register(tx, &registration, client_ip.as_deref(), db::now())
        })
        .await
}

#[derive(Serialize)]
struct DonePage {}

pub fn done(state: &AppState) -> Result<Resp> {
    state.page("signup_done.html", &DonePage {})
}
