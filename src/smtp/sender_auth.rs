//! Is the envelope sender authentic? karamail replies to MAIL FROM, so a forged sender
//! would make it mail a stranger. Three modes (`[smtp] sender_auth`):
//! - `spf`: check SPF for the MAIL FROM domain ourselves (mail-auth), and where SPF
//!   does not pass, honour the domain's DMARC policy if it publishes one;
//! - `upstream`: the MTA in front already checked; trust its `Authentication-Results`
//!   header, but only from `upstream_hosts` and only with its `authserv-id`;
//! - `off`: no check (the loopback defaults; not for production).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mail_auth::common::cache::NoCache;
use mail_auth::dmarc::{Dmarc, Policy};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{DnsError, MessageAuthenticator, Parameters, SpfResult, Txt};

use super::header::{split_outside_quotes, without_comments};
use crate::config::{SenderAuthMode, SmtpConfig};
use crate::error::{Error, Result};

/// What we concluded about a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Authentic,
    /// Not to be answered; the reason is recorded.
    Forged(&'static str),
    /// DNS failed: ask the sending MTA to try again (4xx).
    TryLater,
}

pub enum SenderAuth {
    Off,
    Spf(Box<MessageAuthenticator>),
    Upstream {
        hosts: Vec<IpAddr>,
        authserv_id: String,
    },
}

/// Longest a DNS check may take before the sender is asked to try later.
const DNS_TIMEOUT: Duration = Duration::from_secs(10);

impl SenderAuth {
    pub fn from_config(config: &SmtpConfig) -> Result<SenderAuth> {
        Ok(match config.sender_auth {
            SenderAuthMode::Off => SenderAuth::Off,
            SenderAuthMode::Upstream => SenderAuth::Upstream {
                hosts: config.upstream_hosts.clone(),
                authserv_id: config.upstream_authserv_id.clone(),
            },
            SenderAuthMode::Spf => SenderAuth::Spf(Box::new(authenticator(&config.dns_servers)?)),
        })
    }

    /// Whether senders are checked with SPF (`check_envelope` does work).
    pub fn checks_spf(&self) -> bool {
        matches!(self, SenderAuth::Spf(_))
    }

    /// The check at MAIL FROM (`spf` mode; the others decide later or not at all).
    pub async fn check_envelope(
        &self,
        ip: IpAddr,
        helo: &str,
        sender: &str,
        hostname: &str,
    ) -> Verdict {
        let SenderAuth::Spf(authenticator) = self else {
            return Verdict::Authentic;
        };
        let check = spf_and_dmarc(authenticator, ip, helo, sender, hostname);
        tokio::time::timeout(DNS_TIMEOUT, check)
            .await
            .unwrap_or(Verdict::TryLater)
    }

    /// The check at the final dot (`upstream` mode): what the trusted MTA in front
    /// wrote in `Authentication-Results`.
    pub fn check_message(&self, ip: IpAddr, raw: &[u8]) -> Verdict {
        let SenderAuth::Upstream { hosts, authserv_id } = self else {
            return Verdict::Authentic;
        };
        if !hosts.contains(&ip) {
            return Verdict::Forged("not_from_upstream");
        }
        match upstream_results(raw, authserv_id) {
            None => Verdict::Forged("no_upstream_results"),
            Some((spf, dmarc)) => judge(spf.as_deref(), dmarc.as_deref()),
        }
    }
}

fn authenticator(dns_servers: &[SocketAddr]) -> Result<MessageAuthenticator> {
    crate::dns::resolver(dns_servers)
        .map_err(|e| Error::Config(format!("[smtp] sender_auth = \"spf\": {e}")))
}

async fn spf_and_dmarc(
    authenticator: &MessageAuthenticator,
    ip: IpAddr,
    helo: &str,
    sender: &str,
    hostname: &str,
) -> Verdict {
    // A domain that does not exist cannot receive our reply either: it is forged.
    match domain_exists(authenticator, sender).await {
        Some(true) => {}
        Some(false) => return Verdict::Forged("sender_domain_missing"),
        None => return Verdict::TryLater,
    }
    let params = SpfParameters::verify_mail_from(ip, helo, hostname, sender);
    let spf = authenticator.verify_spf(Parameters::new(params)).await;
    let spf = match spf.result() {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::None => "none",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
    };
    let dmarc = if spf == "pass" {
        None
    } else {
        dmarc_policy(authenticator, sender).await
    };
    judge(Some(spf), dmarc.as_deref())
}

