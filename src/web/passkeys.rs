//! Passkeys (WebAuthn, by webauthn-rs): registering one on プロフィール設定 and logging in
//! with one alone. The ceremony needs the browser's WebAuthn API, driven by our one
//! script (`/assets/passkey.js`); its steps are JSON over form posts that carry the CSRF
//! token like every form. The server's half of a ceremony waits in memory (bounded,
//! five minutes, single use) under a random id in a cookie. Without script, the forms
//! lead to a page that says what is needed; password + 暗証キー always works.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde::Deserialize;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use super::http::{self, clear_cookie, redirect, set_cookie, with_cookie};
use super::{AppState, ErrorPage, Req, Resp, Trouble, error_response, member};
use crate::db::login_history::Outcome;
use crate::db::passkeys::{self as stored, NewPasskey};
use crate::db::{self, AuditEvent, members};
use crate::error::{Error, Result};
use crate::flows::passkey;
use crate::secrets;

const COOKIE: &str = "km_passkey";
/// How long a ceremony may take, from the options to the answer.
const CEREMONY_SECS: u64 = 300;
/// Ceremonies waiting at once, at most, and from one client address (anyone may ask for
/// a login challenge; see `Passkeys::begin`).
const CEREMONIES_MAX: usize = 10_000;
const CEREMONIES_PER_CLIENT: usize = 20;
const NAME_MAX: usize = 30;
const FAILED: &str = "パスキーでログインできませんでした。もう一度お試しいただくか、ログインIDとパスワードでログインしてください。";

/// The relying party and the ceremonies under way.
pub struct Passkeys {
    webauthn: Webauthn,
    ceremonies: Mutex<HashMap<String, Ceremony>>,
}

struct Ceremony {
    step: Step,
    until: Instant,
    client: Option<IpAddr>,
}

/// Whose share a ceremony counts against: an IPv4 address, or an IPv6 /64 (one
/// subscriber's whole prefix).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

enum Step {
    Register {
        member_id: i64,
        name: String,
        state: PasskeyRegistration,
    },
    Login(DiscoverableAuthentication),
}

impl Passkeys {
    /// The relying party of `public_url`: its host is the RP ID. None when the host is
    /// no domain name (an IP address): browsers refuse passkeys there.
    pub fn new(public_url: &str, site_name: &str) -> Option<Passkeys> {
        let origin = Url::parse(public_url).ok()?;
        let host = origin.domain()?.to_string();
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .ok()?
            .rp_name(site_name)
            .build()
            .ok()?;
        Some(Passkeys {
            webauthn,
            ceremonies: Mutex::new(HashMap::new()),
        })
    }

    /// Keeps the server's half of a new ceremony. A full store (or a client address with
    /// its share) drops its oldest instead of refusing: flooding it costs others a retry
    /// at worst, never a refusal.
    fn begin(&self, client: Option<IpAddr>, step: Step) -> String {
        let mut ceremonies = self.ceremonies.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        ceremonies.retain(|_, c| c.until > now);
        let client = client.map(client_key);
        let oldest = |ceremonies: &HashMap<String, Ceremony>, of_client: bool| {
            ceremonies
                .iter()
                .filter(|(_, c)| !of_client || c.client == client)
                .min_by_key(|(_, c)| c.until)
                .map(|(id, _)| id.clone())
        };
        let of_client = match client {
            Some(_) => ceremonies.values().filter(|c| c.client == client).count(),
            None => 0,
        };
        let evict = if of_client >= CEREMONIES_PER_CLIENT {
            oldest(&ceremonies, true)
        } else if ceremonies.len() >= CEREMONIES_MAX {
            oldest(&ceremonies, false)
        } else {
            None
        };
        if let Some(id) = evict {
            ceremonies.remove(&id);
        }
        let id = secrets::new_token();
        let until = now + Duration::from_secs(CEREMONY_SECS);
        ceremonies.insert(
            id.clone(),
            Ceremony {
                step,
                until,
                client,
            },
        );
        id
    }

    /// The ceremony behind this browser's cookie, taken: each is answered once.
    fn take(&self, req: &Req) -> Option<Step> {
        let id = req.cookie(COOKIE)?;
        let mut ceremonies = self.ceremonies.lock().unwrap_or_else(|e| e.into_inner());
        let ceremony = ceremonies.remove(&id)?;
        (ceremony.until > Instant::now()).then_some(ceremony.step)
    }
}

