//! The words of bounces, reports and auto-replies as the common mail systems and the
//! Japanese carriers write them, lower-case, matched anywhere in a folded subject or
//! text. Each phrase is one a person asking for a sign-up mail would not write; the
//! human corpus under `tests/corpus/humans` proves that for the shapes members send.

/// A list of phrases, searched in order. A phrase written with a leading `^` counts
/// only at the start (after any opening brackets: `【自動返信】`, `[Auto: …`) and not
/// followed by hiragana: there the words name what the mail is, where a person writing
/// about it goes on with a particle (「自動返信が届きません」).
pub struct Phrases(&'static [&'static str]);

impl Phrases {
    /// The first phrase found in `folded` (see `fold`), as written in the list.
    pub fn found_in(&self, folded: &str) -> Option<&'static str> {
        let start = folded.trim_start_matches(['[', '【', '(', '（', '<', '＜', '「', ' ']);
        self.0
            .iter()
            .find(|p| match p.strip_prefix('^') {
                Some(anchored) => start
                    .strip_prefix(anchored)
                    .is_some_and(|rest| !rest.starts_with(|c| ('ぁ'..='ゖ').contains(&c))),
                None => folded.contains(**p),
            })
            .copied()
    }
}

/// Lower-case with every run of white space (line breaks included, so a phrase wrapped
/// across lines is found) as one space.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// HTML's text: tags dropped (each leaves a space), the common entities read.
pub fn without_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Subjects of non-delivery and delay notices and of abuse and feedback reports.
pub const BOUNCE_SUBJECTS: Phrases = Phrases(&[
    "undelivered mail",
    "undeliverable",
    "undelivered message",
    "returned mail",
    "returned to sender",
    "returning message to sender",
    "failure notice",
    "mail delivery failed",
    "delivery status notification",
    "delivery status",
    "delivery notification",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "delivery report",
    "failed delivery",
    "failure delivery",
    "non-delivery",
    "nondelivery",
    "non delivery",
    "mail system error",
    "mail failure",
    "mail failed",
    "could not be delivered",
    "could not send message",
    "could not send mail",
    "cannot send message",
    "not delivered",
    "delayed mail",
    "message delayed",
    "postmaster notify",
    "error sending your mail",
    "message you sent blocked",
    "considered unsolicited bulk email",
    "abuse report",
    "complaint about message",
    "feedback report",
    "forensic report",
    "report domain:",
    "spamtraphit",
    "aws notification message",
    "bounce notification",
    "non remis",
    "non recapitabile",
    "unzustellbar",
    "nicht zustellbar",
    "non distribuable",
    "не доставлено",
    "недоставленное сообщение",
    "配信エラー",
    "配送エラー",
    "配信失敗",
    "配送失敗",
    "送信エラー",
    "メールエラー",
    "エラーメール",
    "宛先不明",
    "宛先エラー",
    "不達",
    "配信できません",
    "配信不能",
    "返送",
]);

/// Subjects of vacation and out-of-office replies, and other automatic answers.
pub const AUTO_REPLY_SUBJECTS: Phrases = Phrases(&[
    "^auto:",
    "autoreply",
    "auto reply",
    "auto-reply",
    "autorespons",
    "auto respons",
    "auto-respons",
    "automatic reply",
    "automatic response",
    "automated reply",
    "automated response",
    "automatische antwort",
    "réponse automatique",
    "risposta automatica",
    "respuesta automática",
    "out of office",
    "out of the office",
    "out-of-office",
    "away until",
    "on vacation",
    "vacation reply",
    "abwesenheit",
    "^自動応答",
    "^自動返信",
    "^自動送信",
    "^自動通知",
    "不在",
    "留守",
]);

