//! Secrets we hand out — link tokens, session ids, CSRF tokens, one-time login keys and
//! the postcard's temporary credentials — all from the OS RNG, and the server key that
//! the database keeps their hashes under. A copy of the database alone reveals none of
//! them: the hashes are keyed (BLAKE2b-MAC) with a key kept in a file of its own.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use blake2::Blake2bMac;
use blake2::digest::consts::U32;
use blake2::digest::{KeyInit, Mac};

use crate::error::{Error, Result};

/// The server key: 256 random bits in a file of its own (0600, created at first start
/// beside the database unless `[database] key_file` or a systemd credential names
/// one), never in the database.
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
        }
    }
}

/// How a keyed temporary-password hash begins (argon2id's begin `$argon2id$`).
const KEYED: &str = "keyed$";

/// The systemd credential name looked for in `$CREDENTIALS_DIRECTORY` first.
pub const CREDENTIAL: &str = "karamail.key";

impl ServerKey {
    /// The key from the systemd credential `karamail.key` if the service has one, else
    /// from `path`, created there (0600, 256 random bits in hex) if it is missing.
    pub fn load_or_create(path: &Path) -> Result<ServerKey> {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let credential = PathBuf::from(dir).join(CREDENTIAL);
            if credential.exists() {
                return ServerKey::read(&credential);
            }
        }
        match ServerKey::create(path) {
            Ok(key) => {
                tracing::info!(path = %path.display(), "created the server key: keep it with backups of the database, apart from them");
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => ServerKey::read(path),
            Err(e) => Err(Error::Config(format!(
                "cannot create the server key {}: {e}",
                path.display()
            ))),
        }
    }

    /// A key that lives as long as the process (tests, one-off previews).
    pub fn ephemeral() -> ServerKey {
        ServerKey {
            key: random_bytes::<32>(),
        }
    }

    fn create(path: &Path) -> std::io::Result<ServerKey> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_private_dir(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        let key = ServerKey::ephemeral();
        file.write_all(format!("{}\n", hex(&key.key)).as_bytes())?;
        file.sync_all()?;
        Ok(key)
    }

    fn read(path: &Path) -> Result<ServerKey> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read the server key {}: {e}",
                path.display()
            ))
        })?;
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
        Ok(ServerKey { key })
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

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).expect("the OS random number generator is unavailable");
    bytes
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
    fn the_key_file_is_made_once_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("karamail-key-{}", new_token()));
        let path = dir.join("sub/karamail.key");
        let made = ServerKey::load_or_create(&path).unwrap();
        let read = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(
            made.hash(SecretKind::Link, "x"),
            read.hash(SecretKind::Link, "x")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("sub")), 0o700);
        std::fs::write(&path, "not hex\n").unwrap();
        let refused = ServerKey::load_or_create(&path).err().unwrap().to_string();
        assert!(refused.contains("64 hex digits"), "{refused}");
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
