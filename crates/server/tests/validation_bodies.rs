//! The 422 answers of every REST body, byte for byte: the bodies are read by serde and checked
//! by the garde rules of their input types (`http::input`), and each answer is exactly the
//! `{"error", "field"}` the hand-written checks gave before.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use serde_json::{Value, json};
use switchboard_core::auth::Role;

use common::{TestServer, hq, token};

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let c = reqwest::Client::new();
    let mut req = match method {
        "PUT" => c.put(server.http(path)),
        _ => c.post(server.http(path)),
    }
    .header("content-type", "application/json")
    .body(body.to_owned());
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn expect(field: &str, error: &str) -> Value {
    json!({"error": error, "field": field})
}

#[tokio::test]
async fn mission_bodies_answer_exactly() {
    let server = TestServer::start().await;
    let hq = hq();
    let long = "x".repeat(201);
    let cases: Vec<(&str, &str, String, Value)> = vec![
        (
            "PUT",
            "/missions/1",
            r#"{"status":"lost"}"#.into(),
            expect(
                "status",
                "status must be one of planned, active, compromised, completed, aborted",
            ),
        ),
        (
            "PUT",
            "/missions/1",
            r#"{"status":7}"#.into(),
            expect("status", "status must be a string"),
        ),
        (
            "PUT",
            "/missions/1",
            format!(r#"{{"location":"{long}"}}"#),
            expect("location", "location must be at most 200 characters"),
        ),
        (
            "PUT",
            "/missions/1",
            r#"{"location":"a\u0007b"}"#.into(),
            expect("location", "location must not contain control characters"),
        ),
        (
            "PUT",
            "/missions/1",
            r#"{"location":"   "}"#.into(),
            expect("location", "location must not be empty"),
        ),
        (
            "PUT",
            "/missions/1",
            r#"{"objective":12}"#.into(),
            expect("objective", "objective must be a string"),
        ),
        (
            "PUT",
            "/missions/1",
            r#"{"handler_notes":"x"}"#.into(),
            expect(
                "body",
                "Unknown field; allowed fields are status, location, objective",
            ),
        ),
        (
            "PUT",
            "/missions/1",
            "{}".into(),
            expect(
                "body",
                "Body must contain at least one of status, location, objective",
            ),
        ),
        (
            "PUT",
            "/missions/1",
            r#"{"status":null}"#.into(),
            expect(
                "body",
                "Body must contain at least one of status, location, objective",
            ),
        ),
        (
            "PUT",
            "/missions/1",
            "[1]".into(),
            expect("body", "Body must be a JSON object"),
        ),
        (
            "PUT",
            "/missions/1",
            "{nope".into(),
            expect("body", "Body is not valid JSON"),
        ),
        (
            "PUT",
            "/missions/1",
            r#"{"status":"active","status":"aborted"}"#.into(),
            expect("body", "Body names a field twice"),
        ),
        (
            "POST",
            "/missions",
            r#"{"location":"x"}"#.into(),
            expect("codename", "codename is required"),
        ),
        (
            "POST",
            "/missions",
            r#"{"codename":"  ","location":"x"}"#.into(),
            expect("codename", "codename must not be empty"),
        ),
        (
            "POST",
            "/missions",
            r#"{"codename":"A"}"#.into(),
            expect("location", "location is required"),
        ),
        (
            "POST",
            "/missions",
            format!(r#"{{"codename":"A","location":"x","extraction_code":"{long}"}}"#),
            expect(
                "extraction_code",
                "extraction_code must be at most 200 characters",
            ),
        ),
        (
            "POST",
            "/missions",
            r#"{"codename":"A","location":"x","id":3}"#.into(),
            expect(
                "body",
                "Unknown field; allowed fields are codename, status, location, objective, \
                            handler_notes, asset_identity, extraction_code",
            ),
        ),
    ];
    for (method, path, body, want) in cases {
        let (status, got) = send(&server, method, path, Some(&hq), &body).await;
        assert_eq!((status, &got), (422, &want), "{method} {path} {body}");
    }
}

#[tokio::test]
async fn payment_city_and_publish_bodies_answer_exactly() {
    let server = TestServer::start().await;
    let hq = hq();
    let pipeline = token("pipe", Role::Pipeline, &[]);
    let pay = "/api/payments/make-payment-with-socket";
    let city = "/api/cities/nairobi/data";
    let cases: Vec<(&str, Option<&str>, &str, Value)> = vec![
        (
            pay,
            None,
            r#"{"amount":0,"socketId":"a"}"#,
            expect("amount", "amount must be a positive number"),
        ),
        (
            pay,
            None,
            r#"{"amount":"5","socketId":"a"}"#,
            expect("amount", "amount must be a positive number"),
        ),
        (
            pay,
            None,
            r#"{"socketId":"a"}"#,
            expect("amount", "amount must be a positive number"),
        ),
        (
            pay,
            None,
            r#"{"amount":5}"#,
            expect("socketId", "socketId must be a non-empty string"),
        ),
        (
            pay,
            None,
            r#"{"amount":5,"socketId":7}"#,
            expect("socketId", "socketId must be a non-empty string"),
        ),
        (
            pay,
            None,
            r#"{"amount":5,"socketId":"a b"}"#,
            expect("socketId", "socketId is not a valid connection id"),
        ),
        (
            pay,
            None,
            r#"{"amount":5,"socketId":"a","status":"x"}"#,
            expect("body", "Unknown field; allowed fields are amount, socketId"),
        ),
        (
            pay,
            None,
            "nope",
            expect("body", "Body must be a JSON object"),
        ),
        (
            city,
            Some(&pipeline),
            r#"{"metrics":{}}"#,
            expect("metrics", "metrics must not be empty"),
        ),
        (
            city,
            Some(&pipeline),
            r#"{"metrics":[1]}"#,
            expect(
                "metrics",
                "metrics must be an object of metric name to number",
            ),
        ),
        (
            city,
            Some(&pipeline),
            r#"{}"#,
            expect(
                "metrics",
                "metrics must be an object of metric name to number",
            ),
        ),
        (
            city,
            Some(&pipeline),
            r#"{"metrics":{"a":null}}"#,
            expect("metrics", "metric a must be a finite number"),
        ),
        (
            city,
            Some(&pipeline),
            r#"{"metrics":{"a b":1}}"#,
            expect(
                "metrics",
                "metric names are 1-64 characters of letters, digits, '_', '-', '.'",
            ),
        ),
        (
            city,
            Some(&pipeline),
            r#"{"metrics":{"a":1},"x":2}"#,
            expect("body", "Unknown field; only metrics is allowed"),
        ),
        (
            city,
            Some(&pipeline),
            "{nope",
            expect("body", "Body is not valid JSON"),
        ),
        (
            "/api/publish",
            Some(&hq),
            r#"{"event":"x"}"#,
            expect("channel", "channel is required (a string)"),
        ),
        (
            "/api/publish",
            Some(&hq),
            r#"{"channel":"room:1","event":"has space"}"#,
            expect(
                "event",
                "event is required: 1-64 characters of letters, digits, '_', '-', '.', ':'",
            ),
        ),
        (
            "/api/publish",
            Some(&hq),
            r#"{"channel":"room:1","event":"x","extra":1}"#,
            expect(
                "body",
                "Unknown field; allowed fields are channel, event, data",
            ),
        ),
        (
            "/api/publish",
            Some(&hq),
            "[]",
            expect("body", "Body must be a JSON object"),
        ),
        (
            "/api/client/publish",
            None,
            r#"{"channel":"room:1"}"#,
            expect(
                "body",
                "Body must be a JSON object with exactly the documented fields",
            ),
        ),
        (
            "/api/client/ack",
            Some(&hq),
            r#"{"channel":"user:x","offset":-1}"#,
            expect(
                "body",
                "Body must be a JSON object with exactly the documented fields",
            ),
        ),
    ];
    for (path, bearer, body, want) in cases {
        let (status, got) = send(&server, "POST", path, bearer, body).await;
        assert_eq!((status, &got), (422, &want), "{path} {body}");
    }
    // Over 100 metrics, and a metric value that is not a number.
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("m{i}"), json!(1))).collect();
    let (status, got) = send(
        &server,
        "POST",
        city,
        Some(&pipeline),
        &json!({"metrics": many}).to_string(),
    )
    .await;
    assert_eq!(
        (status, got),
        (422, expect("metrics", "at most 100 metrics per post"))
    );
}
