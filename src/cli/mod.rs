//! The sysadmin's commands other than `serve`. Each says exactly what it changed.

use std::path::Path;

pub mod backup;
pub mod check_mail;
pub mod documents;
pub mod postcards;
pub mod report;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::db::AuditEvent;
use crate::db::{self, Db, login, members, notices, records, sessions};
use crate::flows::news;
use crate::{jst, members as import, records as record_import};

/// The database a command works on, named on stderr. A missing one is created only
/// when asked (`--create-database`): a typo or a wrong folder must not start a second,
/// empty database that the daemon never sees.
pub(crate) fn open(config: &Config) -> anyhow::Result<Db> {
    let path = &config.database.path;
    if !path.exists() && !config.database.create_if_missing {
        bail!(
            "no database at {}: check [database] path (relative paths are beside the config file), or pass --create-database to start a new one",
            path.display()
        );
    }
    let db =
        Db::open(path).with_context(|| format!("cannot open the database {}", path.display()))?;
    eprintln!(
        "database: {}",
        std::path::absolute(path)
            .unwrap_or_else(|_| path.clone())
            .display()
    );
    Ok(db)
}

fn read_csv(file: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(import::decode(&bytes, &file.display().to_string())?)
}

/// The server key temporary passwords are hashed under: the daemon's (made here if
/// this command comes first), checked against the database.
fn server_key(config: &Config, db: &Db) -> anyhow::Result<crate::secrets::ServerKey> {
    let path = config.key_file();
    Ok(crate::secrets::ServerKey::open(
        db,
        &path,
        config.database.new_server_key,
    )?)
}

/// `--pdf FILE --sheet …` of an import or a reissue.
pub type PdfOption<'a> = Option<(&'a Path, crate::postcards::Sheet)>;

pub fn members_import(
    config: &Config,
    file: &Path,
    postcards: &Path,
    pdf: PdfOption,
) -> anyhow::Result<()> {
    let rows = import::parse(&read_csv(file)?)
        .with_context(|| format!("{} not imported", file.display()))?;
    let setup = pdf.map(|_| postcards::PdfSetup::new(config)).transpose()?;
    let job = setup
        .as_ref()
        .zip(pdf)
        .map(|(s, (path, sheet))| s.job(path, sheet));
    let db = open(config)?;
    let summary = import::import(
        &db,
        &server_key(config, &db)?,
        rows,
        postcards,
        job.as_ref(),
    )
    .with_context(|| format!("{} not imported", file.display()))?;
    println!(
        "imported {} new member(s); skipped {} already imported",
        summary.imported, summary.skipped
    );
    if summary.households_updated > 0 {
        println!(
            "updated the household (insured_no, relation) of {} member(s) already imported",
            summary.households_updated
        );
    }
    if summary.imported > 0 {
        println!(
            "postcards: {} (the only copy of the temporary passwords: print, then delete it)",
            postcards.display()
        );
    } else {
        println!("no postcards file written: nobody new");
    }
    if let (Some(printed), Some(setup), Some(job)) = (&summary.printed, &setup, &job) {
        postcards::report(job.path, printed, setup);
    }
    Ok(())
}

fn status(account: &members::Account) -> &'static str {
    match (account.disabled_at, account.registered_at) {
        (Some(_), _) => "disabled",
        (None, Some(_)) => "registered",
        (None, None) => "postcard sent",
    }
}

pub fn members_list(config: &Config) -> anyhow::Result<()> {
    let accounts = open(config)?.call_blocking(|c| members::all_accounts(c))?;
    println!("member_no\tstatus\tlogin_id\tname");
    for account in &accounts {
        let login_id = account.login_id.as_deref().unwrap_or("-");
        println!(
            "{}\t{}\t{}\t{}",
            account.member_no,
            status(account),
            login_id,
            account.name
        );
    }
    println!("{} member(s)", accounts.len());
    Ok(())
}

fn account(db: &Db, member_no: &str) -> anyhow::Result<members::Account> {
    let lookup = member_no.to_string();
    match db.call_blocking(|c| members::account_by_member_no(c, &lookup))? {
        Some(account) => Ok(account),
        None => bail!("no member with member_no {member_no}"),
    }
}