/// Whether the sender's domain exists in DNS (NXDOMAIN: no); None when DNS failed.
async fn domain_exists(authenticator: &MessageAuthenticator, sender: &str) -> Option<bool> {
    let domain = sender.rsplit_once('@')?.1;
    let lookup = authenticator
        .mx_lookup(format!("{domain}."), None::<&NoCache<Box<str>, _>>)
        .await;
    match lookup {
        Ok(_) => Some(true),
        Err(mail_auth::Error::Dns(DnsError::RecordNotFound(code))) => {
            // NOERROR with no MX: the name exists (mail goes to its A record).
            Some(u16::from(code) != NXDOMAIN)
        }
        Err(_) => None,
    }
}

/// DNS's "no such name" (RFC 1035 RCODE 3).
const NXDOMAIN: u16 = 3;

/// The DMARC policy the sender's domain publishes, as `reject`, `quarantine` or `none`.
async fn dmarc_policy(authenticator: &MessageAuthenticator, sender: &str) -> Option<String> {
    let domain = sender.rsplit_once('@')?.1;
    let record = authenticator
        .txt_lookup::<Dmarc>(format!("_dmarc.{domain}."), None::<&NoCache<Box<str>, Txt>>)
        .await
        .ok()?;
    Some(match record.p {
        Policy::Reject => "reject".into(),
        Policy::Quarantine => "quarantine".into(),
        _ => "none".into(),
    })
}

/// SPF `pass` is authentic, `fail` is not; in between, a domain whose DMARC policy is
/// reject or quarantine has said it does not send unauthenticated mail.
fn judge(spf: Option<&str>, dmarc: Option<&str>) -> Verdict {
    match (spf, dmarc) {
        (Some("pass"), _) => Verdict::Authentic,
        (Some("fail"), _) => Verdict::Forged("spf_fail"),
        (Some("temperror"), _) => Verdict::TryLater,
        (_, Some("fail" | "reject" | "quarantine")) => Verdict::Forged("dmarc"),
        (Some("permerror"), _) => Verdict::Forged("spf_permerror"),
        _ => Verdict::Authentic,
    }
}

/// `spf=` and `dmarc=` from the topmost `Authentication-Results` header, if the trusted
/// MTA wrote it (its authserv-id is `authserv_id`). Only that header counts: one below
/// it with our authserv-id was written before the MTA's (by the sender), and results
/// the topmost does not give are not looked for elsewhere. `None` ("no result") when
/// the topmost is someone else's, cannot be parsed per RFC 8601, or gives no `spf`.
fn upstream_results(raw: &[u8], authserv_id: &str) -> Option<(Option<String>, Option<String>)> {
    let message = mail_parser::MessageParser::default().parse_headers(raw)?;
    let topmost = message
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case("Authentication-Results"))?;
    // Exactly as the MTA writes it: `Authentication-Results :` or a value that opens
    // with a comment is what a sender writes to slip past the MTA's filter (which
    // removes such headers when they arrive: README, *Postfix in front*).
    let name = raw.get(topmost.offset_field as usize..topmost.offset_start as usize)?;
    let name = name.trim_ascii_end().strip_suffix(b":")?;
    if !name.eq_ignore_ascii_case(b"Authentication-Results") {
        return None;
    }
    let value = raw.get(topmost.offset_start as usize..topmost.offset_end as usize)?;
    let value = std::str::from_utf8(value).ok()?;
    if value.trim_start().starts_with('(') {
        return None;
    }
    let results = AuthResults::parse(value)?;
    if !results.authserv_id.eq_ignore_ascii_case(authserv_id) {
        return None;
    }
    let spf = results.result_of("spf")??;
    let dmarc = match results.result_of("dmarc") {
        None => None,
        Some(given) => Some(given?),
    };
    Some((Some(spf), dmarc))
}

/// An `Authentication-Results` header value (RFC 8601 §2.2), as far as we read it.
#[derive(Debug, PartialEq, Eq)]
struct AuthResults {
    authserv_id: String,
    /// `(method, result)`, both lower-cased, in order.
    results: Vec<(String, String)>,
}

impl AuthResults {
    /// `authserv-id [version] ; method[/version] = result [reason] [props] ; …`, with
    /// comments and folding anywhere; `None` when it is not that shape.
    fn parse(value: &str) -> Option<AuthResults> {
        let text = without_comments(value)?;
        let mut parts = split_outside_quotes(&text, ';').into_iter();
        let mut head = parts.next()?.split_whitespace();
        let authserv_id = head.next()?.to_string();
        if let Some(version) = head.next()
            && !version.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        if head.next().is_some() {
            return None;
        }
        let mut results = Vec::new();
        for part in parts {
            let part = part.trim();
            if part.is_empty() || part.eq_ignore_ascii_case("none") {
                continue;
            }
            let (method, rest) = part.split_once('=')?;
            let method = method.trim().split('/').next()?.trim().to_ascii_lowercase();
            let result = rest.split_whitespace().next()?.to_ascii_lowercase();
            let well_formed = |s: &str| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            if !well_formed(&method) || !well_formed(&result) {
                return None;
            }
            results.push((method, result));
        }
        Some(AuthResults {
            authserv_id,
            results,
        })
    }

