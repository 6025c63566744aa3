//! Mail addresses as members really have them. Old Japanese carrier addresses
//! (`taro..yamada.@docomo.ne.jp`) break RFC 5322's dot rules but are live mailboxes,
//! so we accept them, also as an MTA in front quotes them (`"taro..yamada."@docomo.ne.jp`,
//! RFC 5321 Quoted-string), and quote their local part again when we send.
//!
//! Whatever is accepted here can be sent to: the sender's own rules (lettre's: a local
//! part of at most 64 octets, a domain of proper labels) are part of `parse`, so an
//! address that could not be sent to is refused at the door, never queued.

use std::fmt;

/// Longest address SMTP allows (RFC 5321 §4.5.3.1.3, path minus the brackets).
const MAX_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    local: String,
    domain: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("empty address")]
    Empty,
    #[error("address too long")]
    TooLong,
    #[error("address needs one @ with text on both sides")]
    Shape,
    #[error("address contains a space, control or non-ASCII character")]
    Character,
    #[error("the part before @ is longer than 64 characters")]
    LocalTooLong,
    #[error("the domain after @ is not a valid host name")]
    Domain,
}

impl AddressError {
    /// What a member is told on a form.
    pub fn japanese(self) -> &'static str {
        match self {
            AddressError::Empty => "メールアドレスを入力してください。",
            AddressError::LocalTooLong => {
                "メールアドレスの＠より前は64文字以内です。正しく入力してください。"
            }
            AddressError::Domain => {
                "メールアドレスの＠より後（ドメイン）が正しくありません。正しく入力してください。"
            }
            _ => "メールアドレスを正しく入力してください。",
        }
    }
}

/// Longest local part SMTP allows (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL: usize = 64;

