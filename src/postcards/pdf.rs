//! The PDF: one page per postcard (はがき, 100 × 148 mm) or four to an A4 sheet with
//! cut marks. The fonts and the QR code are stored once and shared by every page.

use std::io::Write;

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use qrcode::{Color, QrCode};

use super::font::Font;
use super::layout::{CARD_MM, Draw, Face};
use super::{PostcardError, Sheet};

/// The margin a line keeps from the card's edge, and the smallest size a line too long
/// for the card is set in, in mm and points.
const MARGIN: f32 = 4.0;
const SMALLEST: f32 = 5.0;

/// The size (at most `size`) at which text `unit_mm` wide at 1 pt fits `room` mm;
/// `None` when not even `SMALLEST` does.
fn fitted_size(unit_mm: f32, size: f32, room: f32) -> Option<f32> {
    if unit_mm * size <= room {
        return Some(size);
    }
    let fitted = room / unit_mm;
    (fitted >= SMALLEST).then_some(fitted)
}

/// What may hang past the end of a line rather than start the next (禁則).
const HANGING: [char; 6] = ['、', '。', '」', '）', '，', '．'];
/// Points per millimetre.
const MM: f32 = 72.0 / 25.4;
const A4_MM: (f32, f32) = (210.0, 297.0);
const JAPANESE: Name = Name(b"F1");
const MONO: Name = Name(b"F2");
const QR: Name = Name(b"Q1");

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

pub struct Document {
    pdf: Pdf,
    next_ref: i32,
    sheet: Sheet,
    japanese: Font,
    mono: Font,
    qr: (Ref, usize),
    /// Each font's five objects: the one pages name, then the four behind it.
    font_refs: [[Ref; 5]; 2],
    pages: Vec<Ref>,
    /// Cards waiting for their A4 sheet.
    pending: Vec<Vec<Draw>>,
}

impl Document {
    pub fn new(title: &str, japanese: Font, mono: Font, qr: &QrCode, sheet: Sheet) -> Document {
        let mut document = Document {
            pdf: Pdf::new(),
            // 1: catalog, 2: page tree, 3: info.
            next_ref: 4,
            sheet,
            japanese,
            mono,
            qr: (Ref::new(1), qr.width()),
            font_refs: [[Ref::new(1); 5]; 2],
            pages: Vec::new(),
            pending: Vec::new(),
        };
        document
            .pdf
            .document_info(Ref::new(3))
            .title(TextStr(title))
            .producer(TextStr("karamail"));
        document.font_refs = [0, 1].map(|_| [(); 5].map(|_| document.new_ref()));
        let qr_ref = document.new_ref();
        document.qr.0 = qr_ref;
        let modules = qr_modules(qr);
        let bbox = Rect::new(0.0, 0.0, qr.width() as f32, qr.width() as f32);
        document.pdf.form_xobject(qr_ref, &modules).bbox(bbox);
        document
    }

    fn new_ref(&mut self) -> Ref {
        self.next_ref += 1;
        Ref::new(self.next_ref)
    }

    /// Names the characters of `text` neither font can show.
    pub fn missing(&mut self, text: &str, face: Face) -> Vec<char> {
        self.font(face).missing(text)
    }

    fn font(&mut self, face: Face) -> &mut Font {
        match face {
            Face::Japanese => &mut self.japanese,
            Face::Mono => &mut self.mono,
        }
    }

    /// Adds a card; says which of its lines had to be set smaller to fit the card, or
    /// did not fit even so (cut at the card's edge).
    pub fn add_card(&mut self, draws: Vec<Draw>) -> Vec<String> {
        let notes = self.fit(&draws);
        match self.sheet {
            Sheet::Postcard => {
                let mut content = Content::new();
                self.draw_card(&mut content, &draws, (0.0, 0.0), CARD_MM.1);
                self.add_page(content, CARD_MM);
            }
            Sheet::A4 => {
                self.pending.push(draws);
                if self.pending.len() == 4 {
                    self.flush_sheet();
                }
            }
        }
        notes
    }