impl AppState {
    fn passkeys(&self) -> Result<&Passkeys> {
        self.passkeys.as_ref().ok_or(Error::NotFound)
    }
}

fn json(status: StatusCode, value: serde_json::Value) -> Resp {
    http::typed(status, "application/json", value.to_string())
}

fn refusal(status: StatusCode, message: &str) -> Resp {
    json(status, serde_json::json!({ "error": message }))
}

fn ceremony_cookie(state: &AppState, id: &str) -> String {
    set_cookie(COOKIE, id, "/", CEREMONY_SECS as i64, state.https())
}

#[derive(Deserialize)]
struct NewPasskeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    current_password: String,
}

/// The name a member gives a passkey, or why not.
fn check_name(name: &str) -> std::result::Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("パスキーの名前を入力してください（例：iPhone）。".into());
    }
    if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(format!(
            "パスキーの名前は{NAME_MAX}文字以内で入力してください。"
        ));
    }
    Ok(name.to_string())
}

/// `/passkeys/register/options`: the options for the browser to make a passkey.
pub async fn register_options(state: &AppState, req: &Req) -> Result<Resp> {
    let form: NewPasskeyForm = req.form(state.origin())?;
    let passkeys = state.passkeys()?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(refusal(
            StatusCode::UNAUTHORIZED,
            "もう一度ログインしてください。",
        ));
    };
    let name = match check_name(&form.name) {
        Ok(name) => name,
        Err(message) => return Ok(refusal(StatusCode::UNPROCESSABLE_ENTITY, &message)),
    };
    // A new way in asks for the password: a session left open, or stolen, is not
    // enough. It spends the same budget as logging in.
    let wrong = super::profile::current_password_problem(
        state,
        req,
        &member.account,
        &form.current_password,
        "",
    )
    .await?;
    if let Some(message) = wrong {
        return Ok(refusal(StatusCode::UNPROCESSABLE_ENTITY, &message));
    }
    let member_id = member.account.id;
    let fresh = *Uuid::new_v4().as_bytes();
    let (handle, records) = state
        .db
        .write(move |tx| {
            let handle = stored::ensure_webauthn_id(tx, member_id, &fresh)?;
            Ok((handle, stored::records_of(tx, member_id)?))
        })
        .await?;
    let handle = Uuid::from_slice(&handle).map_err(|e| Error::Task(e.to_string()))?;
    let exclude = records
        .iter()
        .filter_map(|r| serde_json::from_str::<Passkey>(r).ok())
        .map(|p| p.cred_id().clone())
        .collect();
    let login_id = member.account.login_id.clone().unwrap_or_default();
    let display = member
        .account
        .nickname
        .clone()
        .unwrap_or_else(|| login_id.clone());
    let (options, registration) = passkeys
        .webauthn
        .start_passkey_registration(handle, &login_id, &display, Some(exclude))
        .map_err(|e| Error::Task(format!("passkey options: {e}")))?;
    let mut body = serde_json::to_value(&options).map_err(|e| Error::Task(e.to_string()))?;
    // Logging in with the passkey alone needs one the browser finds by itself (a
    // discoverable credential); the checks of the answer are the same.
    body["publicKey"]["authenticatorSelection"]["residentKey"] = "required".into();
    body["publicKey"]["authenticatorSelection"]["requireResidentKey"] = true.into();
    let id = passkeys.begin(
        req.client_ip,
        Step::Register {
            member_id,
            name,
            state: registration,
        },
    );
    Ok(with_cookie(
        json(StatusCode::OK, body),
        &ceremony_cookie(state, &id),
    ))
}

#[derive(Deserialize)]
struct CredentialForm {
    #[serde(default)]
    credential: String,
}

