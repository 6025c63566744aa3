//! Files and folders karamail makes hold live secrets (the database and its WAL, the
//! outbox's `.eml` files with tokens and keys, the postcards CSV with temporary
//! passwords, the server key): each is made private to karamail's user — files 0600,
//! folders 0700 — whatever the umask of the shell or unit that started it.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// From now on, everything this process creates is private to its user: SQLite's
/// files and whatever a library writes included. Called first by `main` and by
/// `daemon::start`.
pub fn private_umask() {
    // SAFETY: umask(2) only sets the process's file-mode mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// `dir` and any missing parents, made 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Takes group and other access away from an existing file or folder karamail keeps
/// secrets in (one made by an earlier version, or under a looser umask). A path that
/// does not exist, or that belongs to someone else, is left alone.
pub fn make_private(path: &Path) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        let private = if meta.is_dir() { 0o700 } else { 0o600 };
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(private));
    }
}

/// A new file (never one that exists: it may hold what is not printed yet), 0600.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Flushes `file`'s folder, so a rename into it is durable.
pub fn sync_dir_of(file: &Path) {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
}
