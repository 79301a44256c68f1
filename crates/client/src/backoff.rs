//! Reconnect delays: exponential with full jitter, as the JavaScript client does (SPEC §9.1).
//!
//! Full jitter (a uniform delay between zero and the exponential cap) spreads the clients a
//! restarted node dropped over the whole window instead of bringing them back in waves.

use std::time::Duration;

use rand::Rng;

/// The delay before each reconnect attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays grow from `min` towards `max` (`max` is raised to `min` if smaller).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The cap of the next delay: `min · 2^attempt`, at most `max`.
    pub fn cap(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The next delay, uniform in `[0, cap]`, and one more attempt counted.
    pub fn next_delay(&mut self) -> Duration {
        let cap = self.cap();
        self.attempt = self.attempt.saturating_add(1);
        let ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }

    /// After a connection that worked: the next failure starts from `min` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_double_up_to_max_and_delays_stay_under_them() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let mut caps = Vec::new();
        for _ in 0..6 {
            let cap = b.cap();
            caps.push(cap.as_millis());
            assert!(b.next_delay() <= cap);
        }
        assert_eq!(caps, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.cap(), Duration::from_millis(100));
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.cap(), Duration::from_millis(1000));
    }
}
