//! Composing outgoing mail: one template per mail under `templates/mail/` (its first
//! line is `Subject: …`), one small function per mail, the headers every mail carries,
//! and the secrets a mail brings, made at the moment it is sent. What a queued mail is,
//! and queueing one: `outgoing`.

mod outgoing;

pub use outgoing::{OutgoingMail, new_message_id, queue};

use std::sync::Arc;

use crate::templates::Templates;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::Body;
use lettre::message::Mailbox;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use serde::Serialize;

use crate::address::Address;
use crate::charset;
use crate::config::{Charset, Config};
use crate::db::{self, Db, links, login, members, outbox::QueuedMail};
use crate::error::{Error, Result};
use crate::jst;
use crate::secrets::{self, Minted, SecretKind};

/// Renders and builds mails; shared by the outbox worker.
pub struct Mailer {
    /// What link tokens and 暗証キー are hashed under.
    pub key: Arc<crate::secrets::ServerKey>,
    pub templates: Arc<Templates>,
    pub config: Arc<Config>,
    pub public_url: String,
    /// Signs every mail when a key is configured (`[mail] dkim_key`).
    pub dkim: Option<crate::dkim::Signer>,
}

/// What a queued row becomes.
pub enum Composed {
    Mail(Message),
    /// Nothing to send any more (the login attempt ended, the member was disabled…).
    Obsolete(&'static str),
}

/// How a mail relates to others: an answer to a member's mail (RFC 3834
/// `auto-replied`, threaded under it) or a mail of our own (`auto-generated`). Set
/// before signing: nothing may change a header after DKIM has signed it.
struct Threading<'a> {
    in_reply_to: Option<&'a str>,
    auto_submitted: &'static str,
}

impl Threading<'_> {
    const NEW: Threading<'static> = Threading {
        in_reply_to: None,
        auto_submitted: "auto-generated",
    };
}

/// What every mail template may use, besides its own fields.
#[derive(Serialize)]
struct Common<'a> {
    site_name: &'a str,
    society: &'a str,
    contact_phone: &'a str,
    contact_email: &'a str,
    portal_url: &'a str,
    /// The domain members allow in their carrier's spam settings.
    mail_domain: &'a str,
}

impl Mailer {
    /// Builds the mail for a queued row, making any secret it carries now.
    /// With `[mail] charset = "iso-2022-jp"`, every mail template (rendered with sample
    /// values, as the society may have changed its wording) must be writable in
    /// ISO-2022-JP: refused at start, by name, if not.
    pub fn check_charset(&self) -> Result<()> {
        if self.config.mail.charset != Charset::Iso2022Jp {
            return Ok(());
        }
        let site = &self.config.site;
        let sample = tera::Context::from_serialize(serde_json::json!({
            "site_name": site.name, "society": site.society, "contact_phone": site.contact_phone,
            "contact_email": site.contact_email, "portal_url": self.public_url,
            "mail_domain": self.config.mail.from_domain(), "url": self.public_url,
            "signup_url": self.public_url, "ttl": "3時間", "key": "123456",
            "login_id": "taroyamada", "temp_password": "abcdefgh12",
            "change": "ニックネーム", "at": jst::datetime(db::now()),
            "device": "Safari（iPhone）", "client_ip": "192.0.2.1",
        }))?;
        let loaded = self.templates.get();
        for name in crate::templates::mail_templates() {
            let rendered = loaded.tera.render(name, &sample)?;
            charset::check_template(name, &rendered)?;
        }
        charset::check_template("[site] name", &site.name)
    }

    /// How long after being queued a mail of this kind is still worth sending, in
    /// seconds: a 暗証キー within its key's lifetime, a link within its link's. A mail
    /// past it is never sent late (the member has asked again by then, or given up).
    pub fn useful_life(&self, kind: &str) -> Option<i64> {
        let policy = &self.config.policy;
        match kind {
            "login_key" => Some(policy.login_key_ttl.as_secs()),
            "signup_link" | "email_verify" => Some(policy.signup_link_ttl.as_secs()),
            "reset" => Some(policy.reset_ttl.as_secs()),
            _ => None,
        }
    }

    pub async fn compose(&self, db: &Db, queued: &QueuedMail) -> Result<Composed> {
        let mail: OutgoingMail =
            serde_json::from_str(&queued.params).map_err(|e| Error::Mail(e.to_string()))?;
        match mail {
            OutgoingMail::SignupLink {
                in_reply_to,
                auto_replied,
            } => {
                self.signup_link(db, queued, in_reply_to.as_deref(), auto_replied)
                    .await
            }
            OutgoingMail::LoginKey { attempt_id } => self.login_key(db, queued, attempt_id).await,
            OutgoingMail::Reset { member_id } => self.reset(db, queued, member_id).await,
            OutgoingMail::EmailVerify { member_id } => {
                self.email_verify(db, queued, member_id).await
            }
            OutgoingMail::ProfileChanged { change } => {
                let context = tera::Context::from_serialize(serde_json::json!({
                    "change": change,
                    "at": jst::datetime(db::now()),
                }))?;
                self.render(queued, "mail/profile_changed.txt", context, Threading::NEW)
            }
            OutgoingMail::LoginNotice {
                at,
                device,
                client_ip,
            } => {
                let context = tera::Context::from_serialize(serde_json::json!({
                    "at": jst::datetime(at),
                    "device": device,
                    "client_ip": client_ip.as_deref().unwrap_or("不明"),
                }))?;
                self.render(queued, "mail/login_notice.txt", context, Threading::NEW)
            }
            OutgoingMail::News => {
                let context = tera::Context::new();
                self.render(queued, "mail/news.txt", context, Threading::NEW)
            }
        }
    }

