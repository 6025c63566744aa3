//! `karamail postcards print` and `members import --pdf`, run as the real binary; the
//! PDF read back as a printer and a member would see it: poppler's `pdftotext` and
//! `pdftoppm`, and the QR code decoded from the rendered page.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::cli::karamail;
use crate::util::{TestDaemon, member};

pub(crate) fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub(crate) fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The daemon's own folder with a config the binary shares with it (one database).
/// `members import` with the postcards as a PDF too, as the sysadmin types it.
const IMPORT_PDF: [&str; 7] = [
    "members",
    "import",
    "members.csv",
    "--postcards",
    "p.csv",
    "--pdf",
    "p.pdf",
];

pub(crate) fn config_beside(daemon: &TestDaemon, extra: &str) -> std::path::PathBuf {
    let dir = daemon.dir.path().to_path_buf();
    std::fs::write(
        dir.join("karamail.toml"),
        format!(
            "[database]\npath = \"karamail.db\"\n[smtp]\nintake_addresses = [\"kc@example.jp\"]\n[site]\nname = \"テスト健康ポータル\"\nsociety = \"テスト健康保険組合\"\ncontact_phone = \"03-1234-5678\"\n{extra}"
        ),
    )
    .unwrap();
    dir
}

pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--config", "karamail.toml"];
    all.extend_from_slice(args);
    karamail(dir, &all)
}

fn poppler(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn page_text(pdf: &Path, page: usize) -> String {
    let page = page.to_string();
    poppler(
        "pdftotext",
        &[
            "-f",
            &page,
            "-l",
            &page,
            "-layout",
            pdf.to_str().unwrap(),
            "-",
        ],
    )
}

/// The postcards CSV's rows: (member_no, name, temp_login_id, temp_password).
fn csv_rows(path: &Path) -> Vec<[String; 4]> {
    let text = std::fs::read_to_string(path).unwrap();
    text.trim_start_matches('\u{FEFF}')
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<String> = line.split(',').map(str::to_string).collect();
            [
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
            ]
        })
        .collect()
}

/// The word on `text` that looks like a temporary ID (3 letters, 6 digits) and the
/// one after the 仮パスワード label's line that looks like a password.
fn credentials_on(text: &str) -> (String, String) {
    let words: Vec<&str> = text.split_whitespace().collect();
    let id = words
        .iter()
        .find(|w| {
            w.len() == 9
                && w[..3].chars().all(|c| c.is_ascii_uppercase())
                && w[3..].chars().all(|c| c.is_ascii_digit())
        })
        .expect("a temporary ID on the page");
    let at = words.iter().position(|w| w == id).unwrap();
    (id.to_string(), words[at + 1].to_string())
}

#[test]
fn import_with_pdf_prints_each_members_card_and_the_card_signs_them_up() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "");
    std::fs::write(
        dir.join("members.csv"),
        "member_no,name\n3001,山田 太郎\n3002,佐藤 花子\n3003,髙橋 𠮷子\n",
    )
    .unwrap();
    let out = run(&dir, &IMPORT_PDF);
    let stdout = ok(&out);
    assert!(
        stdout.contains("postcards PDF: p.pdf (3 card(s) on 3 page(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("WARNING: member 3003: the font has no '𠮷' (U+20BB7)"),
        "a character the font lacks is named: {stdout}"
    );
    let pdf = dir.join("p.pdf");
    let mode = std::fs::metadata(&pdf).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the PDF holds passwords");
    let info = poppler("pdfinfo", &[pdf.to_str().unwrap()]);
    assert!(info.contains("Pages:           3"), "{info}");
    assert!(
        info.contains("Page size:       283.465 x 419.528 pts"),
        "はがき 100×148 mm: {info}"
    );
    let fonts = poppler("pdffonts", &[pdf.to_str().unwrap()]);
    assert_eq!(
        fonts.matches(" yes yes yes ").count(),
        2,
        "both fonts embedded, subsetted, with a text map: {fonts}"
    );

    // Each page: the member's name and the very credentials of the CSV, in its order.
    let rows = csv_rows(&dir.join("p.csv"));
    for (i, row) in rows.iter().enumerate() {
        let text = page_text(&pdf, i + 1);
        assert!(
            text.contains("テスト健康ポータルへの登録について"),
            "{text}"
        );
        assert!(text.contains("テスト健康保険組合"), "{text}");
        assert!(
            text.contains(&format!("{} 様", row[1].replace('𠮷', ""))),
            "{text}"
        );
        assert_eq!(
            credentials_on(&text),
            (row[2].clone(), row[3].clone()),
            "{text}"
        );
        for step in [
            "① 空メールを送信",
            "② メールのURL",
            "③ 本人確認",
            "④ 利用者情報入力",
        ] {
            assert!(text.contains(step), "{step}: {text}");
        }
        assert!(text.contains("kc@example.jp"), "{text}");
        assert!(
            text.contains(daemon.base_url()) || text.contains("http://"),
            "{text}"
        );
    }

    // The QR code, as a phone's camera would read it from the printed card.
    let png = dir.join("page");
    poppler(
        "pdftoppm",
        &[
            "-r",
            "150",
            "-f",
            "1",
            "-l",
            "1",
            "-png",
            "-singlefile",
            pdf.to_str().unwrap(),
            png.to_str().unwrap(),
        ],
    );
    let image = image::open(dir.join("page.png")).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the card");
    assert_eq!(grids[0].decode().unwrap().1, "mailto:kc@example.jp");

    // The card works: what it says signs the member up.
    let (id, password) = credentials_on(&page_text(&pdf, 1));
    member::sign_up(
        &daemon,
        &(id, password),
        "taro@example.jp",
        "taroyamada",
        "たろう",
    );
}

