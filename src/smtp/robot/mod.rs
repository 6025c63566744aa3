//! Was this mail sent by a machine? Bounces, delivery and feedback reports, vacation
//! and out-of-office replies, list and bulk mail must never be answered (RFC 3834 §2,
//! RFC 3464, RFC 5965): an answer is at best noise, at worst a mail loop or backscatter
//! that gets the society's domain listed.
//!
//! The signs are read in order of certainty — the envelope, the header fields the
//! standards and the vendors define, the subject, the MIME structure, then the texts
//! the common mail systems and Japanese carriers write — and the first one found is the
//! rule recorded for the mail (`signup_requests.outcome`, `/metrics`, the log). A rule
//! seen to misfire can be turned off (`[smtp] robot_rules_off`). A mail
//! attached to another (`message/rfc822`) is never read: a member forwarding a bounce
//! is still a member.

mod content;
mod fields;
mod phrases;

use std::cell::OnceCell;

use mail_parser::{Message, MessageParser, PartType};

/// Each way a machine's mail is recognised, in the order they are read (most certain
/// and cheapest first); its name is what is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `MAIL FROM:<>`, which bounces and reports use (RFC 5321 §4.5.5).
    NullSender,
    /// The envelope sender is a machine's mailbox (`MAILER-DAEMON`, `double-bounce`,
    /// a list's `-request` or `-admin`, a bulk sender's VERP bounce address…).
    RobotSender,
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
    /// An earlier delivery's `Return-Path:` is empty or a machine's mailbox.
    RobotReturnPath,
    /// `From:` is a machine's mailbox or calls itself one ("Mail Delivery System").
    RobotFrom,
    /// A subject bounces use ("Undelivered Mail Returned to Sender", 「配信エラー」…).
    BounceSubject,
    /// A subject auto-replies use ("Automatic reply:", 「自動応答」, 「不在」…).
    AutoReplySubject,
    /// A delivery, disposition or feedback report in the MIME structure.
    DeliveryReport,
    /// A text bounces and reports use ("This is the qmail-send program"…).
    BounceText,
    /// A text out-of-office replies use.
    AutoReplyText,
    /// A returned message or its header, with a server's failure words beside it.
    ReturnedMessage,
}

impl Rule {
    /// Every rule, in the order they are read.
    pub const ALL: [Rule; 15] = [
        Rule::NullSender,
        Rule::RobotSender,
        Rule::AutoSubmitted,
        Rule::Precedence,
        Rule::ListHeader,
        Rule::AutoResponseSuppressed,
        Rule::VendorAutoHeader,
        Rule::RobotReturnPath,
        Rule::RobotFrom,
        Rule::BounceSubject,
        Rule::AutoReplySubject,
        Rule::DeliveryReport,
        Rule::BounceText,
        Rule::AutoReplyText,
        Rule::ReturnedMessage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::NullSender => "null_sender",
            Rule::RobotSender => "robot_sender",
            Rule::AutoSubmitted => "auto_submitted",
            Rule::Precedence => "precedence",
            Rule::ListHeader => "list_header",
            Rule::AutoResponseSuppressed => "auto_response_suppressed",
            Rule::VendorAutoHeader => "vendor_auto_header",
            Rule::RobotReturnPath => "robot_return_path",
            Rule::RobotFrom => "robot_from",
            Rule::BounceSubject => "bounce_subject",
            Rule::AutoReplySubject => "auto_reply_subject",
            Rule::DeliveryReport => "delivery_report",
            Rule::BounceText => "bounce_text",
            Rule::AutoReplyText => "auto_reply_text",
            Rule::ReturnedMessage => "returned_message",
        }
    }
}

/// The rules `[smtp] robot_rules_off` names, for a sysadmin who saw one misfire (in
/// `/metrics`, the log, `karamail check-mail`): each must be a rule's name, and the
/// null sender is never answered (RFC 5321: a bounce answered loops).
pub fn rules_off(names: &[String]) -> Result<Vec<Rule>, String> {
    names
        .iter()
        .map(|name| match Rule::ALL.iter().find(|r| r.as_str() == name) {
            Some(Rule::NullSender) => Err(
                "[smtp] robot_rules_off: null_sender cannot be turned off (RFC 5321: mail from the null sender is a bounce, and answering it loops)".to_string(),
            ),
            Some(rule) => Ok(*rule),
            None => Err(format!(
                "[smtp] robot_rules_off: no rule is called {name:?}; the rules are {}",
                Rule::ALL.map(Rule::as_str).join(", ")
            )),
        })
        .collect()
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
    let subject = phrases::fold(subject);
    content::bounce_subject(&subject).or_else(|| content::auto_reply_subject(&subject))
}

