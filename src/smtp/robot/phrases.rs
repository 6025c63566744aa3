//! The words of bounces, reports and auto-replies as the common mail systems and the
//! Japanese carriers write them, lower-case, matched anywhere in a folded subject or
//! text. Each phrase is one a person asking for a sign-up mail would not write; the
//! human corpus under `tests/corpus/humans` proves that for the shapes members send.

/// A list of phrases, searched in order. A phrase written with a leading `^` counts
/// only at the start (after any opening brackets: `【自動返信】`, `[Auto: …`) and only
/// as a label there: what follows (spaces aside) must be the end, a delimiter (`:`,
/// `】`, `-`…) or a bracket. There the words name what the mail is; a person writing
/// about it goes on (「自動返信が届きません」, 「不在票」, "Auto reply not received").
pub struct Phrases(&'static [&'static str]);

impl Phrases {
    /// The first phrase found in `folded` (see `fold`), without its `^`.
    pub fn found_in(&self, folded: &str) -> Option<&'static str> {
        let start = folded.trim_start_matches(OPENING);
        self.0
            .iter()
            .find(|p| match p.strip_prefix('^') {
                Some(anchored) => start.strip_prefix(anchored).is_some_and(|rest| {
                    let rest = rest.trim_start();
                    rest.is_empty() || rest.starts_with(DELIMITERS) || rest.starts_with(OPENING)
                }),
                None => folded.contains(**p),
            })
            .map(|p| p.trim_start_matches('^'))
    }
}

/// What may open a subject before its first word.
/// (Not 「: a person quotes a word with it, 「自動返信」が届きません.)
const OPENING: &[char] = &['[', '【', '(', '（', '<', '＜', '*', ' '];

/// What may follow a word anchored at the start.
const DELIMITERS: &[char] = &[
    ' ', ':', '：', ']', '】', ')', '）', '>', '＞', '-', '－', '!', '！', '/', '／', '*',
];

/// Whether a subject is a person forwarding or answering a mail (`Fwd:`, `Fw:`, `転送:`):
/// the words after it are the forwarded mail's, not theirs.
pub fn is_forward(folded_subject: &str) -> bool {
    ["fwd:", "fw:", "転送:", "転送："]
        .iter()
        .any(|p| folded_subject.starts_with(p))
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

/// HTML's text: tags dropped (each leaves a space), quoted text (`<blockquote>`, the
/// mail being answered) left out, the common entities read.
pub fn without_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let (mut tag, mut quoted) = (None::<String>, 0usize);
    for c in html.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(name), '>') => {
                let name = name.trim().to_ascii_lowercase();
                if name.starts_with("blockquote") {
                    quoted += 1;
                } else if name.starts_with("/blockquote") {
                    quoted = quoted.saturating_sub(1);
                }
                tag = None;
                out.push(' ');
            }
            (Some(name), _) => {
                if name.len() < 16 {
                    name.push(c);
                }
            }
            (None, _) if quoted == 0 => out.push(c),
            (None, _) => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Subjects of non-delivery and delay notices and of abuse and feedback reports: the
/// long forms anywhere, the short ones at the start.
pub const BOUNCE_SUBJECTS: Phrases = Phrases(&[
    "undelivered mail returned to sender",
    "delivery status notification",
    "returning message to sender",
    "returning to sender",
    "email delivery failure",
    "see transcript for details",
    "postmaster notify",
    "mail delivery failed",
    "could not send message for past",
    "could not send mail for past",
    "message you sent blocked",
    "considered unsolicited bulk email",
    "aws notification message",
    "complaint about message from",
    "email feedback report",
    "dmarc forensic report",
    "dmarc aggregate report",
    "report domain:",
    "spamtraphit",
    "bounce notification",
    "недоставленное сообщение",
    "не доставлено",
    "^undeliverable",
    "^undeliverable mail",
    "^undeliverable message",
    "^undelivered",
    "^returned mail",
    "^failure notice",
    "^delivery failure",
    "^delivery failed",
    "^delivery has failed",
    "^delivery notification",
    "^delivery status",
    "^delivery report",
    "^mail delivery failure",
    "^mail delivery status",
    "^message delivery has failed",
    "^permanent delivery failure",
    "^mail failure",
    "^mail failed",
    "^failed delivery",
    "^failure delivery",
    "^mail system error",
    "^mail could not be delivered",
    "^sorry, your message could not be delivered",
    "^there was an error sending your mail",
    "^delayed mail",
    "^warning: message",
    "^non-delivery",
    "^nondeliverable",
    "^non remis",
    "^non recapitabile",
    "^unzustellbar",
    "^nicht zustellbar",
    "^non distribuable",
    "^abuse report",
    "^aggregate report",
    "^配信エラー",
    "^配送エラー",
    "^配信失敗",
    "^配送失敗",
    "^送信失敗",
    "^メールエラー",
    "^メールエラー通知",
    "^メール配信エラー",
    "^宛先不明",
    "^不達",
    "^メッセージを配信できません",
]);

