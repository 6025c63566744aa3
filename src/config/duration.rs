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
        let bad =
            || format!("{text:?} is not a duration like \"3h\", \"10m\", \"90s\" or \"1h30m\"");
        let mut total = 0u64;
        let mut digits = String::new();
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'd' => 86400,
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            let amount: u64 = digits.parse().map_err(|_| bad())?;
            total = amount
                .checked_mul(unit)
                .and_then(|s| total.checked_add(s))
                .ok_or_else(bad)?;
            digits.clear();
        }
        if !digits.is_empty() || total == 0 {
            return Err(bad());
        }
        Ok(HumanDuration::secs(total))
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
        assert_eq!(HumanDuration::secs(10800).japanese(), "3時間");
        assert_eq!(HumanDuration::secs(5400).japanese(), "1時間30分");
    }
}
