//! Socket.IO cases: refused handshakes answer `connect_error`, refused events answer in the ack
//! with `{error, code}` (docs/socketio.md), malformed packets end the connection, and a name
//! socket.io-client reserves never reaches a room.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::auth::Role;

use crate::common::sio::{Packet, Sio};
use crate::ctx::{Case, Ctx, SECRET, now};

async fn connect(ctx: &Ctx, auth: Option<Value>) -> Result<Sio, String> {
    let out = Sio::connect(ctx.addr, auth, None).await;
    if let Err(message) = &out {
        ctx.saw(message.clone());
    }
    out
}

/// A socket of a fresh agent, its `socket-id` read.
async fn socket(ctx: &Ctx) -> Sio {
    let (_, token) = ctx.user(Role::Agent, &[]);
    let mut sio = connect(ctx, Some(json!({"token": token}))).await.unwrap();
    sio.recv_event("socket-id").await;
    sio
}

/// Emits `event(data)` with an ack and expects the ack's error `code`.
async fn refused(ctx: &Ctx, sio: &mut Sio, id: u64, event: &str, data: Value, code: &str) {
    sio.emit_with_ack(id, event, data.clone()).await;
    let ack = sio.recv_ack(id).await;
    ctx.saw(ack.to_string());
    assert_eq!(
        (ack["code"].as_str(), ack["error"].is_string()),
        (Some(code), true),
        "{event}({data}) → {ack}"
    );
}

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "socket.io: forged, expired and empty tokens → connect_error",
            |ctx| {
                let forged = ctx.sign(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &json!({"sub":"battery-forged","role":"hq","exp":now() + 3600}),
                    "not-the-secret",
                );
                let expired = ctx.sign(
                    &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                    &json!({"sub":"battery-old","role":"hq","exp":now() - 5}),
                    SECRET,
                );
                for (token, says) in [
                    (forged.as_str(), "Invalid token"),
                    ("x.y.z", "Invalid token"),
                    (expired.as_str(), "Token expired"),
                ] {
                    let err = connect(&ctx, Some(json!({"token": token}))).await.err();
                    assert_eq!(err.as_deref(), Some(says), "token {token:.30}…");
                }
            }
        ),
        case!(
            "socket.io: refused events answer in the ack with their code",
            |ctx| {
                let mut sio = socket(&ctx).await;
                refused(
                    &ctx,
                    &mut sio,
                    1,
                    "subscribe",
                    json!("user:someone-else"),
                    "forbidden",
                )
                .await;
                refused(&ctx, &mut sio, 2, "subscribe", json!("a b"), "bad_request").await;
                refused(
                    &ctx,
                    &mut sio,
                    3,
                    "subscribe",
                    json!({"channel": 5}),
                    "bad_request",
                )
                .await;
                refused(&ctx, &mut sio, 4, "dance", json!({}), "unknown_type").await;
                refused(
                    &ctx,
                    &mut sio,
                    5,
                    "chat-message",
                    json!({"roomId":"r","message":""}),
                    "bad_request",
                )
                .await;
                refused(&ctx, &mut sio, 6, "join-room", json!(" "), "bad_request").await;
                refused(
                    &ctx,
                    &mut sio,
                    7,
                    "ack",
                    json!({"channel":"user:someone-else","offset":1}),
                    "forbidden",
                )
                .await;
                refused(
                    &ctx,
                    &mut sio,
                    8,
                    "unsubscribe",
                    json!("room:never"),
                    "not_found",
                )
                .await;
                // Still connected: a good request answers.
                sio.emit_with_ack(9, "join-room", json!("battery-io")).await;
                assert_eq!(sio.recv_ack(9).await["ok"], true);
            }
        ),
        case!(
            "socket.io: a reserved event name published natively never reaches a room",
            |ctx| {
                let mut sio = socket(&ctx).await;
                sio.emit_with_ack(1, "join-room", json!("battery-reserved"))
                    .await;
                assert_eq!(sio.recv_ack(1).await["ok"], true);
                let (_, token) = ctx.user(Role::Agent, &[]);
                let mut ws = ctx.ws(&format!("?token={token}")).await;
                ws.recv_type("authenticated").await;
                for event in [
                    "connect",
                    "disconnect",
                    "connect_error",
                    "disconnecting",
                    "newListener",
                    "removeListener",
                ] {
                    ws.send(json!({"type":"publish","channel":"room:battery-reserved","event":event,"data":"x"}))
                    .await;
                    assert_eq!(ws.recv().await["code"], "forbidden", "{event}");
                }
                ctx.keep(ws);
                // The socket is still in the room and answering, and got none of those.
                sio.emit_with_ack(
                    2,
                    "chat-message",
                    json!({"roomId":"battery-reserved","message":"still here"}),
                )
                .await;
                // The ack and the socket's own copy of the line, in either order: the ack is
                // written in order with the socket's deliveries, after the publication it
                // answers for.
                let (mut acked, mut line) = (false, None);
                while !acked || line.is_none() {
                    match sio.recv().await {
                        Packet::Ack(2, ack) => {
                            assert_eq!(ack["ok"], true);
                            acked = true;
                        }
                        Packet::Event(e, data) if e == "new-message" => line = Some(data),
                        _ => {}
                    }
                }
                assert_eq!(line.unwrap()["message"], "still here");
            }
        ),
        case!("socket.io: malformed packets end the connection", |ctx| {
            for packet in ["42[", "42{\"a\":1}", "4x", "9", "42[1,2]", "0{}"] {
                let mut sio = socket(&ctx).await;
                sio.send_raw(packet).await;
                let texts = sio.until_closed().await;
                for t in texts {
                    ctx.saw(t);
                }
            }
            // The server is fine: a new socket connects.
            let mut sio = socket(&ctx).await;
            sio.emit_with_ack(1, "join-room", json!("battery-after"))
                .await;
            assert_eq!(sio.recv_ack(1).await["ok"], true);
        }),
        case!(
            "socket.io: an event flood → every event answered, rate_limited past the limit",
            |ctx| {
                let mut sio = socket(&ctx).await;
                sio.emit_with_ack(1, "join-room", json!("battery-flood"))
                    .await;
                assert_eq!(sio.recv_ack(1).await["ok"], true);
                // A client that reads its answers: 130 events in bursts of 20.
                let mut acks = BTreeMap::new();
                for burst in 0..7u64 {
                    let ids: Vec<u64> = (100 + burst * 20..100 + (burst + 1) * 20)
                        .filter(|i| *i < 230)
                        .collect();
                    for id in &ids {
                        sio.emit_with_ack(*id, "typing", json!({"roomId":"battery-flood"}))
                            .await;
                    }
                    collect_acks(&mut sio, &mut acks, &ids)
                        .await
                        .expect("connection kept");
                }
                let limited = acks
                    .values()
                    .filter(|a| a["code"] == "rate_limited")
                    .count();
                assert!(limited >= 25, "130 events in a minute, {limited} limited");
            }
        ),
        case!(
            "socket.io: a burst from a client that does not read → answered, or disconnected",
            |ctx| {
                let mut sio = socket(&ctx).await;
                let ids: Vec<u64> = (1..=300).collect();
                for id in &ids {
                    sio.emit_with_ack(*id, "typing", json!({"roomId":"battery-burst"}))
                        .await;
                }
                let mut acks = BTreeMap::new();
                if let Err(missing) = collect_acks(&mut sio, &mut acks, &ids).await {
                    // Not every event was answered: then the socket must be gone, not silent.
                    assert!(missing > 0);
                }
            }
        ),
    ]
}

/// Reads until every id in `ids` has its ack (in any order: refusals answer at once, accepted
/// events when processed). `Err(missing)` when the server ended the connection first; fails
/// when the connection stays open and silent for 5 s with answers missing.
async fn collect_acks(
    sio: &mut Sio,
    acks: &mut BTreeMap<u64, Value>,
    ids: &[u64],
) -> Result<(), usize> {
    let missing =
        |acks: &BTreeMap<u64, Value>| ids.iter().filter(|i| !acks.contains_key(i)).count();
    while missing(acks) > 0 {
        match tokio::time::timeout(Duration::from_secs(5), sio.next_packet()).await {
            Ok(Some(Packet::Ack(id, ack))) => {
                acks.insert(id, ack);
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(missing(acks)),
            Err(_) => panic!("open and silent with {} answers missing", missing(acks)),
        }
    }
    Ok(())
}
