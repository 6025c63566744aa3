//! The member's addresses: add (confirmed by its owner through a mailed link), remove
//! (never the last), and the confirmation page.

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::super::http::{clear_cookie, redirect, set_cookie, with_cookie};
use super::super::{AppState, ErrorPage, Req, Resp, Trouble, error_response, member};
use super::{Field, MAX_ADDRESSES, refuse};
use crate::address::Address;
use crate::db::{self, links, members};
use crate::error::Result;
use crate::flows::address;
use crate::secrets::SecretKind;

/// Confirmation mails one member may send in an hour (each goes to an address not yet
/// proven to be theirs, so this is what keeps the form from mailing strangers).
const VERIFY_MAILS_PER_HOUR: u32 = 5;
const TOO_MANY_CONFIRMATIONS: &str = "確認メールを続けて送信したため、しばらく追加できません。1時間ほどたってから、もう一度お試しください。";

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
}

/// Sends the confirmation link to a new address; it is added when its owner confirms.
pub async fn add_email(state: &AppState, req: &Req) -> Result<Resp> {
    let form: EmailForm = req.form(state.origin())?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let member_id = member.account.id;
    let emails = state
        .db
        .read(move |c| members::emails(c, member_id))
        .await?;
    let error = match Address::parse_typed(&form.email) {
        Err(e) => Some(e.japanese().to_string()),
        Ok(_) if emails.len() >= MAX_ADDRESSES => Some(format!(
            "メールアドレスは最大{MAX_ADDRESSES}つまで登録できます。追加するには、先にほかのアドレスを削除してください。"
        )),
        Ok(address)
            if emails
                .iter()
                .any(|e| e.eq_ignore_ascii_case(&address.to_string())) =>
        {
            Some("このメールアドレスは既に登録されています。".to_string())
        }
        Ok(_) if verification_mails_last_hour(state, member_id).await? >= VERIFY_MAILS_PER_HOUR => {
            Some(TOO_MANY_CONFIRMATIONS.to_string())
        }
        Ok(_) => None,
    };
    if let Some(error) = error {
        return refuse(state, req, &member, Field::Email, form.email, error).await;
    }
    let new_address = Address::parse_typed(&form.email)
        .expect("checked above")
        .to_string();
    let (from, client_ip) = (state.config.mail.from.clone(), req.client_ip());
    // Counted again where the mail is queued: of parallel requests, no more than the
    // limit get one.
    let asked = state
        .db
        .write(move |tx| {
            let (ip, limit) = (client_ip.as_deref(), VERIFY_MAILS_PER_HOUR);
            address::ask_to_add(tx, member_id, &new_address, limit, &from, ip, db::now())
        })
        .await?;
    if !asked {
        let error = TOO_MANY_CONFIRMATIONS.to_string();
        return refuse(state, req, &member, Field::Email, form.email, error).await;
    }
    Ok(redirect("/profile?done=email_sent"))
}

async fn verification_mails_last_hour(state: &AppState, member_id: i64) -> Result<u32> {
    let since = db::now() - 3600;
    state
        .db
        .read(move |c| address::confirmations_since(c, member_id, since))
        .await
}

#[derive(serde::Serialize)]
struct RemovePage<'a> {
    csrf: &'a str,
    address: String,
}

/// 「削除」 asks first: the page that names the address and asks to confirm.
pub async fn remove_email_form(state: &AppState, req: &Req) -> Result<Resp> {
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let member_id = member.account.id;
    let emails = state
        .db
        .read(move |c| members::emails(c, member_id))
        .await?;
    // `n` counts from 1 in the list the profile page showed.
    let chosen = req.query_param("n").and_then(|n| n.parse::<usize>().ok());
    match chosen.and_then(|n| emails.get(n.wrapping_sub(1))) {
        Some(address) if emails.len() > 1 => state.page(
            "email_remove.html",
            &RemovePage {
                csrf: &req.csrf,
                address: address.clone(),
            },
        ),
        _ => Ok(redirect("/profile")),
    }
}

/// The member's only address cannot go.
async fn refuse_last_address(state: &AppState, req: &Req, member: &member::Member) -> Result<Resp> {
    let error = "最後のメールアドレスは削除できません。先にほかのアドレスを追加してください。";
    refuse(
        state,
        req,
        member,
        Field::Email,
        String::new(),
        error.into(),
    )
    .await
}

