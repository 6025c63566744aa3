//! ISO-2022-JP (7-bit JIS, RFC 1468) for `[mail] charset = "iso-2022-jp"`: members on
//! older feature phones read nothing else. Text a template or a value brings that JIS
//! X 0208 cannot write is never sent garbled: the templates are checked at start, and a
//! mail that still cannot be written goes out in UTF-8 instead.

use base64::Engine;
use encoding_rs::ISO_2022_JP;

use crate::error::{Error, Result};

/// `text` in ISO-2022-JP, or None if a character has no JIS X 0208 form.
pub fn encode(text: &str) -> Option<Vec<u8>> {
    let (bytes, _, unmappable) = ISO_2022_JP.encode(text);
    (!unmappable).then(|| bytes.into_owned())
}

/// A mail body in ISO-2022-JP with CRLF line ends, fit to send as `7bit` as it is: no
/// NUL and no line over RFC 5322's 998 octets (else None, and UTF-8 is used).
pub fn encode_body(text: &str) -> Option<Vec<u8>> {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let bytes = encode(&crlf)?;
    let fits = !bytes.contains(&0) && bytes.split(|b| *b == b'\n').all(|line| line.len() <= 999);
    fits.then_some(bytes)
}

/// The first character of `text` that ISO-2022-JP cannot write.
pub fn first_unwritable(text: &str) -> Option<char> {
    text.chars()
        .find(|c| ISO_2022_JP.encode(c.encode_utf8(&mut [0; 4])).2)
}

/// A header value as RFC 2047 encoded words in ISO-2022-JP, each a whole escape sequence
/// (it ends back in ASCII) within RFC 2047's 75 characters, folded between words.
pub fn header_words(text: &str) -> Option<String> {
    // 75 less `=?ISO-2022-JP?B?` and `?=` leaves 57 base64 characters: 42 bytes.
    const MAX_BYTES: usize = 42;
    let (mut words, mut chunk) = (Vec::new(), String::new());
    for c in text.chars() {
        let longer = format!("{chunk}{c}");
        if encode(&longer)?.len() > MAX_BYTES && !chunk.is_empty() {
            words.push(word(&chunk)?);
            chunk = c.to_string();
        } else {
            chunk = longer;
        }
    }
    if !chunk.is_empty() || words.is_empty() {
        words.push(word(&chunk)?);
    }
    Some(words.join("\r\n "))
}

fn word(text: &str) -> Option<String> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(encode(text)?);
    Some(format!("=?ISO-2022-JP?B?{b64}?="))
}

/// Refuses, naming it, a mail template that cannot be written in ISO-2022-JP.
pub fn check_template(name: &str, rendered: &str) -> Result<()> {
    match first_unwritable(rendered) {
        None => Ok(()),
        Some(c) => Err(Error::Config(format!(
            "[mail] charset = \"iso-2022-jp\": template {name} has {c:?} (U+{:04X}), which ISO-2022-JP cannot write; change the template or use charset = \"utf-8\"",
            c as u32
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japanese_is_written_in_seven_bits_and_read_back() {
        let text = "■ 利用登録手続きのご案内 ■\r\n※URLの有効期限は3時間です。";
        let bytes = encode(text).unwrap();
        assert!(bytes.iter().all(|b| *b < 0x80), "7-bit");
        assert!(bytes.starts_with(b"\x1b$B") || bytes.contains(&0x1b));
        let (back, _, errors) = ISO_2022_JP.decode(&bytes);
        assert!(!errors);
        assert_eq!(back, text);
    }

    #[test]
    fn bodies_have_crlf_and_short_lines_or_are_refused() {
        let body = encode_body("一行目\n二行目\n").unwrap();
        assert!(body.windows(2).filter(|w| w == b"\r\n").count() == 2);
        assert!(
            encode_body(&"あ".repeat(600)).is_none(),
            "a line over 998 octets"
        );
        assert!(encode_body("a\0b").is_none());
    }

    #[test]
    fn what_jis_cannot_write_is_named() {
        assert_eq!(encode("🙂"), None);
        assert_eq!(first_unwritable("こんにちは🙂"), Some('🙂'));
        assert!(
            check_template("mail/x.txt", "髙橋🙂")
                .unwrap_err()
                .to_string()
                .contains("U+1F642")
        );
    }

    #[test]
    fn subjects_become_whole_encoded_words() {
        // Alternating scripts cost an escape each time: words are cut by their size.
        let mixed = "a漢b字c混d在e文f字g列h".repeat(3);
        for text in [
            "利用登録手続きのご案内と暗証キーのご案内です",
            mixed.as_str(),
        ] {
            check_words(text);
        }
    }

    fn check_words(text: &str) {
        let words = header_words(text).unwrap();
        let mut back = String::new();
        for word in words.split("\r\n ") {
            assert!(
                word.starts_with("=?ISO-2022-JP?B?") && word.ends_with("?=") && word.len() <= 75
            );
            let b64 = &word["=?ISO-2022-JP?B?".len()..word.len() - 2];
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let last_escape = bytes.iter().rposition(|b| *b == 0x1b);
            let ends_in_ascii = last_escape.is_none_or(|at| bytes[at..].starts_with(b"\x1b(B"));
            assert!(ends_in_ascii, "each word ends in ASCII");
            back.push_str(&ISO_2022_JP.decode(&bytes).0);
        }
        assert_eq!(back, text);
    }
}
