//! The signs in a mail's structure and words: report parts anywhere in its MIME tree,
//! a returned message beside a failure text, and the subjects and texts of bounces and
//! auto-replies. Only the mail's own parts are read, never a message attached to it.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::phrases;
use super::{Rule, Sign};

/// Content types of delivery, disposition and feedback reports (RFC 3462, RFC 3464,
/// RFC 6533, RFC 8098, RFC 5965), and the returned header that bounces carry.
const REPORT_TYPES: &[&str] = &[
    "multipart/report",
    "message/delivery-status",
    "message/global-delivery-status",
    "message/disposition-notification",
    "message/global-disposition-notification",
    "message/feedback-report",
];

/// How much of each text part is read, and of all of them together: bounces and
/// auto-replies say what they are in their first lines, and a large mail (or one of
/// thousands of small parts) is not read through for it.
const TEXT_READ: usize = 8 * 1024;
const TEXT_READ_TOTAL: usize = 32 * 1024;

/// A delivery, disposition or feedback report anywhere in the mail's own MIME tree.
pub fn delivery_report(message: &Message) -> Option<Sign> {
    let found = message.parts.iter().find_map(report_type)?;
    Some(Sign::new(Rule::DeliveryReport, found))
}

/// A bounce's own sentences in the sender's text (see `own_text`).
pub fn bounce_text(text: &str) -> Option<Sign> {
    let found = phrases::BOUNCE_TEXTS.found_in(text)?;
    Some(Sign::new(Rule::BounceText, format!("text: {found}")))
}

/// An auto-reply's own sentences in the sender's text.
pub fn auto_reply_text(text: &str) -> Option<Sign> {
    let found = phrases::AUTO_REPLY_TEXTS.found_in(text)?;
    Some(Sign::new(Rule::AutoReplyText, format!("text: {found}")))
}

/// A bounce's subject, folded (see `phrases::fold`).
pub fn bounce_subject(subject: &str) -> Option<Sign> {
    let found = phrases::BOUNCE_SUBJECTS.found_in(subject)?;
    Some(Sign::new(Rule::BounceSubject, format!("Subject: {found}")))
}

/// An auto-reply's subject, folded.
pub fn auto_reply_subject(subject: &str) -> Option<Sign> {
    let found = phrases::AUTO_REPLY_SUBJECTS.found_in(subject)?;
    Some(Sign::new(
        Rule::AutoReplySubject,
        format!("Subject: {found}"),
    ))
}

/// The part's content type, lower-cased (`text/plain` when it says none).
fn content_type(part: &MessagePart) -> String {
    part.content_type().map_or_else(
        || "text/plain".to_string(),
        |t| format!("{}/{}", t.ctype(), t.subtype().unwrap_or_default()).to_ascii_lowercase(),
    )
}

fn report_type(part: &MessagePart) -> Option<&'static str> {
    let found = content_type(part);
    REPORT_TYPES.iter().find(|t| **t == found).copied()
}

/// The mail's own text, folded: the text parts outside attached messages (not those
/// sent as attachments), each read up to `TEXT_READ`, HTML without its tags, quoted
/// lines left out.
pub fn own_text(message: &Message) -> String {
    let mut text = String::new();
    for part in &message.parts {
        if text.len() >= TEXT_READ_TOTAL {
            break;
        }
        let attached = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        let (body, html) = match &part.body {
            _ if attached => continue,
            PartType::Text(body) => (body, false),
            PartType::Html(body) => (body, true),
            _ => continue,
        };
        let mut end = body.len().min(TEXT_READ);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        let body = if html {
            phrases::without_tags(&body[..end])
        } else {
            body[..end].to_string()
        };
        // Quoted lines are the mail being answered, not the sender's words.
        for line in body.lines().filter(|l| !l.trim_start().starts_with('>')) {
            text.push_str(line);
            text.push('\n');
        }
    }
    phrases::fold(&text)
}

/// A returned message (`message/rfc822`) or its header (`text/rfc822-headers`) beside
/// a text that speaks of a failure as a server does. A member forwarding a mail as an
/// attachment says no such thing; a returned header alone is always a bounce's.
pub fn returned_message(message: &Message, text: &str) -> Option<Sign> {
    let types: Vec<String> = message.parts.iter().skip(1).map(content_type).collect();
    if types.iter().any(|t| t == "text/rfc822-headers") {
        return Some(Sign::new(Rule::ReturnedMessage, "text/rfc822-headers"));
    }
    if !types
        .iter()
        .any(|t| t == "message/rfc822" || t == "message/global")
    {
        return None;
    }
    phrases::FAILURE_WORDS.found_in(text).map(|found| {
        Sign::new(
            Rule::ReturnedMessage,
            format!("message/rfc822 with {found}"),
        )
    })
}
