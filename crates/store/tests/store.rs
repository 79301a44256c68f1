//! The Store contract, run against every backend (SQLite always, PostgreSQL when reachable).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use switchboard_store::{
    InboxEntry, MissionPatch, MissionRecord, MissionStatus, NewMission, NewPayment, PaymentRecord,
    PaymentStatus, Store,
};

async fn seeds_five_missions_and_updates_partially(s: Arc<dyn Store>) {
    let all = s.list_missions().await.unwrap();
    assert!(all.len() >= 5);
    assert_eq!(
        all.iter().take(5).map(|m| m.id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    let before = s.get_mission(1).await.unwrap().unwrap();
    assert_eq!(before.codename, "Nightingale");
    let patch = MissionPatch {
        status: Some(MissionStatus::Compromised),
        location: Some("Berlin".into()),
        objective: None,
    };
    let after = s.update_mission(1, &patch).await.unwrap().unwrap();
    assert_eq!(after.status, MissionStatus::Compromised);
    assert_eq!(after.location, "Berlin");
    assert_eq!(after.objective, before.objective);
    assert_eq!(after.handler_notes, before.handler_notes);
    assert_ne!(after.updated_at, before.updated_at);
    assert_eq!(s.get_mission(1).await.unwrap().unwrap(), after);
    assert!(s.update_mission(999, &patch).await.unwrap().is_none());
}
on_every_backend!(
    missions_seed_and_partial_update,
    seeds_five_missions_and_updates_partially
);

async fn create_and_delete(s: Arc<dyn Store>) {
    let m = s
        .create_mission(&NewMission {
            codename: "X".into(),
            location: "Y".into(),
            ..NewMission::default()
        })
        .await
        .unwrap();
    assert_eq!(m.status, MissionStatus::Planned);
    assert!(m.id > 5, "new ids continue after the demo rows: {}", m.id);
    assert!(s.delete_mission(m.id).await.unwrap());
    assert!(!s.delete_mission(m.id).await.unwrap());
    assert!(s.get_mission(m.id).await.unwrap().is_none());
}
on_every_backend!(missions_create_and_delete, create_and_delete);

async fn city_snapshots_replace_the_previous_one(s: Arc<dyn Store>) {
    assert!(s.get_city_snapshot("nairobi").await.unwrap().is_none());
    let first = BTreeMap::from([
        ("air_quality".to_owned(), 42.5),
        ("traffic".to_owned(), 7.0),
    ]);
    s.put_city_snapshot("nairobi", &first).await.unwrap();
    let second = BTreeMap::from([("air_quality".to_owned(), 160.0)]);
    let stored = s.put_city_snapshot("nairobi", &second).await.unwrap();
    assert_eq!(stored.metrics, second);
    let got = s.get_city_snapshot("nairobi").await.unwrap().unwrap();
    assert_eq!(got, stored);
}
on_every_backend!(city_snapshots, city_snapshots_replace_the_previous_one);

async fn inbox_offsets_ack_and_expiry(s: Arc<dyn Store>) {
    assert!(s.inbox_position("alice").await.unwrap().is_none());
    for (i, ev) in ["a", "b", "c"].iter().enumerate() {
        let e = s
            .inbox_append("alice", ev, "{}", "ep1", 1000 + i as u64)
            .await
            .unwrap();
        assert_eq!((e.offset, e.epoch.as_str()), (i as u64 + 1, "ep1"));
    }
    // Another user's sequence is independent; a later epoch argument does not change it.
    assert_eq!(
        s.inbox_append("bob", "x", "1", "ep2", 5)
            .await
            .unwrap()
            .offset,
        1
    );
    assert_eq!(
        s.inbox_append("alice", "d", "{}", "other", 2000)
            .await
            .unwrap()
            .epoch,
        "ep1"
    );
    let offsets =
        |v: Vec<switchboard_store::InboxEntry>| v.iter().map(|e| e.offset).collect::<Vec<_>>();
    assert_eq!(
        offsets(s.inbox_pending("alice", 0).await.unwrap()),
        [1, 2, 3, 4]
    );
    assert_eq!(s.inbox_ack("alice", 2).await.unwrap(), 2);
    assert_eq!(offsets(s.inbox_pending("alice", 0).await.unwrap()), [3, 4]);
    // Expired entries are not pending.
    assert_eq!(offsets(s.inbox_pending("alice", 1500).await.unwrap()), [4]);
    assert_eq!(
        s.inbox_position("alice").await.unwrap(),
        Some((4, "ep1".to_owned()))
    );
    // Purge removes acked and expired ones.
    assert_eq!(s.inbox_purge(1500).await.unwrap(), 4); // alice 1-3 and bob 1
    assert_eq!(s.inbox_pending("alice", 0).await.unwrap().len(), 1);
    s.ping().await.unwrap();
}
on_every_backend!(inbox, inbox_offsets_ack_and_expiry);

async fn payments_start_pending_and_settle_once(s: Arc<dyn Store>) {
    let new = NewPayment {
        id: "pay_1".into(),
        amount: 12.5,
        socket_id: "abc".into(),
    };
    let p = s.create_payment(&new).await.unwrap();
    assert_eq!((p.status, p.amount), (PaymentStatus::Pending, 12.5));
    assert_eq!(s.get_payment("pay_1").await.unwrap(), Some(p));
    let done = s
        .settle_payment("pay_1", PaymentStatus::Failed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, PaymentStatus::Failed);
    // Already settled: not again.
    assert!(
        s.settle_payment("pay_1", PaymentStatus::Succeeded)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.get_payment("pay_1").await.unwrap().unwrap().status,
        PaymentStatus::Failed
    );
    assert!(s.get_payment("nope").await.unwrap().is_none());
    // The schema refuses what the app would never store.
    let bad = NewPayment {
        id: "pay_2".into(),
        amount: -1.0,
        socket_id: "abc".into(),
    };
    assert!(s.create_payment(&bad).await.is_err());
}
on_every_backend!(payments_settle_once, payments_start_pending_and_settle_once);

/// `updated_at`-style stamps: RFC 3339, UTC, milliseconds (`2026-01-01T00:00:00.000Z`).
fn assert_stamp(s: &str) {
    let b = s.as_bytes();
    assert!(
        s.len() == 24 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && s.ends_with('Z'),
        "not an RFC 3339 millisecond stamp: {s:?}"
    );
}

// Every column of every record type, read back through every query that returns it. The body
// is shared, so a column mapped wrongly for one driver (a type it decodes differently, a name
// it spells differently) fails here on that backend.
async fn every_column_maps_on_every_query(s: Arc<dyn Store>) {
    // A row written by the migration, not by the store: each column read as seeded.
    let seeded = s.get_mission(4).await.unwrap().unwrap();
    let expected = MissionRecord {
        id: 4,
        codename: "Silent Meridian".into(),
        status: MissionStatus::Completed,
        location: "Oslo".into(),
        objective: "Extract the defector safely".into(),
        handler_notes: "Debrief pending".into(),
        asset_identity: "L. Haugen, engineer".into(),
        extraction_code: "EX-9902-DELTA".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
    };
    assert_eq!(seeded, expected);
    assert_eq!(s.list_missions().await.unwrap()[3], expected);

    // Distinct values in every column, so a swapped pair would show.
    let new = NewMission {
        codename: "Codename".into(),
        status: Some(MissionStatus::Active),
        location: "Location".into(),
        objective: "Objective".into(),
        handler_notes: "Notes".into(),
        asset_identity: "Identity".into(),
        extraction_code: "Code".into(),
    };
    let created = s.create_mission(&new).await.unwrap();
    assert_stamp(&created.updated_at);
    assert_eq!(
        created,
        MissionRecord {
            id: created.id,
            codename: new.codename.clone(),
            status: MissionStatus::Active,
            location: new.location.clone(),
            objective: new.objective.clone(),
            handler_notes: new.handler_notes.clone(),
            asset_identity: new.asset_identity.clone(),
            extraction_code: new.extraction_code.clone(),
            updated_at: created.updated_at.clone(),
        }
    );
    assert_eq!(
        s.get_mission(created.id).await.unwrap(),
        Some(created.clone())
    );
    assert!(s.list_missions().await.unwrap().contains(&created));
    // A patch of one column leaves every other column as it was.
    let patch = MissionPatch {
        objective: Some("New objective".into()),
        ..MissionPatch::default()
    };
    let updated = s.update_mission(created.id, &patch).await.unwrap().unwrap();
    assert_stamp(&updated.updated_at);
    assert_eq!(
        updated,
        MissionRecord {
            objective: "New objective".into(),
            updated_at: updated.updated_at.clone(),
            ..created.clone()
        }
    );

    let payment = s
        .create_payment(&NewPayment {
            id: "pay_cols".into(),
            amount: 0.25,
            socket_id: "sock".into(),
        })
        .await
        .unwrap();
    assert_stamp(&payment.created_at);
    assert_eq!(
        (
            payment.id.as_str(),
            payment.amount,
            payment.socket_id.as_str(),
            payment.status
        ),
        ("pay_cols", 0.25, "sock", PaymentStatus::Pending)
    );
    assert_eq!(payment.updated_at, payment.created_at);
    let settled = s
        .settle_payment("pay_cols", PaymentStatus::Succeeded)
        .await
        .unwrap()
        .unwrap();
    assert_stamp(&settled.updated_at);
    assert_eq!(
        settled,
        PaymentRecord {
            status: PaymentStatus::Succeeded,
            updated_at: settled.updated_at.clone(),
            ..payment
        }
    );
    assert_eq!(s.get_payment("pay_cols").await.unwrap(), Some(settled));

    let metrics = BTreeMap::from([("a".to_owned(), -1.5), ("b".to_owned(), 1e-3)]);
    let city = s.put_city_snapshot("lima", &metrics).await.unwrap();
    assert_stamp(&city.updated_at);
    assert_eq!((city.city_id.as_str(), &city.metrics), ("lima", &metrics));
    assert_eq!(s.get_city_snapshot("lima").await.unwrap(), Some(city));

    let first = s
        .inbox_append("carol", "ev-1", r#"{"n":1}"#, "epoch-c", 7_000)
        .await
        .unwrap();
    let second = s
        .inbox_append("carol", "ev-2", r#"{"n":2}"#, "epoch-c", 8_000)
        .await
        .unwrap();
    assert_eq!(
        first,
        InboxEntry {
            offset: 1,
            epoch: "epoch-c".into(),
            event: "ev-1".into(),
            data: r#"{"n":1}"#.into(),
            created_at_ms: 7_000,
        }
    );
    assert_eq!(s.inbox_pending("carol", 0).await.unwrap(), [first, second]);
    assert_eq!(
        s.inbox_position("carol").await.unwrap(),
        Some((2, "epoch-c".to_owned()))
    );
}
on_every_backend!(every_column_maps, every_column_maps_on_every_query);
