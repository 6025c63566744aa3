//! `karamail qr`: the QR code that opens the empty mail (`mailto:kc@…`), as PNG and
//! SVG for print, and as text for the terminal.

use std::path::{Path, PathBuf};

use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};

use crate::address::Address;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("{0:?} is not a mail address")]
    Address(String),
    #[error("the text does not fit in a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error(
        "the subject {subject:?} looks like a machine's mail ({evidence}): karamail would never answer the mails this QR code opens; choose another (e.g. 利用登録)"
    )]
    RobotSubject { subject: String, evidence: String },
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// `mailto:ADDRESS`, with `?subject=` when one is given (percent-encoded UTF-8).
pub fn mailto(address: &str, subject: Option<&str>) -> Result<String, QrError> {
    let address = Address::parse(address).map_err(|_| QrError::Address(address.into()))?;
    let mut url = format!("mailto:{address}");
    if let Some(subject) = subject.filter(|s| !s.is_empty()) {
        if let Some(sign) = crate::smtp::robot::subject_sign(subject) {
            return Err(QrError::RobotSubject {
                subject: subject.into(),
                evidence: sign.evidence,
            });
        }
        url.push_str("?subject=");
        url.push_str(&percent_encode(subject));
    }
    Ok(url)
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The files written and the code as terminal text.
pub struct Written {
    pub png: PathBuf,
    pub svg: PathBuf,
    pub terminal: String,
}

/// Writes `signup.png` and `signup.svg` into `out_dir`. `module_px` is the size of one
/// square in the PNG (10 px ≈ 2.5 cm for a short address: fine for a poster or a letter).
pub fn write(url: &str, out_dir: &Path, module_px: u32) -> Result<Written, QrError> {
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M)?;
    let failed = |path: &Path, e: &dyn std::fmt::Display| QrError::Write {
        path: path.into(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(out_dir).map_err(|e| failed(out_dir, &e))?;
    let png = out_dir.join("signup.png");
    let image = code
        .render::<image::Luma<u8>>()
        .module_dimensions(module_px, module_px)
        .build();
    image.save(&png).map_err(|e| failed(&png, &e))?;
    let svg_path = out_dir.join("signup.svg");
    let svg_text = code.render::<svg::Color>().min_dimensions(400, 400).build();
    std::fs::write(&svg_path, svg_text).map_err(|e| failed(&svg_path, &e))?;
    let terminal = code
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .build();
    Ok(Written {
        png,
        svg: svg_path,
        terminal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailto_is_exact_and_subject_encoded() {
        assert_eq!(
            mailto("kc@example.jp", None).unwrap(),
            "mailto:kc@example.jp"
        );
        assert_eq!(
            mailto("kc@example.jp", Some("登録")).unwrap(),
            "mailto:kc@example.jp?subject=%E7%99%BB%E9%8C%B2"
        );
        assert!(mailto("kc example.jp", None).is_err());
        for robot in ["自動応答", "Out of office", "配信エラー"] {
            assert!(
                matches!(
                    mailto("kc@example.jp", Some(robot)),
                    Err(QrError::RobotSubject { .. })
                ),
                "{robot}"
            );
        }
    }

    #[test]
    fn a_camera_reads_back_the_address() {
        let dir = tempfile::tempdir().unwrap();
        let written = write("mailto:kc@example.jp", dir.path(), 8).unwrap();
        let image = image::open(&written.png).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (_, content) = grids[0].decode().unwrap();
        assert_eq!(content, "mailto:kc@example.jp");
        let svg = std::fs::read_to_string(&written.svg).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"));
        assert!(written.terminal.contains('█') || written.terminal.contains('▀'));
    }
}
