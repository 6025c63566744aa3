//! A font file (TrueType or OpenType/CFF, a `.ttc` collection's first face) set into
//! the PDF as a CID font: only the glyphs the postcards use are embedded (subsetted), and
//! a ToUnicode map lets `pdftotext` and screen readers read the text back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::{Filter, Finish, Name, Pdf, Rect, Ref, Str};
use subsetter::GlyphRemapper;
use ttf_parser::{Face, GlyphId, Tag};

use super::PostcardError;

/// The Japanese faces Debian ships, in the order tried when `[postcards] font` is unset.
pub const JAPANESE: &[&str] = &[
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
];

/// Faces whose 0/O and 1/l/I differ at a glance (DejaVu Sans Mono: a dotted zero).
pub const MONOSPACE: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",
];

/// The configured path, or the first of `candidates` that exists.
pub fn locate(
    configured: Option<&Path>,
    candidates: &[&str],
    what: &str,
    package: &str,
) -> Result<PathBuf, PostcardError> {
    if let Some(path) = configured {
        return Ok(path.to_path_buf());
    }
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
        .ok_or_else(|| PostcardError::Font {
            path: PathBuf::from(candidates[0]),
            message: format!(
                "no {what} font found (looked for {}); install one (apt install {package}) or set [postcards] {}",
                candidates.join(", "),
                if what == "Japanese" { "font" } else { "mono_font" }
            ),
        })
}

/// A glyph as placed: its id in the embedded subset and its advance in 1/1000 em.
#[derive(Clone, Copy)]
pub struct Placed {
    pub cid: u16,
    pub advance: f32,
}

#[derive(Clone)]
pub struct Font {
    path: PathBuf,
    data: Vec<u8>,
    units_per_em: f32,
    cff: bool,
    glyphs: HashMap<char, Option<(GlyphId, f32)>>,
    remapper: GlyphRemapper,
    /// The first character seen for each new glyph id, for the ToUnicode map.
    unicode: Vec<(u16, char)>,
    widths: HashMap<u16, f32>,
}

impl Font {
    pub fn load(path: &Path) -> Result<Font, PostcardError> {
        let failed = |message: String| PostcardError::Font {
            path: path.into(),
            message,
        };
        let data = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
        let face = Face::parse(&data, 0).map_err(|e| failed(format!("not a font: {e}")))?;
        let cff = face.raw_face().table(Tag::from_bytes(b"CFF ")).is_some();
        if !cff && face.raw_face().table(Tag::from_bytes(b"glyf")).is_none() {
            return Err(failed(
                "neither TrueType nor CFF outlines (a variable or bitmap font?)".into(),
            ));
        }
        let units_per_em = f32::from(face.units_per_em());
        Ok(Font {
            path: path.into(),
            units_per_em,
            cff,
            data,
            glyphs: HashMap::new(),
            remapper: GlyphRemapper::new(),
            unicode: Vec::new(),
            widths: HashMap::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn face(&self) -> Face<'_> {
        // Parsed once in `load`: the same bytes parse again.
        Face::parse(&self.data, 0).expect("checked in Font::load")
    }

    /// The glyph for `c`, or `None` when the font has none (it is then left out).
    pub fn place(&mut self, c: char) -> Option<Placed> {
        let found = match self.glyphs.get(&c) {
            Some(found) => *found,
            None => {
                let face = self.face();
                let found = face.glyph_index(c).map(|glyph| {
                    let advance = face.glyph_hor_advance(glyph).unwrap_or(0);
                    (glyph, f32::from(advance) * 1000.0 / self.units_per_em)
                });
                self.glyphs.insert(c, found);
                found
            }
        };
        let (glyph, advance) = found?;
        let cid = self.remapper.remap(glyph.0);
        if self.widths.insert(cid, advance).is_none() {
            self.unicode.push((cid, c));
        }
        Some(Placed { cid, advance })
    }

    /// Width of `text` at `size` points (left-out characters count nothing).
    pub fn width(&mut self, text: &str, size: f32) -> f32 {
        let units: f32 = text
            .chars()
            .filter_map(|c| self.place(c))
            .map(|p| p.advance)
            .sum();
        units * size / 1000.0
    }

    /// The characters of `text` this font has no glyph for.
    pub fn missing(&mut self, text: &str) -> Vec<char> {
        let mut missing: Vec<char> = text
            .chars()
            .filter(|c| !c.is_whitespace() && self.place(*c).is_none())
            .collect();
        missing.dedup();
        missing
    }

    /// Writes the font objects; `font_ref` is the one pages name. Uses `refs` for the
    /// four objects behind it.
    pub fn write(
        &self,
        pdf: &mut Pdf,
        font_ref: Ref,
        refs: [Ref; 4],
        tag: &str,
    ) -> Result<(), PostcardError> {
        let [cid_ref, descriptor_ref, cmap_ref, file_ref] = refs;
        let failed = |message: String| PostcardError::Font {
            path: self.path.clone(),
            message,
        };
        let subset = subsetter::subset(&self.data, 0, &self.remapper)
            .map_err(|e| failed(format!("cannot subset: {e}")))?;
        let face = self.face();
        let postscript = face
            .names()
            .into_iter()
            .filter(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .find_map(|n| n.to_string())
            .unwrap_or_else(|| "Font".into())
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "");
        let base_font = format!("{tag}+{postscript}");
        let system_info = SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"Identity"),
            supplement: 0,
        };

        pdf.type0_font(font_ref)
            .base_font(Name(base_font.as_bytes()))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid_ref)
            .to_unicode(cmap_ref);

