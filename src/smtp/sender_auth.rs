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

/// `spf=` and `dmarc=` from the first `Authentication-Results` header whose
/// authserv-id is ours to trust.
fn upstream_results(raw: &[u8], authserv_id: &str) -> Option<(Option<String>, Option<String>)> {
    let message = mail_parser::MessageParser::default().parse_headers(raw)?;
    message
        .headers()
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case("Authentication-Results"))
        .find_map(|h| {
            let value =
                std::str::from_utf8(raw.get(h.offset_start as usize..h.offset_end as usize)?)
                    .ok()?;
            let unfolded = value.replace(['\r', '\n', '\t'], " ");
            let (id, results) = unfolded.split_once(';').unwrap_or((&unfolded, ""));
            if !id.trim().eq_ignore_ascii_case(authserv_id) {
                return None;
            }
            let method = |name: &str| {
                results.split(';').find_map(|part| {
                    let part = part.trim().to_ascii_lowercase();
                    let rest = part.strip_prefix(name)?.strip_prefix('=')?;
                    Some(rest.split_whitespace().next().unwrap_or("").to_string())
                })
            };
            Some((method("spf"), method("dmarc")))
        })
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
    fn only_the_trusted_upstreams_results_count() {
        let upstream = SenderAuth::Upstream {
            hosts: vec!["127.0.0.1".parse().unwrap()],
            authserv_id: "mx.example.jp".into(),
        };
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let forged =
            b"Authentication-Results: mx.example.jp; spf=fail smtp.mailfrom=a@b.jp\r\n\r\n";
        assert_eq!(
            upstream.check_message(ip, forged),
            Verdict::Forged("spf_fail")
        );
        let good = b"Authentication-Results: evil.example; spf=pass\r\nAuthentication-Results: mx.example.jp;\r\n spf=pass smtp.mailfrom=a@b.jp; dmarc=pass\r\n\r\n";
        assert_eq!(upstream.check_message(ip, good), Verdict::Authentic);
        let only_foreign = b"Authentication-Results: evil.example; spf=pass\r\n\r\n";
        assert_eq!(
            upstream.check_message(ip, only_foreign),
            Verdict::Forged("no_upstream_results")
        );
        assert_eq!(
            upstream.check_message("192.0.2.1".parse().unwrap(), good),
            Verdict::Forged("not_from_upstream")
        );
    }
}