/// Subjects of vacation and out-of-office replies, read receipts and other automatic
/// answers.
pub const AUTO_REPLY_SUBJECTS: Phrases = Phrases(&[
    "out of office",
    "out of the office",
    "out-of-office",
    "automatische antwort",
    "abwesenheitsnotiz",
    "réponse automatique",
    "risposta automatica",
    "respuesta automática",
    "【自動返信】",
    "【自動応答】",
    "[自動返信]",
    "[自動応答]",
    "（自動返信）",
    "（自動応答）",
    "(自動返信)",
    "(自動応答)",
    "【不在】",
    "[不在]",
    "（不在）",
    "(不在)",
    "^auto:",
    "^automatic reply",
    "^automated reply",
    "^automatic response",
    "^automated response",
    "^auto reply",
    "^auto-reply",
    "^autoreply",
    "^autorespons",
    "^auto respons",
    "^auto-respons",
    "^on vacation",
    "^vacation",
    "^read:",
    "^自動応答",
    "^自動返信",
    "^自動送信",
    "^自動通知",
    "^不在",
    "^不在のお知らせ",
    "^不在通知",
    "^不在連絡",
    "^留守",
    "^開封済み",
    "^受付完了",
    "^recall:",
    "^取り消し:",
    "休業のお知らせ",
]);

/// Texts of non-delivery notices, from the MTAs and services that write them in plain
/// text rather than (or besides) a report part: their own sentences, which a person
/// does not write.
pub const BOUNCE_TEXTS: Phrases = Phrases(&[
    // Postfix
    "this is the mail system at host",
    "i'm sorry to have to inform you that your message could not",
    // qmail, and the many systems that copy it
    "this is the qmail-send program",
    "i'm afraid i wasn't able to deliver your message",
    // Sendmail
    "the original message was received at",
    "transcript of session follows",
    "the following addresses had permanent fatal errors",
    "the following addresses had transient non-fatal errors",
    // Exim
    "this message was created automatically by mail delivery software",
    "a message that you sent could not be delivered to one or more of its",
    "a message that you sent has not yet been delivered to one or more of its",
    // Exchange, Office 365, Outlook.com
    "delivery has failed to these recipients or groups",
    "your message did not reach some or all of the intended recipients",
    "did not reach the following recipient",
    // Gmail, Google Workspace
    "delivery to the following recipient failed permanently",
    "delivery to the following recipients failed permanently",
    "delivery to the following recipient has been delayed",
    // DragonFly, OpenSMTPD
    "this is the dragonfly mail agent",
    "there was an error delivering your mail to",
    // Domino, Notes
    "not listed in domino directory",
    // Amazon SES and WorkMail, SendGrid, Verizon, list servers, and others
    "an error occurred while trying to deliver the mail to the following recipients",
    "this is an automatically generated message from sendgrid",
    "this is an automatically generated delivery status notification",
    "requested action not taken",
    "could not be delivered to: <",
    "an email that you attempted to send to the following address could not be delivered",
    "automatic bounce notification",
    "you are not a member of this mailing list",
    "550 5.1.1",
    "550-5.1.1",
    "554 5.7.1",
    // A delivery status or a feedback report in plain text (RFC 3464, RFC 5965)
    "final-recipient: rfc822",
    "diagnostic-code: smtp",
    "reporting-mta: dns",
    "feedback-type: abuse",
    "this is an email abuse report",
    // Japanese providers' own wording
    "以下の宛先に届きませんでした",
    "下記のメールは送信できませんでした",
    // Challenge-response filters
    "uses a challenge-response",
    "迷惑メール対策サービスから送信",
    // Apple Mail's unsubscribe request
    "sent this email to unsubscribe",
]);

/// Texts of out-of-office and vacation replies and of automatic acknowledgements.
pub const AUTO_REPLY_TEXTS: Phrases = Phrases(&[
    "i am currently out of the office",
    "i am currently away",
    "i will be out of the office",
    "i am out of the office until",
    "this is an automatic reply",
    "this is an automated reply",
    "this is an automatic response",
    "this is an automated response",
    "this is an auto-reply",
    "this is an autoreply",
    "this mailbox is not monitored",
    "this mailbox is no longer monitored",
    "自動応答メッセージです",
    "自動返信メールです",
    "自動送信されています",
    "自動送信しております",
    "自動的に送信されています",
    "your request has been received",
    "お問い合わせを受け付けました",
]);

/// Words of a failed delivery that a mail server writes and a person does not (「エラー
/// になります」 and "it was undelivered" are a member's; `550 5.1.1 user unknown` is
/// not), believed only beside a returned message.
pub const FAILURE_WORDS: Phrases = Phrases(&[
    "user unknown",
    "unknown user",
    "no such user",
    "mailbox unavailable",
    "mailbox not found",
    "permanent error",
    "550 ",
    "554 ",
    "5.1.1",
    "5.7.1",
]);