        let mut cid = pdf.cid_font(cid_ref);
        cid.subtype(if self.cff {
            CidFontType::Type0
        } else {
            CidFontType::Type2
        })
        .base_font(Name(base_font.as_bytes()))
        .system_info(system_info)
        .font_descriptor(descriptor_ref)
        .default_width(0.0);
        if !self.cff {
            cid.cid_to_gid_map_predefined(Name(b"Identity"));
        }
        let mut widths: Vec<(u16, f32)> = self.widths.iter().map(|(c, w)| (*c, *w)).collect();
        widths.sort_by_key(|(cid, _)| *cid);
        let mut list = cid.widths();
        for (cid, width) in widths {
            list.consecutive(cid, [width]);
        }
        list.finish();
        cid.finish();

        let scale = |v: i16| f32::from(v) * 1000.0 / self.units_per_em;
        let bbox = face.global_bounding_box();
        let mut descriptor = pdf.font_descriptor(descriptor_ref);
        descriptor
            .name(Name(base_font.as_bytes()))
            .flags(FontFlags::SYMBOLIC)
            .bbox(Rect::new(
                scale(bbox.x_min),
                scale(bbox.y_min),
                scale(bbox.x_max),
                scale(bbox.y_max),
            ))
            .italic_angle(0.0)
            .ascent(scale(face.ascender()))
            .descent(scale(face.descender()))
            .cap_height(scale(face.capital_height().unwrap_or(face.ascender())))
            .stem_v(80.0);
        let file = if self.cff {
            // A CFF font is embedded as its bare CFF table.
            let sub = Face::parse(&subset, 0).map_err(|e| failed(format!("subset: {e}")))?;
            sub.raw_face()
                .table(Tag::from_bytes(b"CFF "))
                .ok_or_else(|| failed("the subset lost its CFF table".into()))?
                .to_vec()
        } else {
            subset
        };
        match self.cff {
            true => descriptor.font_file3(file_ref),
            false => descriptor.font_file2(file_ref),
        };
        descriptor.finish();

        let compressed = super::pdf::deflate(&file);
        let mut stream = pdf.stream(file_ref, &compressed);
        stream.filter(Filter::FlateDecode);
        if self.cff {
            stream.pair(Name(b"Subtype"), Name(b"CIDFontType0C"));
        }
        stream.finish();

        let mut cmap = UnicodeCmap::new(Name(b"Custom"), system_info);
        for (cid, c) in &self.unicode {
            cmap.pair(*cid, *c);
        }
        pdf.cmap(cmap_ref, &cmap.finish());
        Ok(())
    }
}