/// `/passkeys/register/finish`: the browser's new passkey, checked and stored.
pub async fn register_finish(state: &AppState, req: &Req) -> Result<Resp> {
    let form: CredentialForm = req.form(state.origin())?;
    let passkeys = state.passkeys()?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(refusal(
            StatusCode::UNAUTHORIZED,
            "もう一度ログインしてください。",
        ));
    };
    let again = "パスキーを登録できませんでした。もう一度お試しください。";
    let Some(Step::Register {
        member_id,
        name,
        state: registration,
    }) = passkeys.take(req)
    else {
        return Ok(refusal(StatusCode::BAD_REQUEST, again));
    };
    if member_id != member.account.id {
        return Ok(refusal(StatusCode::BAD_REQUEST, again));
    }
    let Ok(credential) = serde_json::from_str::<RegisterPublicKeyCredential>(&form.credential)
    else {
        return Ok(refusal(StatusCode::BAD_REQUEST, again));
    };
    let made = match passkeys
        .webauthn
        .finish_passkey_registration(&credential, &registration)
    {
        Ok(made) => made,
        Err(e) => {
            tracing::info!(error = %e, "passkey registration refused");
            return Ok(refusal(StatusCode::BAD_REQUEST, again));
        }
    };
    let record = serde_json::to_string(&made).map_err(|e| Error::Task(e.to_string()))?;
    let credential_id = made.cred_id().to_vec();
    let (from, client_ip) = (state.config.mail.from.clone(), req.client_ip());
    state
        .db
        .write(move |tx| {
            let new = NewPasskey {
                member_id,
                credential_id: &credential_id,
                passkey_json: &record,
                name: &name,
            };
            passkey::add(tx, &new, &from, client_ip.as_deref(), db::now())
        })
        .await?;
    let done = json(
        StatusCode::OK,
        serde_json::json!({ "redirect": "/profile?done=passkey_added" }),
    );
    Ok(with_cookie(done, &clear_cookie(COOKIE, "/", state.https())))
}

#[derive(Deserialize)]
struct RemoveForm {
    #[serde(default)]
    id: String,
}

/// `/passkeys/remove`: a plain form, no script needed.
pub async fn remove(state: &AppState, req: &Req) -> Result<Resp> {
    let form: RemoveForm = req.form(state.origin())?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let id: i64 = form.id.parse().map_err(|_| Error::NotFound)?;
    let (member_id, from, client_ip) = (
        member.account.id,
        state.config.mail.from.clone(),
        req.client_ip(),
    );
    let removed = state
        .db
        .write(move |tx| passkey::remove(tx, member_id, id, &from, client_ip.as_deref(), db::now()))
        .await?;
    if !removed {
        return Err(Error::NotFound);
    }
    Ok(redirect("/profile?done=passkey_removed"))
}

/// `/login/passkey/options`: a challenge for any passkey of this site.
pub async fn login_options(state: &AppState, req: &Req) -> Result<Resp> {
    let _: Vec<(String, String)> = req.form(state.origin())?;
    let passkeys = state.passkeys()?;
    let (mut options, authentication) = passkeys
        .webauthn
        .start_discoverable_authentication()
        .map_err(|e| Error::Task(format!("passkey options: {e}")))?;
    // Asked for by a button, not offered in the login field's autofill.
    options.mediation = None;
    let id = passkeys.begin(req.client_ip, Step::Login(authentication));
    let body = serde_json::to_value(&options).map_err(|e| Error::Task(e.to_string()))?;
    Ok(with_cookie(
        json(StatusCode::OK, body),
        &ceremony_cookie(state, &id),
    ))
}

