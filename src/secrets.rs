//! Secrets we hand out — link tokens, session ids, CSRF tokens, one-time login keys and
//! the postcard's temporary credentials — all from the OS RNG, and the server key that
//! the database keeps their hashes under. A copy of the database alone reveals none of
//! them: the hashes are keyed (BLAKE2b-MAC) with a key kept in a file of its own.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use blake2::Blake2bMac;
use blake2::digest::consts::U32;
use blake2::digest::{KeyInit, Mac};

use crate::db::{self, Db};
use crate::error::{Error, Result};

/// The server key: 256 random bits in a file of its own (0600, created at first start
/// beside the database unless `[database] key_file` names another place), never in the
/// database, which keeps only its fingerprint.
pub struct ServerKey {
    key: [u8; 32],
}

/// What each keyed hash is for: the same secret hashed for two purposes gives two
/// unrelated values.
#[derive(Debug, Clone, Copy)]
pub enum SecretKind {
    /// A mailed link's token.
    Link,
    /// A login, sign-up or reissue session's cookie.
    Session,
    /// The cookie of a login waiting for its 暗証キー.
    PendingLogin,
    /// A 暗証キー, with the login attempt it belongs to.
    LoginKey(i64),
    /// A page kept for the GET after a POST (`web::views`).
    KeptPage,
    /// The form token bound to a browser's CSRF cookie and login session.
    Csrf,
    /// A postcard's temporary password.
    TempPassword,
    /// The key's own fingerprint, kept in the database.
    Fingerprint,
}

impl SecretKind {
    fn label(self) -> String {
        match self {
            SecretKind::Link => "link".into(),
            SecretKind::Session => "session".into(),
            SecretKind::PendingLogin => "pending-login".into(),
            SecretKind::LoginKey(attempt) => format!("login-key:{attempt}"),
            SecretKind::KeptPage => "kept-page".into(),
            SecretKind::Csrf => "csrf".into(),
            SecretKind::TempPassword => "temp-password".into(),
            SecretKind::Fingerprint => "fingerprint".into(),
        }
    }
}

/// How a keyed temporary-password hash begins (argon2id's begin `$argon2id$`).
const KEYED: &str = "keyed$";

impl ServerKey {
    /// The key in `path`, checked against the fingerprint the database keeps. A missing
    /// file is made (0600, 256 random bits in hex) for a database that has no
    /// fingerprint yet (new, or from before the key). A missing file for a database
    /// that has one, or a key that does not match it, is refused — every link, session,
    /// pending login and unused postcard would silently stop working — unless
    /// `new_allowed` (`--new-server-key`): then the key in `path` (made if missing)
    /// becomes this database's.
    pub fn open(db: &Db, path: &Path, new_allowed: bool) -> Result<ServerKey> {
        let stored = db.call_blocking(|c| db::server_key::fingerprint(c))?;
        let key = match ServerKey::read(path)? {
            Some(key) => key,
            None if stored.is_none() || new_allowed => {
                let key = ServerKey::create(path)?;
                tracing::info!(path = %path.display(), "created the server key: back it up, apart from the database");
                key
            }
            None => {
                return Err(Error::Config(format!(
                    "the server key {} is missing, and this database's links, sessions and postcards were hashed under one: put the backed-up karamail.key there (or set [database] key_file); only if it is lost for good, start once with --new-server-key (every open link, session and unused postcard becomes void: reissue postcards)",
                    path.display()
                )));
            }
        };
        let fingerprint = key.hash(SecretKind::Fingerprint, "karamail server key");
        match stored {
            Some(stored) if constant_time_eq(&stored, &fingerprint) => {}
            Some(_) if !new_allowed => {
                return Err(Error::Config(format!(
                    "the server key {} is not the one this database's secrets were hashed under: use the daemon's karamail.key (the same [database] key_file), or, only if that key is lost for good, --new-server-key",
                    path.display()
                )));
            }
            _ => {
                db.call_blocking(move |c| db::server_key::set_fingerprint(c, &fingerprint))?;
            }
        }
        Ok(key)
    }

    /// Whether `stored` (a database's fingerprint) is the key in `path`'s; `None`
    /// when there is no key file.
    pub fn file_matches(path: &Path, stored: &[u8]) -> Result<Option<bool>> {
        Ok(ServerKey::read(path)?.map(|key| {
            let fingerprint = key.hash(SecretKind::Fingerprint, "karamail server key");
            constant_time_eq(stored, &fingerprint)
        }))
    }

    /// A key that lives as long as the process (tests, one-off previews).
    pub fn ephemeral() -> ServerKey {
        ServerKey {
            key: random_bytes::<32>(),
        }
    }

