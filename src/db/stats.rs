//! The counts `/metrics` shows, read from the tables when scraped (so counters survive
//! restarts and cannot drift from the truth).

use rusqlite::Connection;

use crate::db::retention;
use crate::error::Result;

/// `(label, count)` pairs: an outcome, a status or an event with its count.
pub type Counts = Vec<(String, i64)>;

pub struct Figures {
    /// Sign-up requests by mail, by outcome (`queued` or why not).
    pub mail_outcomes: Counts,
    /// Sign-up requests on the web form, by outcome.
    pub web_outcomes: Counts,
    pub outbox_by_status: Counts,
    /// Queued mails whose last try failed.
    pub outbox_retrying: i64,
    pub oldest_queued_at: Option<i64>,
    /// Send attempts in all, sent or not (purged mails' too).
    pub send_attempts: i64,
    /// Sent mails retention purged (no longer in `outbox_by_status`).
    pub purged_sent: i64,
    pub audit_events: Counts,
    /// The roll-out: members imported, registered, ever logged in, and logged in in
    /// the last 30 days (as `karamail report` counts them).
    pub members: (i64, i64, i64),
    pub active_30d: i64,
}

pub fn figures(conn: &Connection) -> Result<Figures> {
    let (oldest_queued_at, send_attempts): (Option<i64>, i64) = conn
        .prepare_cached(
            "SELECT (SELECT min(created_at) FROM outbox WHERE status = 'queued'),
                    coalesce(sum(attempts), 0) FROM outbox",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let purged = |prefix: &str| retention::purged_totals(conn, prefix);
    let purged_outbox = purged("outbox:")?;
    let purged_of = |name: &str| {
        purged_outbox
            .iter()
            .find(|(k, _)| k == name)
            .map_or(0, |(_, n)| *n)
    };
    Ok(Figures {
        mail_outcomes: merged(
            grouped(
                conn,
                "SELECT outcome, count(*) FROM signup_requests WHERE via = 'mail' GROUP BY outcome",
            )?,
            purged("signup:mail:")?,
        ),
        web_outcomes: merged(
            grouped(
                conn,
                "SELECT outcome, count(*) FROM signup_requests WHERE via = 'web' GROUP BY outcome",
            )?,
            purged("signup:web:")?,
        ),
        outbox_by_status: grouped(conn, "SELECT status, count(*) FROM outbox GROUP BY status")?,
        outbox_retrying: conn
            .prepare_cached(
                "SELECT count(*) FROM outbox WHERE status = 'queued' AND last_error IS NOT NULL",
            )?
            .query_row([], |r| r.get(0))?,
        oldest_queued_at,
        send_attempts: send_attempts + purged_of("attempts"),
        purged_sent: purged_of("sent"),
        audit_events: merged(
            grouped(conn, "SELECT event, count(*) FROM audit GROUP BY event")?,
            purged("audit:")?,
        ),
        members: super::report::totals(conn)?,
        active_30d: super::report::active(conn, super::now())?,
    })
}

/// Live counts plus what retention purged, by label.
fn merged(mut live: Counts, purged: Counts) -> Counts {
    for (label, n) in purged {
        match live.iter_mut().find(|(l, _)| *l == label) {
            Some((_, count)) => *count += n,
            None => live.push((label, n)),
        }
    }
    live
}

fn grouped(conn: &Connection, sql: &str) -> Result<Counts> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The cheapest question the database can answer: for health checks.
pub fn ping(conn: &Connection) -> Result<()> {
    conn.prepare_cached("SELECT 1")?
        .query_row([], |r| r.get::<_, i64>(0))?;
    Ok(())
}
