//! The roll-out report's counts, week by week (weeks start on Monday, Japan time): from
//! the live tables plus what retention purged (`purged_counts`).

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::error::Result;

/// A Unix time's week, as the date of its Monday (Japan time), in SQL.
const WEEK_OF: &str = "date(?T + 32400, 'unixepoch', 'weekday 0', '-6 days')";

/// Counts by week (`YYYY-MM-DD` of the Monday), then by what was counted.
pub type ByWeek = BTreeMap<String, BTreeMap<String, i64>>;

fn add(weeks: &mut ByWeek, week: String, what: String, n: i64) {
    *weeks.entry(week).or_default().entry(what).or_default() += n;
}

/// Every count from `since` (a Unix time) on: `imported`, `registered`,
/// `first_login`, `reissued`, and `signup:<via>:<outcome>`.
pub fn weekly(conn: &Connection, since: i64) -> Result<ByWeek> {
    let mut weeks = ByWeek::new();
    for (what, column) in [
        ("imported", "imported_at"),
        ("registered", "registered_at"),
        ("first_login", "first_login_at"),
    ] {
        let sql = format!(
            "SELECT {week}, count(*) FROM members WHERE {column} >= ?1 GROUP BY 1",
            week = WEEK_OF.replace("?T", column)
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            let (week, n) = row?;
            add(&mut weeks, week, what.into(), n);
        }
    }
    let live = format!(
        "SELECT {week}, 'reissued', count(*) FROM audit
          WHERE event = 'postcard_reissued' AND at >= ?1 GROUP BY 1
         UNION ALL
         SELECT {request_week}, 'signup:' || via || ':' || outcome, count(*) FROM signup_requests
          WHERE requested_at >= ?1 GROUP BY 1, 2",
        week = WEEK_OF.replace("?T", "at"),
        request_week = WEEK_OF.replace("?T", "requested_at"),
    );
    let purged = "SELECT date(day, 'weekday 0', '-6 days'),
                         CASE metric WHEN 'audit:postcard_reissued' THEN 'reissued' ELSE metric END,
                         sum(n)
                    FROM purged_counts
                   WHERE (metric = 'audit:postcard_reissued' OR metric LIKE 'signup:%')
                     AND day >= date(?1 + 32400, 'unixepoch')
                   GROUP BY 1, 2";
    for sql in [live.as_str(), purged] {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (week, what, n) = row?;
            add(&mut weeks, week, what, n);
        }
    }
    Ok(weeks)
}

/// Members who logged in (password and 暗証キー, or a passkey) in the 30 days up to
/// `end` (from the login history, which keeps each member's newest 100 entries).
pub fn active(conn: &Connection, end: i64) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(DISTINCT member_id) FROM login_history
              WHERE outcome IN ('login', 'passkey') AND at > ?1 - 30 * 86400 AND at <= ?1",
        )?
        .query_row(params![end], |r| r.get(0))?)
}

/// All members, those registered, those who ever logged in: the funnel's totals.
pub fn totals(conn: &Connection) -> Result<(i64, i64, i64)> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*), count(registered_at), count(first_login_at) FROM members",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?)
}

/// When the first member was imported (the report's start by default).
pub fn first_import(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT min(imported_at) FROM members")?
        .query_row([], |r| r.get(0))?)
}
