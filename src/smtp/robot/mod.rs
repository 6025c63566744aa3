//! Was this mail sent by a machine? Bounces, delivery and feedback reports, vacation
//! and out-of-office replies, list and bulk mail must never be answered (RFC 3834 §2,
//! RFC 3464, RFC 5965): an answer is at best noise, at worst a mail loop or backscatter
//! that gets the society's domain listed.
//!
//! The signs are read in order of certainty — the envelope, the header fields the
//! standards and the vendors define, the MIME structure, then the subjects and texts
//! the common mail systems and Japanese carriers write — and the first one found is the
//! rule recorded for the mail (`signup_requests.outcome`, `/metrics`, the log). A mail
//! attached to another (`message/rfc822`) is never read: a member forwarding a bounce
//! is still a member.

mod content;
mod fields;
mod phrases;

use mail_parser::{MessageParser, PartType};

/// Each way a machine's mail is recognised; its name is what is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `MAIL FROM:<>`, which bounces and reports use (RFC 5321 §4.5.5).
    NullSender,
    /// The envelope sender is a machine's mailbox (`MAILER-DAEMON`, `double-bounce`,
    /// a list's `-request` or `-admin`, a bulk sender's VERP bounce address…).
    RobotSender,
    /// An earlier delivery's `Return-Path:` is empty or a machine's mailbox.
    RobotReturnPath,
    /// `From:` is a machine's mailbox or calls itself one ("Mail Delivery System").
    RobotFrom,
    /// `Auto-Submitted:` other than `no` (RFC 3834).
    AutoSubmitted,
    /// `Precedence: bulk | list | junk | auto_reply`.
    Precedence,
    /// A `List-*` field (RFC 2369, RFC 2919): a mailing list's mail.
    ListHeader,
    /// `X-Auto-Response-Suppress` asking that automatic mail get no answer.
    AutoResponseSuppressed,
    /// A vendor's field for automatic mail (`X-Autoreply`, `X-Failed-Recipients`…).
    VendorAutoHeader,
    /// A delivery, disposition or feedback report in the MIME structure.
    DeliveryReport,
    /// A returned message or its header, with a failure text beside it.
    ReturnedMessage,
    /// A subject bounces use ("Undelivered Mail Returned to Sender", 「配信エラー」…).
    BounceSubject,
    /// A subject auto-replies use ("Automatic reply:", 「自動応答」, 「不在」…).
    AutoReplySubject,
    /// A text bounces and reports use ("This is the qmail-send program"…).
    BounceText,
    /// A text out-of-office replies use.
    AutoReplyText,
}

impl Rule {
    pub const ALL: [Rule; 15] = [
        Rule::NullSender,
        Rule::RobotSender,
        Rule::RobotReturnPath,
        Rule::RobotFrom,
        Rule::AutoSubmitted,
        Rule::Precedence,
        Rule::ListHeader,
        Rule::AutoResponseSuppressed,
        Rule::VendorAutoHeader,
        Rule::DeliveryReport,
        Rule::ReturnedMessage,
        Rule::BounceSubject,
        Rule::AutoReplySubject,
        Rule::BounceText,
        Rule::AutoReplyText,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NullSender => "null_sender",
            Rule::RobotSender => "robot_sender",
            Rule::RobotReturnPath => "robot_return_path",
            Rule::RobotFrom => "robot_from",
            Rule::AutoSubmitted => "auto_submitted",
            Rule::Precedence => "precedence",
            Rule::ListHeader => "list_header",
            Rule::AutoResponseSuppressed => "auto_response_suppressed",
            Rule::VendorAutoHeader => "vendor_auto_header",
            Rule::DeliveryReport => "delivery_report",
            Rule::ReturnedMessage => "returned_message",
            Rule::BounceSubject => "bounce_subject",
            Rule::AutoReplySubject => "auto_reply_subject",
            Rule::BounceText => "bounce_text",
            Rule::AutoReplyText => "auto_reply_text",
        }
    }
}

/// Why a mail was judged a machine's: the rule, and what it saw, for the log. The
/// evidence names a field and one of our own patterns, never the mail's own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sign {
    pub rule: Rule,
    pub evidence: String,
}

impl Sign {
    fn new(rule: Rule, evidence: impl Into<String>) -> Sign {
        Sign {
            rule,
            evidence: evidence.into(),
        }
    }
}

/// The sign a subject alone gives (a QR code's `?subject=` must give none, or every
/// member's mail would go unanswered).
pub fn subject_sign(subject: &str) -> Option<Sign> {
    content::subject_sign(&phrases::fold(subject))
}

/// The first sign that a machine sent this mail, or None for a person's mail.
/// `envelope_sender` is empty for the null sender. Never fails: what cannot be parsed
/// is judged on what can be seen.
pub fn classify(envelope_sender: &str, raw: &[u8]) -> Option<Sign> {
    if envelope_sender.is_empty() {
        return Some(Sign::new(Rule::NullSender, "MAIL FROM:<>"));
    }
    if let Some(pattern) = fields::robot_mailbox(envelope_sender) {
        return Some(Sign::new(
            Rule::RobotSender,
            format!("envelope sender: {pattern}"),
        ));
    }
    let headers = MessageParser::default().parse_headers(raw)?;
    if let Some(sign) = fields::header_sign(raw, &headers) {
        return Some(sign);
    }
    // A person forwarding a mail (a bounce, say) is still a person: the forwarded
    // mail's subject and words are not theirs.
    let subject = phrases::fold(headers.subject().unwrap_or_default());
    let forward = phrases::is_forward(&subject);
    if !forward && let Some(sign) = content::subject_sign(&subject) {
        return Some(sign);
    }
    // Only now is the whole message parsed: most mail was decided by its header.
    let message = MessageParser::default().parse(raw)?;
    let sign = content::content_sign(&message, forward);
    dismantle(message);
    sign
}

/// Frees a parsed mail one attached message at a time. Attached messages nest
/// without limit (`message/rfc822`, or a `multipart/digest`'s parts), and freeing a
/// nest of thousands the usual way recurses once per level: a 1 MiB mail overflowed
/// the stack and took the daemon down.
fn dismantle(message: mail_parser::Message) {
    let mut nest = vec![message];
    while let Some(mut message) = nest.pop() {
        for part in &mut message.parts {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                nest.push(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests;
