//! Unit tests of the chaos test's checker (`chaos_check`): the rules fail what they must and
//! accept what the server announced, without any service running.

use std::time::Instant;

use switchboard_core::publication::StreamPosition;

use crate::chaos_check::{Ledger, Obs, Published, check};

fn pos(offset: u64, epoch: &str) -> StreamPosition {
    StreamPosition {
        offset,
        epoch: epoch.into(),
    }
}

fn ledger_of(entries: &[(u64, &str, u64)]) -> Ledger {
    let now = Instant::now();
    Ledger {
        acked: entries
            .iter()
            .map(|(seq, epoch, offset)| Published {
                seq: *seq,
                channel: "c".into(),
                position: pos(*offset, epoch),
                acked: now,
            })
            .collect(),
        ..Ledger::default()
    }
}

fn log_of(obs: Vec<Obs>) -> Vec<(Instant, Obs)> {
    obs.into_iter().map(|o| (Instant::now(), o)).collect()
}

fn sync(asked: Option<StreamPosition>, position: Option<StreamPosition>, recovered: bool) -> Obs {
    Obs::Sync {
        channel: "c".into(),
        asked,
        position,
        recovered,
    }
}

fn delivery(seq: u64, offset: u64, epoch: &str) -> Obs {
    Obs::Delivery {
        channel: "c".into(),
        position: pos(offset, epoch),
        seq,
        resume_from: None,
    }
}

#[test]
fn the_checker_fails_a_silent_hole_a_duplicate_and_a_delivery_nobody_published() {
    let ledger = ledger_of(&[(1, "a", 1), (2, "a", 2), (3, "a", 3), (4, "a", 4)]);
    let v = check(
        &log_of(vec![
            sync(None, Some(pos(0, "a")), false),
            delivery(1, 1, "a"),
            delivery(3, 3, "a"), // 2 silently missing
            delivery(3, 3, "a"), // duplicate
            delivery(9, 4, "a"), // not what was published at a:4
        ]),
        &ledger,
        false,
    );
    assert_eq!(v.violations.len(), 3, "{:?}", v.violations);
    assert!(
        v.violations[0].contains("silent hole"),
        "{:?}",
        v.violations
    );
    assert!(v.violations[1].contains("duplicate"), "{:?}", v.violations);
    assert!(
        v.violations[2].contains("acknowledged seq 4"),
        "{:?}",
        v.violations
    );
    assert!(v.gaps.is_empty());
}

#[test]
fn the_checker_accepts_announced_gaps_and_counts_what_they_lost() {
    let ledger = ledger_of(&[
        (1, "a", 1),
        (2, "a", 2),
        (3, "a", 3),
        (4, "b", 1),
        (5, "b", 2),
        (6, "c", 1),
    ]);
    let v = check(
        &log_of(vec![
            sync(None, Some(pos(0, "a")), false),
            delivery(1, 1, "a"),
            Obs::Lost("killed".into()),
            Obs::Connected("127.0.0.1:1".parse().unwrap()),
            // Resumed from a:1 after Redis lost everything: recovered:false, continue at b:1.
            sync(Some(pos(1, "a")), Some(pos(1, "b")), false),
            delivery(5, 2, "b"),
            // A live delivery in a new epoch is the other explicit gap.
            delivery(6, 1, "c"),
        ]),
        &ledger,
        false,
    );
    assert!(v.violations.is_empty(), "{:?}", v.violations);
    assert_eq!(v.resumes.len(), 1);
    let gaps: Vec<(&str, u64, u64)> = v.gaps.iter().map(|g| (g.how, g.lost, g.skipped)).collect();
    assert_eq!(gaps, [("recovered:false", 2, 1), ("epoch change", 0, 0)]);
    // recovered:false within one epoch whose history still holds it is a failure.
    let v = check(
        &log_of(vec![
            sync(None, Some(pos(0, "a")), false),
            delivery(1, 1, "a"),
            sync(Some(pos(1, "a")), Some(pos(3, "a")), false),
        ]),
        &ledger,
        false,
    );
    assert!(
        v.violations[0].contains("though history holds it"),
        "{:?}",
        v.violations
    );
}

#[test]
fn the_checker_holds_the_rust_client_to_a_gap_before_an_epoch_change() {
    let ledger = ledger_of(&[(1, "a", 1), (2, "b", 1)]);
    let log = log_of(vec![
        sync(None, Some(pos(0, "a")), false),
        delivery(1, 1, "a"),
        delivery(2, 1, "b"),
    ]);
    let v = check(&log, &ledger, true);
    assert!(
        v.violations[0].contains("without a gap"),
        "{:?}",
        v.violations
    );
    assert!(check(&log, &ledger, false).violations.is_empty());
}