pub fn members_show(config: &Config, member_no: &str) -> anyhow::Result<()> {
    let db = open(config)?;
    let account = account(&db, member_no)?;
    let id = account.id;
    let (emails, locked) = db.call_blocking(|c| {
        let emails = members::emails(c, id)?;
        let key = account
            .login_id
            .as_deref()
            .map(crate::flows::login::login_key)
            .unwrap_or_default();
        Ok((
            emails,
            login::failures(c, &key)?
                .locked_until
                .filter(|until| *until > db::now()),
        ))
    })?;
    let time = |t: Option<i64>| t.map(jst::datetime).unwrap_or_else(|| "-".into());
    println!("member_no:      {}", account.member_no);
    println!("name:           {}", account.name);
    println!("status:         {}", status(&account));
    println!(
        "temp login ID:  {}{}",
        account.temp_login_id,
        if account.temp_pending { "" } else { " (spent)" }
    );
    println!(
        "login ID:       {}",
        account.login_id.as_deref().unwrap_or("-")
    );
    println!(
        "nickname:       {}",
        account.nickname.as_deref().unwrap_or("-")
    );
    println!("registered:     {}", time(account.registered_at));
    println!("disabled:       {}", time(account.disabled_at));
    println!("locked until:   {}", time(locked));
    println!(
        "addresses:      {}",
        if emails.is_empty() {
            "-".into()
        } else {
            emails.join(", ")
        }
    );
    Ok(())
}

pub fn members_set_disabled(config: &Config, member_no: &str, disable: bool) -> anyhow::Result<()> {
    let db = open(config)?;
    let account = account(&db, member_no)?;
    if account.disabled_at.is_some() == disable {
        println!(
            "member {member_no} was already {}; nothing changed",
            if disable { "disabled" } else { "enabled" }
        );
        return Ok(());
    }
    let id = account.id;
    let ended = db.call_blocking(|c| {
        let tx = c.transaction()?;
        let now = db::now();
        members::set_disabled(&tx, id, disable.then_some(now))?;
        let ended = if disable {
            sessions::delete_for_member(&tx, id)?
        } else {
            0
        };
        if disable {
            login::end_attempts_of(&tx, id, now)?;
        }
        db::audit(
            &tx,
            if disable {
                AuditEvent::MemberDisabled
            } else {
                AuditEvent::MemberEnabled
            },
            Some(id),
            None,
            "",
        )?;
        tx.commit()?;
        Ok(ended)
    })?;
    if disable {
        println!(
            "member {member_no} disabled: cannot log in or reissue a password; {ended} session(s) ended"
        );
    } else {
        println!("member {member_no} enabled: can log in again");
    }
    Ok(())
}

pub fn members_reissue(
    config: &Config,
    member_no: &str,
    postcards: &Path,
    pdf: PdfOption,
) -> anyhow::Result<()> {
    let setup = pdf.map(|_| postcards::PdfSetup::new(config)).transpose()?;
    let job = setup
        .as_ref()
        .zip(pdf)
        .map(|(s, (path, sheet))| s.job(path, sheet));
    let db = open(config)?;
    let printed = import::reissue(
        &db,
        &server_key(config, &db)?,
        member_no,
        postcards,
        job.as_ref(),
    )
    .with_context(|| format!("member {member_no}: nothing reissued"))?;
    println!(
        "member {member_no}: new temporary login ID and password issued; the old ones no longer work"
    );
    println!(
        "postcards: {} (the only copy of the temporary password: print, then delete it)",
        postcards.display()
    );
    if let (Some(printed), Some(setup), Some(job)) = (&printed, &setup, &job) {
        postcards::report(job.path, printed, setup);
    }
    Ok(())
}

