//! `karamail report` (the roll-out, week by week) and `karamail retention` (purge now
//! what `[retention]` says, as the daemon does daily).

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::db;
use crate::report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Csv,
    Json,
}

pub fn report(
    config: &Config,
    since: Option<&str>,
    format: Format,
    chart: Option<&Path>,
) -> anyhow::Result<()> {
    let since = since.map(report::parse_since).transpose()?;
    let db = super::open(config)?;
    let built = report::for_database(&db, since)?;
    print!(
        "{}",
        match format {
            Format::Text => report::text(&built),
            Format::Csv => report::csv(&built),
            Format::Json => report::json(&built),
        }
    );
    if let Some(path) = chart {
        let font = crate::postcards::japanese_font(config)?;
        report::chart(&built, path, &font)
            .with_context(|| format!("chart {} not written", path.display()))?;
        eprintln!("chart: {}", path.display());
    }
    Ok(())
}

pub fn retention(config: &Config) -> anyhow::Result<()> {
    let ages = config.retention.ages();
    let purged = super::open(config)?.call_blocking(move |c| {
        let tx = c.transaction()?;
        let purged = db::retention::purge(&tx, db::now(), &ages)?;
        tx.commit()?;
        Ok(purged)
    })?;
    let r = &config.retention;
    println!(
        "purged {} sign-up request(s) older than {}, {} audit row(s) older than {}, {} mail record(s) older than {}, {} link(s) expired more than {} ago",
        purged.signup_requests,
        r.signup_requests.japanese(),
        purged.audit,
        r.audit.japanese(),
        purged.mails,
        r.sent_mail.japanese(),
        purged.links,
        r.expired_links.japanese()
    );
    println!("their counts are kept for `karamail report` and /metrics");
    Ok(())
}