    /// The lines too wide for the card at any size down to `SMALLEST`.
    fn fit(&mut self, draws: &[Draw]) -> Vec<String> {
        let mut notes = Vec::new();
        for draw in draws {
            if let Draw::Text {
                x,
                y,
                size,
                face,
                right_aligned,
                text,
            } = draw
            {
                let room = if *right_aligned {
                    *x - MARGIN
                } else {
                    CARD_MM.0 - MARGIN - x
                };
                if fitted_size(self.font(*face).width(text, 1.0) / MM, *size, room).is_none() {
                    // Not the text itself: a layout line may hold the password.
                    notes.push(format!(
                        "the line at {x} mm, {y} mm does not fit the card even at {SMALLEST} pt and is cut at its edge: check this card"
                    ));
                }
            }
        }
        notes
    }

    /// Four cards on an A4 sheet, 2 × 2, centred, with marks where to cut.
    fn flush_sheet(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let cards = std::mem::take(&mut self.pending);
        let left = (A4_MM.0 - 2.0 * CARD_MM.0) / 2.0;
        let top = (A4_MM.1 - 2.0 * CARD_MM.1) / 2.0;
        let mut content = Content::new();
        for (i, draws) in cards.iter().enumerate() {
            let origin = (
                left + (i % 2) as f32 * CARD_MM.0,
                top + (i / 2) as f32 * CARD_MM.1,
            );
            self.draw_card(&mut content, draws, origin, A4_MM.1);
        }
        content.set_line_width(0.2).set_stroke_gray(0.6);
        let (x0, x1, x2) = (left, left + CARD_MM.0, left + 2.0 * CARD_MM.0);
        let (y0, y1, y2) = (top, top + CARD_MM.1, top + 2.0 * CARD_MM.1);
        for (xa, ya, xb, yb) in [
            (x1, 0.0, x1, y0 + 4.0),
            (x1, y2 - 4.0, x1, A4_MM.1),
            (0.0, y1, x0 + 4.0, y1),
            (x2 - 4.0, y1, A4_MM.0, y1),
        ] {
            content
                .move_to(xa * MM, (A4_MM.1 - ya) * MM)
                .line_to(xb * MM, (A4_MM.1 - yb) * MM);
        }
        content.stroke();
        self.add_page(content, A4_MM);
    }

    fn add_page(&mut self, content: Content, size_mm: (f32, f32)) {
        let page_ref = self.new_ref();
        let content_ref = self.new_ref();
        let data = deflate(&content.finish());
        self.pdf
            .stream(content_ref, &data)
            .filter(Filter::FlateDecode);
        let mut page = self.pdf.page(page_ref);
        page.media_box(Rect::new(0.0, 0.0, size_mm.0 * MM, size_mm.1 * MM))
            .parent(Ref::new(2))
            .contents(content_ref);
        let mut resources = page.resources();
        resources
            .fonts()
            .pair(JAPANESE, self.font_refs[0][0])
            .pair(MONO, self.font_refs[1][0]);
        resources.x_objects().pair(QR, self.qr.0);
        resources.finish();
        page.finish();
        self.pages.push(page_ref);
    }

