//! DTO shapes and body validation.

use switchboard_store::MissionStatus;

use super::validate::parse_patch;
use super::*;

fn record() -> MissionRecord {
    MissionRecord {
        id: 1,
        codename: "N".into(),
        status: MissionStatus::Active,
        location: "V".into(),
        objective: "O".into(),
        handler_notes: "H".into(),
        asset_identity: "A".into(),
        extraction_code: "E".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

#[test]
fn dto_fields_are_exact() {
    let agent = serde_json::to_value(MissionAgentDto::from(&record())).unwrap();
    let keys: Vec<_> = agent.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["codename", "id", "location", "status"]);
    let hq = serde_json::to_value(MissionHqDto::from(&record())).unwrap();
    let keys: Vec<_> = hq.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "codename",
            "id",
            "location",
            "objective",
            "status",
            "updated_at"
        ]
    );
}

#[test]
fn patch_validation_names_the_field() {
    let err = |s: &str| parse_patch(&Bytes::from(s.to_owned())).unwrap_err();
    assert_eq!(
        err(r#"{"status":"lost"}"#).status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(err(r#"{"status":"lost"}"#).field(), Some("status"));
    assert_eq!(
        err(&format!(r#"{{"location":"{}"}}"#, "x".repeat(201))).field(),
        Some("location")
    );
    assert_eq!(err(r#"{"objective":5}"#).field(), Some("objective"));
    assert_eq!(err(r#"{"handler_notes":"x"}"#).field(), Some("body"));
    assert_eq!(err(r#"{}"#).field(), Some("body"));
    assert_eq!(err("nope").field(), Some("body"));
    // Two values for one field: which one a reader sees depends on the reader.
    let twice = err(r#"{"status":"active","status":"aborted"}"#);
    assert_eq!(twice.field(), Some("body"));
    assert_eq!(twice.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let ok = parse_patch(&Bytes::from_static(
        br#"{"status":"compromised","location":"Berlin"}"#,
    ))
    .unwrap();
    assert_eq!(ok.status, Some(MissionStatus::Compromised));
    assert!(
        parse_patch(&Bytes::from(format!(
            r#"{{"location":"{}"}}"#,
            "x".repeat(200)
        )))
        .is_ok()
    );
}
