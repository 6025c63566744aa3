//! DKIM: outgoing mail is signed when `[mail] dkim_key` is set, so that carriers
//! (docomo, au, SoftBank) can tell karamail's replies from forgeries.
//! `karamail dkim keygen` makes the key and prints the DNS record to publish.

use std::path::Path;

use base64::Engine;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::pkcs8::EncodePublicKey;

use crate::config::MailConfig;
use crate::error::{Error, Result};

/// Receivers accept 2048-bit RSA everywhere; Ed25519 DKIM is not yet checked by all.
const KEY_BITS: usize = 2048;

/// Writes a new RSA key (PKCS#1 PEM, mode 0600; never over an existing file) and returns
/// the TXT record to publish at `{selector}._domainkey.{domain}`.
pub fn keygen(key_path: &Path) -> Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)
        .map_err(|e| Error::Config(format!("generating the key: {e}")))?;
    let pem = key
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| Error::Config(e.to_string()))?;
    let public = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| Error::Config(e.to_string()))?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(key_path)
        .map_err(|e| {
            Error::Config(format!(
                "cannot create {} (it must not exist yet): {e}",
                key_path.display()
            ))
        })?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()?;
    Ok(format!(
        "v=DKIM1; k=rsa; p={}",
        base64::engine::general_purpose::STANDARD.encode(public.as_bytes())
    ))
}

/// A TXT record as a zone file writes it: strings of at most 255 characters.
pub fn zone_line(selector: &str, domain: &str, record: &str) -> String {
    let chunks: Vec<String> = record
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    format!(
        "{selector}._domainkey.{domain}. IN TXT ( {} )",
        chunks.join(" ")
    )
}

/// What signs every mail: one set-up for new mails and one for replies, which have
/// `In-Reply-To` and `References` to sign too. A header is signed only where every mail
/// of the kind has it: how verifiers treat a signed but absent header differs.
pub struct Signer {
    new: DkimConfig,
    reply: DkimConfig,
}

impl Signer {
    pub fn config(&self, is_reply: bool) -> &DkimConfig {
        if is_reply { &self.reply } else { &self.new }
    }
}

/// Headers signed on every mail: what a member sees (From, To, Subject, Date), what
/// makes it unique (Message-ID), and how its body is read (the MIME headers), so that
/// no relay can change how the signed body is shown.
const SIGNED: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];
const SIGNED_IN_REPLIES: [&str; 2] = ["In-Reply-To", "References"];

/// The signing set-up from `[mail]`, if a key is configured.
pub fn load(mail: &MailConfig) -> Result<Option<Signer>> {
    let Some(path) = mail.dkim_key.as_ref() else {
        return Ok(None);
    };
    let pem = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("[mail] dkim_key {}: {e}", path.display())))?;
    let config = |headers: Vec<&'static str>| signing_config(mail, path, &pem, headers);
    let reply = SIGNED.iter().chain(&SIGNED_IN_REPLIES).copied().collect();
    Ok(Some(Signer {
        new: config(SIGNED.to_vec())?,
        reply: config(reply)?,
    }))
}

fn signing_config(
    mail: &MailConfig,
    path: &Path,
    pem: &str,
    headers: Vec<&'static str>,
) -> Result<DkimConfig> {
    let key = DkimSigningKey::new(pem, DkimSigningAlgorithm::Rsa).map_err(|e| {
        Error::Config(format!(
            "[mail] dkim_key {}: not an RSA private key in PKCS#1 PEM: {e}",
            path.display()
        ))
    })?;
    let domain = signing_domain(mail);
    // Relaxed for headers too: our Subject is an encoded word that may be folded, and
    // folding must not break the signature on the way.
    let canonicalization = DkimCanonicalization {
        header: DkimCanonicalizationType::Relaxed,
        body: DkimCanonicalizationType::Relaxed,
    };
    let headers = headers
        .into_iter()
        .map(HeaderName::new_from_ascii_str)
        .collect();
    Ok(DkimConfig::new(
        mail.dkim_selector.clone(),
        domain,
        key,
        headers,
        canonicalization,
    ))
}

/// The domain mails are signed for (`d=`): `[mail] dkim_domain`, or the domain of
/// `[mail] from`.
pub fn signing_domain(mail: &MailConfig) -> String {
    match mail.dkim_domain.trim() {
        "" => mail.from_domain(),
        domain => domain.to_ascii_lowercase(),
    }
}

