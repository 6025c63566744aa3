//! Our SMTP client for the relay, on lettre's connection: one command at a time, so a
//! refusal is read knowing *where* it came. A refused MAIL FROM (our one sender), a
//! failed connect, TLS or AUTH, and the relay-wide replies (421, 454, 530, 534, 535,
//! 538) are the transport's fault: every mail would fail alike, so the queue waits and
//! no mail is blamed. A 4xx at RCPT or DATA is that mail's alone (its mailbox is busy)
//! and a 5xx there refuses that mail for good.

use std::path::Path;
use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Quit, Rcpt, Rset};
use lettre::transport::smtp::extension::ClientId;

use super::SendError;
use crate::error::{Error, Result};

/// QUIT is a courtesy: a relay that does not answer it is left.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to reach the relay, read from `[mail] relay` as lettre reads such URLs:
/// `smtp://host[:25]`, `smtp://user:pass@host[:587]?tls=required` (STARTTLS, or
/// `opportunistic`) or `smtps://host[:465]` (TLS from the start).
pub struct Relay {
    host: String,
    port: u16,
    tls: Option<Tls>,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
}

impl Relay {
    /// `hostname` is what we say in EHLO (`[smtp] hostname`); `ca` a certificate to
    /// trust besides the system's roots.
    pub fn parse(url: &str, hostname: &str, ca: Option<&Path>, timeout: Duration) -> Result<Relay> {
        let bad = |why: &str| Error::Mail(format!("[mail] relay {url:?}: {why}"));
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let host = parsed.host_str().ok_or_else(|| bad("no host"))?.to_string();
        let mode = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.to_string());
        let parameters = || relay_tls_parameters(&host, ca);
        let (port, tls) = match (parsed.scheme(), mode.as_deref()) {
            ("smtp", None) => (25, None),
            ("smtp", Some("required")) => (587, Some(Tls::Required(parameters()?))),
            ("smtp", Some("opportunistic")) => (587, Some(Tls::Opportunistic(parameters()?))),
            ("smtps", _) => (465, Some(Tls::Wrapper(parameters()?))),
            _ => return Err(bad("use smtp://, smtp://…?tls=required or smtps://")),
        };
        let decode = |part: &str| {
            percent_decode(part)
                .ok_or_else(|| bad("credentials are not valid percent-encoded UTF-8"))
        };
        // As lettre: credentials only with a password.
        let credentials = match parsed.password() {
            Some(password) => Some(Credentials::new(
                decode(parsed.username())?,
                decode(password)?,
            )),
            None => None,
        };
        Ok(Relay {
            port: parsed.port().unwrap_or(port),
            host,
            tls,
            credentials,
            hello: ClientId::Domain(hostname.to_string()),
            timeout,
        })
    }

    /// A connection ready for mail: greeted, TLS as configured, authenticated.
    pub async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let wrapper = match &self.tls {
            Some(Tls::Wrapper(parameters)) => Some(parameters.clone()),
            _ => None,
        };
        let address = (self.host.as_str(), self.port);
        let (t, hello) = (self.timeout, &self.hello);
        let connect = AsyncSmtpConnection::connect_tokio1(address, Some(t), hello, wrapper, None);
        let mut connection = within(t, "connecting", connect).await?;
        let starttls = match &self.tls {
            Some(Tls::Required(parameters)) => Some(parameters),
            Some(Tls::Opportunistic(parameters)) if connection.can_starttls() => Some(parameters),
            _ => None,
        };
        if let Some(parameters) = starttls {
            let starttls = connection.starttls(parameters.clone(), hello);
            within(t, "STARTTLS", starttls).await?;
        }
        if let Some(credentials) = &self.credentials {
            within(t, "AUTH", connection.auth(DEFAULT_MECHANISMS, credentials)).await?;
        }
        Ok(connection)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// A step of the transport's that must end within `limit`; a failure or a timeout is
/// the transport's fault.
async fn within<T>(
    limit: Duration,
    step: &str,
    future: impl std::future::Future<Output = std::result::Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, SendError> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result.map_err(|e| transport_fault(step, &e)),
        Err(_) => Err(SendError {
            permanent: false,
            transport: true,
            message: format!(
                "{step}: the relay did not answer within {} s",
                limit.as_secs()
            ),
            ..Default::default()
        }),
    }
}

