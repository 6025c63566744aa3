//! Procedure A: 新規利用登録, where a member asks for the sign-up mail on the web.

use serde::{Deserialize, Serialize};

use super::super::{AppState, Req, Resp};
use crate::address::Address;
use crate::error::Result;
use crate::flows::signup_request::{self as signup, LinkRequest, Via};

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
        Err(e) => {
            let page = RequestPage {
                csrf: &req.csrf,
                email: form.email,
                error: Some(e.japanese()),
            };
            return state.page("signup_request.html", &page);
        }
    };
    let (config, client_ip) = (state.config.clone(), req.client_ip());
    let shown = address.clone();
    let outcome = state
        .db
        .write(move |tx| {
            let request = LinkRequest {
                via: Via::Web,
                address: &address,
                client_ip: client_ip.as_deref(),
                smtp_client_ip: None,
                message_id: None,
                size: None,
                suppressed: None,
            };
            signup::request_link(tx, &config.limits, &config.mail.from, &request)
        })
        .await?;
    tracing::info!(
        outcome = outcome.as_str(),
        "sign-up mail requested on the web"
    );
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