    /// One card's drawings, its top left corner at `origin` (mm) on a page
    /// `page_height` mm tall.
    fn draw_card(
        &mut self,
        content: &mut Content,
        draws: &[Draw],
        origin: (f32, f32),
        page_height: f32,
    ) {
        let at = |x: f32, y: f32| ((origin.0 + x) * MM, (page_height - origin.1 - y) * MM);
        // Nothing of a card reaches its neighbour on an A4 sheet, whatever the layout.
        let (left, bottom) = at(0.0, CARD_MM.1);
        content.save_state();
        content
            .rect(left, bottom, CARD_MM.0 * MM, CARD_MM.1 * MM)
            .clip_nonzero()
            .end_path();
        for draw in draws {
            match draw {
                Draw::Text {
                    x,
                    y,
                    size,
                    face,
                    right_aligned,
                    text,
                } => {
                    // A line too long for the card (a long name) is set smaller.
                    let unit_mm = self.font(*face).width(text, 1.0) / MM;
                    let room = if *right_aligned {
                        *x - MARGIN
                    } else {
                        CARD_MM.0 - MARGIN - x
                    };
                    // Too long even so: what would pass the edge is not set at all
                    // (clipped text would still be in the file, and on the next card).
                    let (size, text) = match fitted_size(unit_mm, *size, room) {
                        Some(size) => (size, text.clone()),
                        None => (SMALLEST, self.cut_to(*face, text, room * MM, SMALLEST)),
                    };
                    let unit_mm = self.font(*face).width(&text, 1.0) / MM;
                    let x = if *right_aligned {
                        x - unit_mm * size
                    } else {
                        *x
                    };
                    let (px, py) = at(x, *y);
                    self.show(content, *face, size, (px, py), &text);
                }
                Draw::Wrap {
                    x,
                    y,
                    width,
                    size,
                    text,
                } => {
                    let lines = self.wrap(text, *width * MM, *size);
                    for (i, line) in lines.iter().enumerate() {
                        let (px, py) = at(*x, *y + i as f32 * size * 1.5 / MM);
                        self.show(content, Face::Japanese, *size, (px, py), line);
                    }
                }
                Draw::Qr { x, y, side } => {
                    let (px, py) = at(*x, *y + *side);
                    // The code's own quiet zone: four modules each side.
                    let module = side * MM / (self.qr.1 + 8) as f32;
                    content.save_state();
                    content.transform([
                        module,
                        0.0,
                        0.0,
                        module,
                        px + 4.0 * module,
                        py + 4.0 * module,
                    ]);
                    content.x_object(QR);
                    content.restore_state();
                }
                Draw::Rect {
                    x,
                    y,
                    width,
                    height,
                } => {
                    let (px, py) = at(*x, *y + *height);
                    content
                        .set_line_width(0.5)
                        .set_stroke_gray(0.0)
                        .rect(px, py, width * MM, height * MM)
                        .stroke();
                }
                Draw::Line { x1, y1, x2, y2 } => {
                    let (ax, ay) = at(*x1, *y1);
                    let (bx, by) = at(*x2, *y2);
                    content
                        .set_line_width(0.5)
                        .set_stroke_gray(0.0)
                        .move_to(ax, ay)
                        .line_to(bx, by)
                        .stroke();
                }
            }
        }
        content.restore_state();
    }

    fn show(&mut self, content: &mut Content, face: Face, size: f32, at: (f32, f32), text: &str) {
        let font = self.font(face);
        let mut glyphs = Vec::with_capacity(text.len() * 2);
        for c in text.chars() {
            if let Some(placed) = font.place(c) {
                glyphs.extend_from_slice(&placed.cid.to_be_bytes());
            }
        }
        content
            .begin_text()
            .set_font(
                match face {
                    Face::Japanese => JAPANESE,
                    Face::Mono => MONO,
                },
                size,
            )
            .set_fill_gray(0.0)
            .next_line(at.0, at.1)
            .show(Str(&glyphs))
            .end_text();
    }

    /// The longest start of `text` no wider than `width` points.
    fn cut_to(&mut self, face: Face, text: &str, width: f32, size: f32) -> String {
        let font = self.font(face);
        let mut cut = String::new();
        for c in text.chars() {
            cut.push(c);
            if font.width(&cut, size) > width {
                cut.pop();
                break;
            }
        }
        cut
    }

    /// Lines no wider than `width` points. Latin words (a mail address, a URL) stay
    /// whole when they fit a line; Japanese text breaks between any two characters,
    /// except before 、。」）, which hang at the end of the line instead.
    fn wrap(&mut self, text: &str, width: f32, size: f32) -> Vec<String> {
        let font = &mut self.japanese;
        let mut lines = Vec::new();
        let mut line = String::new();
        for token in tokens(text) {
            let candidate = format!("{line}{token}");
            if line.is_empty()
                || token.starts_with(HANGING)
                || font.width(&candidate, size) <= width
            {
                line = candidate;
            } else {
                lines.push(line.trim_end().to_string());
                line = token.trim_start().to_string();
            }
            // A word wider than the line on its own is broken where it must be.
            while font.width(line.trim_end_matches(HANGING), size) > width
                && line.chars().count() > 1
            {
                let mut cut = line.len();
                while cut > 0 && font.width(&line[..cut], size) > width {
                    cut = line[..cut].char_indices().last().map_or(0, |(i, _)| i);
                }
                let cut = cut.max(line.chars().next().map_or(1, char::len_utf8));
                lines.push(line[..cut].to_string());
                line = line[cut..].to_string();
            }
        }
        if !line.trim().is_empty() {
            lines.push(line.trim_end().to_string());
        }
        lines
    }

