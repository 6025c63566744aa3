//! `/documents/{id}`: a member downloads a PDF of theirs (or, as the insured person, a
//! dependant's 資格情報のお知らせ). Any other id is the same 404 as one that does not
//! exist; every download is in the audit trail.

use hyper::StatusCode;
use hyper::header::{self, HeaderValue};

use super::{AppState, Req, Resp, http, member};
use crate::db::{self, AuditEvent, documents};
use crate::error::{Error, Result};

pub async fn download(state: &AppState, req: &Req, id: &str) -> Result<Resp> {
    let Some(member) = member::current(state, req).await? else {
        return Ok(member::login_first(state));
    };
    let id: i64 = id.parse().map_err(|_| Error::NotFound)?;
    let viewer = member.account.id;
    let file = state
        .db
        .read(move |c| documents::file_for(c, viewer, id))
        .await?
        .ok_or(Error::NotFound)?;
    let client_ip = req.client_ip();
    state
        .db
        .write(move |tx| {
            let detail = format!("document {id}");
            db::audit(
                tx,
                AuditEvent::DocumentDownloaded,
                Some(viewer),
                client_ip.as_deref(),
                &detail,
            )
        })
        .await?;
    let name = file_name(&file.date, &file.title);
    let mut response = http::typed(StatusCode::OK, "application/pdf", file.pdf);
    let disposition = format!(
        "attachment; filename=\"document-{id}.pdf\"; filename*=UTF-8''{}",
        percent_encode(&name)
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `2026-11-01_資格情報のお知らせ.pdf`: what the member's device saves it as, with
/// nothing in it a file system would refuse.
fn file_name(date: &str, title: &str) -> String {
    let title: String = title
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    format!("{date}_{title}.pdf")
}

/// RFC 8187's encoding of a header parameter: UTF-8, every byte outside `attr-char`
/// as %XX.
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte);
        match keep {
            true => out.push(byte as char),
            false => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_saved_name_is_the_date_and_title_encoded_for_the_header() {
        let name = file_name("2026-11-01", "資格情報のお知らせ/山田");
        assert_eq!(name, "2026-11-01_資格情報のお知らせ_山田.pdf");
        let encoded = percent_encode("a b資.pdf");
        assert_eq!(encoded, "a%20b%E8%B3%87.pdf");
    }
}
