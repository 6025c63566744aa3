//! Passwords and login IDs: the rules members see on 利用者情報入力, and argon2id
//! hashing, which callers must run off the async threads (it takes tens of ms).

use std::cell::RefCell;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::PolicyConfig;
use crate::error::{Error, Result};

pub const LOGIN_ID_MIN: usize = 6;
pub const LOGIN_ID_MAX: usize = 32;
pub const PASSWORD_MAX: usize = 64;

thread_local! {
    /// argon2id's working memory (19 MiB), kept by each thread that hashes (the
    /// hashing pool's few) instead of allocated for every hash: allocated anew, glibc
    /// keeps such blocks in whichever arena served them, and a few hundred logins left
    /// hundreds of MB behind.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2id of `password` with `salt` into `out`, in this thread's kept memory.
fn argon2id(
    params: Params,
    version: Version,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let argon = Argon2::new(Algorithm::Argon2id, version, params);
    let blocks = argon.params().block_count();
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() != blocks {
            memory.clear();
            memory.shrink_to_fit();
            memory.resize(blocks, Block::default());
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut memory[..])
            .map_err(|e| Error::Hash(e.to_string()))
    })
}

/// argon2id with the crate's defaults (19 MiB, 2 passes: OWASP's recommendation), as a
/// PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn hash(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| Error::Hash(e.to_string()))?;
    let params = Params::default();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id(
        params.clone(),
        Version::V0x13,
        password.as_bytes(),
        &salt,
        &mut out,
    )?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Hash(e.to_string()))?;
    let out = Output::new(&out).map_err(|e| Error::Hash(e.to_string()))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str(),
        out
    ))
}

/// Whether `password` matches a stored hash. `None` (no such account) still spends the
/// time of a real check, so response times do not tell which IDs exist.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("karamail-dummy-password").unwrap_or_default());
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    matches(password, hash).unwrap_or(false) && real
}

/// The check itself: the stored hash's own parameters, salt and length.
fn matches(password: &str, stored: &str) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return None;
    }
    let params = Params::try_from(&parsed).ok()?;
    let version = parsed
        .version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .ok()?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let expected = parsed.hash?;
    let mut out = vec![0u8; expected.len()];
    argon2id(params, version, password.as_bytes(), salt, &mut out).ok()?;
    // `Output`'s equality takes the same time wherever the first difference is.
    Some(Output::new(&out).ok()? == expected)
}

/// The login ID rule from the seeds: half-width letters and digits, and the 7th and
/// 8th characters may not be digits (so it can never look like a postcard's ID).
/// The message is shown next to the field.
pub fn check_login_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("新ログインIDを入力してください。");
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("新ログインIDは半角英数字で入力してください。");
    }
    if !(LOGIN_ID_MIN..=LOGIN_ID_MAX).contains(&id.len()) {
        return Err("新ログインIDは6文字以上32文字以内で入力してください。");
    }
    if id.chars().skip(6).take(2).any(|c| c.is_ascii_digit()) {
        return Err("新ログインIDの7・8桁目に数字は使用できません。");
    }
    Ok(())
}

/// The password policy (default, from the seeds: 8 or more characters with a
/// lower-case letter and a digit; capitals allowed). Half-width printable ASCII only.
pub fn check_password(password: &str, policy: &PolicyConfig) -> Result<(), String> {
    if password.is_empty() {
        return Err("新パスワードを入力してください。".into());
    }
    if !password.chars().all(|c| c.is_ascii_graphic()) {
        return Err(
            "新パスワードは半角英数字（記号も可）で入力してください。全角文字や空白は使えません。"
                .into(),
        );
    }
    let too_short = password.len() < policy.password_min_length;
    let missing =
        |required: bool, class: fn(&char) -> bool| required && !password.chars().any(|c| class(&c));
    if too_short
        || password.len() > PASSWORD_MAX
        || missing(policy.password_require_lowercase, char::is_ascii_lowercase)
        || missing(policy.password_require_uppercase, char::is_ascii_uppercase)
        || missing(policy.password_require_digit, char::is_ascii_digit)
    {
        return Err(describe_policy(policy));
    }
    Ok(())
}

