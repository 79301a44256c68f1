//! The hand-written keyed token bucket the server had (kept here as `HandBucket`, the
//! reference), the server's `limits::rate::RateLimiter` (governor since issue 12) and governor's
//! keyed limiter used raw, per check, as each message and REST write pays it. Ignored by
//! default (a measurement, not a check); run it in release:
//!
//! ```sh
//! cargo test --release -p switchboard --test rate_bench -- --ignored --nocapture
//! ```
//!
//! The numbers and the decision they led to are in docs/security.md (rate limits).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::Instant;

use governor::{Quota, RateLimiter as Governor};
use std::collections::HashMap;
use std::sync::Mutex;

use switchboard::limits::rate::{Decision, RateLimiter, client_key};

/// The bucket `limits/rate.rs` had before governor: one mutex over a map of `f64` buckets.
struct HandBucket {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl HandBucket {
    fn per_minute(per_minute: u32) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            capacity,
            per_second: capacity / 60.0,
            buckets: Mutex::default(),
        }
    }

    fn check(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap();
        let (tokens, last) = buckets
            .entry(key.to_owned())
            .or_insert((self.capacity, now));
        let elapsed = now.duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.per_second).min(self.capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            black_box((1.0 - *tokens) / self.per_second);
            false
        }
    }
}

fn hand(per_minute: u32, keys: &[String]) -> (f64, usize) {
    let limiter = HandBucket::per_minute(per_minute);
    let start = Instant::now();
    let allowed = (0..CHECKS)
        .filter(|i| limiter.check(black_box(&keys[i % keys.len()])))
        .count();
    (start.elapsed().as_nanos() as f64 / CHECKS as f64, allowed)
}

const CHECKS: usize = 10_000_000;

/// Keys as the server builds them: `user:<sub>` for a fraction, `ip:<addr>` for the rest.
fn keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                client_key(Some(&format!("user-{i}")), IpAddr::V4(Ipv4Addr::LOCALHOST))
            } else {
                let ip = IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8));
                client_key(None, ip)
            }
        })
        .collect()
}

fn server(per_minute: u32, keys: &[String]) -> (f64, usize) {
    let limiter = RateLimiter::per_minute(per_minute);
    let start = Instant::now();
    let mut allowed = 0;
    for i in 0..CHECKS {
        if limiter.check(black_box(&keys[i % keys.len()])) == Decision::Allowed {
            allowed += 1;
        }
    }
    (start.elapsed().as_nanos() as f64 / CHECKS as f64, allowed)
}

/// `copy`: the key is copied first, as a `check(&str)` in front of governor's `check_key(&K)`
/// would have to (our callers hold the key as a `&str`).
fn governor(per_minute: u32, keys: &[String], copy: bool) -> (f64, usize) {
    let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap());
    let limiter = Governor::keyed(quota);
    let start = Instant::now();
    let mut allowed = 0;
    for i in 0..CHECKS {
        let key = black_box(&keys[i % keys.len()]);
        let owned;
        let key = if copy {
            owned = key.as_str().to_owned();
            &owned
        } else {
            key
        };
        match limiter.check_key(key) {
            Ok(()) => allowed += 1,
            // What the server needs from a refusal: the time to the next token (Retry-After).
            Err(not_until) => {
                black_box(not_until.wait_time_from(governor::clock::Clock::now(limiter.clock())));
            }
        }
    }
    (start.elapsed().as_nanos() as f64 / CHECKS as f64, allowed)
}

#[test]
#[ignore = "a measurement; run in release with --ignored --nocapture"]
fn hand_written_against_governor_per_check() {
    for (label, per_minute, n) in [
        ("1 key, 100/min (mostly refused)", 100, 1),
        ("1,000 keys, 100/min (mostly refused)", 100, 1_000),
        ("100,000 keys, 100/min (mostly allowed)", 100, 100_000),
        ("1,000 keys, unlimited (all allowed)", u32::MAX, 1_000),
    ] {
        let keys = keys(n);
        let (h, _) = hand(per_minute, &keys);
        let (a, a_ok) = server(per_minute, &keys);
        let (b, b_ok) = governor(per_minute, &keys, false);
        let (c, _) = governor(per_minute, &keys, true);
        println!(
            "{label:40} hand-written {h:6.1}  server (governor) {a:6.1} ({a_ok} allowed)  governor raw {b:6.1} ({b_ok} allowed), with a key copy {c:6.1} ns/check"
        );
        // Same decisions: both are a bucket of `per_minute` refilled over a minute.
        assert!(
            a_ok.abs_diff(b_ok) <= n * 2 + CHECKS / 1000,
            "{a_ok} vs {b_ok}"
        );
    }
}
