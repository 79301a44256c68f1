//! Token-bucket rate limits keyed by user (or IP when anonymous).
//!
//! A bucket holds up to `capacity` tokens and refills continuously at `capacity` per minute, so
//! a client may burst up to the limit and then sustain the configured rate. Buckets are shared by
//! every connection of the same key, so opening more sockets does not buy more messages.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allowed,
    /// Over the limit; a token will be available after this long.
    Limited {
        /// Time until the next token.
        retry_after: Duration,
    },
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A keyed token-bucket limiter.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Every this many new keys, [`RateLimiter::check`] sweeps the full buckets itself, so a
/// limiter nobody sweeps periodically still cannot grow with every client ever seen.
const SWEEP_EVERY_NEW_KEYS: usize = 4096;

impl RateLimiter {
    /// `per_minute` tokens of burst, refilled at `per_minute` per minute.
    pub fn per_minute(per_minute: u32) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            capacity,
            per_second: capacity / 60.0,
            buckets: Mutex::default(),
        }
    }

    /// Takes one token for `key`.
    pub fn check(&self, key: &str) -> Decision {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) && buckets.len().is_multiple_of(SWEEP_EVERY_NEW_KEYS) {
            self.retain_unfilled(&mut buckets, now);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            last: now,
        });
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Decision::Allowed
        } else {
            let missing = 1.0 - bucket.tokens;
            Decision::Limited {
                retry_after: Duration::from_secs_f64(missing / self.per_second),
            }
        }
    }

    /// Forgets buckets that have refilled completely (they behave exactly like new ones), so
    /// the map does not grow with every client ever seen.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        self.retain_unfilled(&mut buckets, now);
    }

    fn retain_unfilled(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        let full_after = self.capacity / self.per_second;
        buckets.retain(|_, b| now.duration_since(b.last).as_secs_f64() < full_after);
    }

    /// Number of tracked keys.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The bucket key for a client: its user id when it has one, else its IP address.
pub fn client_key(user: Option<&str>, ip: std::net::IpAddr) -> String {
    match user {
        Some(u) => format!("user:{u}"),
        None => format!("ip:{ip}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_to_capacity_then_refills() {
        let l = RateLimiter::per_minute(100);
        let allowed = (0..150)
            .filter(|_| l.check("u") == Decision::Allowed)
            .count();
        assert_eq!(allowed, 100);
        match l.check("u") {
            Decision::Limited { retry_after } => assert!(retry_after <= Duration::from_millis(600)),
            Decision::Allowed => panic!("should be limited"),
        }
        // Another key is independent.
        assert_eq!(l.check("v"), Decision::Allowed);
        // 100/min = one token every 600 ms.
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!(l.check("u"), Decision::Allowed);
        assert!(matches!(l.check("u"), Decision::Limited { .. }));
        tokio::time::advance(Duration::from_secs(60)).await;
        l.sweep();
        assert!(l.is_empty());
    }
}
