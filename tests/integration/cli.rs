//! The sysadmin's commands, run as the real binary.

use std::process::Command;

fn karamail(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_karamail"))
        .args(args)
        .current_dir(dir)
        .env_remove("KARAMAIL_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn members_import_reads_excel_shift_jis_and_writes_postcards() {
    let dir = tempfile::tempdir().unwrap();
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
