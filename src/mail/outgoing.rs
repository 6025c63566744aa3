//! What a queued mail is (`OutgoingMail`, stored as JSON in `outbox.params`) and how a
//! flow queues one (`queue`), in its own transaction; the outbox sends it later.

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::db::outbox as stored;
use crate::error::{Error, Result};
use crate::secrets;

/// What a queued mail is; stored as JSON in `outbox.params` (never with a secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutgoingMail {
    /// 「利用登録手続きのご案内」 with a fresh sign-up link.
    SignupLink {
        in_reply_to: Option<String>,
        /// An answer to the member's mail (RFC 3834 `auto-replied`) rather than to a form.
        auto_replied: bool,
    },
    /// 「暗証キーのご案内」: a one-time key for a login attempt.
    LoginKey { attempt_id: i64 },
    /// 「パスワード再発行のご案内」: a link, the login ID and a temporary password.
    Reset { member_id: i64 },
    /// 「メールアドレス確認のご案内」: confirms an address a member is adding.
    EmailVerify { member_id: i64 },
    /// 「登録情報変更のお知らせ」: what changed, never the new value of a secret.
    ProfileChanged { change: String },
    /// 「新しいお知らせがあります」: something was published for the member; nothing
    /// personal in it.
    News,
    /// 「ログインが行われました」: when, from which browser and address.
    LoginNotice {
        at: i64,
        device: String,
        client_ip: Option<String>,
    },
}

impl OutgoingMail {
    fn kind(&self) -> &'static str {
        match self {
            OutgoingMail::SignupLink { .. } => "signup_link",
            OutgoingMail::LoginKey { .. } => "login_key",
            OutgoingMail::Reset { .. } => "reset",
            OutgoingMail::EmailVerify { .. } => "email_verify",
            OutgoingMail::ProfileChanged { .. } => "profile_changed",
            OutgoingMail::LoginNotice { .. } => "login_notice",
            OutgoingMail::News => "news",
        }
    }
}

/// Queues a mail in the caller's transaction. The Message-ID is fixed now, so a retry
/// of the same mail carries the same one and receivers can tell it is not a new mail.
pub fn queue(
    conn: &Connection,
    mail: &OutgoingMail,
    recipient: &str,
    from: &str,
    now: i64,
) -> Result<i64> {
    let message_id = new_message_id(from, now);
    let params = serde_json::to_string(mail).map_err(|e| Error::Mail(e.to_string()))?;
    let bulk = matches!(mail, OutgoingMail::News);
    stored::insert(
        conn,
        mail.kind(),
        recipient,
        &params,
        &message_id,
        bulk,
        now,
    )
}

/// A fresh `<time.random@domain-of-from>`.
pub fn new_message_id(from: &str, now: i64) -> String {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!("<{}.{}@{}>", now, &secrets::new_token()[..24], domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_mail_is_stored_without_secrets_and_with_its_own_message_id() {
        let db = crate::db::Db::open_in_memory().unwrap();
        let mail = OutgoingMail::SignupLink {
            in_reply_to: Some("<a@b>".into()),
            auto_replied: true,
        };
        db.call_blocking(|c| {
            queue(c, &mail, "taro@example.jp", "noreply@example.jp", 100)?;
            queue(c, &mail, "taro@example.jp", "noreply@example.jp", 100)
        })
        .unwrap();
        let due = db
            .call_blocking(|c| stored::due(c, 100, 10, false))
            .unwrap();
        assert_eq!(due.len(), 2);
        assert_ne!(due[0].message_id, due[1].message_id);
        assert!(due[0].message_id.ends_with("@example.jp>"));
        assert_eq!(
            due[0].params,
            r#"{"kind":"signup_link","in_reply_to":"<a@b>","auto_replied":true}"#
        );
    }
}
