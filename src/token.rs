//! Secrets we hand out: link tokens, session ids, CSRF tokens and the postcard's
//! temporary credentials. All come from the OS RNG; only their hashes are stored.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};

/// 32 random bytes (256 bits), hex-encoded: safe in a URL path and a cookie.
pub fn new_token() -> String {
    hex(&random_bytes::<32>())
}

/// What the database keeps of a token. A fast hash suffices: tokens carry 256 bits of
/// entropy, so there is nothing to brute-force, unlike passwords (see `password`).
pub fn hash(token: &str) -> Vec<u8> {
    Blake2b::<U32>::digest(token.as_bytes()).to_vec()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_url_safe() {
        let a = new_token();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_token());
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&new_token()));
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
