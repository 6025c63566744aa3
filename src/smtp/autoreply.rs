//! Whether a received mail's sender may be answered at all, and the facts of the mail
//! we keep (its Message-ID, the client a trusted relay recorded). Whether a machine
//! sent it is `robot`'s question. Never fails: a mail we cannot parse is judged on what
//! we can see.

use std::net::IpAddr;

use mail_parser::MessageParser;

use crate::address::{Address, AddressError};

/// What we learn from a message's header.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Inspection {
    pub message_id: Option<String>,
    /// The client address the nearest relay wrote in its `Received:` line.
    pub relayed_from: Option<IpAddr>,
}

/// Judges the envelope sender: `Err(reason)` when no reply could go to it, or it is
/// our own.
pub fn check_sender(
    envelope_from: &str,
    is_ours: impl Fn(&str) -> bool,
) -> Result<Address, &'static str> {
    if envelope_from.is_empty() {
        return Err(super::robot::Rule::NullSender.as_str());
    }
    let address = Address::parse_member(envelope_from).map_err(|e| match e {
        // Well-formed, but no mail could be sent to it (`a@-x.jp`, a 65-octet local part).
        AddressError::LocalTooLong | AddressError::Domain => "unsendable_sender",
        _ => "invalid_sender",
    })?;
    if is_ours(&address.to_string()) {
        return Err("own_address");
    }
    Ok(address)
}

/// Reads the header of a raw message for the signs RFC 3834 says to respect.
pub fn inspect(raw: &[u8]) -> Inspection {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return Inspection::default();
    };
    Inspection {
        message_id: message.message_id().map(|id| format!("<{id}>")),
        relayed_from: topmost_received(raw, message.headers())
            .and_then(relay_record)
            .map(|(_, ip)| ip),
    }
}

/// The first `Received:` line, which the relay that handed us the mail wrote.
fn topmost_received<'a>(raw: &'a [u8], headers: &[mail_parser::Header]) -> Option<&'a str> {
    let header = headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case("Received"))?;
    std::str::from_utf8(raw.get(header.offset_start as usize..header.offset_end as usize)?).ok()
}

/// What the relay in front recorded of its client, from the top `Received:` line of a
/// message's header (`raw`, read up to the blank line): see `relay_record`.
pub fn relayed_client(raw: &[u8]) -> Option<(String, IpAddr)> {
    let message = mail_parser::MessageParser::default().parse_headers(raw)?;
    topmost_received(raw, message.headers()).and_then(relay_record)
}

/// The HELO name and client address in a relay's own `Received:` header, as Postfix
/// writes it: the first physical line is `from HELO (RDNS [ADDR])`, and everything after
/// it (`by …`, `(using TLS …)`, `for <…>`) is on lines of their own. Only that first
/// line is read, and the address is its last bracket: the HELO is the client's to
/// choose, brackets, parentheses and `by` included (`EHLO x ([192.0.2.1]) by y`), but
/// it always comes before the relay's own `(RDNS [ADDR])`, which ends the line.
fn relay_record(received: &str) -> Option<(String, IpAddr)> {
    let first = received.trim_start().lines().next()?.trim_end();
    let rest = first.strip_prefix("from ")?.strip_suffix("])")?;
    let open = rest.rfind(" (")?;
    let (helo, relay_part) = (&rest[..open], &rest[open + 2..]);
    let bracket = relay_part.rfind('[')?;
    // RDNS is a host name or "unknown": nothing else may stand before the bracket.
    if relay_part[..bracket].contains(['(', ')', '[', ']']) {
        return None;
    }
    let inside = &relay_part[bracket + 1..];
    let ip = inside
        .strip_prefix("IPv6:")
        .unwrap_or(inside)
        .parse()
        .ok()?;
    Some((helo.to_string(), ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsendable_senders_and_ourselves_get_no_reply() {
        let ours = |a: &str| a == "kc@example.jp";
        assert_eq!(check_sender("", ours), Err("null_sender"));
        assert_eq!(check_sender("kc@example.jp", ours), Err("own_address"));
        assert_eq!(
            check_sender("no spaces@example.jp", ours),
            Err("invalid_sender")
        );
        assert!(check_sender("taro..yamada.@docomo.ne.jp", ours).is_ok());
        assert!(check_sender("\"taro..yamada.\"@docomo.ne.jp", ours).is_ok());
        assert_eq!(check_sender("a@-x.jp", ours), Err("unsendable_sender"));
        let long = format!("{}@example.jp", "a".repeat(65));
        assert_eq!(check_sender(&long, ours), Err("unsendable_sender"));
    }

    #[test]
    fn relay_recorded_client_is_found() {
        let raw = b"Received: from phone.example (phone.example [192.0.2.7])\r\n\tby mx.example.jp (Postfix) with ESMTP id 1\r\nReceived: from x ([10.0.0.1]) by y\r\n\r\n";
        assert_eq!(
            inspect(raw).relayed_from,
            Some("192.0.2.7".parse().unwrap())
        );
        let v6 = b"Received: from h (h [IPv6:2001:db8::1])\r\n\tby mx (Postfix)\r\n\r\n";
        assert_eq!(
            inspect(v6).relayed_from,
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            inspect(b"Received: from h by mx\r\n\r\n").relayed_from,
            None
        );
        // Postfix's form when the client says HELO [1.2.3.4]: the relay's bracket counts.
        let spoofed = b"Received: from [1.2.3.4] (unknown [192.0.2.9])\r\n\tby mx.example.jp (Postfix) with ESMTP id 2\r\n\r\n";
        assert_eq!(inspect(spoofed).relayed_from, "192.0.2.9".parse().ok());
        let tricky = b"Received: from a[6.6.6.6]) by x (unknown [192.0.2.10])\r\n\tby mx.example.jp (Postfix)\r\n\r\n";
        assert_eq!(inspect(tricky).relayed_from, "192.0.2.10".parse().ok());
        // A HELO that imitates Postfix, with Postfix's TLS line after the first line.
        let tls = b"Received: from x ([198.51.100.7]) by y (unknown [203.0.113.5])\r\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n\t(No client certificate requested)\r\n\tby mx.example.jp (Postfix) with ESMTPS id 5\r\n\tfor <kc@example.jp>; Sun, 22 Nov 2026 10:00:00 +0900 (JST)\r\n\r\n";
        assert_eq!(inspect(tls).relayed_from, "203.0.113.5".parse().ok());
        assert_eq!(
            relayed_client(tls).map(|(helo, _)| helo),
            Some("x ([198.51.100.7]) by y".to_string())
        );
        // A first line that is not Postfix's own shape is not believed.
        let odd = b"Received: from h (h [192.0.2.1]) by mx (Postfix) with ESMTP id 6\r\n\r\n";
        assert_eq!(inspect(odd).relayed_from, None);
        assert_eq!(
            relayed_client(spoofed),
            Some(("[1.2.3.4]".to_string(), "192.0.2.9".parse().unwrap()))
        );
        assert_eq!(relayed_client(b"Subject: x\r\n\r\n"), None);
    }

    #[test]
    fn japanese_headers_and_message_id_are_read() {
        let raw = b"Message-ID: <abc@docomo.ne.jp>\r\nSubject: =?ISO-2022-JP?B?GyRCNnUlYSE8JWsbKEI=?=\r\n\r\n";
        let inspection = inspect(raw);
        assert_eq!(inspection.message_id.as_deref(), Some("<abc@docomo.ne.jp>"));
    }
}
