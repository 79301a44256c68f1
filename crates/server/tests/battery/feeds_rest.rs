//! SSE, long-poll and REST cases: every refusal is its documented status with a JSON body
//! (`{"error"}`, and `field` where a body field is wrong).

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_core::auth::Role;

use crate::ctx::{Case, Ctx, MAX_MESSAGE_BYTES, MAX_SUBSCRIPTIONS, now};

/// `GET path` with `headers`; the status and the JSON body (recorded). A 200 SSE stream is not
/// read.
async fn get(ctx: &Ctx, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = ctx.http.get(ctx.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if status == 200 && path.starts_with("/events") {
        return (status, Value::Null);
    }
    let text = res.text().await.unwrap();
    ctx.saw(text.clone());
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{path}: {status} answer is not JSON: {text:?}"));
    if status >= 400 {
        assert!(body["error"].is_string(), "{path}: {status} {text}");
    }
    (status, body)
}

async fn status_of(ctx: &Ctx, path: &str, headers: &[(&str, &str)]) -> u16 {
    get(ctx, path, headers).await.0
}

fn forged(ctx: &Ctx) -> String {
    let claims = json!({"sub":"battery-forged","role":"hq","exp":now() + 3600});
    ctx.sign(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        "not-the-secret",
    )
}

/// A PUT of mission 1 with a raw body; status and body.
async fn put(ctx: &Ctx, token: Option<&str>, body: &str) -> (u16, Value) {
    ctx.rest(Method::PUT, "/missions/1", token, Some(body.to_owned()))
        .await
}

pub fn cases() -> Vec<Case> {
    vec![
        case!("sse: bad channel lists → 400", |ctx| {
            let many: Vec<String> = (0..=MAX_SUBSCRIPTIONS)
                .map(|i| format!("room:m{i}"))
                .collect();
            let many = format!("/events?channels={}", many.join(","));
            for path in [
                "/events",
                "/events?channels=",
                "/events?channels=a%20b",
                "/events?channels=room:%C3%A9",
                &many,
            ] {
                assert_eq!(status_of(&ctx, path, &[]).await, 400, "{path}");
            }
        }),
        case!("sse: a channel the caller may not read → 403", |ctx| {
            assert_eq!(
                status_of(&ctx, "/events?channels=user:someone", &[]).await,
                403
            );
            let (_, agent) = ctx.user(Role::Agent, &[]);
            let auth = format!("Bearer {agent}");
            assert_eq!(
                status_of(
                    &ctx,
                    "/events?channels=user:someone",
                    &[("authorization", &auth)]
                )
                .await,
                403
            );
        }),
        case!("sse: a forged token → 401", |ctx| {
            let auth = format!("Bearer {}", forged(&ctx));
            assert_eq!(
                status_of(
                    &ctx,
                    "/events?channels=missions",
                    &[("authorization", &auth)]
                )
                .await,
                401
            );
            assert_eq!(
                status_of(
                    &ctx,
                    "/events?channels=missions",
                    &[("authorization", "Bearer x")]
                )
                .await,
                401
            );
        }),
        case!("sse: a malformed Last-Event-ID → 400", |ctx| {
            for id in ["garbage", "missions:1", "%%%", "{\"a\":1}"] {
                assert_eq!(
                    status_of(&ctx, "/events?channels=missions", &[("last-event-id", id)]).await,
                    400,
                    "{id}"
                );
            }
        }),
        case!("sse and poll: a disallowed Origin → 403", |ctx| {
            let evil = [("origin", "http://evil.example")];
            assert_eq!(
                status_of(&ctx, "/events?channels=missions", &evil).await,
                403
            );
            assert_eq!(status_of(&ctx, "/poll?channels=missions", &evil).await, 403);
        }),
        case!("poll: malformed cursors and timeouts → 400", |ctx| {
            for q in [
                "cursor=garbage",
                "cursor=%00",
                "timeout=abc",
                "timeout=-1",
                "timeout=NaN",
            ] {
                let path = format!("/poll?channels=missions&{q}");
                assert_eq!(status_of(&ctx, &path, &[]).await, 400, "{path}");
            }
            // Over the maximum is the maximum (60 s), not an error: without a cursor the answer
            // is immediate.
            assert_eq!(
                status_of(&ctx, "/poll?channels=missions&timeout=100000", &[]).await,
                200
            );
        }),
        case!("poll: a forged token → 401", |ctx| {
            let auth = format!("Bearer {}", forged(&ctx));
            assert_eq!(
                status_of(
                    &ctx,
                    "/poll?channels=missions&timeout=0",
                    &[("authorization", &auth)]
                )
                .await,
                401
            );
        }),
        case!(
            "poll: a cursor the server issued is always accepted back",
            |ctx| {
                let names: Vec<String> = (0..MAX_SUBSCRIPTIONS)
                    .map(|i| format!("room:{}-{i}", "c".repeat(200)))
                    .collect();
                let path = format!("/poll?channels={}&timeout=0", names.join(","));
                let (status, body) = get(&ctx, &path, &[]).await;
                assert_eq!(status, 200, "{body}");
                let cursor = body["cursor"].as_str().expect("a cursor").to_owned();
                let again = format!("{path}&cursor={cursor}");
                assert_eq!(status_of(&ctx, &again, &[]).await, 200);
            }
        ),
        case!(
            "rest: malformed, mistyped and unknown body fields → 400/422 naming the field",
            |ctx| {
                let (_, hq) = ctx.user(Role::Hq, &[]);
                let hq = Some(hq.as_str());
                for body in [
                    "{nope",
                    "[1]",
                    "",
                    "null",
                    r#"{"status":"active","status":"planned"}"#,
                ] {
                    let (s, b) = put(&ctx, hq, body).await;
                    assert_eq!(
                        (s, b["field"].as_str()),
                        (422, Some("body")),
                        "{body:?} → {b}"
                    );
                }
                let (s, b) = put(&ctx, hq, r#"{"status":"bogus"}"#).await;
                assert_eq!((s, b["field"].as_str()), (422, Some("status")), "{b}");
                let (s, b) = put(&ctx, hq, r#"{"status":7}"#).await;
                assert_eq!(s, 422, "{b}");
                let (s, b) = put(&ctx, hq, r#"{"status":"active","extraction_code_x":"1"}"#).await;
                assert_eq!(s, 422, "{b}");
                let (s, b) = put(
                    &ctx,
                    hq,
                    &json!({"location": "l".repeat(10_000)}).to_string(),
                )
                .await;
                assert_eq!((s, b["field"].as_str()), (422, Some("location")), "{b}");
            }
        ),
        case!(
            "rest: no, wrong-role, forged, expired and alg-none tokens → 401/403",
            |ctx| {
                let body = r#"{"status":"active"}"#;
                assert_eq!(put(&ctx, None, body).await.0, 401);
                let (_, agent) = ctx.user(Role::Agent, &[]);
                assert_eq!(put(&ctx, Some(&agent), body).await.0, 403);
                assert_eq!(put(&ctx, Some(&forged(&ctx)), body).await.0, 401);
                let expired = ctx.sign(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &json!({"sub":"battery-old","role":"hq","exp":now() - 5}),
                    crate::ctx::SECRET,
                );
                assert_eq!(put(&ctx, Some(&expired), body).await.0, 401);
                let none = crate::common::alg_none_token();
                ctx.remember_token(&none);
                assert_eq!(put(&ctx, Some(&none), body).await.0, 401);
            }
        ),
        case!("rest: unknown missions and routes → 404 JSON", |ctx| {
            let (_, hq) = ctx.user(Role::Hq, &[]);
            let (s, _) = ctx
                .rest(
                    Method::PUT,
                    "/missions/999999",
                    Some(&hq),
                    Some(r#"{"status":"active"}"#.into()),
                )
                .await;
            assert_eq!(s, 404);
            assert_eq!(
                ctx.rest(Method::GET, "/missions/999999", None, None)
                    .await
                    .0,
                404
            );
            assert_eq!(
                ctx.rest(Method::GET, "/no/such/route", None, None).await.0,
                404
            );
            let (s, _) = ctx
                .rest(Method::GET, "/missions/not-a-number", None, None)
                .await;
            assert!(s == 400 || s == 404, "{s}");
        }),
        case!("rest: a body over max_message_bytes → 413 JSON", |ctx| {
            let (_, hq) = ctx.user(Role::Hq, &[]);
            let big = json!({"location": "x".repeat(MAX_MESSAGE_BYTES + 10)}).to_string();
            assert_eq!(put(&ctx, Some(&hq), &big).await.0, 413);
        }),
        case!(
            "rest: /api/publish with a reserved event or a bad channel → 422",
            |ctx| {
                let (_, hq) = ctx.user(Role::Hq, &[]);
                for (body, field) in [
                    (
                        json!({"channel":"room:b","event":"connect","data":1}),
                        "event",
                    ),
                    (
                        json!({"channel":"room:b","event":"error","data":1}),
                        "event",
                    ),
                    (json!({"channel":"a b","event":"note","data":1}), "channel"),
                    (json!({"channel":"","event":"note","data":1}), "channel"),
                ] {
                    let (s, b) = ctx
                        .rest(
                            Method::POST,
                            "/api/publish",
                            Some(&hq),
                            Some(body.to_string()),
                        )
                        .await;
                    assert_eq!((s, b["field"].as_str()), (422, Some(field)), "{body} → {b}");
                }
                let (_, agent) = ctx.user(Role::Agent, &[]);
                let body = json!({"channel":"room:b","event":"note","data":1}).to_string();
                let (s, _) = ctx
                    .rest(Method::POST, "/api/publish", Some(&agent), Some(body))
                    .await;
                assert_eq!(s, 403);
            }
        ),
        case!(
            "rest: payments with a bad amount, socketId or extra field → 422",
            |ctx| {
                for (body, field) in [
                    (json!({"amount":-5,"socketId":"abc"}), "amount"),
                    (json!({"amount":0,"socketId":"abc"}), "amount"),
                    (json!({"amount":"five","socketId":"abc"}), "amount"),
                    (json!({"amount":5,"socketId":""}), "socketId"),
                    (json!({"amount":5,"socketId":"a b"}), "socketId"),
                    (
                        json!({"amount":5,"socketId":"abc","status":"succeeded"}),
                        "body",
                    ),
                ] {
                    let (s, b) = ctx
                        .rest(
                            Method::POST,
                            "/api/payments/make-payment-with-socket",
                            None,
                            Some(body.to_string()),
                        )
                        .await;
                    assert_eq!(s, 422, "{body} → {b}");
                    if field != "amount" || body["amount"].is_number() {
                        assert_eq!(b["field"], field, "{body} → {b}");
                    }
                }
                let (s, _) = ctx
                    .rest(Method::GET, "/api/payments/no-such-payment", None, None)
                    .await;
                assert_eq!(s, 404);
            }
        ),
        case!(
            "rest: city data from the wrong role or of the wrong shape → 403/422",
            |ctx| {
                let (_, agent) = ctx.user(Role::Agent, &["city:*"]);
                let body = json!({"metrics":{"air_quality":10}}).to_string();
                let (s, _) = ctx
                    .rest(
                        Method::POST,
                        "/api/cities/nairobi/data",
                        Some(&agent),
                        Some(body),
                    )
                    .await;
                assert_eq!(s, 403);
                let (_, pipeline) = ctx.user(Role::Pipeline, &[]);
                let (s, b) = ctx
                    .rest(
                        Method::POST,
                        "/api/cities/nairobi/data",
                        Some(&pipeline),
                        Some(r#"{"metrics":"hot"}"#.into()),
                    )
                    .await;
                assert_eq!(s, 422, "{b}");
                let (s, _) = ctx
                    .rest(
                        Method::POST,
                        "/api/cities/a%20b/data",
                        Some(&pipeline),
                        Some(r#"{"metrics":{"x":1}}"#.into()),
                    )
                    .await;
                assert!(s == 400 || s == 422, "{s}");
            }
        ),
    ]
}
