//! Native WebSocket cases that decode: bad messages answered with an `error` frame of the
//! documented code (docs/protocol.md, "Errors") on a connection that stays open, and bad tokens
//! and floods answered with the documented close code.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use switchboard_core::auth::Role;

use crate::common::Ws;
use crate::ctx::{Case, Ctx, MAX_SUBSCRIPTIONS, SECRET, now};

/// A connection of a fresh agent (its own rate-limit bucket), `authenticated` read.
async fn agent(ctx: &Ctx) -> Ws {
    let (_, token) = ctx.user(Role::Agent, &[]);
    let mut ws = ctx.ws(&format!("?token={token}")).await;
    assert_eq!(ws.recv().await["type"], "authenticated");
    ws
}

/// Sends `frame` and expects an error frame with `code`; the connection must stay open.
async fn refused(ctx: &Ctx, frame: &str, code: &str) -> Value {
    let mut ws = agent(ctx).await;
    ws.send_text(frame).await;
    let answer = ws.recv().await;
    assert_eq!(
        (answer["type"].as_str(), answer["code"].as_str()),
        (Some("error"), Some(code)),
        "{frame} → {answer}"
    );
    ws.expect_silence(Duration::from_millis(50)).await;
    ctx.keep(ws);
    answer
}

/// Sends `auth` with `token` and expects `auth_error` then the close `code`.
async fn auth_closes(ctx: &Ctx, token: &str, code: u16) {
    ctx.remember_token(token);
    let mut ws = ctx.ws("").await;
    ws.send(json!({"type":"auth","token":token})).await;
    assert_eq!(ws.recv().await["type"], "auth_error");
    assert_eq!(ws.close_code().await, code, "token {token:.40}…");
    ctx.keep(ws);
}

