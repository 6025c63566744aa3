//! Reading header fields as RFC 5322 writes them: every occurrence of a field, its
//! value without comments and folding, split where no quoted string is.

use std::borrow::Cow;

use mail_parser::Header;

/// Every value of the field `name` (case-insensitive), in order, as the raw text after
/// the colon; bytes that are not UTF-8 (a Shift_JIS comment) become U+FFFD, so the
/// rest of the value is still read.
pub fn raw_values<'a>(raw: &'a [u8], headers: &[Header], name: &str) -> Vec<Cow<'a, str>> {
    headers
        .iter()
        .filter(|h| h.name().eq_ignore_ascii_case(name))
        .filter_map(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
        .map(String::from_utf8_lossy)
        .collect()
}

/// A field's value as a comparable word: comments, folding and quotes gone, trimmed,
/// lower-cased (`"Bulk" (from a list)` → `bulk`). Unbalanced comments or quotes keep
/// the text as it is, lower-cased.
pub fn plain(value: &str) -> String {
    let text = without_comments(value).unwrap_or_else(|| value.to_string());
    text.replace('"', " ").trim().to_ascii_lowercase()
}

/// The text with RFC 5322 comments (nested parentheses, outside quoted strings) and
/// folding replaced by spaces; `None` if a comment or quote is left open.
pub fn without_comments(value: &str) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        let c = if matches!(c, '\r' | '\n' | '\t') {
            ' '
        } else {
            c
        };
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            ')' if !quoted => return None,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    (depth == 0 && !quoted).then_some(out)
}

/// `text` split at `separator` where it is not inside a quoted string.
pub fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_quotes_and_folding_go() {
        assert_eq!(plain(" bulk (a comment (nested))\r\n"), "bulk");
        assert_eq!(plain("\"bulk\""), "bulk");
        assert_eq!(plain("(x) Auto-Replied"), "auto-replied");
        assert_eq!(without_comments("a (open"), None);
        assert_eq!(
            split_outside_quotes("a;\"b;c\";d", ';'),
            ["a", "\"b;c\"", "d"]
        );
    }
}
