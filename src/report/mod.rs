//! `karamail report`: how the roll-out goes, week by week — members imported, postcards
//! reissued, sign-up mails asked for (by mail, on the web) and why some were not
//! answered, registrations, first logins, members active in the last 30 days — as
//! text, CSV or JSON, and as a chart (SVG or PNG).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::db::{self, report as counts};

mod chart;
use crate::error::{Error, Result};

const DAY: i64 = 86_400;

#[derive(Debug, Serialize)]
pub struct Week {
    /// The Monday it starts on (Japan time).
    pub week: String,
    pub imported: i64,
    pub reissued: i64,
    pub signup_by_mail: i64,
    pub signup_by_web: i64,
    /// Sign-up mails sent (the requests answered).
    pub answered: i64,
    /// Requests not answered, by reason (`rate_limited_address`, `invalid_sender`, …).
    pub not_answered: BTreeMap<String, i64>,
    pub registered: i64,
    pub first_logins: i64,
    /// Members who logged in in the 30 days up to the week's end (or now).
    pub active_30d: i64,
}

#[derive(Debug, Serialize)]
pub struct Funnel {
    pub members: i64,
    pub registered: i64,
    pub logged_in: i64,
    pub active_30d: i64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub since: String,
    pub weeks: Vec<Week>,
    pub funnel: Funnel,
}

/// The report from `since` (a Unix time; default the first import) to `now`.
pub fn build(conn: &rusqlite::Connection, since: Option<i64>, now: i64) -> Result<Report> {
    let since = match since {
        Some(since) => since,
        None => counts::first_import(conn)?.unwrap_or(now),
    };
    let first = crate::jst::week_start(since);
    let by_week = counts::weekly(conn, since)?;
    let mut weeks = Vec::new();
    let mut start = first;
    while start <= now {
        let end = (start + 7 * DAY - 1).min(now);
        let key = crate::jst::date(start);
        let found = by_week.get(&key);
        let get = |what: &str| found.and_then(|c| c.get(what)).copied().unwrap_or(0);
        let requests = |via: &str| -> i64 {
            found.map_or(0, |c| {
                c.iter()
                    .filter(|(k, _)| k.starts_with(&format!("signup:{via}:")))
                    .map(|(_, n)| n)
                    .sum()
            })
        };
        let mut not_answered = BTreeMap::new();
        let mut answered = 0;
        for (what, n) in found.into_iter().flatten() {
            let Some(outcome) = what.strip_prefix("signup:").and_then(|r| r.split_once(':')) else {
                continue;
            };
            match outcome.1 {
                "queued" => answered += n,
                reason => *not_answered.entry(reason.to_string()).or_default() += n,
            }
        }
        weeks.push(Week {
            week: key,
            imported: get("imported"),
            reissued: get("reissued"),
            signup_by_mail: requests("mail"),
            signup_by_web: requests("web"),
            answered,
            not_answered,
            registered: get("registered"),
            first_logins: get("first_login"),
            active_30d: counts::active(conn, end)?,
        });
        start += 7 * DAY;
    }
    let (members, registered, logged_in) = counts::totals(conn)?;
    Ok(Report {
        since: crate::jst::date(since),
        weeks,
        funnel: Funnel {
            members,
            registered,
            logged_in,
            active_30d: counts::active(conn, now)?,
        },
    })
}

/// `2026-10-01` as the Unix time its day starts, Japan time.
pub fn parse_since(date: &str) -> Result<i64> {
    crate::jst::day_start(date)
        .ok_or_else(|| Error::Config(format!("--since {date:?} is not a date like 2026-10-01")))
}

fn percent(part: i64, whole: i64) -> String {
    match whole {
        0 => "-".into(),
        _ => format!("{:.1}%", part as f64 * 100.0 / whole as f64),
    }
}

const COLUMNS: [&str; 10] = [
    "week",
    "imported",
    "reissued",
    "signup_by_mail",
    "signup_by_web",
    "answered",
    "not_answered",
    "registered",
    "first_logins",
    "active_30d",
];

fn numbers(week: &Week) -> [i64; 9] {
    [
        week.imported,
        week.reissued,
        week.signup_by_mail,
        week.signup_by_web,
        week.answered,
        week.not_answered.values().sum(),
        week.registered,
        week.first_logins,
        week.active_30d,
    ]
}

pub fn text(report: &Report) -> String {
    let mut out = format!(
        "roll-out since {} (weeks from Monday, Japan time)\n",
        report.since
    );
    out.push_str(&format!("{:<10}", COLUMNS[0]));
    for column in &COLUMNS[1..] {
        out.push_str(&format!(" {column:>14}"));
    }
    out.push('\n');
    let mut reasons: BTreeMap<&str, i64> = BTreeMap::new();
    for week in &report.weeks {
        out.push_str(&format!("{:<10}", week.week));
        for n in numbers(week) {
            out.push_str(&format!(" {n:>14}"));
        }
        out.push('\n');
        for (reason, n) in &week.not_answered {
            *reasons.entry(reason).or_default() += n;
        }
    }
    if !reasons.is_empty() {
        let list: Vec<String> = reasons.iter().map(|(r, n)| format!("{r} {n}")).collect();
        out.push_str(&format!("not answered, by reason: {}\n", list.join(", ")));
    }
    let f = &report.funnel;
    out.push_str(&format!(
        "funnel now: {} member(s) → {} registered ({}) → {} logged in ({}) → {} active in the last 30 days ({})\n",
        f.members,
        f.registered,
        percent(f.registered, f.members),
        f.logged_in,
        percent(f.logged_in, f.members),
        f.active_30d,
        percent(f.active_30d, f.members),
    ));
    out
}

/// One row a week; a column per reason a request was not answered.
pub fn csv(report: &Report) -> String {
    let reasons: BTreeSet<&str> = report
        .weeks
        .iter()
        .flat_map(|w| w.not_answered.keys().map(String::as_str))
        .collect();
    let mut out = COLUMNS.join(",");
    for reason in &reasons {
        out.push_str(&format!(",not_answered_{reason}"));
    }
    out.push('\n');
    for week in &report.weeks {
        out.push_str(&week.week);
        for n in numbers(week) {
            out.push_str(&format!(",{n}"));
        }
        for reason in &reasons {
            let n = week.not_answered.get(*reason).copied().unwrap_or(0);
            out.push_str(&format!(",{n}"));
        }
        out.push('\n');
    }
    out
}

pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("plain data serializes") + "\n"
}

/// Opens the database read-only-minded for a report: the live counts.
pub fn for_database(db: &db::Db, since: Option<i64>) -> Result<Report> {
    db.call_blocking(move |c| build(c, since, db::now()))
}

/// The chart: cumulative members imported, registered and logged in, and members
/// active in the last 30 days, week by week. `.svg` or `.png` by the file's name.
pub fn chart(report: &Report, path: &Path, font: &Path) -> Result<()> {
    chart::draw(report, path, font)
}