    /// The result given for `method`: `None` when not given, `Some(None)` when given
    /// more than once with different results (which to believe is not ours to pick).
    fn result_of(&self, method: &str) -> Option<Option<String>> {
        let mut given = self
            .results
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, r)| r);
        let first = given.next()?;
        Some(given.all(|r| r == first).then(|| first.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_spf_then_dmarc() {
        assert_eq!(judge(Some("pass"), Some("reject")), Verdict::Authentic);
        assert_eq!(judge(Some("fail"), None), Verdict::Forged("spf_fail"));
        assert_eq!(
            judge(Some("softfail"), Some("reject")),
            Verdict::Forged("dmarc")
        );
        assert_eq!(judge(Some("softfail"), Some("none")), Verdict::Authentic);
        assert_eq!(judge(Some("none"), None), Verdict::Authentic);
        assert_eq!(judge(Some("temperror"), None), Verdict::TryLater);
    }

    #[test]
    fn only_the_trusted_upstreams_topmost_header_counts() {
        let upstream = SenderAuth::Upstream {
            hosts: vec!["127.0.0.1".parse().unwrap()],
            authserv_id: "mx.example.jp".into(),
        };
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let verdict = |header: &str| {
            upstream.check_message(ip, format!("{header}From: a@b.jp\r\n\r\n").as_bytes())
        };
        let cases = [
            (
                "Authentication-Results: mx.example.jp; spf=pass smtp.mailfrom=a@b.jp\r\n",
                Verdict::Authentic,
            ),
            (
                "Authentication-Results: mx.example.jp; spf=fail smtp.mailfrom=a@b.jp\r\n",
                Verdict::Forged("spf_fail"),
            ),
            // RFC 8601's version after the authserv-id, folding, comments, spaces at `=`.
            (
                "Authentication-Results: mx.example.jp 1;\r\n\tspf = fail (not permitted) smtp.mailfrom=a@b.jp\r\nAuthentication-Results: mx.example.jp; spf=pass\r\n",
                Verdict::Forged("spf_fail"),
            ),
            (
                "Authentication-Results: mx.example.jp (our MX) 1; spf/2=pass\r\n",
                Verdict::Authentic,
            ),
            (
                "Authentication-Results: MX.example.jp; SPF=Pass\r\n",
                Verdict::Authentic,
            ),
            (
                "Authentication-Results: mx.example.jp; spf=softfail; dmarc=fail (p=reject)\r\n",
                Verdict::Forged("dmarc"),
            ),
            // The topmost says nothing of SPF: what a header below says is not believed.
            (
                "Authentication-Results: mx.example.jp; dkim=pass header.d=b.jp\r\nAuthentication-Results: mx.example.jp; spf=pass\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
            (
                "Authentication-Results: mx.example.jp; none\r\nAuthentication-Results: mx.example.jp; spf=pass\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
            // Someone else's header on top, ours below it: no result.
            (
                "Authentication-Results: evil.example; spf=pass\r\nAuthentication-Results: mx.example.jp; spf=pass\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
            // A look-alike id, a second word where the version goes, an open comment,
            // the same method twice with different results.
            (
                "Authentication-Results: mx.example.jp.evil; spf=pass\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
            (
                "Authentication-Results: mx.example.jp evil; spf=pass\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
            (
                "Authentication-Results: mx.example.jp; spf=pass (unclosed\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
            (
                "Authentication-Results: mx.example.jp; spf=pass; spf=fail\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
            (
                "Authentication-Results: mx.example.jp; spf=pass; dmarc=pass; dmarc=fail\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
            ("X-Other: 1\r\n", Verdict::Forged("no_upstream_results")),
            // Shapes that slip past a filter on `^Authentication-Results: mx...`.
            (
                "Authentication-Results : mx.example.jp; spf=pass\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
            (
                "Authentication-Results: (x) mx.example.jp; spf=pass\r\n",
                Verdict::Forged("no_upstream_results"),
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(verdict(header), expected, "{header}");
        }
        let good = b"Authentication-Results: mx.example.jp; spf=pass\r\n\r\n";
        assert_eq!(
            upstream.check_message("192.0.2.1".parse().unwrap(), good),
            Verdict::Forged("not_from_upstream")
        );
    }

    #[test]
    fn quoted_values_and_comments_do_not_split_results() {
        let parsed = AuthResults::parse(
            " mx.example.jp; spf=pass smtp.mailfrom=\"a;b\"@x.jp (a; comment (nested)); dmarc=none",
        )
        .unwrap();
        assert_eq!(parsed.authserv_id, "mx.example.jp");
        assert_eq!(
            parsed.results,
            [
                ("spf".into(), "pass".into()),
                ("dmarc".into(), "none".into())
            ]
        );
    }
}