    async fn signup_link(
        &self,
        db: &Db,
        queued: &QueuedMail,
        in_reply_to: Option<&str>,
        auto_replied: bool,
    ) -> Result<Composed> {
        let ttl = self.config.policy.signup_link_ttl;
        let token = mint_link(
            db,
            links::Purpose::Signup,
            self.key.mint(SecretKind::Link),
            &queued.recipient,
            None,
            ttl.as_secs(),
        )
        .await?;
        let context = tera::Context::from_serialize(serde_json::json!({
            "url": format!("{}/signup/link/{token}", self.public_url),
            "signup_url": format!("{}/signup", self.public_url),
            "ttl": ttl.japanese(),
        }))?;
        let auto = if auto_replied {
            "auto-replied"
        } else {
            "auto-generated"
        };
        self.render(
            queued,
            "mail/signup_link.txt",
            context,
            Threading {
                in_reply_to,
                auto_submitted: auto,
            },
        )
    }

    async fn login_key(&self, db: &Db, queued: &QueuedMail, attempt_id: i64) -> Result<Composed> {
        let ttl = self.config.policy.login_key_ttl;
        let (key, outbox_id) = (secrets::new_login_key(), queued.id);
        let key_hash = self.key.hash(SecretKind::LoginKey(attempt_id), &key);
        let live = db
            .write(move |c| {
                let now = db::now();
                if !login::is_open(c, attempt_id, now)? {
                    return Ok(false);
                }
                login::put_key(c, attempt_id, outbox_id, &key_hash, now + ttl.as_secs())?;
                Ok(true)
            })
            .await?;
        if !live {
            return Ok(Composed::Obsolete(
                "the login attempt ended before its key was sent",
            ));
        }
        let context = tera::Context::from_serialize(
            serde_json::json!({ "key": key, "ttl": ttl.japanese() }),
        )?;
        self.render(queued, "mail/login_key.txt", context, Threading::NEW)
    }

    async fn reset(&self, db: &Db, queued: &QueuedMail, member_id: i64) -> Result<Composed> {
        let Some(account) = db.read(move |c| members::account(c, member_id)).await? else {
            return Ok(Composed::Obsolete("no such member"));
        };
        let (Some(login_id), None) = (account.login_id.clone(), account.disabled_at) else {
            return Ok(Composed::Obsolete(
                "the member is not registered or is disabled",
            ));
        };
        let temp_password = secrets::new_temp_password();
        let plain = temp_password.clone();
        let secret_hash = self.key.temp_password_hash(&plain);
        let ttl = self.config.policy.reset_ttl;
        let recipient = queued.recipient.clone();
        let Minted {
            secret: token,
            hash,
        } = self.key.mint(SecretKind::Link);
        // One write: the old reissue links die with the new one's birth, or neither.
        db.write(move |c| {
            links::void_open(c, links::Purpose::Reset, member_id, db::now())?;
            insert_link(
                c,
                links::Purpose::Reset,
                &hash,
                &recipient,
                Some(member_id),
                Some(&secret_hash),
                ttl.as_secs(),
            )
        })
        .await?;
        let context = tera::Context::from_serialize(serde_json::json!({
            "url": format!("{}/reset/link/{token}", self.public_url),
            "login_id": login_id,
            "temp_password": temp_password,
            "ttl": ttl.japanese(),
        }))?;
        self.render(queued, "mail/reset.txt", context, Threading::NEW)
    }

    async fn email_verify(&self, db: &Db, queued: &QueuedMail, member_id: i64) -> Result<Composed> {
        let ttl = self.config.policy.signup_link_ttl;
        let token = mint_link(
            db,
            links::Purpose::EmailVerify,
            self.key.mint(SecretKind::Link),
            &queued.recipient,
            Some(member_id),
            ttl.as_secs(),
        )
        .await?;
        let context = tera::Context::from_serialize(serde_json::json!({
            "url": format!("{}/profile/email/{token}", self.public_url),
            "ttl": ttl.japanese(),
        }))?;
        self.render(queued, "mail/email_verify.txt", context, Threading::NEW)
    }