    /// The finished file: every page, then the two fonts (only the glyphs used).
    pub fn finish(mut self) -> Result<Vec<u8>, PostcardError> {
        self.flush_sheet();
        self.pdf.catalog(Ref::new(1)).pages(Ref::new(2));
        let count = self.pages.len() as i32;
        self.pdf
            .pages(Ref::new(2))
            .kids(self.pages.iter().copied())
            .count(count);
        let [japanese, mono] = self.font_refs;
        let rest = |refs: [Ref; 5]| [refs[1], refs[2], refs[3], refs[4]];
        self.japanese
            .write(&mut self.pdf, japanese[0], rest(japanese), "KMAILA")?;
        self.mono
            .write(&mut self.pdf, mono[0], rest(mono), "KMAILB")?;
        Ok(self.pdf.finish())
    }
}

/// Words of Latin letters (with what sticks to them: `@`, `.`, `/`, `:`…), each other
/// character alone, a space kept before the word it precedes.
fn tokens(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut in_word = false;
    for c in text.chars() {
        let latin = c.is_ascii_graphic();
        match tokens.last_mut() {
            Some(last) if latin && in_word => last.push(c),
            Some(last) if c == ' ' && last.trim().is_empty() => last.push(c),
            _ => tokens.push(c.to_string()),
        }
        if c == ' ' {
            // A space starts a token of its own; the next word joins it.
            in_word = true;
            continue;
        }
        in_word = latin;
    }
    tokens
}

/// The QR code's dark modules as filled squares, one unit each, runs along a row
/// merged, the bottom row at y = 0.
fn qr_modules(code: &QrCode) -> Vec<u8> {
    let width = code.width();
    let colors = code.to_colors();
    let mut content = Content::new();
    content.set_fill_gray(0.0);
    for row in 0..width {
        let mut col = 0;
        while col < width {
            if colors[row * width + col] != Color::Dark {
                col += 1;
                continue;
            }
            let start = col;
            while col < width && colors[row * width + col] == Color::Dark {
                col += 1;
            }
            let y = (width - 1 - row) as f32;
            content.rect(start as f32, y, (col - start) as f32, 1.0);
        }
    }
    content.fill_nonzero();
    content.finish().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postcards::font::{self, Font};

    fn document() -> Document {
        let japanese = font::locate(None, font::JAPANESE, "Japanese", "fonts-ipaexfont-gothic");
        let mono = font::locate(None, font::MONOSPACE, "monospaced", "fonts-dejavu-core");
        let code = QrCode::new(b"mailto:kc@example.jp").unwrap();
        Document::new(
            "t",
            Font::load(&japanese.unwrap()).unwrap(),
            Font::load(&mono.unwrap()).unwrap(),
            &code,
            Sheet::Postcard,
        )
    }

    #[test]
    fn latin_words_stay_whole() {
        assert_eq!(
            tokens("次へ kc@example.jp まで"),
            ["次", "へ", " kc@example.jp", " ", "ま", "で"]
        );
    }

    #[test]
    fn lines_fit_and_punctuation_hangs() {
        let mut document = document();
        let text =
            "左のQRコードを読み取るか、次のアドレスへ件名・本文なしでメールを送信してください。";
        let width = 53.0 * MM;
        let lines = document.wrap(text, width, 7.0);
        assert!(lines.len() >= 2, "{lines:?}");
        assert_eq!(lines.concat(), text, "nothing lost or added");
        for line in &lines {
            let hanging = line.ends_with(['、', '。']);
            let fits = document.japanese.width(line, 7.0) <= width;
            assert!(fits || hanging, "{line}");
            assert!(!line.starts_with(['、', '。']), "{line}");
        }
        let long = "x".repeat(200);
        let lines = document.wrap(&long, width, 7.0);
        assert!(
            lines.len() > 1 && lines.concat() == long,
            "a long word is broken"
        );
    }
}
