//! `karamail documents import` and the household columns of `members import`, as the
//! sysadmin runs them: every file checked first, errors that name the file or line,
//! nothing stored from a refused folder.

use std::path::Path;
use std::process::Output;

use crate::cli::karamail;
use crate::documents::write_pdf;

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A new folder with a database and members 1001 (本人) and 1002 (被扶養者).
fn with_members() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("members.csv"),
        "member_no,name,insured_no,relation\n1001,山田 太郎,K-77,本人\n1002,山田 花子,K-77,被扶養者\n",
    )
    .unwrap();
    let out = karamail(
        dir.path(),
        &[
            "--create-database",
            "members",
            "import",
            "members.csv",
            "--postcards",
            "p.csv",
        ],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    dir
}

fn import(dir: &Path, folder: &str, extra: &[&str]) -> Output {
    let mut args = vec!["documents", "import", "--kind", "qualification"];
    args.extend_from_slice(extra);
    args.push(folder);
    karamail(dir, &args)
}

fn stored(dir: &Path) -> String {
    stdout_of(&karamail(dir, &["documents", "list"]))
}

#[test]
fn a_folder_is_checked_whole_before_anything_is_stored() {
    let dir = with_members();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    write_pdf(&docs.join("1001.pdf"), "1001");
    write_pdf(&docs.join("1002.pdf"), "1002");

    std::fs::write(docs.join("readme.txt"), "hello").unwrap();
    let out = import(dir.path(), "docs", &[]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("readme.txt: is not a PDF"),
        "{}",
        stderr_of(&out)
    );
    std::fs::remove_file(docs.join("readme.txt")).unwrap();

    std::fs::write(docs.join("1003.pdf"), "<html>not a pdf</html>").unwrap();
    let out = import(dir.path(), "docs", &[]);
    assert!(
        stderr_of(&out).contains("1003.pdf: is not a PDF (it does not start with %PDF-)"),
        "{}",
        stderr_of(&out)
    );
    write_pdf(&docs.join("1003.pdf"), "1003");
    let out = import(dir.path(), "docs", &[]);
    assert!(
        stderr_of(&out).contains("1003.pdf: no member with member_no 1003"),
        "{}",
        stderr_of(&out)
    );
    assert!(
        stored(dir.path()).contains("0 document(s)"),
        "nothing of a refused folder"
    );
    std::fs::remove_file(docs.join("1003.pdf")).unwrap();

    std::fs::write(
        docs.join("1002.pdf"),
        [b"%PDF-1.4\n".as_slice(), &vec![b'x'; 1_200_000]].concat(),
    )
    .unwrap();
    let out = import(dir.path(), "docs", &["--max-size", "1"]);
    assert!(
        stderr_of(&out).contains("1002.pdf: is 1.2 MB, over the limit of 1.0 MB"),
        "{}",
        stderr_of(&out)
    );
    write_pdf(&docs.join("1002.pdf"), "1002");

    let out = import(dir.path(), "docs", &["--date", "2026/11/01"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out)
            .contains("imported 2 qualification document(s) for 2 member(s); 0 already there"),
        "{}",
        stdout_of(&out)
    );
    assert!(
        stdout_of(&out).contains("queued 0 「新しいお知らせがあります」"),
        "nobody signed up yet"
    );
    let list = stored(dir.path());
    assert!(
        list.contains("1001\tqualification\t2026-11-01\t資格情報のお知らせ\t1001.pdf"),
        "{list}"
    );
    let again = import(dir.path(), "docs", &["--date", "2026-11-01"]);
    assert!(
        stdout_of(&again)
            .contains("imported 0 qualification document(s) for 2 member(s); 2 already there")
    );
    // Two files for one member with the same date and title: one would be lost.
    write_pdf(&docs.join("1001.PDF"), "1001 again");
    let out = import(dir.path(), "docs", &["--date", "2026-11-01"]);
    assert!(
        stderr_of(&out).contains("the same member, date and title as 1001.PDF"),
        "{}",
        stderr_of(&out)
    );
    std::fs::remove_file(docs.join("1001.PDF")).unwrap();
    let out = import(dir.path(), "docs", &["--title", "a\u{7}b"]);
    assert!(
        stderr_of(&out).contains("has control characters"),
        "{}",
        stderr_of(&out)
    );

    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string();
    assert!(
        karamail(dir.path(), &["documents", "remove", &id])
            .status
            .success()
    );
    assert!(stored(dir.path()).contains("1 document(s)"));
    let out = karamail(dir.path(), &["documents", "remove", &id]);
    assert!(stderr_of(&out).contains(&format!("no document {id}")));
}

