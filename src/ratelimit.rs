//! In-memory rate limits for the web: so many hits per key (a client address) per
//! window. Counters live in memory only: a restart forgets them, which is harmless for
//! limits meant to slow a flood, not to account for it (the lockouts that must survive a
//! restart live in SQLite).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    max: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Above this many keys, windows that ended are swept out on the next hit.
const SWEEP_ABOVE: usize = 10_000;

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            max,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a hit for `key`; false once the key is over its limit for this window.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.len() > SWEEP_ABOVE {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = counts.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_window() {
        let limiter = RateLimiter::new(2, Duration::from_millis(100));
        assert!(limiter.allow("a") && limiter.allow("a"));
        assert!(!limiter.allow("a"));
        assert!(limiter.allow("b"));
        std::thread::sleep(Duration::from_millis(120));
        assert!(limiter.allow("a"), "a new window");
    }
}