pub fn notices_add(
    config: &Config,
    title: &str,
    body: &str,
    until: Option<&str>,
    mail: bool,
) -> anyhow::Result<()> {
    if title.trim().is_empty() {
        bail!("--title must not be empty");
    }
    if let Some(date) = until.filter(|d| !jst::is_date(d)) {
        bail!("--until {date:?} is not a date like 2026-12-31");
    }
    let (title, body, until) = (
        title.trim().to_string(),
        body.to_string(),
        until.map(str::to_string),
    );
    let from = config.mail.from.clone();
    let (id, mails) = open(config)?.call_blocking(|c| {
        let tx = c.transaction()?;
        let now = db::now();
        let id = notices::insert(&tx, &title, &body, until.as_deref(), now)?;
        let mails = match mail {
            true => news::announce(&tx, &news::everyone(&tx)?, &from, now)?,
            false => 0,
        };
        tx.commit()?;
        Ok((id, mails))
    })?;
    let shown = until.map(|d| format!(" until {d}")).unwrap_or_default();
    println!("notice {id} added: {title:?}, shown to every member from now{shown}");
    match mail {
        true => println!(
            "queued {mails} 「新しいお知らせがあります」 mail(s) (members who signed up and want them; sent at [mail] bulk_per_minute)"
        ),
        false => println!("no mail sent (--no-mail)"),
    }
    Ok(())
}

pub fn notices_list(config: &Config) -> anyhow::Result<()> {
    let all = open(config)?.call_blocking(|c| notices::all(c))?;
    println!("id\tpublished\tuntil\ttitle");
    for notice in &all {
        let until = notice.ends_on.as_deref().unwrap_or("-");
        println!(
            "{}\t{}\t{}\t{}",
            notice.id,
            jst::date(notice.published_at),
            until,
            notice.title
        );
    }
    println!("{} notice(s)", all.len());
    Ok(())
}

pub fn notices_remove(config: &Config, id: i64) -> anyhow::Result<()> {
    if !open(config)?.call_blocking(|c| notices::delete(c, id))? {
        bail!("no notice {id} (see `karamail notices list`)");
    }
    println!("notice {id} removed");
    Ok(())
}

pub fn records_import(config: &Config, kind: records::Kind, file: &Path) -> anyhow::Result<()> {
    let rows = record_import::parse(&read_csv(file)?)
        .with_context(|| format!("{} not imported", file.display()))?;
    let imported = record_import::import(&open(config)?, kind, &rows, &config.mail.from)
        .with_context(|| format!("{} not imported", file.display()))?;
    let members: std::collections::HashSet<&str> =
        rows.iter().map(|r| r.member_no.as_str()).collect();
    println!(
        "imported {} {} record(s) for {} member(s)",
        imported.records,
        kind.as_str(),
        members.len()
    );
    println!(
        "queued {} 「新しいお知らせがあります」 mail(s) (members who signed up and want them)",
        imported.mails
    );
    Ok(())
}