    /// Writes a new key whole under a temporary name, then links it into place, so a
    /// command and the daemon starting together never read half a key: the loser of
    /// the race reads the winner's.
    fn create(path: &Path) -> Result<ServerKey> {
        let failed = |e: std::io::Error| {
            Error::Config(format!(
                "cannot create the server key {}: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_private_dir(dir).map_err(failed)?;
        }
        let key = ServerKey::ephemeral();
        let temp = path.with_extension(format!("new-{}", new_token()));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(format!("{}\n", hex(&key.key)).as_bytes())?;
            file.sync_all()?;
            std::fs::hard_link(&temp, path)
        })();
        let _ = std::fs::remove_file(&temp);
        match written {
            Ok(()) => Ok(key),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                ServerKey::read(path)?.ok_or_else(|| failed(e))
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// The key in `path`; `None` if there is no such file.
    fn read(path: &Path) -> Result<Option<ServerKey>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot read the server key {}: {e}",
                    path.display()
                )));
            }
        };
        let bytes = unhex(text.trim())
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                Error::Config(format!(
                    "the server key {} is not 64 hex digits",
                    path.display()
                ))
            })?;
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(Some(ServerKey { key }))
    }

    /// A new secret of this kind (a link token, a session id…) and its keyed hash: the
    /// one place both mail and web get theirs. The secret goes to its owner only (in a
    /// mail, in a cookie); the database keeps the hash.
    pub fn mint(&self, kind: SecretKind) -> Minted {
        let secret = new_token();
        let hash = self.hash(kind, &secret);
        Minted { secret, hash }
    }

    /// What the database keeps of `secret`: a keyed hash, useless without the key file.
    pub fn hash(&self, kind: SecretKind, secret: &str) -> Vec<u8> {
        let mut mac = <Blake2bMac<U32> as KeyInit>::new_from_slice(&self.key)
            .expect("a 32-byte key suits BLAKE2b");
        mac.update(kind.label().as_bytes());
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// What the database keeps of a temporary password (a postcard's, or a reissue's):
    /// `keyed$` and the keyed hash. These passwords are random (10 characters, ~55
    /// bits) and live until used, so a keyed hash guards them as argon2id would a
    /// chosen one — without the key the database tests no guess at all — at a
    /// millionth of the cost (SECURITY.md, 「Temporary passwords」).
    pub fn temp_password_hash(&self, password: &str) -> String {
        format!(
            "{KEYED}{}",
            hex(&self.hash(SecretKind::TempPassword, password))
        )
    }

    /// Whether `typed` is the temporary password stored as `stored`: keyed, or argon2id
    /// as versions before the server key stored them. `None` (no such postcard or link)
    /// spends the time of a keyed check and is false.
    pub fn verify_temp_password(&self, typed: &str, stored: Option<&str>) -> bool {
        let typed_hash = self.temp_password_hash(typed);
        match stored {
            Some(keyed) if keyed.starts_with(KEYED) => {
                constant_time_eq(keyed.as_bytes(), typed_hash.as_bytes())
            }
            Some(argon2) => crate::password::verify(typed, Some(argon2)),
            // The hash above was the work; there is nothing to compare it with.
            None => {
                std::hint::black_box(typed_hash);
                false
            }
        }
    }

    /// The CSRF token a page's forms carry: bound to the browser's CSRF cookie and its
    /// login session (empty when none), so a cookie an attacker managed to set is of no
    /// use without the token, which only the key makes.
    pub fn csrf_token(&self, cookie: &str, session: &str) -> String {
        hex(&self.hash(SecretKind::Csrf, &format!("{cookie}\0{session}")))
    }
}

/// 32 random bytes (256 bits), hex-encoded: safe in a URL path and a cookie.
/// A new secret and what the database keeps of it (`ServerKey::mint`).
pub struct Minted {
    pub secret: String,
    pub hash: Vec<u8>,
}

pub fn new_token() -> String {
    hex(&random_bytes::<32>())
}

/// Equality that takes the same time wherever the first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A postcard's temporary login ID: 3 capital letters and 6 digits (`KNP123456`), so its
/// 7th and 8th characters are digits, which no login ID a member chooses may have.
pub fn new_temp_login_id() -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"0123456789";
    let mut id = pick(LETTERS, 3);
    id.push_str(&pick(DIGITS, 6));
    id
}

/// A postcard's temporary password: 10 characters (about 55 bits) from an alphabet with
/// no look-alikes (no 0/O/o, 1/I/l, 2/Z, 5/S, 8/B), so it can be typed from print.
pub fn new_temp_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679";
    pick(ALPHABET, 10)
}

/// A one-time login key (暗証キー): 6 digits, as members type it from a mail.
pub fn new_login_key() -> String {
    pick(b"0123456789", 6)
}

