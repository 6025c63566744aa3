//! TLS: STARTTLS on the SMTP listener, HTTPS on the web listener, certificates re-read
//! on reload. The test makes its own certificate and trusts only that.

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::util::{TestDaemon, empty_mail};

/// A self-signed certificate for 127.0.0.1 written as PEM; returns it (DER) for clients.
fn make_certificate(dir: &Path, name: &str) -> rustls_pki_types::CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    cert.der().clone()
}

fn connector(trusted: &rustls_pki_types::CertificateDer<'static>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn reply<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> String {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap() == 0 {
            return text;
        }
        text.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return text;
        }
    }
}

#[test]
fn starttls_then_a_mail_over_tls_and_injection_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let trusted = make_certificate(dir.path(), "karamail test");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let daemon = TestDaemon::start_with(|c| {
        c.smtp.tls_cert = Some(cert.clone());
        c.smtp.tls_key = Some(key.clone());
    });
    let addr = daemon.daemon.as_ref().unwrap().smtp_addr;
    daemon.rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut stream = BufReader::new(stream);
        assert!(reply(&mut stream).await.starts_with("220"));
        stream
            .get_mut()
            .write_all(b"EHLO client.example\r\n")
            .await
            .unwrap();
        assert!(reply(&mut stream).await.contains("STARTTLS"));
        stream.get_mut().write_all(b"STARTTLS\r\n").await.unwrap();
        assert!(reply(&mut stream).await.starts_with("220"));
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = connector(&trusted)
            .connect(name, stream.into_inner())
            .await
            .unwrap();
        let mut tls = BufReader::new(tls);
        for (command, code) in [
            ("EHLO client.example", "250"),
            ("MAIL FROM:<secure@example.net>", "250"),
            ("RCPT TO:<kc@example.jp>", "250"),
            ("DATA", "354"),
        ] {
            tls.get_mut()
                .write_all(format!("{command}\r\n").as_bytes())
                .await
                .unwrap();
            let answer = reply(&mut tls).await;
            assert!(answer.starts_with(code), "{command}: {answer}");
            if command.starts_with("EHLO") {
                assert!(!answer.contains("STARTTLS"), "not offered twice");
            }
        }
        let message = empty_mail("secure@example.net")
            .replace('\n', "\r\n")
            .replace("\r\r\n", "\r\n");
        tls.get_mut()
            .write_all(format!("{message}.\r\n").as_bytes())
            .await
            .unwrap();
        assert!(reply(&mut tls).await.starts_with("250"));

        // Commands sent in the same packet as STARTTLS would be read as if sent over TLS.
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut stream = BufReader::new(stream);
        reply(&mut stream).await;
        stream
            .get_mut()
            .write_all(b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<injected@example.net>\r\n")
            .await
            .unwrap();
        reply(&mut stream).await;
        assert!(reply(&mut stream).await.starts_with("220"));
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut rest),
        )
        .await;
        assert!(
            rest.is_empty(),
            "closed without answering the injected command"
        );
    });
    daemon.wait_for_mail("secure@example.net");
    assert!(daemon.outcomes_for("injected@example.net").is_empty());
}

#[test]
fn https_serves_the_portal_with_hsts_and_reload_picks_up_a_new_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_certificate(dir.path(), "first");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let daemon = TestDaemon::start_with(|c| {
        c.http.tls_cert = Some(cert.clone());
        c.http.tls_key = Some(key.clone());
    });
    let running = daemon.daemon.as_ref().unwrap();
    assert!(running.public_url.starts_with("https://"));
    let addr = running.http_addr;
    let get = |trusted: rustls_pki_types::CertificateDer<'static>| {
        daemon.rt.block_on(async move {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
            let mut tls = connector(&trusted).connect(name, stream).await?;
            tls.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .await?;
            let mut response = String::new();
            tls.read_to_string(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        })
    };
    let response = get(first.clone()).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"));
    assert!(
        response
            .to_ascii_lowercase()
            .contains("strict-transport-security")
    );
    assert!(
        response.contains("ログイン") && response.contains("Secure"),
        "cookies are Secure over https"
    );

    let second = make_certificate(dir.path(), "second");
    running.reload().unwrap();
    assert!(get(second).is_ok(), "the new certificate is served");
    assert!(get(first).is_err(), "the old one is not");
}

/// Sends one mail through a relay that demands TLS and credentials; returns what it saw.
fn through_tls_relay(implicit: bool) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    make_certificate(dir.path(), "relay.test");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    // The relay's certificate is from a "private CA" (itself): trusted through relay_ca.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let relay = crate::util::tls_relay::TlsRelay::start(&runtime, &cert, &key, implicit);
    let port = relay.addr.port();
    let url = if implicit {
        format!("smtps://karamail:s3cret@127.0.0.1:{port}")
    } else {
        format!("smtp://karamail:s3cret@127.0.0.1:{port}?tls=required")
    };
    let daemon = TestDaemon::start_with(|c| {
        c.mail.transport = karamail::config::Transport::Smtp;
        c.mail.relay = url;
        c.mail.relay_ca = Some(cert.clone());
        c.mail.retry_initial = "1s".parse().unwrap();
    });
    assert_eq!(
        crate::util::send_mail(
            &daemon,
            "viatls@example.net",
            &empty_mail("viatls@example.net")
        ),
        250
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while relay.seen.lock().unwrap().messages.is_empty() {
        if std::time::Instant::now() > deadline {
            let error: Option<String> = daemon
                .db()
                .query_row("SELECT last_error FROM outbox", [], |r| r.get(0))
                .unwrap();
            panic!("no mail reached the TLS relay: {error:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let seen = relay.seen.lock().unwrap();
    (seen.logins.clone(), seen.messages.clone())
}

#[test]
fn replies_go_to_the_relay_over_starttls_with_credentials() {
    let (logins, messages) = through_tls_relay(false);
    assert_eq!(
        logins,
        ["karamail:s3cret"],
        "credentials from the relay URL, sent only after STARTTLS"
    );
    assert!(messages[0].contains("To: viatls@example.net"));
}

#[test]
fn replies_go_to_the_relay_over_implicit_tls_with_credentials() {
    let (logins, messages) = through_tls_relay(true);
    assert_eq!(logins, ["karamail:s3cret"]);
    assert!(messages[0].contains("To: viatls@example.net"));
}
