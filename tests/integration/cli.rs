//! The sysadmin's commands, run as the real binary.

use std::process::Command;

/// The real binary, run in `dir` as the sysadmin would, with no config from the
/// environment.
pub(crate) fn karamail(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_karamail"))
        .args(args)
        .current_dir(dir)
        .env_remove("KARAMAIL_CONFIG")
        .output()
        .unwrap()
}

/// The sysadmin's first step in a new folder: a database made on purpose.
fn create_database(dir: &std::path::Path) {
    let out = karamail(dir, &["--create-database", "outbox", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn members_import_reads_excel_shift_jis_and_writes_postcards() {
    let dir = tempfile::tempdir().unwrap();
    create_database(dir.path());
    let (sjis, _, _) = encoding_rs::SHIFT_JIS
        .encode("member_no,name,部署\r\n1001,髙橋 一郎,総務\r\n1002,渡辺 花子,営業\r\n");
    std::fs::write(dir.path().join("members.csv"), &sjis).unwrap();
    let out = karamail(
        dir.path(),
        &[
            "members",
            "import",
            "members.csv",
            "--postcards",
            "postcards.csv",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("imported 2 new member(s); skipped 0"),
        "{stdout}"
    );
    let postcards = std::fs::read_to_string(dir.path().join("postcards.csv")).unwrap();
    assert!(postcards.starts_with("\u{FEFF}member_no,name,temp_login_id,temp_password"));
    assert!(postcards.contains("1001,髙橋 一郎,"));
    assert!(
        dir.path().join("karamail-data/karamail.db").exists(),
        "the default database path"
    );

    let again = karamail(
        dir.path(),
        &[
            "members",
            "import",
            "members.csv",
            "--postcards",
            "postcards2.csv",
        ],
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("imported 0 new member(s); skipped 2"));
}

#[test]
fn a_bad_row_fails_the_whole_import_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("members.csv"),
        "member_no,name\n1,A\n2,B\n,C\n",
    )
    .unwrap();
    let out = karamail(
        dir.path(),
        &["members", "import", "members.csv", "--postcards", "p.csv"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 4: member_no is empty"), "{stderr}");
    assert!(!dir.path().join("p.csv").exists());
    let db = rusqlite::Connection::open(dir.path().join("karamail-data/karamail.db"));
    let count: i64 = db
        .and_then(|c| c.query_row("SELECT count(*) FROM members", [], |r| r.get(0)))
        .unwrap_or(0);
    assert_eq!(count, 0, "nobody imported");
}

#[test]
fn qr_writes_a_code_a_phone_reads_as_the_intake_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = karamail(
        dir.path(),
        &["qr", "--address", "kc@example.jp", "--out-dir", "codes"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("mailto:kc@example.jp") && stdout.contains('█'));
    let image = image::open(dir.path().join("codes/signup.png"))
        .unwrap()
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let (_, content) = prepared.detect_grids()[0].decode().unwrap();
    assert_eq!(content, "mailto:kc@example.jp");
    assert!(dir.path().join("codes/signup.svg").exists());
}

#[test]
fn a_bad_config_is_reported_precisely() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("k.toml"),
        "[policy]\nsignup_link_ttl = \"three hours\"\n",
    )
    .unwrap();
    let out = karamail(dir.path(), &["--config", "k.toml", "qr"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("k.toml")
            && stderr.contains("signup_link_ttl")
            && stderr.contains("not a duration"),
        "{stderr}"
    );
}

fn karamail_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = karamail(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn notices_are_added_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    create_database(dir.path());
    let added = karamail_ok(
        dir.path(),
        &[
            "notices",
            "add",
            "--title",
            "健診のご案内",
            "--body",
            "予約してください",
            "--until",
            "2099-03-31",
        ],
    );
    assert_eq!(
        added.lines().next().unwrap(),
        "notice 1 added: \"健診のご案内\", shown to every member from now until 2099-03-31"
    );
    assert!(
        added.contains("queued 0 「新しいお知らせがあります」 mail(s)"),
        "nobody signed up"
    );
    let bad = karamail(
        dir.path(),
        &["notices", "add", "--title", "x", "--until", "2099-02-30"],
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a date"));
    let list = karamail_ok(dir.path(), &["notices", "list"]);
    assert!(
        list.contains("1\t")
            && list.contains("2099-03-31\t健診のご案内")
            && list.contains("1 notice(s)")
    );
    assert_eq!(
        karamail_ok(dir.path(), &["notices", "remove", "1"]).trim(),
        "notice 1 removed"
    );
    let again = karamail(dir.path(), &["notices", "remove", "1"]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("no notice 1"));
}

#[test]
fn records_import_takes_shift_jis_and_refuses_a_bad_row_whole() {
    let dir = tempfile::tempdir().unwrap();
    create_database(dir.path());
    std::fs::write(
        dir.path().join("members.csv"),
        "member_no,name\n1001,A\n1002,B\n",
    )
    .unwrap();
    karamail_ok(
        dir.path(),
        &["members", "import", "members.csv", "--postcards", "p.csv"],
    );
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("member_no,date,title,body,医療機関\r\n1001,2026/05/01,5月分,\"3,210円\",東京病院\r\n1002,2026-05-01,5月分,\"1,050円\",大阪医院\r\n");
    std::fs::write(dir.path().join("medical.csv"), &sjis).unwrap();
    let out = karamail_ok(
        dir.path(),
        &[
            "records",
            "import",
            "--kind",
            "medical-expense",
            "medical.csv",
        ],
    );
    assert_eq!(
        out.lines().next().unwrap(),
        "imported 2 medical_expense record(s) for 2 member(s)"
    );
    let db = rusqlite::Connection::open(dir.path().join("karamail-data/karamail.db")).unwrap();
    let (body, extra): (String, String) = db
        .query_row(
            "SELECT body, extra FROM records WHERE date = '2026-05-01' ORDER BY id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (body.as_str(), extra.as_str()),
        ("3,210円", r#"[["医療機関","東京病院"]]"#)
    );
    std::fs::write(
        dir.path().join("bad.csv"),
        "member_no,date,title,body\n1001,2026-06-01,ok,x\n9999,2026-06-01,who,x\n",
    )
    .unwrap();
    let bad = karamail(
        dir.path(),
        &["records", "import", "--kind", "checkup", "bad.csv"],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 3: no member with member_no 9999"));
    let kinds: i64 = db
        .query_row(
            "SELECT count(*) FROM records WHERE kind = 'checkup'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kinds, 0, "nothing of the bad file was stored");
}

#[test]
fn members_are_listed_shown_disabled_enabled_and_reissued() {
    let dir = tempfile::tempdir().unwrap();
    create_database(dir.path());
    std::fs::write(
        dir.path().join("members.csv"),
        "member_no,name\n1001,山田 太郎\n",
    )
    .unwrap();
    karamail_ok(
        dir.path(),
        &["members", "import", "members.csv", "--postcards", "p.csv"],
    );
    let old = crate::util::read_postcards(&dir.path().join("p.csv")).remove(0);
    let list = karamail_ok(dir.path(), &["members", "list"]);
    assert!(list.contains("1001\tpostcard sent\t-\t山田 太郎"), "{list}");
    let show = karamail_ok(dir.path(), &["members", "show", "1001"]);
    assert!(
        show.contains(&old.0) && show.contains("postcard sent"),
        "{show}"
    );

    let reissued = karamail_ok(
        dir.path(),
        &["members", "reissue", "1001", "--postcards", "r.csv"],
    );
    assert!(reissued.contains("the old ones no longer work"));
    let new = crate::util::read_postcards(&dir.path().join("r.csv")).remove(0);
    assert_ne!(new, old);
    let show = karamail_ok(dir.path(), &["members", "show", "1001"]);
    assert!(show.contains(&new.0) && !show.contains(&old.0));

    assert!(
        karamail_ok(dir.path(), &["members", "disable", "1001"]).contains("member 1001 disabled")
    );
    assert!(karamail_ok(dir.path(), &["members", "list"]).contains("1001\tdisabled"));
    assert!(
        karamail_ok(dir.path(), &["members", "disable", "1001"])
            .contains("already disabled; nothing changed")
    );
    assert!(
        karamail_ok(dir.path(), &["members", "enable", "1001"]).contains("member 1001 enabled")
    );
    let unknown = karamail(dir.path(), &["members", "show", "9999"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no member with member_no 9999"));
}

#[test]
fn check_config_lists_every_problem_and_says_ok_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        karamail_ok(dir.path(), &["check-config"]).starts_with("config OK (built-in defaults)")
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        "[mail]\ntransport = \"smtp\"\nfrom = \"nobody\"\n[site]\ntemplates_dir = \"/nonexistent\"\n[smtp]\nmax_errors = 0\n",
    )
    .unwrap();
    let out = karamail(dir.path(), &["--config", "bad.toml", "check-config"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "[mail] relay",
        "[mail] from",
        "[site] templates_dir",
        "[smtp] max_errors",
    ] {
        assert!(stderr.contains(problem), "{problem} in {stderr}");
    }
    assert!(
        !dir.path().join("karamail-data").exists(),
        "checking creates nothing"
    );
}

#[test]
fn a_test_mail_goes_out_now_and_the_outbox_can_be_inspected_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    create_database(dir.path());
    let sent = karamail_ok(dir.path(), &["send-test-mail", "admin@example.jp"]);
    assert!(
        sent.contains("test mail to admin@example.jp sent"),
        "{sent}"
    );
    let file = std::fs::read_dir(dir.path().join("karamail-data/outbox"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mail = crate::util::Mail::parse(&std::fs::read(file).unwrap());
    assert!(mail.subject.contains("送信テスト") && mail.to == "admin@example.jp");

    // A failed mail, as the worker leaves one after a permanent refusal.
    karamail_ok(dir.path(), &["outbox", "list"]);
    let db = rusqlite::Connection::open(dir.path().join("karamail-data/karamail.db")).unwrap();
    db.execute_batch(
        "INSERT INTO outbox (kind, recipient, params, message_id, created_at, status, attempts, next_attempt_at, last_error)
         VALUES ('signup_link', 'gone@example.net', '{}', '<x@y>', 1, 'failed', 3, 1, '550 no such user');
         INSERT INTO outbox (kind, recipient, params, message_id, created_at, status, attempts, next_attempt_at, sent_at)
         VALUES ('signup_link', 'old@example.net', '{}', '<z@y>', 1, 'sent', 1, 1, 1);",
    )
    .unwrap();
    let list = karamail_ok(dir.path(), &["outbox", "list", "--status", "failed"]);
    assert!(
        list.contains("failed\tsignup_link\t3")
            && list.contains("550 no such user")
            && list.contains("1 mail(s) shown"),
        "{list}"
    );
    assert!(karamail_ok(dir.path(), &["outbox", "retry"]).contains("1 failed mail(s) queued"));
    let status: String = db
        .query_row(
            "SELECT status FROM outbox WHERE recipient = 'gone@example.net'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status, "queued");
    assert!(
        karamail_ok(dir.path(), &["outbox", "purge", "--older-than", "1d"])
            .starts_with("1 sent mail(s)")
    );
    let bad = karamail(dir.path(), &["outbox", "retry", "999"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no failed or queued mail 999"));

    // Cancelled: never sent, listed as such; a sent mail cannot be cancelled.
    let id: i64 = db
        .query_row(
            "SELECT id FROM outbox WHERE recipient = 'gone@example.net'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let cancelled = karamail_ok(dir.path(), &["outbox", "cancel", &id.to_string()]);
    assert!(
        cancelled.contains(&format!("mail {id} cancelled")),
        "{cancelled}"
    );
    let list = karamail_ok(dir.path(), &["outbox", "list", "--status", "cancelled"]);
    assert!(
        list.contains("gone@example.net") && list.contains("cancelled by the sysadmin"),
        "{list}"
    );
    assert!(list.contains("in the outbox: 1 cancelled"), "{list}");
    let again = karamail(dir.path(), &["outbox", "cancel", &id.to_string()]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!("no queued or failed mail {id}"))
    );
}

#[test]
fn completions_man_page_and_examples_in_every_help() {
    let dir = tempfile::tempdir().unwrap();
    assert!(karamail_ok(dir.path(), &["completions", "bash"]).contains("_karamail()"));
    assert!(karamail_ok(dir.path(), &["man"]).contains(".TH karamail 1"));
    for command in [
        &["serve"][..],
        &["members", "import"],
        &["members", "reissue"],
        &["notices", "add"],
        &["records", "import"],
        &["qr"],
        &["check-config"],
        &["send-test-mail"],
        &["outbox", "purge"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        assert!(
            karamail_ok(dir.path(), &args).contains("Example: karamail"),
            "{command:?}"
        );
    }
}

/// With `charset = "iso-2022-jp"`, a society's template that JIS cannot write is
/// refused by name, by check-config and at start, rather than sent garbled.
#[test]
fn a_template_iso_2022_jp_cannot_write_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("t/mail")).unwrap();
    std::fs::write(
        dir.path().join("t/mail/signup_link.txt"),
        "Subject: ご案内🙂\n{{ url }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("jis.toml"),
        "[mail]\ncharset = \"iso-2022-jp\"\n[site]\ntemplates_dir = \"t\"\n[http]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"\"\n[smtp]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    for command in [
        &["--config", "jis.toml", "check-config"][..],
        &["--config", "jis.toml", "serve"],
    ] {
        let out = karamail(dir.path(), command);
        assert!(!out.status.success(), "{command:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("mail/signup_link.txt") && stderr.contains("U+1F642"),
            "{command:?}: {stderr}"
        );
    }
    std::fs::remove_dir_all(dir.path().join("t")).unwrap();
    std::fs::write(
        dir.path().join("jis.toml"),
        "[mail]\ncharset = \"iso-2022-jp\"\n",
    )
    .unwrap();
    assert!(
        karamail_ok(dir.path(), &["--config", "jis.toml", "check-config"]).starts_with("config OK")
    );
}

/// One database wherever a command runs: relative paths in a config file are beside
/// it; a command that would start a new, empty database refuses unless told to; every
/// command names the database it used, and check-config every path.
#[test]
fn one_database_wherever_a_command_runs() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let elsewhere = dir.path().join("home/admin");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(
        etc.join("karamail.toml"),
        "[database]\npath = \"state/karamail.db\"\n",
    )
    .unwrap();
    std::fs::write(elsewhere.join("m.csv"), "member_no,name\n9001,山田 太郎\n").unwrap();
    let config = etc.join("karamail.toml").display().to_string();
    let import = [
        "--config",
        config.as_str(),
        "members",
        "import",
        "m.csv",
        "--postcards",
        "p.csv",
    ];

    let refused = karamail(&elsewhere, &import);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("no database at") && said.contains("--create-database"),
        "{said}"
    );
    assert!(!etc.join("state/karamail.db").exists() && !elsewhere.join("state").exists());

    let mut created = vec!["--create-database"];
    created.extend_from_slice(&import);
    let out = karamail(&elsewhere, &created);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = etc.join("state/karamail.db");
    assert!(
        db.exists(),
        "the database is beside the config, not in the admin's folder"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("database: {}", db.display())));
    // From yet another folder, the same database.
    let listed = karamail(
        dir.path(),
        &["--config", config.as_str(), "members", "list"],
    );
    assert!(String::from_utf8_lossy(&listed.stdout).contains("9001"));
    let checked = karamail_ok(dir.path(), &["--config", config.as_str(), "check-config"]);
    assert!(checked.contains(&db.display().to_string()), "{checked}");
    assert!(
        checked.contains(&etc.join("karamail-data/outbox").display().to_string()),
        "{checked}"
    );
}

/// Started from a shell with umask 022 (no systemd to set 0077), the daemon and the
/// commands still keep every file they make to karamail's user: the database and its
/// WAL, the server key, the outbox folder and its `.eml` files (live links), the
/// postcards CSV (temporary passwords).
#[test]
fn files_are_private_without_systemd() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let dir = daemon_folder("");
    let loose = |args: &[&str]| {
        let mut command = in_folder(&dir, args);
        // SAFETY: umask(2) in the child before exec; nothing else runs there.
        unsafe {
            command.pre_exec(|| {
                libc::umask(0o022);
                Ok(())
            });
        }
        command
    };
    std::fs::write(
        dir.path().join("members.csv"),
        "member_no,name\n1001,山田 太郎\n",
    )
    .unwrap();
    let out = loose(&[
        "--create-database",
        "members",
        "import",
        "members.csv",
        "--postcards",
        "postcards.csv",
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (mut daemon, smtp, _log) = listening(loose(&["serve"]));
    let mut client = crate::util::Smtp::connect(smtp);
    let sender = "taro@example.net";
    assert_eq!(
        client.send(sender, &["kc@example.jp"], &crate::util::empty_mail(sender)),
        250
    );
    let outbox = dir.path().join("karamail-data/outbox");
    let eml = (0..100)
        .find_map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            std::fs::read_dir(&outbox)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|e| e == "eml"))
        })
        .expect("the reply was written");
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let data = dir.path().join("karamail-data");
    for (path, expected) in [
        (data.clone(), 0o700),
        (data.join("karamail.db"), 0o600),
        (data.join("karamail.db-wal"), 0o600),
        (data.join("karamail.key"), 0o600),
        (outbox.clone(), 0o700),
        (eml, 0o600),
        (dir.path().join("postcards.csv"), 0o600),
    ] {
        assert_eq!(mode(&path), expected, "{}", path.display());
    }
}

/// Names an attacker (or a typo) made into formulas are written into the postcards CSV
/// so that Excel shows them as text (OWASP's CSV-injection rule).
#[test]
fn postcards_never_carry_a_formula() {
    let dir = tempfile::tempdir().unwrap();
    create_database(dir.path());
    std::fs::write(
        dir.path().join("members.csv"),
        "member_no,name\n1,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\"\n2,+81 太郎\n3,-1+1\n4,@SUM(A1)\n5,山田 太郎\n",
    )
    .unwrap();
    let out = karamail(
        dir.path(),
        &[
            "members",
            "import",
            "members.csv",
            "--postcards",
            "postcards.csv",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.path().join("postcards.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{FEFF}').as_bytes());
    let names: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    assert_eq!(
        names,
        [
            "'=HYPERLINK(\"http://evil.example\",\"x\")",
            "'+81 太郎",
            "'-1+1",
            "'@SUM(A1)",
            "山田 太郎"
        ]
    );
}

/// A folder with a `karamail.toml` for running the real daemon on loopback port 0
/// (`metrics_listen` as given).
pub(crate) fn daemon_folder(metrics_listen: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("karamail.toml"),
        format!(
            "[smtp]\nlisten = \"127.0.0.1:0\"\nintake_addresses = [\"kc@example.jp\"]\n\
             greeting_delay = \"10ms\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
             metrics_listen = \"{metrics_listen}\"\n"
        ),
    )
    .unwrap();
    dir
}

/// `karamail --config karamail.toml ARGS` in `dir`, not yet run.
pub(crate) fn in_folder(dir: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_karamail"));
    command
        .args(["--config", "karamail.toml"])
        .args(args)
        .current_dir(dir.path())
        .env_remove("KARAMAIL_CONFIG");
    command
}

/// Spawns `command` (a `serve`) and waits for its "karamail listening" line: the child,
/// its SMTP address and the rest of its log.
pub(crate) fn listening(
    mut command: Command,
) -> (
    std::process::Child,
    std::net::SocketAddr,
    std::io::BufReader<std::process::ChildStderr>,
) {
    use std::io::BufRead;
    let mut daemon = command
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = std::io::BufReader::new(daemon.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("karamail listening") {
        line.clear();
        assert_ne!(log.read_line(&mut line).unwrap(), 0, "the daemon stopped");
    }
    let smtp = line
        .split("smtp=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    (daemon, smtp, log)
}

/// An address with ESC, NUL and VT in it (a terminal's escape sequences, a forged
/// line) reaches the log only written out; a `public_url` with a control character is
/// refused at start; a `/metrics` open beyond loopback is warned of.
#[test]
fn the_log_and_the_config_are_safe_from_odd_input() {
    use std::io::Read;
    let dir = daemon_folder("0.0.0.0:0");
    let command = |args: &[&str]| {
        let mut all = vec!["--create-database"];
        all.extend_from_slice(args);
        in_folder(&dir, &all)
    };
    let bad_url = command(&["check-config"])
        .env(
            "KARAMAIL_HTTP_PUBLIC_URL",
            "https://portal.example.jp/\u{1b}[2J",
        )
        .output()
        .unwrap();
    assert!(!bad_url.status.success());
    assert!(
        String::from_utf8_lossy(&bad_url.stderr).contains("[http] public_url"),
        "{}",
        String::from_utf8_lossy(&bad_url.stderr)
    );
    let checked = command(&["check-config"]).output().unwrap();
    assert!(String::from_utf8_lossy(&checked.stdout).contains("WARNING: [http] metrics_listen"));

    let (mut daemon, smtp, mut log) = listening(command(&["serve"]));
    let mut client = crate::util::Smtp::connect(smtp);
    let odd = "\"a\u{1b}[31m\u{0}\u{b}b\"@example.net";
    client.send(
        odd,
        &["kc@example.jp"],
        &crate::util::empty_mail("x@example.net"),
    );
    drop(client);
    std::thread::sleep(std::time::Duration::from_millis(300));
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let mut rest = Vec::new();
    log.read_to_end(&mut rest).unwrap();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("WARNING: [http] metrics_listen"), "{rest}");
    assert!(rest.contains("mail received"), "{rest}");
    assert!(rest.contains("\\u{1b}[31m"), "written out: {rest}");
    assert!(
        !rest.contains(['\u{1b}', '\u{0}', '\u{b}']),
        "no raw control character: {rest:?}"
    );
}

/// A lost server key is not silently replaced (every open link, session and unused
/// postcard would stop working): the daemon and the commands refuse, saying what to
/// do; `--new-server-key` is the sysadmin's explicit way out.
#[test]
fn a_lost_server_key_is_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    create_database(dir.path());
    std::fs::write(
        dir.path().join("members.csv"),
        "member_no,name\n1001,山田 太郎\n",
    )
    .unwrap();
    let import = |postcards: &str, extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["members", "import", "members.csv", "--postcards", postcards]);
        karamail(dir.path(), &args)
    };
    assert!(import("first.csv", &[]).status.success());
    let key = dir.path().join("karamail-data/karamail.key");
    std::fs::remove_file(&key).unwrap();
    for refused in [import("second.csv", &[]), karamail(dir.path(), &["serve"])] {
        assert!(!refused.status.success());
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.contains("server key") && said.contains("is missing"),
            "{said}"
        );
    }
    assert!(!key.exists(), "no new key was made");
    let out = import("third.csv", &["--new-server-key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(key.exists());
}