/// `/login/passkey/finish`: the signed challenge; the member it names is logged in.
pub async fn login_finish(state: &AppState, req: &Req) -> Result<Resp> {
    let form: CredentialForm = req.form(state.origin())?;
    let passkeys = state.passkeys()?;
    let Some(Step::Login(authentication)) = passkeys.take(req) else {
        return Ok(refusal(StatusCode::UNAUTHORIZED, FAILED));
    };
    let Ok(credential) = serde_json::from_str::<PublicKeyCredential>(&form.credential) else {
        return Ok(refusal(StatusCode::UNAUTHORIZED, FAILED));
    };
    let Ok((handle, credential_id)) = passkeys
        .webauthn
        .identify_discoverable_authentication(&credential)
    else {
        return Ok(refusal(StatusCode::UNAUTHORIZED, FAILED));
    };
    let (handle, credential_id) = (handle.as_bytes().to_vec(), credential_id.to_vec());
    let found = state
        .db
        .read(move |c| {
            let Some(member_id) = stored::member_by_webauthn_id(c, &handle)? else {
                return Ok(None);
            };
            let Some((id, owner, record)) = stored::by_credential(c, &credential_id)? else {
                return Ok(None);
            };
            let Some(account) = members::account(c, member_id)? else {
                return Ok(None);
            };
            // The passkey must be the member's the user handle names.
            Ok((owner == member_id).then_some((id, record, account)))
        })
        .await?;
    let Some((id, record, account)) = found else {
        return Ok(refusal(StatusCode::UNAUTHORIZED, FAILED));
    };
    let Ok(mut key) = serde_json::from_str::<Passkey>(&record) else {
        return Ok(refusal(StatusCode::UNAUTHORIZED, FAILED));
    };
    let result = match passkeys.webauthn.finish_discoverable_authentication_v2(
        &credential,
        authentication,
        &key,
    ) {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            // Its signature counter went back: a copy of the passkey may be in use.
            tracing::warn!(
                passkey = id,
                member = account.id,
                "passkey refused: its counter went back (a cloned authenticator?)"
            );
            let (member_id, client_ip) = (account.id, req.client_ip());
            let detail = format!("passkey {id}: counter went back");
            state
                .db
                .write(move |tx| {
                    let ip = client_ip.as_deref();
                    db::audit(tx, AuditEvent::PasskeyRefused, Some(member_id), ip, &detail)
                })
                .await?;
            return Ok(refusal(StatusCode::UNAUTHORIZED, FAILED));
        }
        Err(e) => {
            tracing::info!(error = %e, "passkey login refused");
            return Ok(refusal(StatusCode::UNAUTHORIZED, FAILED));
        }
    };
    if account.registered_at.is_none() || account.disabled_at.is_some() {
        return Ok(refusal(StatusCode::FORBIDDEN, FAILED));
    }
    key.update_credential(&result);
    let record = serde_json::to_string(&key).map_err(|e| Error::Task(e.to_string()))?;
    state
        .db
        .write(move |tx| stored::used(tx, id, &record, db::now()))
        .await?;
    let session = member::start(state, account.id, Outcome::Passkey, req.client()).await?;
    let done = json(StatusCode::OK, serde_json::json!({ "redirect": "/home" }));
    let done = with_cookie(done, &clear_cookie(COOKIE, "/", state.https()));
    Ok(with_cookie(done, &session))
}

/// Where the passkey forms lead without script: what is needed, and the way on.
pub fn without_script(state: &AppState, to_profile: bool) -> Resp {
    let (next, trouble) = match to_profile {
        true => (("/profile", "プロフィール設定へ戻る"), Trouble::PROFILE),
        false => (("/", "ログイン画面へ"), Trouble::LOGIN),
    };
    let page = ErrorPage {
        title: "パスキーを使うには",
        message: "パスキーを使うには、パスキーに対応したブラウザで、JavaScriptを有効にしてください。ログインIDとパスワード（暗証キー）でのログインは、いつでもご利用いただけます。",
        next: Some(next),
        trouble,
    };
    error_response(state, StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login_step(passkeys: &Passkeys) -> Step {
        let (_, state) = passkeys
            .webauthn
            .start_discoverable_authentication()
            .unwrap();
        Step::Login(state)
    }

    #[test]
    fn a_flood_from_one_prefix_drops_its_own_oldest_not_anyone_elses() {
        let passkeys = Passkeys::new("http://localhost:8080", "テスト").unwrap();
        assert!(
            Passkeys::new("http://127.0.0.1:8080", "テスト").is_none(),
            "no passkeys on an address"
        );
        let member: IpAddr = "192.0.2.10".parse().unwrap();
        let own = passkeys.begin(Some(member), login_step(&passkeys));
        let mut flood = Vec::new();
        for n in 0..CEREMONIES_PER_CLIENT + 5 {
            // One /64, many addresses.
            let ip: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
            flood.push(passkeys.begin(Some(ip), login_step(&passkeys)));
        }
        let kept = passkeys.ceremonies.lock().unwrap();
        assert!(kept.contains_key(&own), "another client's ceremony stays");
        assert!(!kept.contains_key(&flood[0]), "the flood's oldest went");
        assert!(kept.contains_key(flood.last().unwrap()));
        assert_eq!(kept.len(), 1 + CEREMONIES_PER_CLIENT);
    }
}
