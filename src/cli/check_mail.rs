//! `karamail check-mail`: would karamail answer this mail, or which rule says a machine
//! sent it? For the sysadmin whose member says no sign-up mail came, with the mail they
//! sent in hand, and for trying a rule against a folder of mails.

use std::path::Path;

use anyhow::Context;
use mail_parser::MessageParser;

use crate::config::Config;
use crate::smtp::{autoreply, robot};

/// Judges each file by the intake's rules, those `[smtp] robot_rules_off` names aside
/// (and sender authentication, which needs the connection); `sender` is the envelope sender to assume, else the mail's own
/// `Return-Path:` (`<>` is the null sender), else its `From:`.
pub fn check_mail(
    config: &Config,
    files: &[impl AsRef<Path>],
    sender: Option<&str>,
) -> anyhow::Result<()> {
    let off = robot::rules_off(&config.smtp.robot_rules_off).map_err(anyhow::Error::msg)?;
    let (mut answered, mut suppressed) = (0, 0);
    for file in files {
        let file = file.as_ref();
        let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let raw = wire_form(&raw);
        let envelope = sender.map_or_else(|| own_sender(&raw), str::to_string);
        // In the daemon's order: a sender no reply could go to first, then the rules.
        let verdict = match autoreply::check_sender(&envelope, |_| false) {
            Err(reason) => Err(reason.to_string()),
            Ok(_) => match robot::classify_except(&envelope, &raw, &off) {
                Some(sign) => Err(format!("{} ({})", sign.rule.as_str(), sign.evidence)),
                None => Ok(()),
            },
        };
        let envelope = envelope.escape_debug();
        match verdict {
            Ok(()) => {
                answered += 1;
                println!("{}: answered (sender <{envelope}>)", file.display());
            }
            Err(reason) => {
                suppressed += 1;
                println!(
                    "{}: no reply: {reason} (sender <{envelope}>)",
                    file.display()
                );
            }
        }
    }
    if files.len() > 1 {
        println!("{answered} answered, {suppressed} not answered");
    }
    Ok(())
}

/// The message as it would arrive over SMTP: an mbox `From ` line dropped, every line
/// ending in CRLF.
pub fn wire_form(raw: &[u8]) -> Vec<u8> {
    let raw = match raw.strip_prefix(b"From ") {
        Some(rest) => rest.splitn(2, |b| *b == b'\n').nth(1).unwrap_or_default(),
        None => raw,
    };
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
    let mut bytes = raw.iter().peekable();
    while let Some(&b) = bytes.next() {
        match b {
            b'\r' if bytes.peek() == Some(&&b'\n') => {}
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(b),
        }
    }
    out
}

/// The envelope sender a mail names for itself: its `Return-Path:` (`<>` the null
/// sender), else (none, or none with an address in it) its `From:`; with no address
/// anywhere, the null sender. The corpus test sends each machine's mail with this
/// sender too.
pub fn own_sender(raw: &[u8]) -> String {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return String::new();
    };
    let return_path = message
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case("Return-Path"))
        .and_then(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
        .and_then(|value| path_in(&String::from_utf8_lossy(value)));
    if let Some(path) = return_path.filter(|p| p.is_empty() || p.contains('@')) {
        return path;
    }
    message
        .from()
        .and_then(|from| from.first())
        .and_then(|a| a.address())
        .filter(|a| a.contains('@'))
        .map(str::to_string)
        .unwrap_or_default()
}

/// The path inside `<…>` (empty for `<>`), or the value's first word with an `@`.
fn path_in(value: &str) -> Option<String> {
    if let (Some(open), Some(close)) = (value.rfind('<'), value.rfind('>'))
        && open < close
    {
        return Some(value[open + 1..close].trim().to_string());
    }
    value
        .split_whitespace()
        .find(|w| w.contains('@'))
        .map(|w| w.trim_matches(['(', ')', '"']).to_string())
}