/// The policy in the seeds' words, e.g. 「半角英小文字、半角数字を組み合わせた8文字以上」.
pub fn describe_policy(policy: &PolicyConfig) -> String {
    let mut classes = Vec::new();
    if policy.password_require_lowercase {
        classes.push("半角英小文字");
    }
    if policy.password_require_uppercase {
        classes.push("半角英大文字");
    }
    if policy.password_require_digit {
        classes.push("半角数字");
    }
    let combined = if classes.is_empty() {
        String::new()
    } else {
        format!("{}を組み合わせた", classes.join("、"))
    };
    format!(
        "新パスワードは{combined}{}文字以上{}文字以内で入力してください。",
        policy.password_min_length, PASSWORD_MAX
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_id_rule_matches_the_seeds_examples() {
        assert!(check_login_id("123456SKE").is_ok());
        assert_eq!(
            check_login_id("SKE123456"),
            Err("新ログインIDの7・8桁目に数字は使用できません。")
        );
        assert!(check_login_id("abcdef1x").is_err(), "7th character a digit");
        assert!(check_login_id("abcdefx1").is_err(), "8th character a digit");
        assert!(check_login_id("abcdefxy9").is_ok(), "9th may be a digit");
        assert!(check_login_id("taro").is_err(), "too short");
        assert!(check_login_id("たろうyamada").is_err());
        assert!(
            check_login_id("ｔａｒｏｙａｍａｄａ").is_err(),
            "full-width letters"
        );
        assert!(check_login_id("taro_yamada").is_err());
        assert!(check_login_id(&"a".repeat(33)).is_err());
    }

    #[test]
    fn password_rule_default_is_the_seeds() {
        let policy = PolicyConfig::default();
        assert!(
            check_password("kenpo123", &policy).is_ok(),
            "the seeds' example"
        );
        assert!(
            check_password("Kenpo123", &policy).is_ok(),
            "capitals are allowed"
        );
        assert!(check_password("kenpo12", &policy).is_err(), "7 characters");
        assert!(check_password("kenpokenpo", &policy).is_err(), "no digit");
        assert!(
            check_password("KENPO123", &policy).is_err(),
            "no lower-case"
        );
        assert!(
            check_password("ｋｅｎｐｏ１２３", &policy).is_err(),
            "full-width"
        );
        assert!(check_password("kenpo 123", &policy).is_err(), "space");
        assert!(
            check_password(&format!("a1{}", "x".repeat(63)), &policy).is_err(),
            "too long"
        );
        let message = check_password("short", &policy).unwrap_err();
        assert!(
            message.contains("半角英小文字、半角数字を組み合わせた8文字以上"),
            "{message}"
        );
    }

    #[test]
    fn password_policy_is_configurable() {
        let policy = PolicyConfig {
            password_require_uppercase: true,
            password_min_length: 10,
            ..PolicyConfig::default()
        };
        assert!(check_password("kenpo12345", &policy).is_err());
        assert!(check_password("Kenpo12345", &policy).is_ok());
        assert!(check_password("Kenpo1234", &policy).is_err());
    }

    #[test]
    fn hashes_verify_and_are_salted() {
        // What the argon2 crate itself writes (members' passwords from before) verifies.
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let old = Argon2::default()
            .hash_password(b"kenpo123", &salt)
            .unwrap()
            .to_string();
        assert!(verify("kenpo123", Some(&old)));
        assert!(!verify("kenpo124", Some(&old)));
        let ours = hash("kenpo123").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        assert!(
            PasswordHash::new(&ours)
                .unwrap()
                .verify_password(&[&Argon2::default()], "kenpo123")
                .is_ok(),
            "and the crate reads ours"
        );
        let a = hash("kenpo123").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, hash("kenpo123").unwrap());
        assert!(verify("kenpo123", Some(&a)));
        assert!(!verify("kenpo124", Some(&a)));
        assert!(!verify("kenpo123", None));
    }
}
