//! The counts `/metrics` shows, read from the tables when scraped (so counters survive
//! restarts and cannot drift from the truth).

use rusqlite::Connection;

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
    /// Send attempts in all, sent or not.
    pub send_attempts: i64,
    pub audit_events: Counts,
}

pub fn figures(conn: &Connection) -> Result<Figures> {
    let (oldest_queued_at, send_attempts) = conn
        .prepare_cached(
            "SELECT (SELECT min(created_at) FROM outbox WHERE status = 'queued'),
                    coalesce(sum(attempts), 0) FROM outbox",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(Figures {
        mail_outcomes: grouped(
            conn,
            "SELECT outcome, count(*) FROM signup_requests WHERE via = 'mail' GROUP BY outcome",
        )?,
        web_outcomes: grouped(
            conn,
            "SELECT outcome, count(*) FROM signup_requests WHERE via = 'web' GROUP BY outcome",
        )?,
        outbox_by_status: grouped(conn, "SELECT status, count(*) FROM outbox GROUP BY status")?,
        outbox_retrying: conn
            .prepare_cached(
                "SELECT count(*) FROM outbox WHERE status = 'queued' AND last_error IS NOT NULL",
            )?
            .query_row([], |r| r.get(0))?,
        oldest_queued_at,
        send_attempts,
        audit_events: grouped(conn, "SELECT event, count(*) FROM audit GROUP BY event")?,
    })
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
