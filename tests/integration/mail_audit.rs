//! Every kind of mail karamail sends, checked by a receiver it did not write: dkimpy
//! verifies the signature against the record `dkim keygen` printed, Python's strict
//! parser finds no defect, and the headers carriers expect are all there.

use karamail::config::Charset;

use crate::dkim::keygen;
use crate::util::member::{log_in, register, wait_for_nth};
use crate::util::{TestDaemon, empty_mail, send_mail};

const SUBJECTS: [&str; 7] = [
    "利用登録手続きのご案内",
    "暗証キーのご案内",
    "登録情報変更のお知らせ",
    "メールアドレス確認のご案内",
    "パスワード再発行のご案内",
    "【テスト】健幸マイポータル 送信テスト",
    "利用登録手続きのご案内 (web)",
];

#[test]
fn every_kind_of_mail_passes_an_independent_verifier_and_a_strict_parser() {
    for line in audit(Charset::Utf8) {
        assert_eq!(line[6], "utf-8", "{}", line.join("  "));
    }
}

/// For feature phones: the same mails in 7-bit ISO-2022-JP, read back as Japanese.
#[test]
fn every_kind_of_mail_can_go_in_iso_2022_jp() {
    for line in audit(Charset::Iso2022Jp) {
        assert_eq!(line[6], "iso-2022-jp", "{}", line.join("  "));
    }
}

/// Sends every kind of mail with this charset and checks each; returns the report's
/// lines (file, subject, dkim, defects, missing, signed, charset, body).
fn audit(charset: Charset) -> Vec<Vec<String>> {
    let keys = tempfile::tempdir().unwrap();
    let (key, record) = keygen(keys.path());
    let daemon = TestDaemon::start_with(|c| {
        c.mail.dkim_key = Some(key.clone());
        c.mail.dkim_selector = "km1".into();
        c.mail.charset = charset;
    });
    // The sign-up reply to an empty mail (and a carrier address, quoted in the envelope).
    for (sender, to) in [
        ("reply@example.net", "reply@example.net"),
        (
            "taro..yamada.@docomo.ne.jp",
            "\"taro..yamada.\"@docomo.ne.jp",
        ),
    ] {
        assert_eq!(send_mail(&daemon, sender, &empty_mail(sender)), 250);
        daemon.wait_for_mail(to);
    }
    // The same mail asked for on the web.
    let mut browser = daemon.browser();
    browser.open("/signup");
    browser.submit("/signup", &[("email", "web@example.net")]);
    daemon.wait_for_mail("web@example.net");
    // 暗証キー, a change notice, an address confirmation, a reissue.
    register(&daemon, "7001", "member@example.net", "auditmember");
    log_in(
        &daemon,
        &mut browser,
        "auditmember",
        "member@example.net",
        1,
    );
    browser.open("/profile");
    browser.submit("/profile/nickname", &[("nickname", "監査")]);
    wait_for_nth(&daemon, "member@example.net", "登録情報変更のお知らせ", 1);
    browser.open("/profile");
    browser.submit("/profile/email/add", &[("email", "second@example.org")]);
    wait_for_nth(
        &daemon,
        "second@example.org",
        "メールアドレス確認のご案内",
        1,
    );
    let mut other = daemon.browser();
    other.open("/reset");
    other.submit("/reset", &[("email", "member@example.net")]);
    wait_for_nth(&daemon, "member@example.net", "パスワード再発行のご案内", 1);
    // The sysadmin's test mail, through the same folder and key.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_karamail"))
        .args(["send-test-mail", "admin@example.jp"])
        .env_remove("KARAMAIL_CONFIG")
        .env("KARAMAIL_MAIL_OUTBOX_DIR", &daemon.config.mail.outbox_dir)
        .env("KARAMAIL_MAIL_DKIM_KEY", &key)
        .env("KARAMAIL_MAIL_DKIM_SELECTOR", "km1")
        .env("KARAMAIL_MAIL_FROM", "noreply@example.jp")
        .env("KARAMAIL_DATABASE_PATH", &daemon.config.database.path)
        .env(
            "KARAMAIL_MAIL_CHARSET",
            match charset {
                Charset::Utf8 => "utf-8",
                Charset::Iso2022Jp => "iso-2022-jp",
            },
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let files: Vec<String> = std::fs::read_dir(&daemon.config.mail.outbox_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| p.display().to_string())
        .collect();
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mail_audit.py"))
        .args(["km1", "example.jp", &record])
        .args(&files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "mail_audit.py: {} (run `bash tests/run.sh`, which installs dkimpy)",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("file\tsubject\tdkim\tdefects\tmissing\n{report}");
    let lines: Vec<Vec<String>> = report
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    assert_eq!(lines.len(), files.len());
    for line in &lines {
        assert_eq!(line[2..5], ["pass", "-", "-"], "{}", line.join("  "));
        let signed: Vec<&str> = line[5].split(',').collect();
        assert_eq!(
            line[7],
            "japanese",
            "the body reads back: {}",
            line.join("  ")
        );
        for header in [
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "mime-version",
            "content-type",
            "content-transfer-encoding",
        ] {
            assert!(
                signed.contains(&header),
                "{header} unsigned in {}",
                line.join("  ")
            );
        }
        if signed.contains(&"(reply)") {
            assert!(
                signed.contains(&"in-reply-to") && signed.contains(&"references"),
                "{}",
                line.join("  ")
            );
        }
    }
    assert!(
        lines.iter().any(|l| l[5].contains("(reply)")),
        "a reply was checked"
    );
    for subject in SUBJECTS.iter().map(|s| s.trim_end_matches(" (web)")) {
        assert!(
            lines.iter().any(|l| l[1] == subject),
            "no mail 「{subject}」 checked"
        );
    }
    lines
}