    /// `karamail send-test-mail`: a mail that shows the transport (and DKIM, SPF at the
    /// receiver) work, sent at once rather than queued.
    pub fn test_mail(&self, recipient: &str) -> Result<Message> {
        let queued = QueuedMail {
            id: 0,
            kind: "test".into(),
            recipient: recipient.to_string(),
            params: String::new(),
            message_id: new_message_id(&self.config.mail.from, db::now()),
            attempts: 0,
            created_at: db::now(),
        };
        let context =
            tera::Context::from_serialize(serde_json::json!({ "at": jst::datetime(db::now()) }))?;
        match self.render(&queued, "mail/test.txt", context, Threading::NEW)? {
            Composed::Mail(message) => Ok(message),
            Composed::Obsolete(reason) => Err(Error::Mail(reason.into())),
        }
    }

    /// Renders a mail template (with the society's details) into a message.
    fn render(
        &self,
        queued: &QueuedMail,
        template: &str,
        mut context: tera::Context,
        threading: Threading,
    ) -> Result<Composed> {
        let site = &self.config.site;
        let common = Common {
            site_name: &site.name,
            society: &site.society,
            contact_phone: &site.contact_phone,
            contact_email: &site.contact_email,
            portal_url: &self.public_url,
            mail_domain: &self.config.mail.from_domain(),
        };
        context.extend(tera::Context::from_serialize(&common)?);
        let text = self.templates.get().tera.render(template, &context)?;
        Ok(Composed::Mail(self.build(queued, &text, threading)?))
    }

    fn build(&self, queued: &QueuedMail, text: &str, threading: Threading) -> Result<Message> {
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
        let jis = match self.config.mail.charset {
            Charset::Iso2022Jp => jis_parts(&self.config.site.name, subject, body),
            Charset::Utf8 => None,
        };
        if self.config.mail.charset == Charset::Iso2022Jp && jis.is_none() {
            tracing::warn!(
                outbox_id = queued.id,
                "mail text has characters ISO-2022-JP cannot write; sent in UTF-8"
            );
        }
        let from_name = format!("{} <{from}>", self.config.site.name);
        let mut builder = Message::builder()
            .envelope(envelope)
            .from(Mailbox::new(
                Some(self.config.site.name.clone()),
                from.clone(),
            ))
            .subject(subject)
            .to(Mailbox::new(None, to))
            .message_id(Some(queued.message_id.clone()))
            .date_now()
            .header(AutoSubmitted(threading.auto_submitted.to_string()))
            // Strict parsers (and some carriers' filters) read a body's type only with it.
            .header(lettre::message::header::MIME_VERSION_1_0);
        if let Some(parent) = threading.in_reply_to {
            builder = builder
                .in_reply_to(parent.to_string())
                .references(parent.to_string());
        }
        let mut message = match &jis {
            Some(jis) => {
                // ISO-2022-JP is 7-bit but has ESC, which lettre would encode again;
                // `encode_body` made sure it may go as it is.
                let body = Body::dangerous_pre_encoded(
                    jis.body.clone(),
                    ContentTransferEncoding::SevenBit,
                );
                let content_type =
                    ContentType::parse("text/plain; charset=ISO-2022-JP").map_err(|e| bad(&e))?;
                builder.header(content_type).body(body)
            }
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(body.to_string()),
        }
        .map_err(|e| bad(&e))?;
        if let Some(jis) = jis {
            // lettre writes words in UTF-8 only: From and Subject are replaced in place,
            // before signing.
            let raw = |name, value: &str, encoded| {
                HeaderValue::dangerous_new_pre_encoded(
                    HeaderName::new_from_ascii_str(name),
                    value.to_string(),
                    encoded,
                )
            };
            let headers = message.headers_mut();
            headers.insert_raw(raw("From", &from_name, format!("{} <{from}>", jis.name)));
            headers.insert_raw(raw("Subject", subject, jis.subject));
        }
        if let Some(dkim) = &self.dkim {
            message.sign(dkim.config(threading.in_reply_to.is_some()));
        }
        Ok(message)
    }
}

/// A mail's display name, subject and body in ISO-2022-JP, if all can be written so.
struct JisParts {
    name: String,
    subject: String,
    body: Vec<u8>,
}

fn jis_parts(name: &str, subject: &str, body: &str) -> Option<JisParts> {
    Some(JisParts {
        name: charset::header_words(name)?,
        subject: charset::header_words(subject)?,
        body: charset::encode_body(body)?,
    })
}

async fn mint_link(
    db: &Db,
    purpose: links::Purpose,
    token: Minted,
    address: &str,
    member_id: Option<i64>,
    ttl: i64,
) -> Result<String> {
    let address = address.to_string();
    db.write(move |c| insert_link(c, purpose, &token.hash, &address, member_id, None, ttl))
        .await?;
    Ok(token.secret)
}

/// Stores a new link under its token's hash.
fn insert_link(
    c: &rusqlite::Connection,
    purpose: links::Purpose,
    token_hash: &[u8],
    address: &str,
    member_id: Option<i64>,
    secret_hash: Option<&str>,
    ttl: i64,
) -> Result<()> {
    let link = links::NewLink {
        purpose,
        token_hash,
        address,
        member_id,
        secret_hash,
        ttl,
    };
    links::insert(c, &link, db::now())?;
    Ok(())
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
