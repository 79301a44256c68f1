//! Long-poll and SSE request parameters: `transports::poll::parse_timeout` (`?timeout=`),
//! `transports::feed::parse_channels` (`?channels=`) and `transports::feed::decode_cursor`
//! (`?cursor=`, `?since=`, `Last-Event-ID`).
//!
//! Input: `timeout \n channels \n cursor`, the first byte of the channel part also choosing the
//! subscription limit. Never panics; the timeout is always within 0–60 s and accepted exactly
//! for finite non-negative numbers; the channel list is valid, free of duplicates, in the order
//! given, within the limit, and refused only for a bad name, too many, or none.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use switchboard::transports::feed::parse_channels;
use switchboard::transports::poll::{DEFAULT_TIMEOUT, MAX_TIMEOUT, parse_timeout};
use switchboard_core::channel::ChannelName;
use switchboard_core::cursor::Cursor;
use switchboard_fuzz::{bounded, split_n, text};

fuzz_target!(|data: &[u8]| {
    let parts = split_n(data, b'\n', 3);
    let timeout = text(parts[0]);
    let result = bounded(timeout.len(), || parse_timeout(Some(&timeout)));
    match result {
        Ok(d) => {
            assert!(d <= MAX_TIMEOUT);
            if timeout.is_empty() {
                assert_eq!(d, DEFAULT_TIMEOUT);
            } else {
                let secs: f64 = timeout.parse().expect("accepted, so a number");
                assert!(secs.is_finite() && secs >= 0.0);
                assert!(d.as_secs_f64() <= secs.max(0.0) + 1e-9 || d == MAX_TIMEOUT);
            }
        }
        Err(_) => {
            let secs = timeout.parse::<f64>();
            assert!(
                !matches!(secs, Ok(s) if s.is_finite() && s >= 0.0),
                "{timeout:?}"
            );
        }
    }
    let _: Duration = DEFAULT_TIMEOUT;

    let max = usize::from(parts[1].first().copied().unwrap_or(0) % 8) + 1;
    let list = text(parts[1]);
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    match bounded(list.len(), || parse_channels(Some(&list), max)) {
        Ok(channels) => {
            assert!(!channels.is_empty() && channels.len() <= max);
            let mut expected: Vec<&str> = Vec::new();
            for n in &names {
                if !expected.contains(n) {
                    expected.push(n);
                }
            }
            let got: Vec<&str> = channels.iter().map(ChannelName::as_str).collect();
            assert_eq!(got, expected);
        }
        Err(_) => {
            let all_valid = names.iter().all(|n| ChannelName::parse(n).is_ok());
            let mut distinct: Vec<&str> = names.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert!(
                !all_valid || distinct.is_empty() || distinct.len() > max,
                "refused a valid list {list:?} (max {max})"
            );
        }
    }

    let cursor = text(parts[2]);
    // `decode_cursor` is this with the node's `limits.max_subscriptions_per_connection`
    // (default 1000) and a 400 around the error.
    let _ = bounded(cursor.len(), || Cursor::decode_for(&cursor, 1000));
});
