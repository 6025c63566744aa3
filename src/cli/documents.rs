//! `karamail documents …`: load members' PDFs, list them, remove one.

use std::path::Path;

use anyhow::{Context, bail};

use super::open;
use crate::Config;
use crate::db::documents;
use crate::documents::{self as import, Options};

pub fn import(config: &Config, options: &Options, dir: &Path) -> anyhow::Result<()> {
    let not_imported = || format!("{} not imported", dir.display());
    let files = import::scan(dir, options).with_context(not_imported)?;
    let summary = import::import(&open(config)?, options.kind, &files, &config.mail.from)
        .with_context(not_imported)?;
    println!(
        "imported {} {} document(s) for {} member(s); {} already there",
        summary.imported,
        options.kind.as_str(),
        summary.members,
        summary.already
    );
    println!(
        "queued {} 「新しいお知らせがあります」 mail(s) (members who signed up and want them)",
        summary.mails
    );
    Ok(())
}

pub fn list(config: &Config, member_no: Option<&str>) -> anyhow::Result<()> {
    let member_no = member_no.map(str::to_string);
    let all = open(config)?.call_blocking(move |c| documents::list(c, member_no.as_deref()))?;
    println!("id\tmember_no\tkind\tdate\ttitle\tfile\tbytes");
    for d in &all {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            d.id,
            d.member_no,
            d.kind.as_str(),
            d.date,
            d.title,
            d.file_name,
            d.size
        );
    }
    println!("{} document(s)", all.len());
    Ok(())
}

pub fn remove(config: &Config, id: i64) -> anyhow::Result<()> {
    if !open(config)?.call_blocking(|c| {
        let tx = c.transaction()?;
        let removed = documents::remove(&tx, id)?;
        tx.commit()?;
        Ok(removed)
    })? {
        bail!("no document {id} (see `karamail documents list`)");
    }
    println!("document {id} removed");
    Ok(())
}