#[test]
fn an_index_in_shift_jis_names_each_file_and_its_faults_by_line() {
    let dir = with_members();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    write_pdf(&docs.join("taro.pdf"), "1001");
    write_pdf(&docs.join("1002.pdf"), "1002");
    let index = |text: &str| {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(text);
        std::fs::write(docs.join("documents.csv"), &sjis).unwrap();
    };
    index(
        "file,member_no,date,title\r\ntaro.pdf,1001,2026-10-01,資格情報のお知らせ（令和8年10月）\r\n1002.pdf,,2026-13-01,\r\n",
    );
    let out = import(dir.path(), "docs", &[]);
    assert!(
        stderr_of(&out).contains("documents.csv line 3: date \"2026-13-01\" is not a date"),
        "{}",
        stderr_of(&out)
    );
    index(
        "file,member_no,date,title\r\ntaro.pdf,1001,2026-10-01,資格情報のお知らせ（令和8年10月）\r\n../p.csv,,2026-10-01,\r\n",
    );
    let out = import(dir.path(), "docs", &[]);
    assert!(
        stderr_of(&out)
            .contains("documents.csv line 3: file \"../p.csv\" is not a PDF in this folder"),
        "{}",
        stderr_of(&out)
    );
    index(
        "file,member_no,date,title\r\ntaro.pdf,1001,2026-10-01,資格情報のお知らせ（令和8年10月）\r\n1002.pdf,,2026-10-01,\r\n",
    );
    write_pdf(&docs.join("1009.pdf"), "1009");
    let out = import(dir.path(), "docs", &[]);
    assert!(
        stderr_of(&out).contains("1009.pdf: is in the folder but not in documents.csv"),
        "{}",
        stderr_of(&out)
    );
    std::fs::remove_file(docs.join("1009.pdf")).unwrap();
    let out = import(dir.path(), "docs", &[]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let list = stored(dir.path());
    assert!(
        list.contains(
            "1001\tqualification\t2026-10-01\t資格情報のお知らせ（令和8年10月）\ttaro.pdf"
        ),
        "{list}"
    );
    assert!(
        list.contains("1002\tqualification\t2026-10-01\t資格情報のお知らせ\t1002.pdf"),
        "{list}"
    );
}

#[test]
fn household_columns_are_checked_and_kept_up_to_date() {
    let dir = with_members();
    let run = |csv: &str| {
        std::fs::write(dir.path().join("more.csv"), csv).unwrap();
        let postcards = format!("p-{}.csv", karamail::secrets::new_token());
        karamail(
            dir.path(),
            &["members", "import", "more.csv", "--postcards", &postcards],
        )
    };
    let out = run("member_no,name,insured_no,relation\n1003,山田 次郎,K-77,父\n");
    assert!(
        stderr_of(&out)
            .contains("line 2: member_no 1003: relation \"父\" is neither 本人 nor 被扶養者"),
        "{}",
        stderr_of(&out)
    );
    let out = run("member_no,name,insured_no,relation\n1003,山田 次郎,,被扶養者\n");
    assert!(
        stderr_of(&out)
            .contains("line 2: member_no 1003: relation is given but insured_no is empty"),
        "{}",
        stderr_of(&out)
    );
    let out = run(
        "member_no,name,insured_no,relation\n1003,佐藤 一郎,K-88,本人\n1004,佐藤 二郎,K-88,本人\n",
    );
    assert!(
        stderr_of(&out).contains("line 3: insured_no K-88 has a second 本人 (the first on line 2)"),
        "{}",
        stderr_of(&out)
    );
    let out = run("member_no,name,insured_no,relation\n1003,鈴木 一郎,K-77,本人\n");
    assert!(
        stderr_of(&out).contains("line 2: insured_no K-77 already has member 1001 as 本人"),
        "{}",
        stderr_of(&out)
    );
    // A dependant who moves to a household of their own, and a member in none.
    let out = run(
        "member_no,name,insured_no,relation\n1002,山田 花子,K-99,本人\n1005,山田 三郎,K-77,被扶養者\n1001,山田 太郎,,\n",
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("imported 1 new member(s); skipped 2 already imported"));
    assert!(
        stdout_of(&out).contains("updated the household (insured_no, relation) of 2 member(s)"),
        "{}",
        stdout_of(&out)
    );
    let db = rusqlite::Connection::open(dir.path().join("karamail-data/karamail.db")).unwrap();
    let household = |member_no: &str| {
        db.query_row(
            "SELECT insured_no, relation FROM members WHERE member_no = ?1",
            [member_no],
            |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                ))
            },
        )
        .unwrap()
    };
    assert_eq!(
        household("1002"),
        (Some("K-99".into()), Some("insured".into()))
    );
    assert_eq!(
        household("1005"),
        (Some("K-77".into()), Some("dependant".into()))
    );
    assert_eq!(household("1001"), (None, None));
    // A file without the columns leaves every household as it is.
    let out = run("member_no,name\n1005,山田 三郎\n");
    assert!(
        !stdout_of(&out).contains("updated the household"),
        "{}",
        stdout_of(&out)
    );
    assert_eq!(
        household("1005"),
        (Some("K-77".into()), Some("dependant".into()))
    );
}
