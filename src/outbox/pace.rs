//! The pace of bulk mail: a bucket that fills at `[mail] bulk_per_minute` and holds
//! about a second's worth, so a large import's mails go out evenly and never crowd out
//! what a member is waiting for (the lanes take those first, see `worker`).

use std::time::{Duration, Instant};

pub struct Pace {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    filled_at: Instant,
}

impl Pace {
    pub fn per_minute(rate: u32) -> Pace {
        let per_second = f64::from(rate.max(1)) / 60.0;
        let capacity = per_second.max(1.0);
        Pace {
            per_second,
            capacity,
            tokens: capacity,
            filled_at: Instant::now(),
        }
    }

    /// How many bulk mails may go now, up to `wanted`; they are spent.
    pub fn take(&mut self, wanted: usize, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.filled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.filled_at = now;
        let granted = (self.tokens.floor() as usize).min(wanted);
        self.tokens -= granted as f64;
        granted
    }

    /// How long until the next bulk mail may go.
    pub fn until_next(&self) -> Duration {
        let missing = (1.0 - self.tokens).max(0.0);
        let since = self.filled_at.elapsed().as_secs_f64();
        Duration::from_secs_f64((missing / self.per_second - since).max(0.0))
    }

    /// Gives back what was granted and not used (fewer bulk mails were due).
    pub fn give_back(&mut self, unused: usize) {
        self.tokens = (self.tokens + unused as f64).min(self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_holds_over_time_and_bursts_no_more_than_a_second() {
        let start = Instant::now();
        let mut pace = Pace::per_minute(600);
        assert_eq!(pace.take(100, start), 10, "a second's worth at first");
        assert_eq!(pace.take(100, start), 0);
        let mut granted = 0;
        for tenth in 1..=50 {
            granted += pace.take(100, start + Duration::from_millis(100 * tenth));
        }
        assert_eq!(granted, 50, "10 a second for 5 seconds");
        pace.give_back(3);
        assert_eq!(pace.take(100, start + Duration::from_secs(5)), 3);
        let mut slow = Pace::per_minute(30);
        assert_eq!(slow.take(5, start), 1);
        assert_eq!(slow.take(5, start + Duration::from_secs(1)), 0);
        assert_eq!(slow.take(5, start + Duration::from_secs(2)), 1);
    }
}