/// The first sign that a machine sent this mail, or None for a person's mail.
/// `envelope_sender` is empty for the null sender. Never fails: what cannot be parsed
/// is judged on what can be seen.
pub fn classify(envelope_sender: &str, raw: &[u8]) -> Option<Sign> {
    classify_except(envelope_sender, raw, &[])
}

/// `classify` with the rules in `off` not read (see `rules_off`).
pub fn classify_except(envelope_sender: &str, raw: &[u8], off: &[Rule]) -> Option<Sign> {
    let mail = Mail::new(envelope_sender, raw);
    Rule::ALL
        .iter()
        .filter(|rule| !off.contains(rule))
        .find_map(|rule| mail.sign(*rule))
}

/// A received mail as the rules read it, each part read once and only when a rule
/// needs it: most mail is decided by its header, and only the rest is parsed whole.
struct Mail<'a> {
    envelope_sender: &'a str,
    raw: &'a [u8],
    header: Option<Message<'a>>,
    /// The subject, folded (see `phrases::fold`).
    subject: String,
    /// A person forwarding a mail (a bounce, say) is still a person: the forwarded
    /// mail's subject and words are not theirs.
    forward: bool,
    whole: OnceCell<Option<Message<'a>>>,
    text: OnceCell<String>,
}

impl<'a> Mail<'a> {
    fn new(envelope_sender: &'a str, raw: &'a [u8]) -> Mail<'a> {
        let header = MessageParser::default().parse_headers(raw);
        let subject = phrases::fold(
            header
                .as_ref()
                .and_then(|h| h.subject())
                .unwrap_or_default(),
        );
        Mail {
            envelope_sender,
            raw,
            forward: phrases::is_forward(&subject),
            header,
            subject,
            whole: OnceCell::new(),
            text: OnceCell::new(),
        }
    }

    /// The sign `rule` finds in this mail, if any.
    fn sign(&self, rule: Rule) -> Option<Sign> {
        let raw = self.raw;
        let header = self.header.as_ref();
        let header_fields = header.map(|h| h.headers());
        match rule {
            Rule::NullSender => self
                .envelope_sender
                .is_empty()
                .then(|| Sign::new(Rule::NullSender, "MAIL FROM:<>")),
            Rule::RobotSender => fields::robot_mailbox(self.envelope_sender)
                .map(|p| Sign::new(Rule::RobotSender, format!("envelope sender: {p}"))),
            Rule::AutoSubmitted => fields::auto_submitted(raw, header_fields?),
            Rule::Precedence => fields::precedence(raw, header_fields?),
            Rule::ListHeader => fields::list_header(header_fields?),
            Rule::AutoResponseSuppressed => fields::auto_response_suppressed(raw, header_fields?),
            Rule::VendorAutoHeader => fields::vendor_auto_header(raw, header_fields?),
            Rule::RobotReturnPath => fields::robot_return_path(raw, header_fields?),
            Rule::RobotFrom => fields::robot_from(header?),
            Rule::DeliveryReport => content::delivery_report(self.whole()?),
            // A forward's subject and words are the forwarded mail's, not the sender's.
            _ if self.forward => None,
            Rule::BounceSubject => content::bounce_subject(&self.subject),
            Rule::AutoReplySubject => content::auto_reply_subject(&self.subject),
            Rule::BounceText => content::bounce_text(self.text()?),
            Rule::AutoReplyText => content::auto_reply_text(self.text()?),
            Rule::ReturnedMessage => content::returned_message(self.whole()?, self.text()?),
        }
    }

    /// The whole message, parsed on first use (None if it cannot be parsed at all).
    fn whole(&self) -> Option<&Message<'a>> {
        self.header.as_ref()?;
        self.whole
            .get_or_init(|| MessageParser::default().parse(self.raw))
            .as_ref()
    }

    /// The sender's own words (see `content::own_text`), read on first use.
    fn text(&self) -> Option<&str> {
        let whole = self.whole()?;
        Some(self.text.get_or_init(|| content::own_text(whole)))
    }
}

impl Drop for Mail<'_> {
    fn drop(&mut self) {
        if let Some(Some(message)) = self.whole.take() {
            dismantle(message);
        }
    }
}

/// Frees a parsed mail one attached message at a time. Attached messages nest
/// without limit (`message/rfc822`, or a `multipart/digest`'s parts), and freeing a
/// nest of thousands the usual way recurses once per level: a 1 MiB mail overflowed
/// the stack and took the daemon down.
fn dismantle(message: Message) {
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