#[test]
fn postcards_print_reads_the_csv_again_four_to_an_a4_sheet() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "");
    let members: String = (0..9).map(|i| format!("{},会員 {i}\n", 4000 + i)).collect();
    std::fs::write(
        dir.join("members.csv"),
        format!("member_no,name\n{members}"),
    )
    .unwrap();
    ok(&run(
        &dir,
        &["members", "import", "members.csv", "--postcards", "p.csv"],
    ));
    let stdout = ok(&run(
        &dir,
        &[
            "postcards",
            "print",
            "p.csv",
            "--out",
            "a4.pdf",
            "--sheet",
            "a4",
        ],
    ));
    assert!(stdout.contains("(9 card(s) on 3 page(s)"), "{stdout}");
    let pdf = dir.join("a4.pdf");
    let info = poppler("pdfinfo", &[pdf.to_str().unwrap()]);
    assert!(
        info.contains("Page size:       595.276 x 841.89 pts (A4)"),
        "{info}"
    );
    let text = poppler("pdftotext", &[pdf.to_str().unwrap(), "-"]);
    for row in csv_rows(&dir.join("p.csv")) {
        assert!(
            text.contains(&row[2]) && text.contains(&row[3]),
            "{} missing",
            row[0]
        );
    }

    // A second run never overwrites a PDF that may not be printed yet.
    let err = failed(&run(
        &dir,
        &["postcards", "print", "p.csv", "--out", "a4.pdf"],
    ));
    assert!(err.contains("a4.pdf already exists"), "{err}");
}

#[test]
fn the_society_overrides_the_layout_and_a_broken_one_is_named_before_anything_is_issued() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "templates_dir = \"templates\"\n");
    std::fs::create_dir(dir.join("templates")).unwrap();
    std::fs::write(dir.join("members.csv"), "member_no,name\n5001,山田 太郎\n").unwrap();

    std::fs::write(
        dir.join("templates/postcard.txt"),
        "text 8 20 12 {{ name }} 様\nqr 8 30 40 extra\n",
    )
    .unwrap();
    let err = failed(&run(&dir, &IMPORT_PDF));
    assert!(
        err.contains("postcard.txt, line 2 as rendered: unexpected text after the numbers"),
        "{err}"
    );
    assert!(!dir.join("p.csv").exists() && !dir.join("p.pdf").exists());
    assert_eq!(
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("partial"))
            .count(),
        0
    );
    let list = ok(&run(&dir, &["members", "list"]));
    assert!(list.contains("0 member(s)"), "nothing imported: {list}");

    std::fs::write(
        dir.join("templates/postcard.txt"),
        "text 8 20 12 {{ name }} 様（組合版）\nmono 8 40 14 {{ temp_login_id }}\nmono 8 50 14 {{ temp_password }}\n",
    )
    .unwrap();
    ok(&run(&dir, &IMPORT_PDF));
    let text = page_text(&dir.join("p.pdf"), 1);
    assert!(text.contains("山田 太郎 様（組合版）"), "{text}");
    assert!(!text.contains("ご登録の手順"), "{text}");
}

#[test]
fn a_missing_font_is_named_with_what_to_install() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "[postcards]\nfont = \"/nonexistent/ipaexg.ttf\"\n");
    std::fs::write(dir.join("members.csv"), "member_no,name\n6001,山田 太郎\n").unwrap();
    let err = failed(&run(&dir, &IMPORT_PDF));
    assert!(
        err.contains("font /nonexistent/ipaexg.ttf: No such file"),
        "{err}"
    );
    assert!(
        !dir.join("p.csv").exists(),
        "checked before anything is issued"
    );
    std::fs::write(dir.join("not-a-font.ttf"), "hello").unwrap();
    let dir2 = config_beside(&daemon, "[postcards]\nmono_font = \"not-a-font.ttf\"\n");
    let err = failed(&run(&dir2, &IMPORT_PDF));
    assert!(err.contains("not-a-font.ttf: not a font"), "{err}");
}