fn claims(extra: Value) -> Value {
    let mut c = json!({"sub":"battery-forged","role":"hq","exp":now() + 3600});
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

pub fn cases() -> Vec<Case> {
    vec![
        case!("native: not JSON → invalid_json", |ctx| {
            refused(&ctx, "{nope", "invalid_json").await;
        }),
        case!("native: JSON array → invalid_message", |ctx| {
            refused(&ctx, "[1,2]", "invalid_message").await;
        }),
        case!(
            "native: subscribe without channel → invalid_message",
            |ctx| {
                refused(&ctx, r#"{"type":"subscribe"}"#, "invalid_message").await;
            }
        ),
        case!(
            "native: channel of the wrong type → invalid_message",
            |ctx| {
                refused(
                    &ctx,
                    r#"{"type":"subscribe","channel":5}"#,
                    "invalid_message",
                )
                .await;
            }
        ),
        case!(
            "native: unknown type → unknown_type, ref echoed as written",
            |ctx| {
                let mut ws = agent(&ctx).await;
                ws.send_text(r#"{"type":"dance","ref":1.0000000000000001}"#)
                    .await;
                let v = ws.recv().await;
                assert_eq!(v["code"], "unknown_type", "{v}");
                let raw = ws.seen.last().unwrap();
                assert!(raw.contains(r#""ref":1.0000000000000001"#), "{raw}");
                ctx.keep(ws);
            }
        ),
        case!("native: binary frame → invalid_message", |ctx| {
            let mut ws = agent(&ctx).await;
            futures_util::SinkExt::send(
                &mut ws.socket,
                tokio_tungstenite::tungstenite::Message::binary(vec![0u8, 159, 146, 150]),
            )
            .await
            .unwrap();
            assert_eq!(ws.recv().await["code"], "invalid_message");
            ws.expect_silence(Duration::from_millis(50)).await;
            ctx.keep(ws);
        }),
        case!("native: odd channel names → bad_request", |ctx| {
            let long = "a".repeat(256);
            for name in [
                "",
                " ",
                "a b",
                "room:é",
                "room:x\u{0}",
                "room:\n",
                &long,
                "missions*",
            ] {
                let frame = json!({"type":"subscribe","channel":name}).to_string();
                refused(&ctx, &frame, "bad_request").await;
            }
        }),
        case!(
            "native: channels the token does not allow → forbidden",
            |ctx| {
                for name in [
                    "user:someone-else",
                    "city:nairobi",
                    "conn:someone",
                    "payment:x",
                ] {
                    let frame = json!({"type":"subscribe","channel":name}).to_string();
                    refused(&ctx, &frame, "forbidden").await;
                }
            }
        ),
        case!(
            "native: reserved and server-owned event names → forbidden",
            |ctx| {
                for event in [
                    "connect",
                    "disconnect",
                    "newListener",
                    "error",
                    "subscribed",
                    "mission-update",
                    "close",
                ] {
                    let frame =
                        json!({"type":"publish","channel":"room:battery","event":event,"data":1})
                            .to_string();
                    refused(&ctx, &frame, "forbidden").await;
                }
            }
        ),
        case!("native: malformed event names → bad_request", |ctx| {
            let long = "e".repeat(65);
            for event in ["", "a b", "<script>", &long] {
                let frame =
                    json!({"type":"publish","channel":"room:battery","event":event,"data":1})
                        .to_string();
                refused(&ctx, &frame, "bad_request").await;
            }
        }),
        case!(
            "native: publish where publishing is off → forbidden",
            |ctx| {
                let frame = r#"{"type":"publish","channel":"missions","event":"note","data":1}"#;
                refused(&ctx, frame, "forbidden").await;
            }
        ),
        case!("native: malformed since → invalid_message", |ctx| {
            for since in [
                json!({"offset":-1,"epoch":"x"}),
                json!({"offset":1e30,"epoch":"x"}),
                json!({"offset":1,"epoch":5}),
                json!("7"),
            ] {
                let frame =
                    json!({"type":"subscribe","channel":"missions","since":since}).to_string();
                refused(&ctx, &frame, "invalid_message").await;
            }
        }),
        case!("native: ack of another user's inbox → forbidden", |ctx| {
            let frame = r#"{"type":"ack","channel":"user:someone-else","offset":1}"#;
            refused(&ctx, frame, "forbidden").await;
        }),
        case!("native: empty and overlong chat → bad_request", |ctx| {
            let long = "x".repeat(2001);
            for message in ["", "   ", &long] {
                let frame = json!({"type":"chat","message":message}).to_string();
                refused(&ctx, &frame, "bad_request").await;
            }
        }),
        case!(
            "native: presence where it is off, unsubscribe from nothing → not_found",
            |ctx| {
                refused(
                    &ctx,
                    r#"{"type":"presence","channel":"missions"}"#,
                    "not_found",
                )
                .await;
                refused(
                    &ctx,
                    r#"{"type":"unsubscribe","channel":"room:never"}"#,
                    "not_found",
                )
                .await;
            }
        ),
        case!(
            "native: subscribing twice, and past the limit → bad_request",
            |ctx| {
                let mut ws = agent(&ctx).await;
                for i in 0..MAX_SUBSCRIPTIONS {
                    ws.subscribe(&format!("room:limit-{i}")).await;
                }
                ws.send(json!({"type":"subscribe","channel":"room:limit-0"}))
                    .await;
                assert_eq!(ws.recv().await["code"], "bad_request");
                ws.send(json!({"type":"subscribe","channel":"room:limit-x"}))
                    .await;
                assert_eq!(ws.recv().await["code"], "bad_request");
                ws.expect_silence(Duration::from_millis(50)).await;
                ctx.keep(ws);
            }
        ),
        case!(
            "native: auth with another user's token → forbidden, connection kept",
            |ctx| {
                let mut ws = agent(&ctx).await;
                let (_, other) = ctx.user(Role::Agent, &[]);
                ws.send(json!({"type":"auth","token":other})).await;
                assert_eq!(ws.recv().await["code"], "forbidden");
                ws.expect_silence(Duration::from_millis(50)).await;
                ctx.keep(ws);
            }
        ),
        case!(
            "native: garbage token in the URL → auth_error, 4002",
            |ctx| {
                let mut ws = ctx.ws("?token=not.a.jwt").await;
                assert_eq!(ws.recv().await["type"], "auth_error");
                assert_eq!(ws.close_code().await, 4002);
                ctx.keep(ws);
            }
        ),
        case!("native: forged tokens → auth_error, 4002", |ctx| {
            let good = claims(json!({}));
            let wrong_secret = ctx.sign(&Header::new(Algorithm::HS256), &good, "not-the-secret");
            auth_closes(&ctx, &wrong_secret, 4002).await;
            auth_closes(&ctx, &crate::common::alg_none_token(), 4002).await;
            let hs384 = ctx.sign(&Header::new(Algorithm::HS384), &good, SECRET);
            auth_closes(&ctx, &hs384, 4002).await;
            let future = ctx.sign(
                &Header::new(Algorithm::HS256),
                &claims(json!({"nbf": now() + 3000})),
                SECRET,
            );
            auth_closes(&ctx, &future, 4002).await;
            let mut crit = Header::new(Algorithm::HS256);
            crit.crit = Some(vec!["x-battery".into()]);
            auth_closes(&ctx, &ctx.sign(&crit, &good, SECRET), 4002).await;
            let no_exp = json!({"sub":"battery-forged","role":"hq"});
            auth_closes(
                &ctx,
                &ctx.sign(&Header::new(Algorithm::HS256), &no_exp, SECRET),
                4002,
            )
            .await;
            let bad_role = claims(json!({"role":"root"}));
            auth_closes(
                &ctx,
                &ctx.sign(&Header::new(Algorithm::HS256), &bad_role, SECRET),
                4002,
            )
            .await;
        }),
        case!("native: expired token → auth_error, 4004", |ctx| {
            let expired = claims(json!({"exp": now() - 10}));
            let token = ctx.sign(&Header::new(Algorithm::HS256), &expired, SECRET);
            auth_closes(&ctx, &token, 4004).await;
        }),
        case!("native: empty token → auth_error, 4001", |ctx| {
            auth_closes(&ctx, "", 4001).await;
        }),
        case!("native: ten undecodable messages in a row → 4010", |ctx| {
            let mut ws = agent(&ctx).await;
            for _ in 0..10 {
                ws.send_text("{nope").await;
            }
            assert_eq!(ws.close_code().await, 4010);
            ctx.keep(ws);
        }),
        case!(
            "native: a message flood → rate_limited, then 4008",
            |ctx| {
                let mut ws = agent(&ctx).await;
                for i in 0..200 {
                    if ws
                        .socket_send_ok(json!({"type":"ping","ref":i}))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                assert_eq!(ws.close_code().await, 4008);
                let limited = ws
                    .seen
                    .iter()
                    .filter(|t| t.contains("rate_limited"))
                    .count();
                assert!(limited > 0, "no rate_limited answer before the close");
                ctx.keep(ws);
            }
        ),
    ]
}
