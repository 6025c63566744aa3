//! Dates and times as members read them: Japan Standard Time (UTC+9, no DST).

const JST_OFFSET: i64 = 9 * 3600;

/// `(year, month, day, hour, minute)` in JST for Unix seconds.
fn civil(unix: i64) -> (i64, u32, u32, u32, u32) {
    let local = unix + JST_OFFSET;
    let (days, secs) = (local.div_euclid(86400), local.rem_euclid(86400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
    )
}

/// `2026-11-22`: the day in Japan, as notices' end dates are written.
pub fn date(unix: i64) -> String {
    let (y, m, d, _, _) = civil(unix);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `20261122-113805`: a time for file names.
pub fn stamp(unix: i64) -> String {
    let (y, m, d, h, min) = civil(unix);
    let sec = (unix + JST_OFFSET).rem_euclid(60);
    format!("{y:04}{m:02}{d:02}-{h:02}{min:02}{sec:02}")
}

/// `2026年11月22日 11:38`.
pub fn datetime(unix: i64) -> String {
    let (y, m, d, h, min) = civil(unix);
    format!("{y}年{m}月{d}日 {h:02}:{min:02}")
}

/// `2026-11-22` → `2026年11月22日` (no leading zeros, as the mails write it); text that
/// is not such a date is returned as it is.
pub fn japanese_date(text: &str) -> String {
    if !is_date(text) {
        return text.to_string();
    }
    let parts: Vec<u32> = text.split('-').filter_map(|p| p.parse().ok()).collect();
    format!("{}年{}月{}日", parts[0], parts[1], parts[2])
}

/// The Unix time a `YYYY-MM-DD` day starts in Japan; `None` for anything else.
pub fn day_start(text: &str) -> Option<i64> {
    if !is_date(text) {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (
        text[..4].parse().ok()?,
        text[5..7].parse().ok()?,
        text[8..10].parse().ok()?,
    );
    // Howard Hinnant's days-from-civil (the inverse of `civil`).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86400 - JST_OFFSET)
}

/// The Unix time of Monday 00:00 in Japan of `unix`'s week.
pub fn week_start(unix: i64) -> i64 {
    let days = (unix + JST_OFFSET).div_euclid(86400);
    // 1970-01-01 was a Thursday: Monday is 0 three days before.
    let monday = days - (days + 3).rem_euclid(7);
    monday * 86400 - JST_OFFSET
}

/// Whether `text` is a real date written `YYYY-MM-DD`.
pub fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i64>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return false;
    };
    if !(1900..=9999).contains(&y) || text.len() != 10 || !(1..=12).contains(&m) {
        return false;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    (1..=days[m as usize - 1]).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn japan_is_nine_hours_ahead() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(datetime(0), "1970年1月1日 09:00");
        // 2026-11-22 15:30 UTC is already the 23rd in Japan.
        assert_eq!(date(1_795_361_400), "2026-11-23");
        assert_eq!(date(1_709_164_800), "2024-02-29");
    }

    #[test]
    fn dates_are_checked() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2024-13-01"));
        assert!(!is_date("2024/01/01"));
        assert!(!is_date("24-01-01"));
    }

    #[test]
    fn a_day_starts_at_midnight_in_japan_and_a_week_on_monday() {
        for unix in [0, 1_709_164_800, 1_795_361_400, 4_102_444_800] {
            let start = day_start(&date(unix)).unwrap();
            assert_eq!(date(start), date(unix));
            assert_eq!(date(start - 1), date(unix - 86_400), "{unix}");
            let monday = week_start(unix);
            assert!(monday <= unix && unix - monday < 7 * 86_400);
            assert_eq!(monday, day_start(&date(monday)).unwrap());
        }
        // 2026-11-23 (JST) is a Monday: 2026-11-22 15:30 UTC is already in its week.
        assert_eq!(date(week_start(1_795_361_400)), "2026-11-23");
        assert_eq!(day_start("2026-02-30"), None);
    }
}

#[cfg(test)]
mod japanese_date_tests {
    #[test]
    fn dates_are_written_as_in_the_mails() {
        assert_eq!(super::japanese_date("2026-04-01"), "2026年4月1日");
        assert_eq!(super::japanese_date("2026-11-22"), "2026年11月22日");
        assert_eq!(super::japanese_date("令和8年"), "令和8年");
    }
}
