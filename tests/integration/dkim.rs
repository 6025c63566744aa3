//! DKIM: the key `karamail dkim keygen` makes signs every mail, and a receiver that
//! looks the record up in DNS (a DNS server the test runs) finds the signature valid.

use mail_auth::common::verify::VerifySignature;
use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters};

use crate::util::dns::Dns;
use crate::util::{TestDaemon, empty_mail, send_mail};

/// `karamail dkim keygen` for selector km1 at example.jp in `dir`: the key file and the
/// TXT record as DNS would serve it.
pub fn keygen(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_karamail"))
        .args([
            "dkim",
            "keygen",
            "--out",
            "dkim.key",
            "--selector",
            "km1",
            "--domain",
            "example.jp",
        ])
        .current_dir(dir)
        .env_remove("KARAMAIL_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zone = stdout
        .lines()
        .find(|l| l.starts_with("km1._domainkey.example.jp. IN TXT"))
        .expect("the zone line");
    // The record as DNS serves it: the quoted strings joined.
    let record: String = zone.split('"').skip(1).step_by(2).collect();
    assert!(record.starts_with("v=DKIM1; k=rsa; p="));
    let key = dir.join("dkim.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    (key, record)
}

#[test]
fn keygen_signs_and_a_receiver_verifies_through_dns() {
    let dir = tempfile::tempdir().unwrap();
    let (key, record) = keygen(dir.path());

    let daemon = TestDaemon::start_with(|c| {
        c.mail.dkim_key = Some(key.clone());
        c.mail.dkim_selector = "km1".into();
    });
    send_mail(
        &daemon,
        "signed@example.net",
        &empty_mail("signed@example.net"),
    );
    let mail = daemon.wait_for_mail("signed@example.net");
    assert!(
        mail.header("DKIM-Signature")
            .is_some_and(|h| h.contains("d=example.jp") && h.contains("s=km1"))
    );

    let dns = Dns::start(&[("km1._domainkey.example.jp", &record)]);
    let results: Vec<bool> = daemon.rt.block_on(async {
        let mut config = ResolverConfig::default();
        let mut server = NameServerConfig::udp_and_tcp(dns.addr.ip());
        for connection in &mut server.connections {
            connection.port = dns.addr.port();
        }
        config.add_name_server(server);
        let authenticator = MessageAuthenticator::new(config, ResolverOpts::default()).unwrap();
        let message = AuthenticatedMessage::parse(mail.raw.as_bytes()).unwrap();
        let outputs = authenticator.verify_dkim(Parameters::new(&message)).await;
        outputs
            .iter()
            .map(|o| {
                matches!(o.result(), DkimResult::Pass)
                    && o.signature().is_some_and(|s| s.domain() == "example.jp")
            })
            .collect()
    });
    assert_eq!(results, [true], "one valid signature");
}
