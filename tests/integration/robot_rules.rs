//! The robot rules as an operator meets them: the log and `karamail check-mail` name
//! the rule, a rule seen to misfire can be turned off, and no mail can stop the daemon.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::cli::{daemon_folder, in_folder, listening};
use crate::robots::{corpus, without_fields};
use crate::util::{TestDaemon, empty_mail, send_mail};

/// What an operator sees: the real binary's log names the rule and what it saw for
/// each suppressed mail (never the mail's text), and `karamail check-mail` gives the
/// same judgment for a mail in hand.
#[test]
fn the_log_and_check_mail_name_the_rule() {
    let bounce = corpus("robots/set-of-emails")
        .into_iter()
        .find(|(name, _)| name == "lhost-qmail-01.eml")
        .unwrap()
        .1;
    let dir = daemon_folder("127.0.0.1:0");
    let (mut daemon, smtp, mut log) = listening(in_folder(&dir, &["serve"]));
    let mut client = crate::util::Smtp::connect(smtp);
    let relayed = without_fields(&bounce, &["return-path"]);
    assert_eq!(
        client.send_bytes("taro.yamada@example.net", &["kc@example.jp"], &relayed),
        250
    );
    client.command("QUIT");
    std::thread::sleep(Duration::from_millis(300));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let mut rest = Vec::new();
    log.read_to_end(&mut rest).unwrap();
    let rest = String::from_utf8_lossy(&rest);
    let line = rest
        .lines()
        .find(|l| l.contains("mail received"))
        .unwrap_or_else(|| panic!("{rest}"));
    assert!(line.contains("robot_from"), "{line}");
    assert!(line.contains("From: mailer-daemon"), "{line}");
    assert!(
        !line.contains("nekochan"),
        "no word of the mail itself: {line}"
    );

    let corpus_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let checked = in_folder(&dir, &["check-mail", "--sender", "taro.yamada@example.net"])
        .arg(corpus_dir.join("robots/set-of-emails/lhost-qmail-01.eml"))
        .arg(corpus_dir.join("humans/written/member-asks-where-reply-is.eml"))
        .output()
        .unwrap();
    assert!(checked.status.success());
    let out = String::from_utf8_lossy(&checked.stdout);
    assert!(
        // The file still has the earlier delivery's Return-Path, the first sign read.
        out.contains("lhost-qmail-01.eml: no reply: robot_return_path (Return-Path: <>)"),
        "{out}"
    );
    assert!(
        out.contains("member-asks-where-reply-is.eml: answered"),
        "{out}"
    );
    assert!(out.contains("1 answered, 1 not answered"), "{out}");
}

/// A 1 MiB nest of attached messages (`message/rfc822` parts, or the untyped parts of a
/// `multipart/digest`) once overflowed the stack when the parsed mail was freed, and
/// took the whole daemon down. Now each is stored like any other (the bounce's subject
/// recorded, the person's answered) and the next member is answered.
#[test]
fn a_nest_of_attached_messages_cannot_stop_the_daemon() {
    let daemon = TestDaemon::start();
    for (i, digest) in [false, true].into_iter().enumerate() {
        let mut nest = format!(
            "From: a@example.net\r\nSubject: {}\r\n",
            ["failure notice", "登録"][i]
        )
        .into_bytes();
        let mut level = 0;
        while nest.len() < 1_000_000 {
            let next = if digest {
                format!(
                    "Content-Type: multipart/digest; boundary=b{level}\r\n\r\n--b{level}\r\n\r\n"
                )
            } else {
                "Content-Type: message/rfc822\r\n\r\n".to_string()
            };
            nest.extend_from_slice(next.as_bytes());
            level += 1;
        }
        let sender = format!("nester{i}@example.net");
        let mut smtp = daemon.smtp();
        assert_eq!(smtp.send_bytes(&sender, &["kc@example.jp"], &nest), 250);
        smtp.command("QUIT");
        let stored = ["bounce_subject", "queued"][i];
        assert_eq!(daemon.outcomes_for(&sender), [stored], "digest: {digest}");
    }
    let person = "after.the.nest@example.net";
    assert_eq!(
        crate::util::send_mail(&daemon, person, &crate::util::empty_mail(person)),
        250
    );
    daemon.wait_for_mail(person);
}

/// A rule the sysadmin saw misfire can be turned off: the mails it caught are answered,
/// every other rule still holds, and a name that is no rule's, or `null_sender`, is
/// refused by `check-config` (and at start) with the reason.
#[test]
fn a_misfiring_rule_can_be_turned_off() {
    let daemon = TestDaemon::start_with(|config| {
        config.smtp.robot_rules_off = vec!["auto_reply_subject".into()];
    });
    let away = "away.but.a.person@example.net";
    let mail = empty_mail(away).replace("Subject: \r\n", "Subject: 不在\r\n");
    assert_eq!(send_mail(&daemon, away, &mail), 250);
    daemon.wait_for_mail(away);
    let bounce = "subject.says.failure@example.net";
    let mail = empty_mail(bounce).replace("Subject: \r\n", "Subject: failure notice\r\n");
    assert_eq!(send_mail(&daemon, bounce, &mail), 250);
    assert_eq!(daemon.outcomes_for(bounce), ["bounce_subject"]);
    assert_eq!(daemon.outcomes_for(away), ["queued"]);

    let dir = daemon_folder("127.0.0.1:0");
    for (value, says) in [
        ("[\"null_sender\"]", "null_sender cannot be turned off"),
        (
            "[\"bounce_subjects\"]",
            "no rule is called \"bounce_subjects\"; the rules are null_sender, robot_sender",
        ),
    ] {
        let checked = in_folder(&dir, &["check-config"])
            .env("KARAMAIL_SMTP_ROBOT_RULES_OFF", value)
            .output()
            .unwrap();
        assert!(!checked.status.success(), "{value}");
        let out =
            String::from_utf8_lossy(&checked.stdout) + String::from_utf8_lossy(&checked.stderr);
        assert!(out.contains(says), "{value}: {out}");
    }
}