/// Everything `serve` would refuse, at once, without starting anything.
pub fn check_config(path: Option<&Path>) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let mut problems = Vec::new();
    if let Err(e) = crate::smtp::robot::rules_off(&config.smtp.robot_rules_off) {
        problems.push(e);
    }
    let templates = crate::templates::Templates::new(config.site.templates_dir.as_deref());
    if let Err(e) = &templates {
        problems.push(e.to_string());
    }
    if let Err(e) = crate::outbox::Sender::check(&config) {
        problems.push(e.to_string());
    }
    if let Err(e) = crate::dkim::load(&config.mail) {
        problems.push(e.to_string());
    }
    problems.extend(crate::dkim::problems(&config.mail));
    if let Ok(templates) = templates {
        let mailer = crate::mail::Mailer {
            templates: std::sync::Arc::new(templates),
            config: std::sync::Arc::new(config.clone()),
            public_url: config.public_url(config.http.listen),
            dkim: None,
            // Nothing is hashed here: the real key is not needed (nor made).
            key: std::sync::Arc::new(crate::secrets::ServerKey::ephemeral()),
        };
        if let Err(e) = mailer.check_charset() {
            problems.push(e.to_string());
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let published = match problems.is_empty() && config.mail.dkim_key.is_some() {
        true => Some(runtime.block_on(crate::dkim::check_published(
            &config.mail,
            &config.smtp.dns_servers,
        ))?),
        false => None,
    };
    if let Some(crate::dkim::Published::Differs(why)) = &published {
        problems.push(format!(
            "DKIM: the record in DNS does not hold [mail] dkim_key ({why}); publish the record `karamail dkim keygen` printed"
        ));
    }
    if let Err(e) =
        runtime.block_on(async { crate::smtp::sender_auth::SenderAuth::from_config(&config.smtp) })
    {
        problems.push(e.to_string());
    }
    if config.database.path.exists()
        && let Err(e) = Db::open(&config.database.path)
    {
        problems.push(format!(
            "[database] path {}: {e}",
            config.database.path.display()
        ));
    }
    if !problems.is_empty() {
        bail!("invalid configuration:\n  - {}", problems.join("\n  - "));
    }
    let origin = path.map_or("built-in defaults".to_string(), |p| p.display().to_string());
    println!("config OK ({origin})");
    for warning in config.warnings() {
        println!("WARNING: {warning}");
    }
    println!(
        "  smtp     {} for {}",
        config.smtp.listen,
        config.smtp.intake_addresses.join(", ")
    );
    println!(
        "  web      {} ({})",
        config.http.listen,
        config.public_url(config.http.listen)
    );
    for (name, path) in config.paths() {
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let state = if path.exists() {
            ""
        } else {
            " (not there yet)"
        };
        println!("  {name:<22} {}{state}", shown.display());
    }
    if config.database.key_file.is_none() {
        let key = config.key_file();
        let state = if key.exists() { "" } else { " (not there yet)" };
        println!("  {:<22} {}{state}", "server key", key.display());
    }
    println!(
        "  mail out {:?}{}",
        config.mail.transport,
        if config.mail.relay.is_empty() {
            String::new()
        } else {
            " via the relay".into()
        }
    );
    println!("  senders  sender_auth = {:?}", config.smtp.sender_auth);
    match crate::postcards::Printer::new(&config) {
        Ok(printer) => println!(
            "  postcards fonts {} and {}",
            printer.fonts()[0].display(),
            printer.fonts()[1].display()
        ),
        Err(e) => println!("  postcards cannot be printed: {e}"),
    }
    match published {
        Some(crate::dkim::Published::Matches(name)) => {
            println!("  dkim     {name}: the published record holds the key")
        }
        Some(crate::dkim::Published::Unknown(why)) => {
            println!("  dkim     published record not checked: DNS did not answer ({why})")
        }
        _ => println!("  dkim     off (no [mail] dkim_key): mails are not signed"),
    }
    Ok(())
}

/// Sends one test mail now, through the configured transport, and says what happened.
pub fn send_test_mail(config: Config, address: &str) -> anyhow::Result<()> {
    let address = crate::address::Address::parse_typed(address)
        .map_err(|e| anyhow::anyhow!("{address:?}: {e}"))?
        .to_string();
    let templates = std::sync::Arc::new(crate::templates::Templates::new(
        config.site.templates_dir.as_deref(),
    )?);
    let public_url = config.public_url(config.http.listen);
    let config = std::sync::Arc::new(config);
    let dkim = crate::dkim::load(&config.mail)?;
    let mailer = crate::mail::Mailer {
        templates,
        config: config.clone(),
        public_url,
        dkim,
        // A test mail carries no token or key.
        key: std::sync::Arc::new(crate::secrets::ServerKey::ephemeral()),
    };
    let message = mailer.test_mail(&address)?;
    let sender = crate::outbox::Sender::from_config(&config)?;
    let name = format!("test-{}", db::now());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(async {
            let mut lane = crate::outbox::Lane::default();
            let sent = sender.send(&mut lane, &name, &message).await;
            sender.close(lane).await;
            sent
        })
        .map_err(|e| anyhow::anyhow!("not sent: {e}"))?;
    println!("test mail to {address} sent {}", sender.describe());
    Ok(())
}

pub fn outbox_list(config: &Config, status: Option<&str>, limit: usize) -> anyhow::Result<()> {
    let status = status.map(str::to_string);
    let rows = open(config)?
        .call_blocking(move |c| crate::db::outbox::list(c, status.as_deref(), limit))?;
    println!("id\tstatus\tkind\tattempts\twhen\trecipient\tlast error");
    for row in &rows {
        let when = row.sent_at.unwrap_or(row.next_attempt_at);
        let error = row.last_error.as_deref().unwrap_or("");
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            row.id,
            row.status,
            row.kind,
            row.attempts,
            jst::datetime(when),
            crate::log::escape_controls(&row.recipient),
            // The relay's own words: written out, whatever bytes it sent.
            crate::log::escape_controls(error)
        );
    }
    println!("{} mail(s) shown", rows.len());
    let counts = open(config)?.call_blocking(crate::db::outbox::count_by_status)?;
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    println!("in the outbox: {}", summary.join(", "));
    Ok(())
}

