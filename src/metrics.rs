//! `GET /metrics` in Prometheus' text format. Every figure is counted from the
//! database when scraped, so counters survive restarts and cannot drift from the truth.

use std::fmt::Write;

use rusqlite::Connection;

use crate::db::{self, AuditEvent, stats};
use crate::error::Result;
use crate::smtp::robot::Rule;

/// The whole exposition, ready to serve.
pub fn render(conn: &Connection) -> Result<String> {
    Ok(exposition(&stats::figures(conn)?))
}

fn exposition(figures: &stats::Figures) -> String {
    let mut out = String::new();
    let mail = &figures.mail_outcomes;
    let received: i64 = mail.iter().map(|(_, n)| n).sum();
    let replied: i64 = mail
        .iter()
        .filter(|(o, _)| o == "queued")
        .map(|(_, n)| n)
        .sum();
    metric(
        &mut out,
        "karamail_mails_received_total",
        "counter",
        "Mails accepted by the SMTP intake.",
        &[("", received)],
    );
    metric(
        &mut out,
        "karamail_mails_replied_total",
        "counter",
        "Accepted mails answered with a sign-up link.",
        &[("", replied)],
    );
    let suppressed: Vec<(String, i64)> = mail
        .iter()
        .filter(|(o, _)| o != "queued")
        .map(|(o, n)| (format!("reason=\"{o}\""), *n))
        .collect();
    let suppressed: Vec<(&str, i64)> = suppressed.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        &mut out,
        "karamail_mails_suppressed_total",
        "counter",
        "Accepted mails not answered, by reason.",
        &suppressed,
    );
    let robots: Vec<(String, i64)> = Rule::ALL
        .iter()
        .map(|rule| {
            let n = mail
                .iter()
                .filter(|(o, _)| o == rule.as_str())
                .map(|(_, n)| n)
                .sum();
            (format!("rule=\"{}\"", rule.as_str()), n)
        })
        .collect();
    let robots: Vec<(&str, i64)> = robots.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        &mut out,
        "karamail_robot_mails_total",
        "counter",
        "Accepted mails judged a machine's (bounce, report, auto-reply, list) and not answered, by the rule that recognised them; every rule is listed.",
        &robots,
    );
    let web: Vec<(String, i64)> = figures
        .web_outcomes
        .iter()
        .map(|(o, n)| (format!("outcome=\"{o}\""), *n))
        .collect();
    let web: Vec<(&str, i64)> = web.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    metric(
        &mut out,
        "karamail_web_signup_requests_total",
        "counter",
        "Sign-up mails asked for on the web form, by outcome.",
        &web,
    );

    let status = &figures.outbox_by_status;
    let count = |s: &str| status.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n);
    let depth = [
        ("status=\"queued\"", count("queued")),
        ("status=\"sent\"", count("sent")),
        ("status=\"failed\"", count("failed")),
        ("status=\"expired\"", count("expired")),
        ("status=\"cancelled\"", count("cancelled")),
    ];
    metric(
        &mut out,
        "karamail_outbox_mails",
        "gauge",
        "Mails in the outbox, by status (expired: their useful life passed unsent).",
        &depth,
    );
    // Its own series, to alert on: mails that will never arrive unless someone acts.
    metric(
        &mut out,
        "karamail_outbox_failed_mails",
        "gauge",
        "Mails refused for good (see `karamail outbox list --status failed`).",
        &[("", count("failed"))],
    );
    let retrying = figures.outbox_retrying;
    metric(
        &mut out,
        "karamail_outbox_retrying_mails",
        "gauge",
        "Queued mails waiting for a retry after a refusal or a transport failure.",
        &[("", retrying)],
    );
    let (oldest, attempts) = (figures.oldest_queued_at, figures.send_attempts);
    let age = oldest.map_or(0, |created| (db::now() - created).max(0));
    metric(
        &mut out,
        "karamail_outbox_oldest_queued_age_seconds",
        "gauge",
        "Age of the oldest mail waiting to be sent (0: none).",
        &[("", age)],
    );
    metric(
        &mut out,
        "karamail_outbox_send_failures_total",
        "counter",
        "Send attempts that failed (retried or given up).",
        &[("", attempts - count("sent") - figures.purged_sent)],
    );

    let audit = &figures.audit_events;
    let event = |e: AuditEvent| {
        let e = e.as_str();
        audit.iter().find(|(k, _)| k == e).map_or(0, |(_, n)| *n)
    };
    metric(
        &mut out,
        "karamail_signups_total",
        "counter",
        "Sign-ups completed.",
        &[("", event(AuditEvent::SignupCompleted))],
    );
    metric(
        &mut out,
        "karamail_logins_total",
        "counter",
        "Logins completed with a one-time key.",
        &[("", event(AuditEvent::Login))],
    );
    metric(
        &mut out,
        "karamail_login_failures_total",
        "counter",
        "Wrong login IDs or passwords.",
        &[("", event(AuditEvent::LoginFailed))],
    );
    metric(
        &mut out,
        "karamail_lockouts_total",
        "counter",
        "Login IDs locked after repeated failures.",
        &[("", event(AuditEvent::LoginLocked))],
    );
    metric(
        &mut out,
        "karamail_postcards_reissued_total",
        "counter",
        "Postcards reissued (karamail members reissue).",
        &[("", event(AuditEvent::PostcardReissued))],
    );
    let (imported, registered, logged_in) = figures.members;
    metric(
        &mut out,
        "karamail_members",
        "gauge",
        "The roll-out, as karamail report counts it: members imported, registered, ever logged in, logged in in the last 30 days.",
        &[
            ("state=\"imported\"", imported),
            ("state=\"registered\"", registered),
            ("state=\"logged_in\"", logged_in),
            ("state=\"active_30d\"", figures.active_30d),
        ],
    );
    out
}

