//! Durations in the config as people write them: `3h`, `10m`, `90s`, `1h30m`.

use std::time::Duration;

use serde::Deserialize;

/// A duration written for people: `3h`, `10m`, `90s`, `1d`, `1h30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }

    pub fn as_secs(&self) -> i64 {
        self.0.as_secs() as i64
    }

    /// The duration in Japanese, as mails and pages state it: `3時間`, `10分`.
    pub fn japanese(&self) -> String {
        let secs = self.0.as_secs();
        let (days, hours, minutes, seconds) = (
            secs / 86400,
            secs % 86400 / 3600,
            secs % 3600 / 60,
            secs % 60,
        );
        let mut text = String::new();
        for (amount, unit) in [
            (days, "日"),
            (hours, "時間"),
            (minutes, "分"),
            (seconds, "秒"),
        ] {
            if amount > 0 {
                text.push_str(&format!("{amount}{unit}"));
            }
        }
        if text.is_empty() { "0秒".into() } else { text }
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "{text:?} is not a duration like \"3h\", \"10m\", \"90s\", \"500ms\" or \"1h30m\""
            )
        };
        let mut total_ms = 0u64;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let amount: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let unit_ms = match &rest[..unit_len] {
                "d" => 86_400_000,
                "h" => 3_600_000,
                "m" => 60_000,
                "s" => 1000,
                "ms" => 1,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total_ms = amount
                .checked_mul(unit_ms)
                .and_then(|ms| total_ms.checked_add(ms))
                .ok_or_else(bad)?;
        }
        if total_ms == 0 {
            return Err(bad());
        }
        Ok(HumanDuration(Duration::from_millis(total_ms)))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!("3h".parse::<HumanDuration>().unwrap().as_secs(), 10800);
        assert_eq!("1h30m".parse::<HumanDuration>().unwrap().as_secs(), 5400);
        assert_eq!("90s".parse::<HumanDuration>().unwrap().as_secs(), 90);
        assert!("3".parse::<HumanDuration>().is_err());
        assert!("0s".parse::<HumanDuration>().is_err());
        assert!("3 hours".parse::<HumanDuration>().is_err());
        assert_eq!(
            "250ms".parse::<HumanDuration>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!("1m30s".parse::<HumanDuration>().unwrap().as_secs(), 90);
        assert!("5x".parse::<HumanDuration>().is_err());
        assert!("".parse::<HumanDuration>().is_err());
        assert_eq!(HumanDuration::secs(10800).japanese(), "3時間");
        assert_eq!(HumanDuration::secs(5400).japanese(), "1時間30分");
    }
}