/// Texts of non-delivery notices, from the MTAs and services that write them in plain
/// text rather than (or besides) a report part.
pub const BOUNCE_TEXTS: Phrases = Phrases(&[
    // Postfix
    "this is the mail system at host",
    "i'm sorry to have to inform you that your message could not",
    // qmail, and the many systems that copy it
    "this is the qmail-send program",
    "wasn't able to deliver your message",
    "was not able to deliver your message",
    // Sendmail
    "the original message was received at",
    "transcript of session follows",
    "the following addresses had permanent fatal errors",
    "the following addresses had transient non-fatal errors",
    // Exim
    "this message was created automatically by mail delivery software",
    "a message that you sent could not be delivered",
    "a message that you sent has not yet been delivered",
    // Exchange, Office 365, Outlook.com
    "delivery has failed to these recipients",
    "your message did not reach some or all of the intended recipients",
    "your message couldn't be delivered",
    "your message wasn't delivered",
    "delivery has been delayed",
    // Gmail, Google Workspace
    "delivery to the following recipient failed",
    "delivery to the following recipients failed",
    "your message wasn't delivered to",
    "message not delivered",
    "the recipient server did not accept our requests",
    // DragonFly, OpenSMTPD
    "this is the dragonfly mail agent",
    "there was an error delivering your mail",
    "your message could not be delivered",
    "could not be delivered to",
    // Domino, Notes
    "was not delivered to:",
    "not listed in domino directory",
    // Exchange 2003, Verizon, and list servers answering a non-member
    "did not reach the following recipient",
    "requested action not taken",
    "automatic bounce notification",
    "you are not a member of this mailing list",
    // Apple Mail's unsubscribe request
    "sent this email to unsubscribe",
    // Amazon SES and WorkMail, SendGrid, and other services
    "an error occurred while trying to deliver the mail",
    "was undeliverable",
    "message was not able to be delivered",
    "not able to be delivered",
    "unable to deliver your message",
    "could not deliver your message",
    "this is an automatically generated delivery status notification",
    "this is a delivery status notification",
    "message could not be delivered",
    "permanent fatal error",
    "this is a permanent error",
    "your mail sent on",
    // A delivery status in plain text (RFC 3464's fields)
    "final-recipient:",
    "diagnostic-code:",
    "reporting-mta:",
    // Feedback reports in plain text (RFC 5965's fields)
    "feedback-type:",
    "this is an email abuse report",
    // Japanese carriers and providers
    "宛先に届きませんでした",
    "届けることができませんでした",
    "配信できませんでした",
    "配送できませんでした",
    "配信に失敗",
    "配送に失敗",
    "宛先不明",
    "宛先のメールアドレスが存在しません",
]);

/// Texts of out-of-office and vacation replies.
pub const AUTO_REPLY_TEXTS: Phrases = Phrases(&[
    "i am currently out of the office",
    "i am out of the office",
    "i'm out of the office",
    "i will be out of the office",
    "i am currently away",
    "i am away from the office",
    "i am on vacation",
    "i'm on vacation",
    "this is an automatic reply",
    "this is an automated reply",
    "this is an automatic response",
    "this is an automated response",
    "this is an auto-reply",
    "this is an autoreply",
    "this email inbox",
    "this mailbox is not monitored",
    "this mailbox is no longer monitored",
    "自動応答メッセージ",
    "このメールは自動",
    "このメッセージは自動",
    "不在にしております",
    "不在にしています",
    "不在のため",
    "休暇のため",
]);

/// Words of a failed delivery that a mail server writes and a person forwarding a mail
/// does not (「エラーになります」 is a member's; `550 5.1.1 user unknown` is not),
/// believed only beside a returned message.
pub const FAILURE_WORDS: Phrases = Phrases(&[
    "undeliverable",
    "undelivered",
    "not delivered",
    "could not be delivered",
    "delivery failed",
    "delivery failure",
    "failed recipient",
    "permanent error",
    "unknown user",
    "user unknown",
    "no such user",
    "mailbox unavailable",
    "mailbox not found",
    "550 ",
    "554 ",
    "5.1.1",
    "5.7.1",
    "配信できません",
    "配送できません",
    "宛先不明",
]);
