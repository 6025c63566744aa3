//! Asking for a sign-up mail, by empty mail (Procedure B) or web form (Procedure A):
//! both come here, are recorded, rate-limited and, if allowed, queued for the outbox.

use rusqlite::Connection;

use crate::address::Address;
use crate::config::LimitsConfig;
use crate::db::{self, requests};
use crate::error::Result;
use crate::mail::{self, OutgoingMail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Mail,
    Web,
}

/// One request for a sign-up mail.
pub struct LinkRequest<'a> {
    pub via: Via,
    /// Where the mail would go, as given (the envelope sender, or the form's address).
    pub address: &'a str,
    /// The member's own address, for per-IP limits (None behind a relay that named none).
    pub client_ip: Option<&'a str>,
    /// For mail: the host that connected to us.
    pub smtp_client_ip: Option<&'a str>,
    /// For mail: the member's Message-ID, so the reply threads under it.
    pub message_id: Option<&'a str>,
    pub size: Option<usize>,
    /// Why no reply may be sent at all (RFC 3834 and the like), decided by the caller.
    pub suppressed: Option<&'static str>,
}

/// What became of a request; recorded in `signup_requests.outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Queued,
    NoReply(&'static str),
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Queued => "queued",
            Outcome::NoReply(reason) => reason,
        }
    }
}

/// Records the request and queues the mail unless suppressed or over a limit. Runs in
/// the caller's transaction, so the record and the queued mail are stored together.
pub fn request_link(
    conn: &Connection,
    limits: &LimitsConfig,
    from: &str,
    request: &LinkRequest,
) -> Result<Outcome> {
    let now = db::now();
    let address = Address::parse(request.address);
    let address_key = match &address {
        Ok(address) => address.key(),
        Err(_) => request.address.to_ascii_lowercase(),
    };
    let outcome = match (request.suppressed, &address) {
        (Some(reason), _) => Outcome::NoReply(reason),
        (None, Err(_)) => Outcome::NoReply("invalid_address"),
        (None, Ok(_)) => match over_limit(conn, limits, &address_key, request.client_ip, now)? {
            Some(reason) => Outcome::NoReply(reason),
            None => Outcome::Queued,
        },
    };
    requests::insert(
        conn,
        &requests::NewRequest {
            via: match request.via {
                Via::Mail => "mail",
                Via::Web => "web",
            },
            address: request.address,
            address_key: &address_key,
            client_ip: request.client_ip,
            smtp_client_ip: request.smtp_client_ip,
            message_id: request.message_id,
            size: request.size,
            outcome: outcome.as_str(),
        },
        now,
    )?;
    if let (Outcome::Queued, Ok(address)) = (outcome, &address) {
        let mail = OutgoingMail::SignupLink {
            in_reply_to: request.message_id.map(str::to_string),
            auto_replied: request.via == Via::Mail,
        };
        mail::queue(conn, &mail, &address.to_string(), from, now)?;
    }
    Ok(outcome)
}

fn over_limit(
    conn: &Connection,
    limits: &LimitsConfig,
    address_key: &str,
    client_ip: Option<&str>,
    now: i64,
) -> Result<Option<&'static str>> {
    const HOUR: i64 = 3600;
    const DAY: i64 = 24 * HOUR;
    let (per_hour, per_day) = (
        limits.signup_per_address_hour,
        limits.signup_per_address_day,
    );
    if requests::queued_for_address(conn, address_key, now - HOUR, per_hour)? >= per_hour
        || requests::queued_for_address(conn, address_key, now - DAY, per_day)? >= per_day
    {
        return Ok(Some("rate_limited_address"));
    }
    let (per_hour, per_day) = (limits.signup_per_ip_hour, limits.signup_per_ip_day);
    if let Some(ip) = client_ip
        && (requests::queued_for_ip(conn, ip, now - HOUR, per_hour)? >= per_hour
            || requests::queued_for_ip(conn, ip, now - DAY, per_day)? >= per_day)
    {
        return Ok(Some("rate_limited_ip"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn ask(db: &Db, limits: &LimitsConfig, address: &str, ip: &str) -> Outcome {
        let request = LinkRequest {
            via: Via::Web,
            address,
            client_ip: Some(ip),
            smtp_client_ip: None,
            message_id: None,
            size: None,
            suppressed: None,
        };
        db.call_blocking(|c| request_link(c, limits, "noreply@example.jp", &request))
            .unwrap()
    }

    #[test]
    fn an_address_gets_three_mails_an_hour_then_none() {
        let db = Db::open_in_memory().unwrap();
        let limits = LimitsConfig::default();
        for _ in 0..3 {
            assert_eq!(
                ask(&db, &limits, "taro@example.jp", "192.0.2.1"),
                Outcome::Queued
            );
        }
        assert_eq!(
            ask(&db, &limits, "TARO@example.jp", "192.0.2.2"),
            Outcome::NoReply("rate_limited_address")
        );
        assert_eq!(
            ask(&db, &limits, "hanako@example.jp", "192.0.2.1"),
            Outcome::Queued
        );
    }

    #[test]
    fn one_client_cannot_mail_many_addresses() {
        let db = Db::open_in_memory().unwrap();
        let limits = LimitsConfig {
            signup_per_ip_hour: 2,
            ..LimitsConfig::default()
        };
        assert_eq!(
            ask(&db, &limits, "a@example.jp", "192.0.2.9"),
            Outcome::Queued
        );
        assert_eq!(
            ask(&db, &limits, "b@example.jp", "192.0.2.9"),
            Outcome::Queued
        );
        assert_eq!(
            ask(&db, &limits, "c@example.jp", "192.0.2.9"),
            Outcome::NoReply("rate_limited_ip")
        );
        assert_eq!(
            ask(&db, &limits, "c@example.jp", "192.0.2.10"),
            Outcome::Queued
        );
    }
}
