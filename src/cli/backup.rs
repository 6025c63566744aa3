//! `karamail backup FILE` and `karamail restore FILE`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::Config;
use crate::db::{self, backup};
use crate::progress::Progress;
use crate::secrets::ServerKey;

/// A consistent copy of the live database (the daemon may run), checked, then named.
pub fn backup(config: &Config, file: &Path) -> anyhow::Result<()> {
    let source = &config.database.path;
    if !source.exists() {
        bail!(
            "no database at {} to back up (see [database] path)",
            source.display()
        );
    }
    if file.exists() {
        bail!(
            "{} already exists; give a new file name (e.g. with the date)",
            file.display()
        );
    }
    let partial = partial_name(file);
    let _ = std::fs::remove_file(&partial);
    let copied = copy(source, &partial).and_then(|()| {
        backup::inspect(&partial, db::SCHEMA_VERSION)
            .context("the copy does not check out; nothing written")
    });
    let contents = match copied {
        Ok(contents) => contents,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, file).with_context(|| format!("cannot write {}", file.display()))?;
    crate::files::sync_dir_of(file);
    println!("backup written: {} (mode 0600)", file.display());
    describe(&contents);
    println!(
        "the server key ({}) is not in the backup: keep a copy of it apart, once; a restore needs it",
        config.key_file().display()
    );
    Ok(())
}

/// Puts a backup back. Refuses while anything has the database open, checks the file
/// and the server key first, and keeps the database it replaces beside it.
pub fn restore(config: &Config, file: &Path) -> anyhow::Result<()> {
    let target = &config.database.path;
    let contents = backup::inspect(file, db::SCHEMA_VERSION)
        .with_context(|| format!("{} not restored", file.display()))?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_private_dir(dir)?;
    }
    let lock_path = backup::lock_path(target);
    let lock = db::open_lock(&lock_path)?;
    if lock.try_lock().is_err() {
        bail!(
            "{} is in use (the daemon or another karamail command has it open): stop the daemon first (systemctl stop karamail), then restore",
            target.display()
        );
    }
    check_key(config, &contents)?;
    let kept = match target.exists() {
        true => Some(keep_current(target)?),
        false => None,
    };
    if let Some((kept, true)) = &kept {
        println!(
            "the current database cannot be read by SQLite (damaged): kept byte for byte as {} and replaced whole",
            kept.display()
        );
    }
    let mut progress = Progress::new("restoring", "pages", contents.pages as u64);
    let mut done = 0;
    backup::replace(file, target, &mut |copied, _| {
        progress.inc((copied - done).max(0) as u64);
        done = copied;
    })
    .with_context(|| format!("{} not restored; the database is as it was", file.display()))?;
    progress.finish();
    println!("restored {} into {}", file.display(), target.display());
    describe(&contents);
    if contents.schema_version < db::SCHEMA_VERSION {
        println!(
            "schema version {} is older: the daemon brings it to {} when it starts",
            contents.schema_version,
            db::SCHEMA_VERSION
        );
    }
    if let Some((kept, _)) = kept {
        println!(
            "the database it replaced is kept as {} (personal data: delete it once the restore is verified)",
            kept.display()
        );
    }
    println!("start the daemon again: systemctl start karamail");
    drop(lock);
    Ok(())
}

fn copy(source: &Path, target: &Path) -> anyhow::Result<()> {
    let mut progress: Option<Progress> = None;
    let mut done = 0;
    backup::copy(source, target, &mut |copied, total| {
        let bar = progress.get_or_insert_with(|| Progress::new("backup", "pages", total as u64));
        bar.inc((copied - done).max(0) as u64);
        done = copied;
    })
    .with_context(|| format!("cannot copy {}", source.display()))?;
    if let Some(progress) = progress {
        progress.finish();
    }
    Ok(())
}

/// A backup made under another server key would void every link, session and unused
/// postcard: refused, naming the key to put back.
fn check_key(config: &Config, contents: &backup::Contents) -> anyhow::Result<()> {
    let Some(stored) = &contents.fingerprint else {
        return Ok(());
    };
    let key = config.key_file();
    match ServerKey::file_matches(&key, stored)? {
        Some(true) => Ok(()),
        Some(false) => bail!(
            "the backup was made under another server key than {}: put that database's karamail.key there first (nothing changed)",
            key.display()
        ),
        None => bail!(
            "no server key at {}: put the backed-up karamail.key there first (nothing changed)",
            key.display()
        ),
    }
}

/// Copies the current database (with whatever its WAL holds) beside it, named by the
/// time: `karamail.db.before-restore-20261122-181500`. One SQLite cannot read (the
/// very case a restore is for) is kept byte for byte, its WAL beside it, and moved
/// out of the way. Says where, and whether it was damaged.
fn keep_current(target: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let stamp = crate::jst::stamp(db::now());
    let mut kept = with_suffix(target, &format!(".before-restore-{stamp}"));
    for n in 2.. {
        if !kept.exists() {
            break;
        }
        kept = with_suffix(target, &format!(".before-restore-{stamp}-{n}"));
    }
    if copy(target, &kept).is_ok() {
        return Ok((kept, false));
    }
    let _ = std::fs::remove_file(&kept);
    for suffix in ["", "-wal"] {
        let from = with_suffix(target, suffix);
        if from.exists() {
            std::fs::copy(&from, with_suffix(&kept, suffix)).with_context(|| {
                format!(
                    "cannot keep {} as {}; nothing changed",
                    from.display(),
                    kept.display()
                )
            })?;
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(target, suffix));
    }
    Ok((kept, true))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn partial_name(file: &Path) -> PathBuf {
    with_suffix(file, ".partial")
}

fn describe(contents: &backup::Contents) {
    println!(
        "  integrity_check ok; schema version {}; {:.1} MB",
        contents.schema_version,
        contents.bytes as f64 / 1_000_000.0
    );
    for (what, count) in &contents.rows {
        println!("  {what:<20} {count}");
    }
}