/// Long jobs say how far they are: plain lines for a log (cron, journald), a bar with
/// the rate and the time left on a terminal.
#[test]
fn long_jobs_report_progress_as_lines_in_a_log_and_as_a_bar_on_a_terminal() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "");
    let members: String = (0..1200)
        .map(|i| format!("{},会員 {i}\n", 90000 + i))
        .collect();
    std::fs::write(
        dir.join("members.csv"),
        format!("member_no,name\n{members}"),
    )
    .unwrap();
    let out = run(&dir, &IMPORT_PDF);
    ok(&out);
    let log = String::from_utf8_lossy(&out.stderr);
    for line in [
        "issuing credentials: 120/1200 members (10%), ",
        "postcards: 600/1200 cards (50%), ",
        "postcards: 1200 cards in ",
    ] {
        assert!(log.contains(line), "{line:?} in {log}");
    }
    assert!(
        log.contains("/s, about ") && log.contains(" s left"),
        "{log}"
    );

    // On a terminal (script(1) gives the command one): indicatif's bar, not lines.
    let command = format!(
        "{} --config karamail.toml postcards print p.csv --out tty.pdf",
        env!("CARGO_BIN_EXE_karamail")
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(&dir)
        .env_remove("KARAMAIL_CONFIG")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("postcards [") && screen.contains("/1200"),
        "{screen}"
    );
    assert!(
        !screen.contains("cards (50%)"),
        "no plain lines on a terminal: {screen}"
    );
    assert!(dir.join("tty.pdf").exists());
}

#[test]
fn a_name_too_long_is_set_smaller_and_never_reaches_the_next_card() {
    let daemon = TestDaemon::start();
    let dir = config_beside(&daemon, "");
    let long = "寿限無寿限無五劫の擦り切れ海砂利水魚の水行末雲来末風来末食う寝る処に住む処やぶら小路の藪柑子パイポパイポパイポのシューリンガン";
    std::fs::write(
        dir.join("members.csv"),
        format!("member_no,name\n9101,{long}\n9102,短い 名前\n"),
    )
    .unwrap();
    let stdout = ok(&run(
        &dir,
        &[
            "members",
            "import",
            "members.csv",
            "--postcards",
            "p.csv",
            "--pdf",
            "a4.pdf",
            "--sheet",
            "a4",
        ],
    ));
    assert!(
        stdout.contains(
            "WARNING: member 9101: the line at 8 mm, 29 mm does not fit the card even at 5 pt"
        ),
        "{stdout}"
    );
    // The right-hand card of the sheet (x from 105 mm): none of the long name.
    let pdf = dir.join("a4.pdf");
    let right = poppler(
        "pdftotext",
        &[
            "-x",
            "298",
            "-y",
            "0",
            "-W",
            "298",
            "-H",
            "420",
            pdf.to_str().unwrap(),
            "-",
        ],
    );
    assert!(right.contains("短い 名前 様"), "{right}");
    assert!(
        !right.contains("シューリンガン") && !right.contains("パイポ"),
        "{right}"
    );
    let left = poppler(
        "pdftotext",
        &[
            "-x",
            "0",
            "-y",
            "0",
            "-W",
            "297",
            "-H",
            "420",
            pdf.to_str().unwrap(),
            "-",
        ],
    );
    assert!(left.contains("寿限無寿限無"), "{left}");
}

#[test]
fn a_font_without_japanese_or_a_layout_mistake_is_refused_and_shows_no_password() {
    let daemon = TestDaemon::start();
    let dir = config_beside(
        &daemon,
        "templates_dir = \"templates\"\n[postcards]\nfont = \"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf\"\n",
    );
    std::fs::create_dir(dir.join("templates")).unwrap();
    std::fs::write(dir.join("members.csv"), "member_no,name\n9201,山田 太郎\n").unwrap();
    let err = failed(&run(&dir, &IMPORT_PDF));
    assert!(err.contains("DejaVuSans.ttf: has no "), "{err}");
    assert!(
        err.contains("that postcard.txt uses: set [postcards] font"),
        "{err}"
    );
    assert!(!dir.join("p.csv").exists());

    let dir = config_beside(&daemon, "templates_dir = \"templates\"\n");
    std::fs::write(
        dir.join("templates/postcard.txt"),
        "{{ temp_password }} 8 20 12\nmono 51 48 {{ temp_password }} x\n",
    )
    .unwrap();
    let err = failed(&run(&dir, &IMPORT_PDF));
    assert!(
        err.contains("line 1 as rendered: unknown command (a line starts with"),
        "{err}"
    );
    assert!(!err.contains("abcdEFGH23"), "a value never shows: {err}");
    assert!(
        !dir.join("p.csv").exists(),
        "checked before anything is issued"
    );
}
