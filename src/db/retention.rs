//! Retention of personal data (`[retention]`): sign-up requests, audit rows, records of
//! sent mail and expired links older than their set age are deleted. Each is counted
//! per Japan-time day into `purged_counts` first, in the same transaction, so the
//! roll-out report and the `/metrics` counters keep what was purged.

use rusqlite::{Connection, params};

use crate::error::Result;

/// Ages in seconds: rows older than these go.
#[derive(Debug, Clone, Copy)]
pub struct Ages {
    pub signup_requests: i64,
    pub audit: i64,
    pub sent_mail: i64,
    pub expired_links: i64,
}

/// How many rows of each went.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub signup_requests: usize,
    pub audit: usize,
    pub mails: usize,
    pub links: usize,
}

impl Purged {
    pub fn total(&self) -> usize {
        self.signup_requests + self.audit + self.mails + self.links
    }
}

/// Seconds added to a Unix time to get Japan time's date with SQLite's `date()`.
const JST: i64 = 9 * 3600;

/// Purges everything past its age in one transaction (the caller's).
pub fn purge(conn: &Connection, now: i64, ages: &Ages) -> Result<Purged> {
    let signup_requests = count_and_delete(
        conn,
        "SELECT 'signup:' || via || ':' || outcome, date(requested_at + ?2, 'unixepoch'), count(*)
           FROM signup_requests WHERE requested_at < ?1 GROUP BY 1, 2",
        "DELETE FROM signup_requests WHERE requested_at < ?1",
        now - ages.signup_requests,
    )?;
    let audit = count_and_delete(
        conn,
        "SELECT 'audit:' || event, date(at + ?2, 'unixepoch'), count(*)
           FROM audit WHERE at < ?1 GROUP BY 1, 2",
        "DELETE FROM audit WHERE at < ?1",
        now - ages.audit,
    )?;

    // Mail whose life is over (sent, expired, cancelled). Queued mail stays, and so
    // does failed mail: it waits for the sysadmin (`outbox retry` or `cancel`).
    let mails = purge_mail(
        conn,
        "status IN ('sent', 'expired', 'cancelled') AND coalesce(sent_at, created_at) < ?1",
        now - ages.sent_mail,
    )?;

    let links_before = now - ages.expired_links;
    // A session of a link long expired has expired too; it goes first (it refers to it).
    conn.prepare_cached(
        "DELETE FROM sessions WHERE link_id IN (SELECT id FROM links WHERE expires_at < ?1)",
    )?
    .execute([links_before])?;
    let links = conn
        .prepare_cached("DELETE FROM links WHERE expires_at < ?1")?
        .execute([links_before])?;
    Ok(Purged {
        signup_requests,
        audit,
        mails,
        links,
    })
}

/// Deletes the outbox rows `condition` (its `?1` the cut-off) picks, counted first:
/// by status, and their send attempts.
pub fn purge_mail(conn: &Connection, condition: &str, before: i64) -> Result<usize> {
    let day = "date(coalesce(sent_at, created_at) + ?2, 'unixepoch')";
    count_and_delete(
        conn,
        &format!(
            "SELECT 'outbox:' || status, {day}, count(*) FROM outbox WHERE {condition} GROUP BY 1, 2
             UNION ALL
             SELECT 'outbox:attempts', {day}, sum(attempts) FROM outbox WHERE {condition} GROUP BY 1, 2"
        ),
        &format!("DELETE FROM outbox WHERE {condition}"),
        before,
    )
}

/// Adds the `(metric, day, n)` rows of `select` (its `?1` the cut-off, `?2` Japan
/// time's offset) to `purged_counts`, then runs `delete` (its `?1` the cut-off).
fn count_and_delete(conn: &Connection, select: &str, delete: &str, before: i64) -> Result<usize> {
    conn.prepare_cached(&format!(
        "INSERT INTO purged_counts (metric, day, n) SELECT * FROM ({select}) WHERE true
         ON CONFLICT (metric, day) DO UPDATE SET n = n + excluded.n"
    ))?
    .execute(params![before, JST])?;
    Ok(conn.prepare_cached(delete)?.execute([before])?)
}

/// Totals of purged rows whose metric starts with `prefix`, by the rest of its name
/// (`signup:mail:` → `queued`, `rate_limited`…).
pub fn purged_totals(conn: &Connection, prefix: &str) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT substr(metric, length(?1) + 1), sum(n) FROM purged_counts
          WHERE substr(metric, 1, length(?1)) = ?1 GROUP BY metric",
    )?;
    let rows = stmt.query_map([prefix], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    const DAY: i64 = 86_400;

    #[test]
    fn old_rows_go_counted_and_recent_ones_stay() {
        let db = Db::open_in_memory().unwrap();
        let now = 1_790_000_000;
        db.call_blocking(move |c| {
            for (at, outcome) in [(now - 100 * DAY, "queued"), (now - 95 * DAY, "rate_limited"), (now - DAY, "queued")] {
                c.execute(
                    "INSERT INTO signup_requests (requested_at, via, address, address_key, outcome)
                     VALUES (?1, 'mail', 'a@example.jp', 'a@example.jp', ?2)",
                    params![at, outcome],
                )?;
            }
            for at in [now - 400 * DAY, now - 10 * DAY] {
                c.execute("INSERT INTO audit (at, event) VALUES (?1, 'login')", [at])?;
            }
            for (status, created) in [("sent", now - 40 * DAY), ("queued", now - 40 * DAY), ("failed", now - 40 * DAY), ("sent", now - DAY)] {
                c.execute(
                    "INSERT INTO outbox (kind, recipient, params, message_id, created_at, status, attempts, next_attempt_at, sent_at)
                     VALUES ('signup_link', 'a@example.jp', '{}', ?1, ?2, ?3, 1, ?2, CASE ?3 WHEN 'sent' THEN ?2 END)",
                    params![format!("<{created}{status}@x>"), created, status],
                )?;
            }
            let ages = Ages { signup_requests: 90 * DAY, audit: 365 * DAY, sent_mail: 30 * DAY, expired_links: 7 * DAY };
            let purged = purge(c, now, &ages)?;
            assert_eq!(purged, Purged { signup_requests: 2, audit: 1, mails: 1, links: 0 });
            let left: i64 = c.query_row("SELECT count(*) FROM outbox WHERE status = 'queued'", [], |r| r.get(0))?;
            assert_eq!(left, 1, "a queued mail is never purged, however old");
            let failed: i64 = c.query_row("SELECT count(*) FROM outbox WHERE status = 'failed'", [], |r| r.get(0))?;
            assert_eq!(failed, 1, "a failed mail waits for the sysadmin");
            let mut totals = purged_totals(c, "signup:mail:")?;
            totals.sort();
            assert_eq!(totals, [("queued".to_string(), 1), ("rate_limited".to_string(), 1)]);
            assert_eq!(purged_totals(c, "audit:")?, [("login".to_string(), 1)]);
            // A second run finds nothing more and counts nothing twice.
            assert_eq!(purge(c, now, &ages)?.total(), 0);
            assert_eq!(purged_totals(c, "audit:")?, [("login".to_string(), 1)]);
            Ok(())
        })
        .unwrap();
    }
}