pub fn outbox_cancel(config: &Config, id: i64) -> anyhow::Result<()> {
    if !open(config)?.call_blocking(move |c| crate::db::outbox::cancel(c, id))? {
        bail!("no queued or failed mail {id} (see `karamail outbox list`)");
    }
    println!("mail {id} cancelled: it will not be sent");
    Ok(())
}

pub fn outbox_retry(config: &Config, id: Option<i64>) -> anyhow::Result<()> {
    let changed =
        open(config)?.call_blocking(move |c| crate::db::outbox::requeue(c, id, db::now()))?;
    match id {
        Some(id) if changed == 0 => {
            bail!("no failed or queued mail {id} (see `karamail outbox list`)")
        }
        Some(id) => println!(
            "mail {id} queued to be sent now (a running daemon picks it up within a minute)"
        ),
        None => println!("{changed} failed mail(s) queued to be sent now"),
    }
    Ok(())
}

pub fn outbox_purge(
    config: &Config,
    older_than: crate::config::HumanDuration,
) -> anyhow::Result<()> {
    let before = db::now() - older_than.as_secs();
    let removed = open(config)?.call_blocking(move |c| {
        let tx = c.transaction()?;
        let removed = crate::db::outbox::purge_sent(&tx, before)?;
        tx.commit()?;
        Ok(removed)
    })?;
    println!(
        "{removed} sent mail(s) older than {} removed from the outbox (queued and failed ones are kept)",
        older_than.japanese()
    );
    Ok(())
}

/// `karamail dkim keygen`: a new signing key, and the DNS record that goes with it.
pub fn dkim_keygen(
    config: &Config,
    out: &Path,
    selector: Option<&str>,
    domain: Option<&str>,
) -> anyhow::Result<()> {
    let selector = selector.unwrap_or(&config.mail.dkim_selector);
    let domain = domain.map_or_else(|| crate::dkim::signing_domain(&config.mail), str::to_string);
    if domain.is_empty() || domain == "localhost" || !domain.contains('.') {
        bail!(
            "no domain to sign for ({domain:?}): give --domain with the society's mail domain, e.g. --domain example.jp"
        );
    }
    let record = crate::dkim::keygen(out)?;
    let key = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf());
    println!(
        "wrote a 2048-bit RSA key to {} (mode 0600; keep it secret)",
        key.display()
    );
    println!();
    println!("1. Publish this TXT record in the DNS of {domain}:");
    println!();
    println!("{}", crate::dkim::zone_line(selector, &domain, &record));
    println!();
    println!("2. Set all three in the config ([mail]), then run `karamail check-config`:");
    println!();
    println!("[mail]");
    println!("dkim_key = \"{}\"", key.display());
    println!("dkim_selector = \"{selector}\"");
    println!("dkim_domain = \"{domain}\"");
    Ok(())
}

/// `karamail hash-rate`: argon2id checks at our parameters, one thread per core, for
/// `time`: the limit logins can reach on this machine.
pub fn hash_rate(time: std::time::Duration) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stored = crate::password::hash("karamail-bench-1")?;
    let started = std::time::Instant::now();
    let done: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = 0u64;
                    while started.elapsed() < time {
                        crate::password::verify("karamail-bench-2", Some(&stored));
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let took = started.elapsed().as_secs_f64();
    println!(
        "argon2id: {done} checks in {took:.1} s on {threads} threads = {:.1}/s ({:.1} ms each)",
        done as f64 / took,
        took * 1000.0 * threads as f64 / done.max(1) as f64
    );
    Ok(())
}