/// What a receiver would hold against the set-up, seen without DNS: a domain no one
/// can publish a record for, or one DMARC does not align with the From domain.
pub fn problems(mail: &MailConfig) -> Vec<String> {
    if mail.dkim_key.is_none() {
        return Vec::new();
    }
    let (signing, from) = (
        signing_domain(mail),
        mail.from_domain().to_ascii_lowercase(),
    );
    if signing.is_empty() || signing == "localhost" || !signing.contains('.') {
        return vec![format!(
            "[mail] dkim_domain: mails would be signed for {signing:?}, where no record can be published; set dkim_domain (or [mail] from) to the society's domain"
        )];
    }
    let aligned = |a: &str, b: &str| a == b || a.ends_with(&format!(".{b}"));
    if !aligned(&from, &signing) && !aligned(&signing, &from) {
        return vec![format!(
            "[mail] dkim_domain = {signing:?} does not align with [mail] from's domain {from:?}: DMARC would fail; sign for {from:?} or a parent of it"
        )];
    }
    Vec::new()
}

/// Whether the record published in DNS holds this key.
#[derive(Debug, PartialEq, Eq)]
pub enum Published {
    Matches(String),
    /// The record is missing or holds another key: receivers see a failing signature.
    Differs(String),
    /// DNS did not answer: nothing could be checked.
    Unknown(String),
}

/// Signs a sample mail and verifies it as a receiver would, through DNS.
pub async fn check_published(
    mail: &MailConfig,
    dns_servers: &[std::net::SocketAddr],
) -> Result<Published> {
    use mail_auth::{AuthenticatedMessage, DkimResult};
    let Some(signer) = load(mail)? else {
        return Ok(Published::Unknown("no [mail] dkim_key".into()));
    };
    let name = format!("{}._domainkey.{}", mail.dkim_selector, signing_domain(mail));
    let from: lettre::message::Mailbox = mail
        .from
        .parse()
        .map_err(|e| Error::Config(format!("[mail] from: {e}")))?;
    let mut sample = lettre::Message::builder()
        .from(from.clone())
        .to(from)
        .subject("karamail check-config")
        .body("DKIM check\r\n".to_string())
        .map_err(|e| Error::Mail(e.to_string()))?;
    sample.sign(signer.config(false));
    let raw = sample.formatted();
    let resolver = crate::dns::resolver(dns_servers)?;
    let message = AuthenticatedMessage::parse(&raw)
        .ok_or_else(|| Error::Mail("the sample mail does not parse".into()))?;
    let outputs = resolver
        .verify_dkim(mail_auth::Parameters::new(&message))
        .await;
    Ok(match outputs.first().map(|o| o.result()) {
        Some(DkimResult::Pass) => Published::Matches(name),
        Some(DkimResult::TempError(e)) => Published::Unknown(format!("{name}: {e}")),
        Some(other) => Published::Differs(format!("{name}: {other:?}")),
        None => Published::Differs(format!("{name}: no signature checked")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(from: &str, dkim_domain: &str) -> MailConfig {
        let mut config = crate::config::Config::default().mail;
        config.from = from.into();
        config.dkim_domain = dkim_domain.into();
        config.dkim_key = Some("dkim.key".into());
        config
    }

    #[test]
    fn a_domain_that_cannot_align_or_be_published_is_a_problem() {
        assert!(problems(&mail("noreply@example.jp", "")).is_empty());
        assert!(problems(&mail("noreply@mail.example.jp", "example.jp")).is_empty());
        assert!(problems(&mail("noreply@example.jp", "mail.example.jp")).is_empty());
        assert_eq!(
            problems(&mail("noreply@example.jp", "other.example")).len(),
            1
        );
        assert!(problems(&mail("noreply@localhost", ""))[0].contains("no record can be published"));
        assert!(problems(&mail("noreply@example.jp", "localhost"))[0].contains("localhost"));
    }

    #[test]
    fn long_records_are_split_for_zone_files() {
        let line = zone_line("km1", "example.jp", &"a".repeat(300));
        assert_eq!(
            line,
            format!(
                "km1._domainkey.example.jp. IN TXT ( \"{}\" \"{}\" )",
                "a".repeat(255),
                "a".repeat(45)
            )
        );
    }
}
