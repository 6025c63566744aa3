//! Composing outgoing mail: one template per mail under `templates/mail/` (its first
//! line is `Subject: …`), headers every mail carries, and the secrets a mail brings.

use std::sync::Arc;

use lettre::Message;
use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use serde::Serialize;
use tera::Tera;

use crate::address::Address;
use crate::config::Config;
use crate::db::{self, Db, links, outbox::QueuedMail};
use crate::error::{Error, Result};
use crate::outbox::OutgoingMail;
use crate::token;

/// Renders and builds mails; shared by the outbox worker.
pub struct Mailer {
    pub tera: Arc<Tera>,
    pub config: Arc<Config>,
    pub public_url: String,
}

#[derive(Serialize)]
struct SignupLinkMail<'a> {
    site_name: &'a str,
    society: &'a str,
    contact_phone: &'a str,
    contact_email: &'a str,
    url: String,
    signup_url: String,
    ttl: String,
}

impl Mailer {
    /// Builds the mail for a queued row, making any secret it carries now.
    pub async fn compose(&self, db: &Db, queued: &QueuedMail) -> Result<Message> {
        let mail: OutgoingMail =
            serde_json::from_str(&queued.params).map_err(|e| Error::Mail(e.to_string()))?;
        match mail {
            OutgoingMail::SignupLink {
                in_reply_to,
                auto_replied,
            } => {
                let ttl = self.config.policy.signup_link_ttl;
                let recipient = queued.recipient.clone();
                let token = db
                    .call(move |c| {
                        let token = token::new_token();
                        links::insert(
                            c,
                            links::Purpose::Signup,
                            &token::hash(&token),
                            &recipient,
                            db::now(),
                            ttl.as_secs(),
                        )?;
                        Ok(token)
                    })
                    .await?;
                let site = &self.config.site;
                let context = SignupLinkMail {
                    site_name: &site.name,
                    society: &site.society,
                    contact_phone: &site.contact_phone,
                    contact_email: &site.contact_email,
                    url: format!("{}/signup/link/{token}", self.public_url),
                    signup_url: format!("{}/signup", self.public_url),
                    ttl: ttl.japanese(),
                };
                let text = self.tera.render(
                    "mail/signup_link.txt",
                    &tera::Context::from_serialize(&context)?,
                )?;
                let auto = if auto_replied {
                    "auto-replied"
                } else {
                    "auto-generated"
                };
                self.build(queued, &text, auto, in_reply_to.as_deref())
            }
        }
    }

    fn build(
        &self,
        queued: &QueuedMail,
        text: &str,
        auto_submitted: &str,
        in_reply_to: Option<&str>,
    ) -> Result<Message> {
        let (subject, body) = split_subject(text)?;
        let bad = |e: &dyn std::fmt::Display| Error::Mail(e.to_string());
        let from = Address::parse(&self.config.mail.from).map_err(|e| bad(&e))?;
        let to = Address::parse(&queued.recipient).map_err(|e| bad(&e))?;
        let (from, to) = (
            from.to_lettre().map_err(|e| bad(&e))?,
            to.to_lettre().map_err(|e| bad(&e))?,
        );
        // Set explicitly: lettre cannot re-derive it from a quoted carrier address.
        let envelope = Envelope::new(Some(from.clone()), vec![to.clone()]).map_err(|e| bad(&e))?;
        let mut builder = Message::builder()
            .envelope(envelope)
            .from(Mailbox::new(Some(self.config.site.name.clone()), from))
            .to(Mailbox::new(None, to))
            .subject(subject)
            .message_id(Some(queued.message_id.clone()))
            .date_now()
            .header(AutoSubmitted(auto_submitted.to_string()))
            .header(ContentType::TEXT_PLAIN);
        if let Some(parent) = in_reply_to {
            builder = builder
                .in_reply_to(parent.to_string())
                .references(parent.to_string());
        }
        builder.body(body.to_string()).map_err(|e| bad(&e))
    }
}

/// A rendered mail template's first line is `Subject: …`; the body follows a blank line.
fn split_subject(text: &str) -> Result<(&str, &str)> {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let subject = first
        .strip_prefix("Subject:")
        .ok_or_else(|| Error::Mail("mail template must start with a Subject: line".into()))?;
    Ok((subject.trim(), rest.trim_start_matches(['\r', '\n'])))
}

/// `Auto-Submitted` (RFC 3834), so that vacation responders do not answer our mail.
#[derive(Debug, Clone)]
struct AutoSubmitted(String);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_comes_from_the_first_line() {
        let (subject, body) = split_subject("Subject: 利用登録手続きのご案内\n\n本文\n").unwrap();
        assert_eq!(subject, "利用登録手続きのご案内");
        assert_eq!(body, "本文\n");
        assert!(split_subject("本文だけ").is_err());
    }
}
