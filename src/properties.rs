//! Property tests: whatever bytes arrive, the parsers answer (a value or an error) and
//! never panic. `PROPTEST_CASES=100000 cargo test --lib properties` runs them long.

#![cfg(test)]

use proptest::prelude::*;

use crate::config::Config;
use crate::smtp::{autoreply, robot};

/// Header-ish text: mostly printable, with the characters parsers trip on.
fn messy_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\r\n".to_string()),
            Just(":".to_string()),
            Just(";".to_string()),
            Just("=?ISO-2022-JP?B?".to_string()),
            Just("?=".to_string()),
            Just("\u{0}".to_string()),
            Just(" ".to_string()),
            Just("Auto-Submitted".to_string()),
            Just("List-Id".to_string()),
            Just("Received: from x ([".to_string()),
            Just("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n".to_string()),
            Just("Content-Type: text/html; charset=ISO-2022-JP\r\n\r\n<p>".to_string()),
            Just("不在".to_string()),
            "[a-zA-Z0-9@<>\\[\\]\\.\\-]{1,8}",
            any::<char>().prop_map(String::from),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn any_message_gets_a_decision(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = autoreply::inspect(&raw);
        let _ = robot::classify("a@example.jp", &raw);
    }

    #[test]
    fn any_header_soup_gets_a_decision(text in messy_text()) {
        let _ = autoreply::inspect(text.as_bytes());
        let _ = robot::classify("a@example.jp", text.as_bytes());
        let _ = robot::classify(&text, b"Subject: x\r\n\r\n");
        let _ = autoreply::check_sender(&text, |_| false);
    }

    #[test]
    fn any_csv_is_imported_or_refused(text in messy_text(), header in prop_oneof![Just("member_no,name\n"), Just("member_no,date,title,body\n"), Just("")]) {
        let input = format!("{header}{text}");
        let _ = crate::members::parse(&input);
        let _ = crate::records::parse(&input);
        let _ = crate::members::decode(input.as_bytes(), "prop");
    }

    #[test]
    fn any_config_is_loaded_or_refused(text in messy_text()) {
        let _ = Config::from_parts(&text, "prop.toml", std::iter::empty());
        let _ = Config::from_parts(&format!("[policy]\nsignup_link_ttl = {text:?}\n"), "prop.toml", std::iter::empty());
    }

    #[test]
    fn any_form_body_is_read_or_refused(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body);
        let _ = crate::address::Address::parse_typed(&String::from_utf8_lossy(&body));
    }
}
