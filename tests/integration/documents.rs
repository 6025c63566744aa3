//! Documents (PDF) per member and household: imported from a folder, listed on the top
//! page, downloaded only by whoever may see them; one 「新しいお知らせがあります」 per
//! member per import, which a member can turn off.

use std::path::Path;

use crate::util::TestDaemon;
use crate::util::member::{log_in, mails_with_subject, register, sign_up, wait_for_nth};

const NEWS: &str = "新しいお知らせがあります";

/// A small real PDF whose text marks whose it is.
pub fn write_pdf(path: &Path, marker: &str) {
    let pdf = format!(
        "%PDF-1.4\n% {marker}\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 283 420]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    );
    std::fs::write(path, pdf).unwrap();
}

fn import_documents(daemon: &TestDaemon, kind: karamail::db::documents::Kind, dir: &Path) {
    import_dated(daemon, kind, dir, "2026-11-01");
}

fn import_dated(daemon: &TestDaemon, kind: karamail::db::documents::Kind, dir: &Path, date: &str) {
    let options = karamail::documents::Options {
        kind,
        date: Some(date.into()),
        title: None,
        max_bytes: 1_000_000,
    };
    karamail::cli::documents::import(&daemon.config, &options, dir).unwrap();
}

/// The ids of the documents linked from a page, in order.
fn document_ids(page: &str) -> Vec<String> {
    page.split("href=\"/documents/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

/// The id of a member's newest document.
fn id_of(daemon: &TestDaemon, member_no: &str) -> String {
    daemon
        .db()
        .query_row(
            "SELECT max(d.id) FROM documents d JOIN members m ON m.id = d.member_id WHERE m.member_no = ?1",
            [member_no],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        .to_string()
}

#[test]
fn a_household_sees_its_own_qualification_notices_and_no_one_elses() {
    let daemon = TestDaemon::start();
    let postcards = daemon.import_members(
        "member_no,name,insured_no,relation\n7001,山田 太郎,H-1,本人\n7002,山田 花子,H-1,被扶養者\n7003,佐藤 一郎,H-2,本人\n7004,佐藤 次郎,H-2,被扶養者\n",
    );
    sign_up(
        &daemon,
        &postcards[0],
        "taro@example.net",
        "yamadataro",
        "たろう",
    );
    sign_up(
        &daemon,
        &postcards[1],
        "hana@example.net",
        "yamadahana",
        "はなこ",
    );
    sign_up(
        &daemon,
        &postcards[2],
        "ichi@example.net",
        "satoichiro",
        "いちろう",
    );
    let folder = tempfile::tempdir().unwrap();
    for member_no in ["7001", "7002", "7003", "7004"] {
        write_pdf(&folder.path().join(format!("{member_no}.pdf")), member_no);
    }
    import_documents(
        &daemon,
        karamail::db::documents::Kind::Qualification,
        folder.path(),
    );
    let (taro_doc, hana_doc, ichi_doc, jiro_doc) = (
        id_of(&daemon, "7001"),
        id_of(&daemon, "7002"),
        id_of(&daemon, "7003"),
        id_of(&daemon, "7004"),
    );

    let mut taro = daemon.browser();
    log_in(&daemon, &mut taro, "yamadataro", "taro@example.net", 1);
    let home = taro.open("/home");
    let section = &home.body[home.body.find("<h2>資格情報のお知らせ</h2>").unwrap()..];
    let section = &section[..section.find("</section>").unwrap()];
    let mut shown = document_ids(section);
    shown.sort();
    assert_eq!(
        shown,
        [taro_doc.clone(), hana_doc.clone()],
        "本人: own and dependant's"
    );
    assert!(
        section.contains("2026年11月1日 資格情報のお知らせ（山田 花子さん）"),
        "{section}"
    );
    let own = taro.get(&format!("/documents/{taro_doc}"));
    assert_eq!(own.status, 200);
    assert_eq!(own.headers["content-type"], "application/pdf");
    assert_eq!(own.headers["cache-control"], "no-store");
    let disposition = own.headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''2026-11-01_%E8%B3%87"),
        "{disposition}"
    );
    assert!(own.body.starts_with("%PDF-") && own.body.contains("% 7001"));
    assert!(
        taro.get(&format!("/documents/{hana_doc}"))
            .body
            .contains("% 7002")
    );
    for other in [
        &ichi_doc,
        &jiro_doc,
        &"999999".to_string(),
        &"x".to_string(),
    ] {
        assert_eq!(
            taro.get(&format!("/documents/{other}")).status,
            404,
            "{other}"
        );
    }

    // A dependant with their own account sees only their own.
    let mut hana = daemon.browser();
    log_in(&daemon, &mut hana, "yamadahana", "hana@example.net", 1);
    assert_eq!(document_ids(&hana.open("/home").body), [hana_doc.as_str()]);
    assert_eq!(hana.get(&format!("/documents/{taro_doc}")).status, 404);

    // The other household.
    let mut ichi = daemon.browser();
    log_in(&daemon, &mut ichi, "satoichiro", "ichi@example.net", 1);
    let mut shown = document_ids(&ichi.open("/home").body);
    shown.sort();
    assert_eq!(shown, [ichi_doc, jiro_doc]);
    assert_eq!(ichi.get(&format!("/documents/{taro_doc}")).status, 404);

    // Logged out: the login page, not the file.
    assert_eq!(
        daemon
            .browser()
            .get(&format!("/documents/{taro_doc}"))
            .status,
        303
    );

    let downloads: i64 = daemon
        .db()
        .query_row(
            "SELECT count(*) FROM audit WHERE event = 'document_downloaded'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        downloads, 2,
        "each download audited, refusals are not downloads"
    );

    // One mail each, though 本人 got two documents; nothing personal in it.
    for address in ["taro@example.net", "hana@example.net", "ichi@example.net"] {
        let mail = wait_for_nth(&daemon, address, NEWS, 1);
        assert!(
            !mail.body.contains("山田") && !mail.body.contains("資格情報"),
            "{}",
            mail.body
        );
        assert!(mail.body.contains("ログインしてトップ画面でご確認ください"));
    }
    assert_eq!(
        mails_with_subject(&daemon, "taro@example.net", NEWS).len(),
        1
    );

    // The same folder again: nothing new, no mail.
    import_documents(
        &daemon,
        karamail::db::documents::Kind::Qualification,
        folder.path(),
    );
    let stored: i64 = daemon
        .db()
        .query_row("SELECT count(*) FROM documents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 4);
    let news: i64 = daemon
        .db()
        .query_row("SELECT count(*) FROM outbox WHERE kind = 'news'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(news, 3);

    // A dependant's other documents are theirs alone, even for the 本人.
    let medical = tempfile::tempdir().unwrap();
    write_pdf(&medical.path().join("7002.pdf"), "7002 medical");
    import_documents(
        &daemon,
        karamail::db::documents::Kind::MedicalExpense,
        medical.path(),
    );
    let hana_medical = id_of(&daemon, "7002");
    assert!(!document_ids(&taro.open("/home").body).contains(&hana_medical));
    assert_eq!(taro.get(&format!("/documents/{hana_medical}")).status, 404);
    assert_eq!(hana.get(&format!("/documents/{hana_medical}")).status, 200);

    // 花子 moves to the other family: what was issued in the first stays there, what is
    // issued from now on goes to the new 本人 only.
    reimport(
        &daemon,
        "member_no,name,insured_no,relation\n7002,山田 花子,H-2,被扶養者\n",
    );
    let later = tempfile::tempdir().unwrap();
    write_pdf(&later.path().join("7002.pdf"), "7002 later");
    import_dated(
        &daemon,
        karamail::db::documents::Kind::Qualification,
        later.path(),
        "2026-12-01",
    );
    let hana_later = id_of(&daemon, "7002");
    let taro_sees = document_ids(&taro.open("/home").body);
    assert!(taro_sees.contains(&hana_doc) && !taro_sees.contains(&hana_later));
    let ichi_sees = document_ids(&ichi.open("/home").body);
    assert!(ichi_sees.contains(&hana_later) && !ichi_sees.contains(&hana_doc));
    assert_eq!(ichi.get(&format!("/documents/{hana_doc}")).status, 404);

    // Taken out of any household: nothing new of theirs reaches a 本人.
    reimport(
        &daemon,
        "member_no,name,insured_no,relation\n7002,山田 花子,,\n",
    );
    let alone = tempfile::tempdir().unwrap();
    write_pdf(&alone.path().join("7002.pdf"), "7002 alone");
    import_dated(
        &daemon,
        karamail::db::documents::Kind::Qualification,
        alone.path(),
        "2027-01-01",
    );
    let hana_alone = id_of(&daemon, "7002");
    assert_eq!(ichi.get(&format!("/documents/{hana_alone}")).status, 404);
    assert_eq!(hana.get(&format!("/documents/{hana_alone}")).status, 200);
}

/// The members import again, for members already there (their household only).
fn reimport(daemon: &TestDaemon, csv: &str) {
    let db = karamail::db::Db::open(&daemon.config.database.path).unwrap();
    let key = karamail::secrets::ServerKey::open(&db, &daemon.config.key_file(), false).unwrap();
    let rows = karamail::members::parse(csv).unwrap();
    let postcards = tempfile::tempdir().unwrap();
    let summary =
        karamail::members::import(&db, &key, rows, &postcards.path().join("p.csv"), None).unwrap();
    assert_eq!(summary.households_updated, 1);
}

#[test]
fn records_and_notices_announce_once_per_import_to_members_who_want_it() {
    let daemon = TestDaemon::start();
    register(&daemon, "7101", "ume@example.net", "umekoabcd");
    register(&daemon, "7102", "kiku@example.net", "kikukoabcd");
    let mut kiku = daemon.browser();
    log_in(&daemon, &mut kiku, "kikukoabcd", "kiku@example.net", 1);
    kiku.open("/profile");
    kiku.submit("/profile/notify", &[("notify_login", "1")]);

    let rows = karamail::records::parse(
        "member_no,date,title,body\n7101,2026-04-01,定期健診,異常なし\n7101,2026-10-01,二次健診,異常なし\n7102,2026-04-01,定期健診,異常なし\n",
    )
    .unwrap();
    let db = karamail::db::Db::open(&daemon.config.database.path).unwrap();
    let imported = karamail::records::import(
        &db,
        karamail::db::records::Kind::Checkup,
        &rows,
        &daemon.config.mail.from,
    )
    .unwrap();
    assert_eq!(
        imported.mails, 1,
        "two records, one mail; the other turned it off"
    );
    wait_for_nth(&daemon, "ume@example.net", NEWS, 1);

    karamail::cli::notices_add(
        &daemon.config,
        "年末年始のお知らせ",
        "休業します",
        None,
        true,
    )
    .unwrap();
    let second = wait_for_nth(&daemon, "ume@example.net", NEWS, 2);
    assert!(!second.body.contains("年末年始"));
    karamail::cli::notices_add(&daemon.config, "小さなお知らせ", "", None, false).unwrap();
    let news: i64 = daemon
        .db()
        .query_row("SELECT count(*) FROM outbox WHERE kind = 'news'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        news, 2,
        "--no-mail mails no one; the member who turned it off got none"
    );
    assert!(mails_with_subject(&daemon, "kiku@example.net", NEWS).is_empty());
}
