//! Printable postcards 「…への登録について」: one card per member with the temporary
//! login ID and password, the QR code that opens the empty mail, and the steps of the
//! sign-up. The layout is the template `postcard.txt` (see `layout`), replaceable from
//! `[site] templates_dir` like every other template.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::templates::Loaded;

mod font;
mod layout;
mod pdf;

pub use layout::one_line;

#[derive(Debug, thiserror::Error)]
pub enum PostcardError {
    #[error("font {path}: {message}")]
    Font { path: PathBuf, message: String },
    #[error("postcard.txt, line {line} as rendered: {message}")]
    Layout { line: usize, message: String },
    #[error("postcard.txt: {0}")]
    Template(String),
    #[error("the QR code: {0}")]
    Qr(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

/// How cards go on paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sheet {
    /// One はがき (100 × 148 mm) per page.
    Postcard,
    /// Four postcards to an A4 sheet, with cut marks.
    A4,
}

/// One member's card, as the postcards CSV holds it.
#[derive(Debug, Clone)]
pub struct Postcard {
    pub member_no: String,
    pub name: String,
    pub temp_login_id: String,
    pub temp_password: String,
}

/// What a template sees (`{{ name }}`, `{{ temp_login_id }}`…).
#[derive(Serialize)]
struct CardContext<'a> {
    society: &'a str,
    site_name: &'a str,
    contact_phone: &'a str,
    contact_email: &'a str,
    intake_address: &'a str,
    portal_url: &'a str,
    link_valid: String,
    member_no: String,
    name: String,
    temp_login_id: String,
    temp_password: String,
}

/// The fonts found and checked, the layout and the society's details: everything
/// needed to print, checked before any credential is issued.
pub struct Printer {
    japanese: font::Font,
    mono: font::Font,
    intake_address: String,
    portal_url: String,
    config: Config,
}

/// A printed file's account: how many cards and pages, and the cards the font could
/// not set whole (a rare kanji in a name), to check by hand.
#[derive(Debug, PartialEq, Eq)]
pub struct Printed {
    pub cards: usize,
    pub pages: usize,
    pub warnings: Vec<String>,
}

/// The Japanese font in use (`[postcards] font`, or the first Debian one installed);
/// the report's chart is set in it too.
pub fn japanese_font(config: &Config) -> Result<PathBuf, PostcardError> {
    font::locate(
        config.postcards.font.as_deref(),
        font::JAPANESE,
        "Japanese",
        "fonts-ipaexfont-gothic",
    )
}

impl Printer {
    pub fn new(config: &Config) -> Result<Printer, PostcardError> {
        let settings = &config.postcards;
        let japanese = japanese_font(config)?;
        let mono = font::locate(
            settings.mono_font.as_deref(),
            font::MONOSPACE,
            "monospaced",
            "fonts-dejavu-core",
        )?;
        let intake_address = config
            .smtp
            .intake_addresses
            .first()
            .cloned()
            .ok_or_else(|| PostcardError::Qr("no [smtp] intake_addresses".into()))?;
        Ok(Printer {
            japanese: font::Font::load(&japanese)?,
            mono: font::Font::load(&mono)?,
            intake_address,
            portal_url: config.public_url(config.http.listen),
            config: config.clone(),
        })
    }

    /// The two font files in use, for the sysadmin.
    pub fn fonts(&self) -> [&Path; 2] {
        [self.japanese.path(), self.mono.path()]
    }

    /// The whole PDF for `cards`, in their order; `tick` after each card.
    pub fn render(
        &self,
        templates: &Loaded,
        cards: &[Postcard],
        sheet: Sheet,
        tick: &mut dyn FnMut(),
    ) -> Result<(Vec<u8>, Printed), PostcardError> {
        let url = crate::qr::mailto(&self.intake_address, None)
            .map_err(|e| PostcardError::Qr(e.to_string()))?;
        let code = qrcode::QrCode::with_error_correction_level(url.as_bytes(), qrcode::EcLevel::M)
            .map_err(|e| PostcardError::Qr(e.to_string()))?;
        let title = format!("{}への登録について", self.config.site.name);
        let mut document = pdf::Document::new(
            &title,
            self.japanese.clone(),
            self.mono.clone(),
            &code,
            sheet,
        );
        let mut warnings = Vec::new();
        for card in cards {
            let draws = self.layout(templates, card)?;
            warnings.extend(self.check_glyphs(&mut document, &draws, card)?);
            for note in document.add_card(draws) {
                warnings.push(format!("member {}: {note}", card.member_no));
            }
            tick();
        }
        let pages = match sheet {
            Sheet::Postcard => cards.len(),
            Sheet::A4 => cards.len().div_ceil(4),
        };
        let bytes = document.finish()?;
        Ok((
            bytes,
            Printed {
                cards: cards.len(),
                pages,
                warnings,
            },
        ))
    }

