//! Shared helpers: start a real server on 127.0.0.1:0 with a temporary SQLite file, mint
//! tokens, and talk to it with real WebSocket and HTTP clients.
#![allow(dead_code)]

pub mod bin;
pub mod logs;
pub mod proxy;
pub mod sio;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use switchboard::Config;
use switchboard_client::{ClientError, Connection};
use switchboard_core::auth::{Claims, JwtSigner, Role};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

pub mod feeds;

pub const SECRET: &str = "integration-test-secret-0123456789";
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub addr: SocketAddr,
    /// The SQLite URL the server uses.
    pub store_url: String,
    stop: Option<oneshot::Sender<()>>,
    pub done: Option<tokio::task::JoinHandle<Result<(), switchboard::ServeError>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().expect("tempdir"), tweak).await
    }

    /// Stops this server (waiting for it to exit, unless [`Self::stop`] took its task already)
    /// and starts a new one on the same data directory, so the SQLite file carries over.
    pub async fn restart(mut self, tweak: impl FnOnce(&mut Config)) -> Self {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(Duration::from_secs(15), done)
                .await
                .expect("server stopped")
                .expect("serve task")
                .expect("serve ended cleanly");
        }
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("tempdir"));
        Self::start_in(dir, tweak).await
    }

    async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.auth.jwt_secret = SECRET.to_owned();
        config.store.url = String::new();
        tweak(&mut config);
        config.finish().expect("valid test config");
        let store_url = config.store.url.clone();
        let plain_http = config.tls.cert.is_none();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel();
        let done = tokio::spawn(switchboard::serve(config, listener, async move {
            let _ = rx.await;
        }));
        // Wait until it is ready: serving, with its store and broker reachable (a Redis
        // broker's pub/sub feed connects after start; until then subscriptions are refused).
        // A TLS server is not probed here: its tests speak TLS themselves.
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while plain_http
            && !client
                .get(format!("http://{addr}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server at {addr} never answered /readyz with 200"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            addr,
            store_url,
            stop: Some(tx),
            done: Some(done),
            _dir: dir,
        }
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws{}", self.addr, query)
    }

    /// Triggers shutdown (as SIGTERM does) and returns the serve task.
    pub fn stop(&mut self) -> tokio::task::JoinHandle<Result<(), switchboard::ServeError>> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.done.take().expect("server task")
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn token_with(secret: &str, sub: &str, role: Role, channels: &[&str], exp: u64) -> String {
    JwtSigner::hs256(secret.as_bytes())
        .sign(&Claims {
            sub: Some(sub.to_owned()),
            exp,
            role,
            channels: channels.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
}

pub fn token(sub: &str, role: Role, channels: &[&str]) -> String {
    token_with(SECRET, sub, role, channels, now() + 3600)
}

/// A token with `"alg":"none"`, an empty signature, and otherwise valid HQ claims: it must be
/// refused everywhere.
pub fn alg_none_token() -> String {
    fn b64(input: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(format!(r#"{{"sub":"mallory","exp":{},"role":"hq"}}"#, now() + 3600).as_bytes())
    )
}

pub fn hq() -> String {
    token("hq-1", Role::Hq, &[])
}

pub fn agent() -> String {
    token("agent-1", Role::Agent, &[])
}

/// The native connection of the Rust client (`switchboard-client`): typed or raw text, and a
/// `Stream`/`Sink` of raw frames for what a client should not send.
pub type Socket = Connection;

/// A native-protocol test client over a real WebSocket: [`Connection`] with the assertions
/// tests want (fail after [`WAIT`], keep every frame for leak checks).
pub struct Ws {
    pub socket: Socket,
    pub connection_id: String,
    /// Every text frame received, for leak checks.
    pub seen: Vec<String>,
}

impl Ws {
    /// Connects and reads the `welcome`.
    pub async fn connect(url: &str) -> Ws {
        let mut ws = Self::connect_raw(url, None).await.expect("connect");
        let welcome = ws.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        ws.connection_id = welcome["connectionId"].as_str().unwrap().to_owned();
        ws
    }

    pub async fn connect_raw(url: &str, origin: Option<&str>) -> Result<Ws, tungstenite::Error> {
        let mut req = url.into_client_request()?;
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        let socket = match Connection::open(req).await {
            Ok(socket) => socket,
            Err(ClientError::WebSocket(e)) => return Err(e),
            Err(other) => panic!("handshake: {other}"),
        };
        Ok(Ws {
            socket,
            connection_id: String::new(),
            seen: Vec::new(),
        })
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Sends, reporting failure instead of panicking (the server may have closed already).
    pub async fn socket_send_ok(&mut self, v: Value) -> Result<(), ClientError> {
        self.socket.send_text(v.to_string()).await
    }

    pub async fn send_text(&mut self, t: &str) {
        self.socket.send_text(t).await.expect("send");
    }

    /// Next JSON text frame (skipping pings), failing after [`WAIT`].
    pub async fn recv(&mut self) -> Value {
        let text = tokio::time::timeout(WAIT, self.socket.next_text())
            .await
            .expect("timed out waiting for a frame");
        match text {
            Ok(t) => {
                self.seen.push(t.to_string());
                serde_json::from_str(&t).expect("json frame")
            }
            Err(ClientError::Closed { code, reason }) => panic!("unexpected close {code} {reason}"),
            Err(ClientError::Ended) => panic!("stream ended"),
            Err(e) => panic!("ws error: {e}"),
        }
    }

    /// Next frame of the given `type`, skipping others.
    pub async fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Asserts nothing arrives for `d` *and* that the connection is still open and answering
    /// afterwards: a close frame, the end of the stream or an error during the window fails,
    /// as does any text or binary frame (pings and pongs are skipped until the window is over).
    /// Then a `ping` must be answered by a `pong` as the very next text frame, so whatever the
    /// server had queued before that answer would have shown up.
    pub async fn expect_silence(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => break,
                Ok(Some(Ok(Message::Text(t)))) => panic!("expected silence, got {t}"),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(Some(Ok(Message::Close(f)))) => {
                    panic!("expected silence, but the server closed the connection: {f:?}")
                }
                Ok(Some(Ok(other))) => panic!("expected silence, got {other:?}"),
                Ok(Some(Err(e))) => panic!("expected silence, but the connection failed: {e}"),
                Ok(None) => panic!("expected silence, but the stream ended"),
            }
        }
        self.send(json!({"type":"ping","ref":"silence-probe"}))
            .await;
        let v = self.recv().await;
        assert_eq!(
            (v["type"].as_str(), v["ref"].as_str()),
            (Some("pong"), Some("silence-probe")),
            "expected silence, got {v}"
        );
        self.seen.pop();
    }

    /// Reads until the close frame and returns its code (text frames before it are kept).
    pub async fn close_code(&mut self) -> u16 {
        loop {
            let text = tokio::time::timeout(WAIT, self.socket.next_text())
                .await
                .expect("timed out waiting for close");
            match text {
                Ok(t) => self.seen.push(t.to_string()),
                Err(ClientError::Closed { code, .. }) => return code,
                Err(ClientError::Ended) => panic!("stream ended without close frame"),
                Err(e) => panic!("error before close frame: {e}"),
            }
        }
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(json!({"type":"subscribe","channel":channel}))
            .await;
        let mut v = self.recv().await;
        if v["type"] == "authenticated" {
            v = self.recv().await;
        }
        assert_eq!(v["type"], "subscribed", "{v}");
        v
    }
}

pub async fn put_mission(
    server: &TestServer,
    id: i64,
    token: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .put(server.http(&format!("/missions/{id}")))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("request")
}

/// `GET url` with an optional bearer token: the status and the JSON body (`null` when the body
/// is not JSON).
pub async fn get_json(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}
