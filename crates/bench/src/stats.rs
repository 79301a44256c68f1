//! The arithmetic of a run: percentiles, loss and duplicate counting, medians and spreads.
//! Pure functions so they are unit-tested without any server.

use serde::Serialize;

/// Nearest-rank percentile of an ascending slice: the smallest value with at least `p`% of the
/// samples at or below it. `None` for an empty slice. Nearest-rank never interpolates, so every
/// reported figure is a latency that was actually observed.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    let idx = rank.clamp(1, n) - 1;
    sorted.get(idx).copied()
}

/// p50/p95/p99/max of a set of samples (any unit; the caller names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

/// Sorts the samples and summarises them; `None` when there are none.
pub fn summarize(mut samples: Vec<u64>) -> Option<Summary> {
    samples.sort_unstable();
    Some(Summary {
        count: samples.len(),
        p50: percentile(&samples, 50.0)?,
        p95: percentile(&samples, 95.0)?,
        p99: percentile(&samples, 99.0)?,
        max: *samples.last()?,
    })
}

/// What one connection received, reduced against the stamps the publisher actually sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Distinct sent stamps this connection received.
    pub unique: u64,
    /// Receipts of a stamp already received.
    pub duplicates: u64,
    /// Receipts of a stamp the publisher never got a 200 for (ignored for loss and latency).
    pub foreign: u64,
}

/// Counts unique and duplicate receipts. `received` is sorted in place; `sent` must be
/// ascending (the publisher's stamps are strictly increasing).
pub fn tally(received: &mut [u64], sent: &[u64]) -> Tally {
    received.sort_unstable();
    let mut t = Tally::default();
    let mut prev = None;
    for &s in received.iter() {
        if sent.binary_search(&s).is_err() {
            t.foreign += 1;
        } else if prev == Some(s) {
            t.duplicates += 1;
        } else {
            t.unique += 1;
        }
        prev = Some(s);
    }
    t
}

/// Median of a set of rounds' values (mean of the middle two for an even count), with the
/// minimum and maximum as the spread. `None` for no values.
pub fn median_spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[0], v[n - 1]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        // 10 samples: p95 is the 10th (ceil 9.5), p50 the 5th.
        let w = [1, 2, 3, 4, 5, 6, 7, 8, 9, 1000];
        assert_eq!(percentile(&w, 50.0), Some(5));
        assert_eq!(percentile(&w, 95.0), Some(1000));
    }

    #[test]
    fn summary_sorts() {
        let s = summarize(vec![30, 10, 20]).expect("non-empty");
        assert_eq!(
            s,
            Summary {
                count: 3,
                p50: 20,
                p95: 30,
                p99: 30,
                max: 30
            }
        );
        assert_eq!(summarize(vec![]), None);
    }

    #[test]
    fn tally_counts_duplicates_and_foreign() {
        let sent = [10, 20, 30, 40];
        let mut got = vec![30, 10, 10, 99, 30, 30];
        let t = tally(&mut got, &sent);
        assert_eq!(
            t,
            Tally {
                unique: 2,
                duplicates: 3,
                foreign: 1
            }
        );
        let mut none: Vec<u64> = vec![];
        assert_eq!(tally(&mut none, &sent), Tally::default());
    }

    #[test]
    fn median_and_spread() {
        assert_eq!(median_spread(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(median_spread(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(median_spread(&[f64::NAN]), None);
        assert_eq!(median_spread(&[]), None);
    }
}
