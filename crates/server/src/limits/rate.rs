//! Token-bucket rate limits keyed by user (or IP when anonymous), on governor's keyed limiter.
//!
//! A key may burst up to `capacity` and is refilled continuously at `capacity` per minute
//! (governor's GCRA with `Quota::per_minute`, which is that bucket), so a client may burst up
//! to the limit and then sustain the configured rate. Keys are shared by every connection of
//! the same user (or IP), so opening more sockets does not buy more messages. governor was
//! measured at about half the cost per check of the hand-written bucket it replaced
//! (`tests/rate_bench.rs`, docs/security.md): it locks one shard of its map instead of one
//! mutex for every key, and copies a key only when it is new.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter as Gcra};

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

/// A keyed token-bucket limiter. Generic over governor's clock only so its unit test can move
/// time by hand; the server uses the default (monotonic) clock.
pub struct RateLimiter<C: Clock = DefaultClock> {
    gcra: Gcra<String, DashMapStateStore<String>, C, NoOpMiddleware<C::Instant>>,
    clock: C,
    /// Checks since the last look at the map's size.
    checks: AtomicUsize,
    /// The size past which [`RateLimiter::check`] sweeps by itself.
    sweep_at: AtomicUsize,
}

impl<C: Clock> std::fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("keys", &self.gcra.len())
            .finish()
    }
}

/// Every this many new keys, [`RateLimiter::check`] sweeps the full buckets itself, so a
/// limiter nobody sweeps periodically still cannot grow with every client ever seen (governor
/// forgets keys only when asked).
const SWEEP_EVERY_NEW_KEYS: usize = 4096;

/// How often (in checks) [`RateLimiter::check`] looks at the map's size: counting the keys
/// visits every shard, too dear for every check.
const SIZE_CHECK_EVERY: usize = 256;

impl RateLimiter {
    /// `per_minute` tokens of burst, refilled at `per_minute` per minute.
    pub fn per_minute(per_minute: u32) -> Self {
        Self::with_clock(per_minute, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// [`RateLimiter::per_minute`] on `clock`.
    pub fn with_clock(per_minute: u32, clock: C) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Self {
            gcra: Gcra::dashmap_with_clock(quota, clock.clone()),
            clock,
            checks: AtomicUsize::new(0),
            sweep_at: AtomicUsize::new(SWEEP_EVERY_NEW_KEYS),
        }
    }

    /// Takes one token for `key`.
    pub fn check(&self, key: &str) -> Decision {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SIZE_CHECK_EVERY)
            && self.gcra.len() >= self.sweep_at.load(Ordering::Relaxed)
        {
            self.sweep();
        }
        match self.gcra.check_key(&key.to_owned()) {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Limited {
                retry_after: not_until.wait_time_from(self.clock.now()),
            },
        }
    }

    /// Forgets keys whose bucket has refilled completely (they behave exactly like new ones),
    /// so the map does not grow with every client ever seen.
    pub fn sweep(&self) {
        self.gcra.retain_recent();
        self.gcra.shrink_to_fit();
        self.sweep_at
            .store(self.gcra.len() + SWEEP_EVERY_NEW_KEYS, Ordering::Relaxed);
    }

    /// Number of tracked keys.
    pub fn len(&self) -> usize {
        self.gcra.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.gcra.is_empty()
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
    use governor::clock::FakeRelativeClock;

    use super::*;

    #[test]
    fn bursts_to_capacity_then_refills() {
        let clock = FakeRelativeClock::default();
        let l = RateLimiter::with_clock(100, clock.clone());
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
        clock.advance(Duration::from_millis(600));
        assert_eq!(l.check("u"), Decision::Allowed);
        assert!(matches!(l.check("u"), Decision::Limited { .. }));
        // Forgotten once full again (governor keeps a key one emission interval longer).
        clock.advance(Duration::from_millis(60_600));
        l.sweep();
        assert!(l.is_empty());
    }

    #[test]
    fn new_keys_are_swept_without_a_sweeper() {
        let clock = FakeRelativeClock::default();
        let l = RateLimiter::with_clock(100, clock.clone());
        for i in 0..SWEEP_EVERY_NEW_KEYS {
            l.check(&format!("k{i}"));
        }
        clock.advance(Duration::from_secs(61));
        for i in 0..2 * SIZE_CHECK_EVERY {
            l.check(&format!("new{i}"));
        }
        assert!(l.len() <= 2 * SIZE_CHECK_EVERY, "{}", l.len());
    }
}
