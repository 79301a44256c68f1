//! Authorization beyond HS256 (SPEC §3): RS256/ES256 through `auth.public_key_file`, no
//! algorithm confusion, and connections closed with 4004 when their token expires unless they
//! refresh it with an `auth` message first.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard_core::auth::{Claims, Role};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn signed(alg: Algorithm, key: &EncodingKey, sub: &str, role: Role, exp: u64) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &Claims {
            sub: Some(sub.into()),
            exp,
            role,
            channels: vec!["city:*".into()],
        },
        key,
    )
    .unwrap()
}

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa-private.pem")).unwrap()).unwrap()
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(&std::fs::read(fixture("ec-private.pem")).unwrap()).unwrap()
}

#[tokio::test]
async fn rs256_tokens_work_beside_hs256_and_nothing_else_does() {
    let server =
        TestServer::start_with(|c| c.auth.public_key_file = Some(fixture("rsa-public.pem"))).await;
    let rs = signed(
        Algorithm::RS256,
        &rsa_key(),
        "rsa-user",
        Role::Hq,
        now() + 600,
    );
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={rs}"))).await;
    assert_eq!(
        ws.recv().await,
        json!({"type":"authenticated","user":"rsa-user"})
    );
    ws.subscribe("city:nairobi").await;
    // REST sees the role too.
    let res = put_mission(&server, 1, Some(&rs), json!({"location":"Rome"})).await;
    assert_eq!(res.status(), 200);
    assert!(
        res.json::<Value>()
            .await
            .unwrap()
            .get("objective")
            .is_some(),
        "HQ DTO"
    );
    // HS256 with the configured secret still works.
    assert_eq!(
        put_mission(&server, 1, Some(&hq()), json!({"location":"Oslo"}))
            .await
            .status(),
        200
    );

    // ES256 is not configured here.
    let es = signed(
        Algorithm::ES256,
        &ec_key(),
        "ec-user",
        Role::Hq,
        now() + 600,
    );
    let mut bad = Ws::connect(&server.ws_url(&format!("?token={es}"))).await;
    assert_eq!(bad.recv().await["type"], "auth_error");
    assert_eq!(bad.close_code().await, 4002);
    // Algorithm confusion: an HS256 token whose HMAC key is the RSA public key PEM.
    let pem = std::fs::read(fixture("rsa-public.pem")).unwrap();
    let forged = signed(
        Algorithm::HS256,
        &EncodingKey::from_secret(&pem),
        "mallory",
        Role::Admin,
        now() + 600,
    );
    let res = put_mission(&server, 1, Some(&forged), json!({"location":"Nowhere"})).await;
    assert_eq!(res.status(), 401);
    // An RS256 token signed by another key.
    let other = rsa_key_other();
    let res = put_mission(
        &server,
        1,
        Some(&signed(
            Algorithm::RS256,
            &other,
            "x",
            Role::Hq,
            now() + 600,
        )),
        json!({"location":"X"}),
    )
    .await;
    assert_eq!(res.status(), 401);
}

/// An RSA key the server does not trust.
fn rsa_key_other() -> EncodingKey {
    EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa-other-private.pem")).unwrap()).unwrap()
}

#[tokio::test]
async fn es256_tokens_work_with_an_ec_key() {
    let server = TestServer::start_with(|c| {
        c.auth.public_key_file = Some(fixture("ec-public.pem"));
        c.auth.jwt_secret = String::new();
    })
    .await;
    let es = signed(
        Algorithm::ES256,
        &ec_key(),
        "ec-user",
        Role::Agent,
        now() + 600,
    );
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={es}"))).await;
    assert_eq!(ws.recv().await["user"], "ec-user");
    // With no secret configured, HS256 tokens are refused.
    let mut bad = Ws::connect(&server.ws_url(&format!("?token={}", agent()))).await;
    assert_eq!(bad.recv().await["message"], "Invalid token");
    assert_eq!(bad.close_code().await, 4002);
}

#[tokio::test]
async fn tampered_rs256_payload_is_refused() {
    let server =
        TestServer::start_with(|c| c.auth.public_key_file = Some(fixture("rsa-public.pem"))).await;
    let rs = signed(
        Algorithm::RS256,
        &rsa_key(),
        "agent-x",
        Role::Agent,
        now() + 600,
    );
    let mut parts: Vec<String> = rs.split('.').map(String::from).collect();
    let hq_token = signed(
        Algorithm::RS256,
        &rsa_key(),
        "agent-x",
        Role::Hq,
        now() + 600,
    );
    parts[1] = hq_token.split('.').nth(1).unwrap().to_owned(); // hq payload, agent signature
    let res = put_mission(&server, 1, Some(&parts.join(".")), json!({"location":"X"})).await;
    assert_eq!(res.status(), 401);
}

