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

/// The set-up cannot silently mismatch: keygen prints every setting to make, refuses a
/// domain nobody can publish for, and check-config proves the published record holds
/// the key, or says precisely what is wrong.
#[test]
fn keygen_and_check_config_agree_with_what_receivers_see() {
    let dir = tempfile::tempdir().unwrap();
    let karamail = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_karamail"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("KARAMAIL_CONFIG")
            .output()
            .unwrap()
    };
    // Built-in defaults send from localhost: there is nothing to publish a record in.
    let refused = karamail(&["dkim", "keygen", "--out", "none.key"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("give --domain"));
    assert!(!dir.path().join("none.key").exists());
    let out = karamail(&[
        "dkim",
        "keygen",
        "--out",
        "mail.key",
        "--selector",
        "km2",
        "--domain",
        "mail.example.jp",
    ]);
    let printed = String::from_utf8_lossy(&out.stdout);
    for line in [
        "dkim_selector = \"km2\"",
        "dkim_domain = \"mail.example.jp\"",
        "dkim_key = \"",
        "km2._domainkey.mail.example.jp. IN TXT",
    ] {
        assert!(printed.contains(line), "{line} in {printed}");
    }

    let (key, record) = keygen(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (_, other_record) = keygen(other.path());
    let check = |dkim_domain: &str, published: &str| {
        let dns = Dns::start(&[("km1._domainkey.example.jp", published)]);
        let config = format!(
            "[smtp]\ndns_servers = [\"{}\"]\n[mail]\nfrom = \"noreply@example.jp\"\ndkim_key = \"{}\"\ndkim_selector = \"km1\"\ndkim_domain = \"{dkim_domain}\"\n[database]\npath = \"{}/k.db\"\n",
            dns.addr,
            key.display(),
            dir.path().display()
        );
        std::fs::write(dir.path().join("k.toml"), config).unwrap();
        let out = karamail(&["--config", "k.toml", "check-config"]);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, said) = check("example.jp", &record);
    assert!(
        ok && said.contains("km1._domainkey.example.jp: the published record holds the key"),
        "{said}"
    );
    let (ok, said) = check("example.jp", &other_record);
    assert!(
        !ok && said.contains("the record in DNS does not hold [mail] dkim_key"),
        "{said}"
    );
    let (ok, said) = check("other.example", &record);
    assert!(!ok && said.contains("does not align"), "{said}");
}
