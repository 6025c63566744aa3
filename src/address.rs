//! Mail addresses as members really have them. Old Japanese carrier addresses
//! (`taro..yamada.@docomo.ne.jp`) break RFC 5322's dot rules but are live mailboxes,
//! so we accept them and quote their local part when a strict parser needs it.

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
}

impl Address {
    /// Accepts `local@domain` where the local part is any printable ASCII except the
    /// few characters that would break a header or an SMTP path.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if text.len() > MAX_LEN {
            return Err(AddressError::TooLong);
        }
        if text.chars().any(|c| {
            !c.is_ascii_graphic() || matches!(c, '<' | '>' | '(' | ')' | ',' | ';' | '\\' | '"')
        }) {
            return Err(AddressError::Character);
        }
        let (local, domain) = text.rsplit_once('@').ok_or(AddressError::Shape)?;
        let domain_ok = !domain.is_empty()
            && domain.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.contains('@') || !domain_ok {
            return Err(AddressError::Shape);
        }
        Ok(Address {
            local: local.to_string(),
            domain: domain.to_ascii_lowercase(),
        })
    }

    /// Like [`Address::parse`], first turning full-width input (ｋｃ＠ｅｘａｍｐｌｅ．ｊｐ),
    /// which Japanese phone keyboards produce, into half-width.
    pub fn parse_typed(text: &str) -> Result<Address, AddressError> {
        Address::parse(&to_half_width(text))
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
        match lettre::Address::new(&self.local, &self.domain) {
            Ok(address) => Ok(address),
            Err(_) => lettre::Address::new(format!("\"{}\"", self.local), &self.domain),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
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