#[test]
fn unreadable_or_bad_public_key_names_the_key() {
    let mut c = switchboard::Config::default();
    c.auth.public_key_file = Some(fixture("does-not-exist.pem"));
    assert!(
        c.finish()
            .unwrap_err()
            .to_string()
            .contains("auth.public_key_file")
    );
    let mut c = switchboard::Config::default();
    c.auth.public_key_file = Some(fixture("README.md"));
    assert!(
        c.finish()
            .unwrap_err()
            .to_string()
            .contains("auth.public_key_file")
    );
}

/// Wall-clock seconds since the epoch, with fractions.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A token for `sub` expiring on a whole second at least 1.5 s from now, and that second.
fn short_token(sub: &str) -> (String, u64) {
    let exp = (unix_now() + 1.5).ceil() as u64;
    (token_with(SECRET, sub, Role::Agent, &[], exp), exp)
}

/// The connection ended at its token's expiry: not before `exp`, and not much after.
fn assert_ended_at_expiry(exp: u64) {
    let t = unix_now();
    assert!(
        t >= exp as f64 - 0.005,
        "ended {:.3} s before the token expired",
        exp as f64 - t
    );
    assert!(
        t <= exp as f64 + 1.0,
        "ended {:.3} s after the token expired",
        t - exp as f64
    );
}

#[tokio::test]
async fn connection_closes_with_4004_when_its_token_expires() {
    let server = TestServer::start().await;
    let (short, exp) = short_token("brief");
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={short}"))).await;
    ws.recv_type("authenticated").await;
    assert_eq!(ws.close_code().await, 4004);
    assert_ended_at_expiry(exp);
    assert!(ws.seen.iter().any(|t| t.contains("Token expired")));
}

#[tokio::test]
async fn refreshing_the_token_keeps_the_connection() {
    let server = TestServer::start().await;
    let (short, exp) = short_token("brief");
    let mut ws = Ws::connect(&server.ws_url(&format!("?token={short}"))).await;
    ws.recv_type("authenticated").await;
    ws.send(
        json!({"type":"auth","token":token_with(SECRET, "brief", Role::Agent, &[], now() + 3600)}),
    )
    .await;
    ws.recv_type("authenticated").await;
    // Stay connected past the old token's expiry (plus the close's allowance above): the
    // connection is still open and answering.
    let past = exp as f64 + 1.2 - unix_now();
    ws.expect_silence(Duration::from_secs_f64(past.max(0.0)))
        .await;
    assert!(unix_now() > exp as f64 + 1.0);
    ws.send(json!({"type":"ping","ref":"still"})).await;
    assert_eq!(ws.recv_type("pong").await["ref"], "still");
    // A token for another user is refused without closing.
    ws.send(json!({"type":"auth","token":token("someone-else", Role::Agent, &[])}))
        .await;
    assert_eq!(ws.recv().await["code"], "forbidden");
}

#[tokio::test]
async fn socket_io_is_disconnected_when_its_token_expires() {
    let server = TestServer::start().await;
    let (short, exp) = short_token("brief");
    let mut sio = common::sio::Sio::connect(server.addr, Some(json!({"token": short})), None)
        .await
        .unwrap();
    let events = sio.until_disconnect().await;
    assert_ended_at_expiry(exp);
    let reason = events
        .iter()
        .find(|(e, _)| e == "error")
        .map(|(_, d)| d.clone())
        .expect("error event");
    assert_eq!(
        reason,
        json!({"code":4004,"message":"Token expired","reconnect":false})
    );
}

#[tokio::test]
async fn sse_stream_ends_with_4004_when_its_token_expires() {
    let server = TestServer::start().await;
    let (short, exp) = short_token("brief");
    let mut res = reqwest::Client::new()
        .get(server.http(&format!("/events?channels=missions&token={short}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut body = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), res.chunk())
        .await
        .expect("the stream ends")
        .unwrap()
    {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert_ended_at_expiry(exp);
    assert!(body.contains("event: close"), "{body}");
    assert!(body.contains("4004"), "{body}");
}
