//! The log karamail writes to stderr (journald under systemd): one event a line, with
//! every control character in it written out (`\u{1b}`), so an address or name that
//! carries ESC, NUL, VT or a newline can neither forge a log line nor drive the
//! terminal of whoever reads the log.

use std::io::Write;

/// Sets up the log: `RUST_LOG` filters (default `info`), plain text, no colours.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(|| EscapingWriter(std::io::stderr()))
        .with_ansi(false)
        .init();
}

/// Writes each formatted event with its control characters escaped; the newline that
/// ends the event stays.
pub struct EscapingWriter<W: Write>(pub W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, "\n"),
            None => (buf, ""),
        };
        let line = escape_controls(&String::from_utf8_lossy(body)) + end;
        self.0.write_all(line.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// `text` with every control character (C0, DEL, C1), bidi control (which reorders
/// what a reader sees) and line or paragraph separator written as `\u{…}`, and `\` as
/// `\\`, so a sender cannot type something that looks like an escape either.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match c {
            '\\' => "\\\\".to_string(),
            c if needs_escape(c) => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_written_out_and_the_line_end_kept() {
        let mut out = EscapingWriter(Vec::new());
        out.write_all("sender=\"a\u{1b}[2Jb\u{0}\u{b}\"@x.jp\nfake line\u{85}\n".as_bytes())
            .unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "sender=\"a\\u{1b}[2Jb\\u{0}\\u{b}\"@x.jp\\u{a}fake line\\u{85}\n"
        );
        assert_eq!(escape_controls("山田 太郎"), "山田 太郎");
        assert_eq!(
            escape_controls("a\u{202E}b\u{2028}c\\u{a}"),
            "a\\u{202e}b\\u{2028}c\\\\u{a}"
        );
    }
}
