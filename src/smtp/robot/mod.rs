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

use mail_parser::MessageParser;

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
    if too_deep(raw) {
        return None;
    }
    // Only now is the whole message parsed: most mail was decided by its header.
    let message = MessageParser::default().parse(raw)?;
    content::content_sign(&message, forward)
}

/// Attached messages (`message/rfc822`) nest without limit in a parsed mail, and
/// freeing a deep enough nest overflows the stack: a mail with more than a few is no
/// person's and is judged on its header alone.
fn too_deep(raw: &[u8]) -> bool {
    const MOST_ATTACHED_MESSAGES: usize = 8;
    let nested = raw
        .windows(b"message/".len())
        .filter(|w| w.eq_ignore_ascii_case(b"message/"))
        .take(MOST_ATTACHED_MESSAGES + 1)
        .count();
    nested > MOST_ATTACHED_MESSAGES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(header: &str) -> Option<&'static str> {
        let raw = format!("{header}From: a@example.jp\r\nSubject: x\r\n\r\nbody\r\n");
        classify("a@example.jp", raw.as_bytes()).map(|sign| sign.rule.as_str())
    }

    #[test]
    fn ordinary_mail_may_be_answered() {
        assert_eq!(judge(""), None);
        assert_eq!(judge("Auto-Submitted: no\r\n"), None);
        assert_eq!(judge("Precedence: first-class\r\n"), None);
    }

    #[test]
    fn rfc_3834_signs_are_respected() {
        assert_eq!(
            judge("Auto-Submitted: auto-replied\r\n"),
            Some("auto_submitted")
        );
        assert_eq!(
            judge("Auto-Submitted: auto-generated; owner-email=x@y\r\n"),
            Some("auto_submitted")
        );
        assert_eq!(judge("Precedence: bulk\r\n"), Some("precedence"));
        assert_eq!(judge("Precedence: JUNK\r\n"), Some("precedence"));
        assert_eq!(judge("List-Id: <news.example.jp>\r\n"), Some("list_header"));
        assert_eq!(
            judge("List-Unsubscribe: <mailto:u@example.jp>\r\n"),
            Some("list_header")
        );
        assert_eq!(
            judge("X-Auto-Response-Suppress: All\r\n"),
            Some("auto_response_suppressed")
        );
        assert_eq!(
            judge(
                "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n"
            ),
            Some("delivery_report")
        );
    }

    /// The loopholes once found: any field that marks automation wins, in any of its
    /// occurrences, with comments or quotes, and vendor fields count.
    #[test]
    fn any_sign_of_automation_wins() {
        let cases = [
            (
                "Auto-Submitted: auto-replied\r\nAuto-Submitted: no\r\n",
                "auto_submitted",
            ),
            (
                "Auto-Submitted: no\r\nAuto-Submitted: auto-generated\r\n",
                "auto_submitted",
            ),
            (
                "Auto-Submitted: (vacation) auto-replied\r\n",
                "auto_submitted",
            ),
            ("Precedence: bulk (mass mailing)\r\n", "precedence"),
            ("Precedence: \"bulk\"\r\n", "precedence"),
            (
                "Precedence: first-class\r\nPrecedence: junk\r\n",
                "precedence",
            ),
            ("Precedence: auto_reply\r\n", "precedence"),
            ("X-Autoreply: yes\r\n", "vendor_auto_header"),
            ("X-Autorespond: Out of office\r\n", "vendor_auto_header"),
            ("X-AutoGenerated: True\r\n", "vendor_auto_header"),
            (
                "X-Failed-Recipients: someone@example.net\r\n",
                "vendor_auto_header",
            ),
            (
                "X-Auto-Response-Suppress: DR, OOF\r\n",
                "auto_response_suppressed",
            ),
            (
                "Content-Type: message/delivery-status\r\n",
                "delivery_report",
            ),
            (
                "Content-Type: Multipart/Report; report-type=feedback-report; boundary=x\r\n",
                "delivery_report",
            ),
            (
                "Content-Type: message/feedback-report\r\n",
                "delivery_report",
            ),
            (
                "Content-Type: message/disposition-notification\r\n",
                "delivery_report",
            ),
        ];
        for (header, reason) in cases {
            assert_eq!(judge(header), Some(reason), "{header}");
        }
        assert_eq!(judge("X-Autoreply: no\r\n"), None);
        assert_eq!(
            judge("Content-Type: text/plain; charset=ISO-2022-JP\r\n"),
            None
        );
        assert_eq!(judge("Auto-Submitted: no (a person wrote this)\r\n"), None);
    }

    fn rule_of(raw: &str) -> Option<&'static str> {
        classify("taro@example.jp", raw.as_bytes()).map(|sign| sign.rule.as_str())
    }

    /// Each content rule on a mail that has no other sign, and the member's mails that
    /// look nearly like them.
    #[test]
    fn content_rules_fire_alone_and_spare_people() {
        let mail = |subject: &str, body: &str| {
            format!("From: Taro <taro@example.jp>\r\nSubject: {subject}\r\n\r\n{body}\r\n")
        };
        assert_eq!(rule_of(&mail("failure notice", "")), Some("bounce_subject"));
        assert_eq!(
            rule_of(&mail("【自動返信】お問い合わせ", "")),
            Some("auto_reply_subject")
        );
        assert_eq!(
            rule_of(&mail("不在のお知らせ", "")),
            Some("auto_reply_subject")
        );
        assert_eq!(
            rule_of(&mail(
                "Re: x",
                "Hi. This is the qmail-send\r\n program at x"
            )),
            Some("bounce_text")
        );
        assert_eq!(
            rule_of(&mail("x", "I am currently out of the office.")),
            Some("auto_reply_text")
        );
        assert_eq!(
            rule_of(&mail("x", "本メールは自動返信にてお送りしております。")),
            Some("auto_reply_text")
        );
        assert_eq!(
            rule_of(&mail("自動返信が届きません", "自動返信メールが来ません。")),
            None
        );
        assert_eq!(
            rule_of(&mail(
                "利用登録",
                "はがきが届きました。日中は不在がちです。"
            )),
            None
        );
        // What members write about their trouble, and signatures.
        for (subject, body) in [
            ("返送はがきの件", ""),
            ("不在票のはがきについて", ""),
            ("メール不達の件", ""),
            ("エラーメールが返ってきました", ""),
            ("自動返信メールが届きません", ""),
            ("自動送信、届かない", ""),
            ("Sign-up email not delivered", ""),
            (
                "Fwd: Undelivered Mail Returned to Sender",
                "This is the mail system at host x.",
            ),
            (
                "登録",
                "毎週水曜日は不在にしております。\r\n※12/29〜1/4は年末年始休暇のため休業します。",
            ),
            ("登録", "このメールは自動的にウイルスチェックされています。"),
            (
                "登録",
                "> Final-Recipient: rfc822; kc@example.jp\r\n> Diagnostic-Code: smtp; 550 5.1.1",
            ),
        ] {
            assert_eq!(rule_of(&mail(subject, body)), None, "{subject} / {body}");
        }
        assert_eq!(
            rule_of(&mail(
                "Re: 利用登録手続きのご案内",
                "> ※本メールには返信できませんのでご了承ください。"
            )),
            None
        );

        let html = "From: a@example.jp\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>Delivery has failed to these <b>recipients</b> or groups</p>\r\n";
        assert_eq!(rule_of(html), Some("bounce_text"));
        let returned = |text: &str, part_type: &str| {
            format!(
                "From: a@example.jp\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{text}\r\n--b\r\nContent-Type: {part_type}\r\n\r\nFrom: kc@example.jp\r\nSubject: y\r\n\r\nbody\r\n--b--\r\n"
            )
        };
        assert_eq!(
            rule_of(&returned("<x@example.net>: user unknown", "message/rfc822")),
            Some("returned_message")
        );
        assert_eq!(
            rule_of(&returned("", "text/rfc822-headers")),
            Some("returned_message")
        );
        assert_eq!(
            rule_of(&returned("リンクがエラーになります", "message/rfc822")),
            None
        );
        // A bounce attached to a member's mail is not read.
        let forwarded = returned("これが届きました", "message/rfc822")
            .replace("Subject: y", "Subject: Undelivered Mail Returned to Sender");
        assert_eq!(rule_of(&forwarded), None);
        let report = "From: a@example.jp\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n--b--\r\n";
        assert_eq!(rule_of(report), Some("delivery_report"));
    }

    /// A mail of thousands of nested attached messages (which would overflow the stack
    /// when the parsed mail is freed) is judged on its header alone.
    #[test]
    fn deeply_nested_messages_are_not_parsed() {
        let mut raw = b"From: a@example.jp\r\n".to_vec();
        for _ in 0..40_000 {
            raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        assert!(too_deep(&raw));
        assert_eq!(classify("a@example.jp", &raw), None);
        let bounce = format!(
            "Subject: failure notice\r\n{}",
            String::from_utf8_lossy(&raw)
        );
        assert_eq!(rule_of(&bounce), Some("bounce_subject"));
        assert!(!too_deep(
            b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\n"
        ));
    }

    #[test]
    fn earlier_deliveries_and_senders_names_count() {
        assert_eq!(
            rule_of("Return-Path: <>\r\nFrom: a@example.jp\r\n\r\n"),
            Some("robot_return_path")
        );
        assert_eq!(
            rule_of("Return-Path: <MAILER-DAEMON@mx.example.jp>\r\nFrom: a@example.jp\r\n\r\n"),
            Some("robot_return_path")
        );
        assert_eq!(
            rule_of("Return-Path: <taro@example.jp>\r\nFrom: a@example.jp\r\n\r\n"),
            None
        );
        assert_eq!(
            rule_of("From: Mail Delivery System <x@example.jp>\r\n\r\n"),
            Some("robot_from")
        );
        assert_eq!(
            rule_of("From: postmaster@example.jp\r\n\r\n"),
            Some("robot_from")
        );
        assert_eq!(
            rule_of("X-Apple-Action: VACATION\r\nFrom: a@example.jp\r\n\r\n"),
            Some("vendor_auto_header")
        );
    }

    #[test]
    fn every_rule_has_its_own_name() {
        let names: std::collections::BTreeSet<&str> =
            Rule::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Rule::ALL.len());
    }

    #[test]
    fn machines_envelopes_get_no_reply() {
        let rule = |sender: &str| classify(sender, b"Subject: x\r\n\r\n").map(|s| s.rule);
        assert_eq!(rule(""), Some(Rule::NullSender));
        for robot in [
            "MAILER-DAEMON@mx.example.jp",
            "owner-news@example.jp",
            "news-request@example.jp",
        ] {
            assert_eq!(rule(robot), Some(Rule::RobotSender), "{robot}");
        }
        assert_eq!(rule("taro.yamada@docomo.ne.jp"), None);
    }
}