/// One metric family: `labels` are `key="value"` (empty for none).
/// The password-hashing pool since start (these live in memory, not the database).
pub fn hashing(pool: &crate::hashing::HashPool) -> String {
    let mut out = String::new();
    let stats = pool.stats();
    let figures = [
        (
            "karamail_password_hashing_threads",
            "gauge",
            "Password hashes that may run at once.",
            pool.threads() as i64,
        ),
        (
            "karamail_password_hashing_peak",
            "gauge",
            "The most password hashes that ran at once since start.",
            stats.peak() as i64,
        ),
        (
            "karamail_password_hashes_total",
            "counter",
            "Password hashes and checks done since start.",
            stats.done() as i64,
        ),
        (
            "karamail_password_hashing_busy_total",
            "counter",
            "Requests answered 503 since start because every password-hashing place was taken.",
            stats.refused() as i64,
        ),
        (
            "karamail_db_commits_total",
            "counter",
            "Group commits of the database writer since start (one fsync each).",
            crate::db::COMMITS.load(std::sync::atomic::Ordering::Relaxed) as i64,
        ),
        (
            "karamail_db_writes_total",
            "counter",
            "Writes committed or refused by the database writer since start; divided by the commits, the batch size.",
            crate::db::WRITES.load(std::sync::atomic::Ordering::Relaxed) as i64,
        ),
    ];
    for (name, kind, help, value) in figures {
        metric(&mut out, name, kind, help, &[("", value)]);
    }
    out
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, i64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn an_empty_database_has_every_family_at_zero() {
        let db = Db::open_in_memory().unwrap();
        let text = db.call_blocking(|c| render(c)).unwrap();
        for line in [
            "karamail_mails_received_total 0",
            "karamail_outbox_mails{status=\"queued\"} 0",
            "karamail_outbox_mails{status=\"expired\"} 0",
            "karamail_outbox_failed_mails 0",
            "karamail_outbox_retrying_mails 0",
            "karamail_lockouts_total 0",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(text.contains("# TYPE karamail_outbox_oldest_queued_age_seconds gauge"));
    }
}