/// `count` characters drawn uniformly from `alphabet` (rejection sampling, no modulo bias).
fn pick(alphabet: &[u8], count: usize) -> String {
    let limit = 256 - 256 % alphabet.len();
    let mut out = String::with_capacity(count);
    while out.len() < count {
        for byte in random_bytes::<32>() {
            if (byte as usize) < limit && out.len() < count {
                out.push(alphabet[byte as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

/// `N` bytes from the OS random number generator, each used once. They are read a few
/// kilobytes at a time per thread (a system call for every token was a twentieth of the
/// login page's time), and zeroed in the buffer as they are taken.
fn random_bytes<const N: usize>() -> [u8; N] {
    const READ_AHEAD: usize = 4096;
    thread_local! {
        static UNUSED: std::cell::RefCell<(Box<[u8; READ_AHEAD]>, usize)> =
            std::cell::RefCell::new((Box::new([0; READ_AHEAD]), READ_AHEAD));
    }
    let mut bytes = [0u8; N];
    if N > READ_AHEAD / 4 {
        getrandom::getrandom(&mut bytes).expect("the OS random number generator is unavailable");
        return bytes;
    }
    UNUSED.with(|unused| {
        let (buffer, next) = &mut *unused.borrow_mut();
        if READ_AHEAD - *next < N {
            getrandom::getrandom(&mut buffer[..])
                .expect("the OS random number generator is unavailable");
            *next = 0;
        }
        let taken = &mut buffer[*next..*next + N];
        bytes.copy_from_slice(taken);
        taken.fill(0);
        *next += N;
    });
    bytes
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    text
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_url_safe() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_token());
    }

    #[test]
    fn random_bytes_never_repeat_across_refills_and_threads() {
        let mut seen = std::collections::HashSet::new();
        // Enough for several refills of the read-ahead on each thread.
        let tokens: Vec<[u8; 32]> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| (0..1000).map(|_| random_bytes::<32>()).collect::<Vec<_>>())
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        for token in tokens {
            assert!(token.iter().any(|&b| b != 0));
            assert!(seen.insert(token), "a token came twice");
        }
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte_and_reads_back() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
    }

    #[test]
    fn keyed_hashes_need_the_key_and_differ_by_purpose() {
        let (key, other) = (ServerKey::ephemeral(), ServerKey::ephemeral());
        let token = new_token();
        assert_eq!(
            key.hash(SecretKind::Link, &token),
            key.hash(SecretKind::Link, &token)
        );
        assert_ne!(
            key.hash(SecretKind::Link, &token),
            other.hash(SecretKind::Link, &token)
        );
        assert_ne!(
            key.hash(SecretKind::Link, &token),
            key.hash(SecretKind::Session, &token)
        );
        assert_ne!(
            key.hash(SecretKind::LoginKey(1), "123456"),
            key.hash(SecretKind::LoginKey(2), "123456")
        );
        assert_ne!(key.csrf_token("c", ""), key.csrf_token("c", "s"));
    }

    #[test]
    fn temporary_passwords_are_keyed_and_old_argon2_ones_still_work() {
        let (key, other) = (ServerKey::ephemeral(), ServerKey::ephemeral());
        let stored = key.temp_password_hash("abcdEFGH34");
        assert!(stored.starts_with("keyed$") && !stored.contains("abcdEFGH34"));
        assert!(key.verify_temp_password("abcdEFGH34", Some(&stored)));
        assert!(!key.verify_temp_password("abcdEFGH35", Some(&stored)));
        assert!(!other.verify_temp_password("abcdEFGH34", Some(&stored)));
        assert!(!key.verify_temp_password("abcdEFGH34", None));
        let old = crate::password::hash("abcdEFGH34").unwrap();
        assert!(key.verify_temp_password("abcdEFGH34", Some(&old)));
        assert!(!key.verify_temp_password("abcdEFGH35", Some(&old)));
    }

    #[test]
    fn the_key_file_is_made_once_private_and_must_match_the_database() {
        let dir = std::env::temp_dir().join(format!("karamail-key-{}", new_token()));
        let path = dir.join("sub/karamail.key");
        let db = Db::open_in_memory().unwrap();
        let made = ServerKey::open(&db, &path, false).unwrap();
        let read = ServerKey::open(&db, &path, false).unwrap();
        assert_eq!(
            made.hash(SecretKind::Link, "x"),
            read.hash(SecretKind::Link, "x")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("sub")), 0o700);
        let refused = |new_allowed| {
            ServerKey::open(&db, &path, new_allowed)
                .err()
                .map(|e| e.to_string())
        };
        // Lost: not silently replaced.
        std::fs::remove_file(&path).unwrap();
        assert!(refused(false).unwrap().contains("is missing"));
        // Another key: refused too.
        let other = dir.join("other.key");
        ServerKey::open(&Db::open_in_memory().unwrap(), &other, false).unwrap();
        std::fs::copy(&other, &path).unwrap();
        assert!(refused(false).unwrap().contains("is not the one"));
        // Unless the sysadmin says so; then it is this database's key.
        assert_eq!(refused(true), None);
        assert_eq!(refused(false), None);
        std::fs::write(&path, "not hex\n").unwrap();
        assert!(refused(false).unwrap().contains("64 hex digits"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn temp_login_ids_have_digits_in_7th_and_8th_place() {
        for _ in 0..200 {
            let id = new_temp_login_id();
            assert_eq!(id.len(), 9);
            assert!(id[..3].chars().all(|c| c.is_ascii_uppercase()));
            assert!(id[3..].chars().all(|c| c.is_ascii_digit()));
            assert!(crate::password::check_login_id(&id).is_err());
        }
    }

    #[test]
    fn temp_passwords_avoid_look_alikes() {
        for _ in 0..200 {
            let password = new_temp_password();
            assert_eq!(password.len(), 10);
            assert!(
                !password.contains(['0', 'O', 'o', '1', 'I', 'l', '2', 'Z', '5', 'S', '8', 'B'])
            );
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