    /// Renders and reads one sample card: a broken layout or a font that cannot set
    /// the layout's own text is named before any credential is issued.
    pub fn check(&self, templates: &Loaded) -> Result<(), PostcardError> {
        let sample = Postcard {
            member_no: "1001".into(),
            name: "見本 花子".into(),
            temp_login_id: "ABC123456".into(),
            temp_password: "abcdEFGH23".into(),
        };
        self.render(templates, &[sample], Sheet::Postcard, &mut || {})
            .map(|_| ())
    }

    fn layout(
        &self,
        templates: &Loaded,
        card: &Postcard,
    ) -> Result<Vec<layout::Draw>, PostcardError> {
        let rendered = templates
            .tera
            .render("postcard.txt", &tera_context(&self.context(card)))
            .map_err(|e| PostcardError::Template(crate::templates::describe(&e)))?;
        layout::parse(&rendered)
    }

    /// A character of the layout's own text that a font lacks fails the print (the
    /// font is not the right one); one of a member's name is left out with a warning.
    fn check_glyphs(
        &self,
        document: &mut pdf::Document,
        draws: &[layout::Draw],
        card: &Postcard,
    ) -> Result<Vec<String>, PostcardError> {
        for draw in draws {
            let (face, text) = match draw {
                layout::Draw::Text { face, text, .. } => (*face, text),
                layout::Draw::Wrap { text, .. } => (layout::Face::Japanese, text),
                _ => continue,
            };
            let missing: Vec<char> = document
                .missing(text, face)
                .into_iter()
                .filter(|c| !card.name.contains(*c))
                .collect();
            if !missing.is_empty() {
                let (font, key) = match face {
                    layout::Face::Japanese => (&self.japanese, "font"),
                    layout::Face::Mono => (&self.mono, "mono_font"),
                };
                return Err(PostcardError::Font {
                    path: font.path().into(),
                    message: format!(
                        "has no {} that postcard.txt uses: set [postcards] {key} to a font that has them",
                        describe_chars(&missing)
                    ),
                });
            }
        }
        let missing = document.missing(&card.name, layout::Face::Japanese);
        Ok(match missing.is_empty() {
            true => Vec::new(),
            false => vec![format!(
                "member {}: the font has no {} in the name {:?}; those characters are left out — write them in by hand or set [postcards] font to a font that has them",
                card.member_no,
                describe_chars(&missing),
                card.name
            )],
        })
    }

    fn context(&self, card: &Postcard) -> CardContext<'_> {
        let site = &self.config.site;
        CardContext {
            society: &site.society,
            site_name: &site.name,
            contact_phone: &site.contact_phone,
            contact_email: &site.contact_email,
            intake_address: &self.intake_address,
            portal_url: &self.portal_url,
            link_valid: self.config.policy.signup_link_ttl.japanese(),
            member_no: one_line(&card.member_no),
            name: one_line(&card.name),
            temp_login_id: one_line(&card.temp_login_id),
            temp_password: one_line(&card.temp_password),
        }
    }
}

/// `'𠮷' (U+20BB7), 'ご' (U+3054)`.
fn describe_chars(chars: &[char]) -> String {
    let mut chars = chars.to_vec();
    chars.sort_unstable();
    chars.dedup();
    let shown: Vec<String> = chars
        .iter()
        .take(5)
        .map(|c| format!("{c:?} (U+{:04X})", *c as u32))
        .collect();
    let more = chars.len().saturating_sub(5);
    match more {
        0 => shown.join(", "),
        n => format!("{} and {n} more", shown.join(", ")),
    }
}

fn tera_context(context: &CardContext) -> tera::Context {
    tera::Context::from_serialize(context).expect("a struct of strings serializes")
}

/// Writes `bytes` to `path` (which must not exist yet), readable by its owner only,
/// flushed to disk: a postcards file holds passwords.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = crate::files::create_private(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Reads a postcards CSV (`member_no,name,temp_login_id,temp_password`, as
/// `members import` writes it; UTF-8 or Shift_JIS if a spreadsheet saved it again).
pub fn read_csv(text: &str) -> Result<Vec<Postcard>, crate::members::ImportError> {
    let columns = ["member_no", "name", "temp_login_id", "temp_password"];
    let table = crate::members::read_table(text, &columns)?;
    let mut cards = Vec::with_capacity(table.rows.len());
    for (line, row) in &table.rows {
        let cell = |i: usize| {
            let value = row.get(table.columns[i]).unwrap_or("").trim();
            crate::members::from_text(value).to_string()
        };
        let card = Postcard {
            member_no: cell(0),
            name: cell(1),
            temp_login_id: cell(2),
            temp_password: cell(3),
        };
        if [&card.member_no, &card.temp_login_id, &card.temp_password]
            .iter()
            .any(|v| v.is_empty())
        {
            return Err(crate::members::ImportError::Row {
                line: *line,
                reason: "member_no, temp_login_id and temp_password must not be empty".into(),
            });
        }
        cards.push(card);
    }
    Ok(cards)
}