impl Address {
    /// Accepts `local@domain` where the local part is any printable ASCII except the
    /// few characters that would break a header or an SMTP path, written plain or
    /// quoted (`"taro..yamada."@docomo.ne.jp`, with `\` escapes), and only if the
    /// sender could send to it.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if text.len() > MAX_LEN {
            return Err(AddressError::TooLong);
        }
        let (local, domain) = split_local(text)?;
        let plain = |c: char| {
            c.is_ascii_graphic() && !matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '\\' | '"')
        };
        if !local.chars().chain(domain.chars()).all(plain) {
            return Err(AddressError::Character);
        }
        if local.is_empty() || local.contains('@') || domain.is_empty() {
            return Err(AddressError::Shape);
        }
        if local.len() > MAX_LOCAL {
            return Err(AddressError::LocalTooLong);
        }
        let address = Address {
            local,
            domain: domain.to_ascii_lowercase(),
        };
        // The sender's yes is ours: what lettre refuses would stop in the outbox.
        if address.to_lettre().is_err() {
            // lettre counts the quotes a carrier local part needs toward its 64.
            let local_fails = address.to_lettre_at("example.jp").is_err();
            return Err(match local_fails {
                true => AddressError::LocalTooLong,
                false => AddressError::Domain,
            });
        }
        Ok(address)
    }

    /// An address a member gives (a form, an envelope sender): besides `parse`, its
    /// domain must be a public mail domain — two labels or more, the last alphabetic —
    /// so that no one has karamail mail `root@localhost`, `a@10.0.0.5` or `a@[10.0.0.5]`
    /// inside the society's network.
    pub fn parse_member(text: &str) -> Result<Address, AddressError> {
        let address = Address::parse(text)?;
        let labels: Vec<&str> = address.domain.split('.').collect();
        let tld_alphabetic = labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
        let punycode_tld = labels.last().is_some_and(|tld| tld.starts_with("xn--"));
        if labels.len() < 2 || !(tld_alphabetic || punycode_tld) {
            return Err(AddressError::Domain);
        }
        Ok(address)
    }

    /// Like [`Address::parse_member`], first turning full-width input
    /// (ｋｃ＠ｅｘａｍｐｌｅ．ｊｐ), which Japanese phone keyboards produce, into half-width.
    pub fn parse_typed(text: &str) -> Result<Address, AddressError> {
        Address::parse_member(&to_half_width(text))
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The form rate limits count by: one mailbox, whatever case it was typed in.
    pub fn key(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }

    /// The address for lettre, quoting a local part that is not a dot-atom.
    pub fn to_lettre(&self) -> Result<lettre::Address, lettre::address::AddressError> {
        self.to_lettre_at(&self.domain)
    }

    fn to_lettre_at(&self, domain: &str) -> Result<lettre::Address, lettre::address::AddressError> {
        match lettre::Address::new(&self.local, domain) {
            Ok(address) => Ok(address),
            Err(_) => lettre::Address::new(format!("\"{}\"", self.local), domain),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// The local part (unquoted, escapes undone) and the domain of `text`.
fn split_local(text: &str) -> Result<(String, &str), AddressError> {
    let Some(quoted) = text.strip_prefix('"') else {
        let (local, domain) = text.rsplit_once('@').ok_or(AddressError::Shape)?;
        return Ok((local.to_string(), domain));
    };
    let mut local = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' => local.push(chars.next().ok_or(AddressError::Shape)?.1),
            '"' => {
                let domain = quoted[at + 1..]
                    .strip_prefix('@')
                    .ok_or(AddressError::Shape)?;
                return Ok((local, domain));
            }
            c => local.push(c),
        }
    }
    Err(AddressError::Shape)
}

/// Whether two addresses name the same mailbox (case-insensitive, as MTAs treat them).
pub fn same_mailbox(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Full-width ASCII (U+FF01–U+FF5E) and the ideographic space to their half-width forms.
pub fn to_half_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_addresses_are_accepted_and_quoted_for_lettre() {
        for text in [
            "taro..yamada@docomo.ne.jp",
            "hanako.@ezweb.ne.jp",
            ".dot@docomo.ne.jp",
        ] {
            let address = Address::parse(text).unwrap();
            assert_eq!(address.to_string(), text);
            let lettre = address.to_lettre().unwrap();
            assert_eq!(
                lettre.to_string(),
                format!("\"{}\"@{}", address.local(), address.domain())
            );
        }
        let plain = Address::parse("Taro@Example.JP").unwrap();
        assert_eq!(plain.to_lettre().unwrap().to_string(), "Taro@example.jp");
        assert_eq!(plain.key(), "taro@example.jp");
    }

    #[test]
    fn quoted_local_parts_from_an_mta_in_front_are_the_same_mailbox() {
        for (quoted, plain) in [
            (
                "\"taro..yamada.\"@docomo.ne.jp",
                "taro..yamada.@docomo.ne.jp",
            ),
            ("\".abc\"@docomo.ne.jp", ".abc@docomo.ne.jp"),
            ("\"hanako.\"@ezweb.ne.jp", "hanako.@ezweb.ne.jp"),
            ("\"ta\\.ro\"@Example.JP", "ta.ro@example.jp"),
        ] {
            let address = Address::parse(quoted).unwrap();
            assert_eq!(address.to_string(), plain);
        }
        // Quoting does not let in what plain text may not carry.
        for bad in [
            "\"a b\"@x.jp",
            "\"a\\\"b\"@x.jp",
            "\"a\"@",
            "\"abc@x.jp",
            "\"a\"x@y.jp",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn what_the_sender_refuses_is_refused_here() {
        let long = format!("{}@example.jp", "a".repeat(65));
        assert_eq!(Address::parse(&long), Err(AddressError::LocalTooLong));
        assert!(Address::parse(&format!("{}@example.jp", "a".repeat(64))).is_ok());
        for bad in ["a@-x.jp", "a@x-.jp", "a@x.-jp"] {
            assert_eq!(Address::parse(bad), Err(AddressError::Domain), "{bad}");
        }
        let label = format!("a@{}.jp", "x".repeat(64));
        assert!(Address::parse(&label).is_err());
    }

    #[test]
    fn members_give_public_mail_domains_only() {
        for internal in [
            "root@localhost",
            "a@10.0.0.5",
            "a@[10.0.0.5]",
            "a@127.0.0.1",
            "a@intranet",
        ] {
            assert!(Address::parse_member(internal).is_err(), "{internal}");
        }
        for public in [
            "taro@example.jp",
            "hanako.@ezweb.ne.jp",
            "a@xn--eckwd4c7c.xn--zckzah",
        ] {
            assert!(Address::parse_member(public).is_ok(), "{public}");
        }
        // A carrier local part that needs quotes: too long is said so, not "domain".
        let long = format!("{}.@docomo.ne.jp", "a".repeat(62));
        assert_eq!(Address::parse(&long), Err(AddressError::LocalTooLong));
    }

    #[test]
    fn header_breaking_input_is_refused() {
        for text in [
            "",
            "no-at-sign",
            "a@",
            "@b.jp",
            "a b@c.jp",
            "a@b.jp\r\nBcc: x@y.jp",
            "a\"b@c.jp",
            "a@b..jp",
            "日本@example.jp",
        ] {
            assert!(Address::parse(text).is_err(), "{text:?} should be refused");
        }
    }

    #[test]
    fn full_width_typing_is_understood() {
        let address = Address::parse_typed("ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ").unwrap();
        assert_eq!(address.to_string(), "taro@example.jp");
    }
}