/// Sends one mail on an open connection. After a refusal of this mail alone the
/// transaction is reset, so the connection serves the next; after any other failure
/// the caller drops it.
pub async fn deliver(
    connection: &mut AsyncSmtpConnection,
    timeout: Duration,
    from: &Address,
    to: &Address,
    message: &[u8],
) -> Result<(), SendError> {
    let mail = connection.command(Mail::new(Some(from.clone()), vec![]));
    within(timeout, "MAIL FROM", mail).await?;
    let result = async {
        let rcpt = connection.command(Rcpt::new(to.clone(), vec![]));
        answer(timeout, "RCPT TO", rcpt).await?;
        answer(timeout, "DATA", connection.command(Data)).await?;
        // RFC 5321 §4.5.3.2 gives the end of data twice a command's time.
        answer(timeout * 2, "the message", connection.message(message)).await
    }
    .await;
    if let Err(error) = &result
        && !error.transport
        && within(timeout, "RSET", connection.command(Rset))
            .await
            .is_err()
    {
        return Err(SendError {
            transport: true,
            ..error.clone()
        });
    }
    result.map(|_| ())
}

pub async fn quit(mut connection: AsyncSmtpConnection) {
    let _ = tokio::time::timeout(QUIT_TIMEOUT, connection.command(Quit)).await;
}

/// A step whose refusal may be this mail's alone (see `mail_fault`); a timeout is the
/// transport's.
async fn answer<T>(
    limit: Duration,
    step: &str,
    future: impl std::future::Future<Output = std::result::Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, SendError> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result.map_err(|e| mail_fault(step, &e)),
        Err(_) => within(limit, step, std::future::pending()).await,
    }
}

/// A refusal of the relay itself, whatever the mail.
fn transport_fault(step: &str, error: &lettre::transport::smtp::Error) -> SendError {
    SendError {
        permanent: false,
        transport: true,
        message: format!("{step}: {error}"),
        policy: None,
    }
}

/// A refusal at RCPT or DATA: this mail's, unless the reply speaks of the relay.
fn mail_fault(step: &str, error: &lettre::transport::smtp::Error) -> SendError {
    let code = error.status().map(|c| c.to_string());
    let relay_wide = matches!(
        code.as_deref(),
        None | Some("421" | "454" | "530" | "534" | "535" | "538")
    );
    let message = format!("{step}: {error}");
    let permanent = !relay_wide && error.is_permanent();
    // Relays refuse for their own policy at RCPT (Postfix delays its client, HELO and
    // sender checks there): "Relay access denied", "Sender address rejected".
    let policy = enhanced_status(&message)
        .filter(|_| step == "RCPT TO" && permanent)
        .filter(|s| s.starts_with("5.7.") || s == "5.1.7" || s == "5.1.8");
    SendError {
        permanent,
        transport: relay_wide,
        message,
        policy,
    }
}

/// The RFC 3463 enhanced status code (`5.7.1`) in a relay's reply text, if any.
fn enhanced_status(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ':' || c == '(' || c == ')')
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..]
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// TLS parameters for the relay's host, trusting `ca` too when given.
fn relay_tls_parameters(host: &str, ca: Option<&Path>) -> Result<TlsParameters> {
    let mut builder = TlsParameters::builder(host.to_string());
    if let Some(ca) = ca {
        let pem = std::fs::read(ca)
            .map_err(|e| Error::Config(format!("[mail] relay_ca {}: {e}", ca.display())))?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| Error::Config(format!("[mail] relay_ca {}: {e}", ca.display())))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| Error::Config(format!("[mail] relay TLS: {e}")))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(300);

    #[test]
    fn enhanced_codes_are_read_from_a_reply() {
        let text = "RCPT TO: permanent error (554): 5.7.1 <a@b.jp>: Relay access denied";
        assert_eq!(enhanced_status(text).as_deref(), Some("5.7.1"));
        assert_eq!(enhanced_status("permanent error (550): no such user"), None);
        assert_eq!(enhanced_status("v1.2.3 is not one"), None);
    }

    #[test]
    fn relay_urls_are_read_as_lettre_reads_them() {
        let plain = Relay::parse("smtp://127.0.0.1", "kc.example.jp", None, T).unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("127.0.0.1", 25));
        assert!(plain.tls.is_none() && plain.credentials.is_none());
        let submission = Relay::parse(
            "smtp://u%40x:p%3Bw@relay.example.jp?tls=required",
            "h",
            None,
            T,
        )
        .unwrap();
        assert_eq!(submission.port, 587);
        assert!(matches!(submission.tls, Some(Tls::Required(_))));
        assert_eq!(
            submission.credentials,
            Some(Credentials::new("u@x".into(), "p;w".into()))
        );
        let wrapped = Relay::parse("smtps://relay.example.jp:2465", "h", None, T).unwrap();
        assert_eq!(wrapped.port, 2465);
        assert!(matches!(wrapped.tls, Some(Tls::Wrapper(_))));
        for bad in [
            "",
            "http://x",
            "smtp://",
            "smtp://h?tls=maybe",
            "smtp://u:%zz@h",
        ] {
            assert!(Relay::parse(bad, "h", None, T).is_err(), "{bad}");
        }
        let no_password = Relay::parse("smtp://user@relay.example.jp", "h", None, T).unwrap();
        assert!(
            no_password.credentials.is_none(),
            "as lettre: no AUTH without a password"
        );
    }
}