pub async fn remove_email(state: &AppState, req: &Req) -> Result<Resp> {
    let form: EmailForm = req.form(state.origin())?;
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let member_id = member.account.id;
    let emails = state
        .db
        .read(move |c| members::emails(c, member_id))
        .await?;
    if emails.len() <= 1 {
        return refuse_last_address(state, req, &member).await;
    }
    let Some(gone) = emails
        .into_iter()
        .find(|e| e.eq_ignore_ascii_case(form.email.trim()))
    else {
        return Ok(redirect("/profile"));
    };
    let (from, client_ip) = (state.config.mail.from.clone(), req.client_ip());
    let removed = state
        .db
        .write(move |tx| {
            let ip = client_ip.as_deref();
            address::remove(tx, member_id, &gone, &from, ip, db::now())
        })
        .await?;
    if removed == address::Removed::LastAddress {
        return refuse_last_address(state, req, &member).await;
    }
    Ok(redirect("/profile?done=email_removed"))
}

#[derive(Serialize)]
struct ConfirmPage<'a> {
    csrf: &'a str,
    address: String,
    done: bool,
}

/// Holds a confirmation link's token after the link was opened, so that it leaves the
/// address bar (and any `Referer`) at once, as the other mailed links do.
const LINK_COOKIE: &str = "km_address";
const LINK_PATH: &str = "/profile/email";

/// GET of the mailed link: trades the token for a cookie, then the page with a button
/// (a scanner's visit adds nothing).
pub async fn open_email_link(state: &AppState, token: &str) -> Result<Resp> {
    let link = match usable_verify_link(state, token).await? {
        Ok(link) => link,
        Err(problem) => return Ok(problem),
    };
    let cookie = set_cookie(
        LINK_COOKIE,
        token,
        LINK_PATH,
        link.expires_at - db::now(),
        state.https(),
    );
    Ok(with_cookie(redirect("/profile/email/confirm"), &cookie))
}

/// The link this browser opened last.
async fn opened_link(state: &AppState, req: &Req) -> Result<Result<links::Link, Resp>> {
    let token = req.cookie(LINK_COOKIE).unwrap_or_default();
    usable_verify_link(state, &token).await
}

pub async fn confirm_email_form(state: &AppState, req: &Req) -> Result<Resp> {
    match opened_link(state, req).await? {
        Ok(link) => state.page(
            "email_confirm.html",
            &ConfirmPage {
                csrf: &req.csrf,
                address: link.address,
                done: false,
            },
        ),
        Err(problem) => Ok(problem),
    }
}

pub async fn confirm_email(state: &AppState, req: &Req) -> Result<Resp> {
    let _: Vec<(String, String)> = req.form(state.origin())?;
    let link = match opened_link(state, req).await? {
        Ok(link) => link,
        Err(problem) => return Ok(problem),
    };
    let (from, client_ip, added_address) = (
        state.config.mail.from.clone(),
        req.client_ip(),
        link.address.clone(),
    );
    let Some(member_id) = link.member_id else {
        return Ok(verify_problem(state));
    };
    let added = state
        .db
        .write(move |tx| {
            let ip = client_ip.as_deref();
            address::confirm(tx, link.id, member_id, &added_address, &from, ip, db::now())
        })
        .await?;
    if !added {
        let page = ErrorPage {
            title: "メールアドレスを登録できませんでした",
            message: "登録できるメールアドレスは最大3つまでです。プロフィール設定でほかのアドレスを削除してから、もう一度追加してください。",
            next: Some(("/profile", "プロフィール設定へ")),
            trouble: Trouble::PROFILE,
        };
        return Ok(error_response(state, StatusCode::CONFLICT, &page));
    }
    let cookie = clear_cookie(LINK_COOKIE, LINK_PATH, state.https());
    Ok(with_cookie(redirect("/profile/email/added"), &cookie))
}

/// After the button: done (on any device; logging in is not needed).
pub fn email_added(state: &AppState, req: &Req) -> Result<Resp> {
    let page = ConfirmPage {
        csrf: &req.csrf,
        address: String::new(),
        done: true,
    };
    state.page("email_confirm.html", &page)
}

fn verify_problem(state: &AppState) -> Resp {
    let page = ErrorPage {
        title: "URLが無効です",
        message: "このURLは正しくないか、使用済みか、有効期限が切れています。お手数ですが、プロフィール設定からメールアドレスの追加をやり直してください。",
        next: Some(("/profile", "プロフィール設定へ")),
        trouble: Trouble::PROFILE,
    };
    error_response(state, StatusCode::GONE, &page)
}

async fn usable_verify_link(state: &AppState, token: &str) -> Result<Result<links::Link, Resp>> {
    let hash = state.key.hash(SecretKind::Link, token);
    let link = state
        .db
        .read(move |c| links::find_by_token_hash(c, links::Purpose::EmailVerify, &hash))
        .await?;
    Ok(match link {
        Some(link) if link.state(db::now()) == links::LinkState::Usable => Ok(link),
        _ => Err(verify_problem(state)),
    })
}
