//! What every battery case shares: the running binary, token minting (each case its own user,
//! so one case's rate limit never answers another's input), a record of every byte the
//! clients received (for the leak check), the bystander and the memory sampler.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchboard_core::auth::Role;
use tokio::task::JoinHandle;

use crate::common::Ws;
use crate::common::bin::{Binary, spawn};

/// The signing secret of the battery's server: must never appear in anything it sends or logs.
pub const SECRET: &str = "battery-secret-4f1c9e2a7b6d3058";

/// The seed's classified values (`handler_notes`, `asset_identity`, `extraction_code`).
const CLASSIFIED: [&str; 15] = [
    "Asset nervous; meet only at dawn",
    "K. Brandt, clerk",
    "EX-7731-ALPHA",
    "Budget approved by D.",
    "M. Sousa, pilot",
    "EX-2290-BRAVO",
    "Handler rotates weekly",
    "A. Demir, broker",
    "EX-4417-CHARLIE",
    "Debrief pending",
    "L. Haugen, engineer",
    "EX-9902-DELTA",
    "Source unverified",
    "J. Otieno, analyst",
    "EX-5120-ECHO",
];

/// Limits the battery's server runs with, small where a case must reach them quickly.
pub const MAX_MESSAGE_BYTES: usize = 65_536;
pub const MAX_SUBSCRIPTIONS: usize = 20;
pub const HEADER_TIMEOUT_MS: u64 = 1_500;

/// One named case: an async function of the shared context that panics when the server's
/// answer is not the documented one.
pub type Case = (&'static str, fn(Arc<Ctx>) -> BoxFuture<'static, ()>);

/// The shared state of one battery run.
pub struct Ctx {
    pub server: Binary,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    users: AtomicU64,
    /// Every text any battery client received.
    seen: Mutex<Vec<String>>,
    /// Every token a client sent: their signatures must never come back.
    tokens: Mutex<Vec<String>>,
}

impl Ctx {
    pub async fn start() -> Arc<Ctx> {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = crate::common::bin::command(dir.path());
        cmd.env("SWITCHBOARD_AUTH__JWT_SECRET", SECRET)
            .env("RUST_LOG", "debug")
            .env(
                "SWITCHBOARD_LIMITS__MAX_MESSAGE_BYTES",
                MAX_MESSAGE_BYTES.to_string(),
            )
            .env(
                "SWITCHBOARD_LIMITS__MAX_SUBSCRIPTIONS_PER_CONNECTION",
                MAX_SUBSCRIPTIONS.to_string(),
            )
            .env("SWITCHBOARD_LIMITS__REST_WRITES_PER_MINUTE", "100000")
            .env("SWITCHBOARD_LIMITS__WRITE_TIMEOUT_MS", "2000")
            .env("SWITCHBOARD_LIMITS__OUTBOUND_QUEUE", "64")
            .env(
                "SWITCHBOARD_HTTP__HEADER_READ_TIMEOUT_MS",
                HEADER_TIMEOUT_MS.to_string(),
            )
            .env("SWITCHBOARD_HTTP__BODY_TIMEOUT_MS", "1500")
            .env("SWITCHBOARD_PAYMENTS__PROCESSING_DELAY_MS", "100");
        let server = spawn(cmd).await;
        // The temp dir must outlive the server: leak it into the process's lifetime (the test
        // is one process; the OS removes nothing, the dir is small).
        std::mem::forget(dir);
        Arc::new(Ctx {
            addr: server.addr,
            server,
            http: reqwest::Client::new(),
            users: AtomicU64::new(0),
            seen: Mutex::default(),
            tokens: Mutex::default(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws{}", self.addr, query)
    }

    /// A fresh user id and a valid token for it.
    pub fn user(&self, role: Role, channels: &[&str]) -> (String, String) {
        let n = self.users.fetch_add(1, Ordering::SeqCst);
        let sub = format!("battery-{n}");
        let claims = json!({"sub": sub, "role": role_name(role), "channels": channels,
            "exp": now() + 3600});
        (
            sub,
            self.sign(&Header::new(Algorithm::HS256), &claims, SECRET),
        )
    }

    /// Signs `claims` under `header` with `secret`, and remembers the token.
    pub fn sign(&self, header: &Header, claims: &Value, secret: &str) -> String {
        let token =
            jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(secret.as_bytes()))
                .unwrap();
        self.remember_token(&token);
        token
    }

    pub fn remember_token(&self, token: &str) {
        self.tokens.lock().unwrap().push(token.to_owned());
    }

    /// How many lines the server printed that contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.server
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Records what a client received.
    pub fn saw(&self, text: impl Into<String>) {
        self.seen.lock().unwrap().push(text.into());
    }

    /// Records everything a native client received, and drops it.
    pub fn keep(&self, ws: Ws) {
        self.seen.lock().unwrap().extend(ws.seen);
    }

    /// A native client with the `welcome` read.
    pub async fn ws(&self, query: &str) -> Ws {
        Ws::connect(&self.ws_url(query)).await
    }

    /// A REST request; returns the status and the body (recorded), and checks that every
    /// error answer is JSON with an `error` string.
    pub async fn rest(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        self.saw(text.clone());
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path}: answer {status} is not JSON: {text:?}"));
        if status >= 400 {
            assert!(
                value["error"].is_string(),
                "{path}: error {status} without an `error` string: {text}"
            );
        }
        (status, value)
    }

    /// Secrets and classified values found in what clients received or the server printed.
    pub async fn leaks(&self) -> Vec<String> {
        let mut haystack = self.seen.lock().unwrap().join("\n");
        haystack.push('\n');
        haystack.push_str(&self.server.lines.lock().unwrap().join("\n"));
        let mut needles: Vec<(String, String)> = vec![("the signing secret".into(), SECRET.into())];
        for t in self.tokens.lock().unwrap().iter() {
            if let Some(sig) = t.rsplit('.').next().filter(|s| s.len() >= 16) {
                needles.push(("a token's signature".into(), sig.to_owned()));
            }
        }
        for c in CLASSIFIED {
            needles.push(("a classified value".into(), c.to_owned()));
        }
        needles
            .into_iter()
            .filter_map(|(what, needle)| {
                haystack.find(&needle).map(|i| {
                    let from = haystack.floor_char_boundary(i.saturating_sub(120));
                    let to =
                        haystack.ceil_char_boundary((i + needle.len() + 40).min(haystack.len()));
                    format!("{what} ({needle}): …{}…", &haystack[from..to])
                })
            })
            .collect()
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Agent => "agent",
        Role::Hq => "hq",
        Role::Pipeline => "pipeline",
        Role::Admin => "admin",
    }
}

/// The bystander's latency record.
pub struct Latency {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Updates sent (and answered 200) that never arrived.
    pub missing: Vec<u64>,
}

/// A well-behaved pair: an HQ that sets mission 5's location to `bystander-<n>` every 100 ms,
/// and an agent subscribed to `missions` that timestamps each update's arrival.
pub struct Bystander {
    writer: JoinHandle<BTreeMap<u64, Instant>>,
    reader: JoinHandle<BTreeMap<u64, Instant>>,
}

impl Bystander {
    pub async fn start(ctx: &Arc<Ctx>, stop: Arc<AtomicBool>) -> Bystander {
        let (_, agent) = ctx.user(Role::Agent, &[]);
        let (_, hq) = ctx.user(Role::Hq, &[]);
        let mut ws = ctx.ws(&format!("?token={agent}")).await;
        ws.subscribe("missions").await;
        let reader_stop = Arc::clone(&stop);
        let reader = tokio::spawn(async move {
            let mut arrived = BTreeMap::new();
            // Reads until the writer is done and a second has passed with nothing new.
            let mut quiet_since: Option<Instant> = None;
            loop {
                let next = tokio::time::timeout(
                    Duration::from_millis(200),
                    futures_util::StreamExt::next(&mut ws.socket),
                )
                .await;
                match next {
                    Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                        let v: Value = serde_json::from_str(&t).unwrap();
                        if let Some(n) = v["data"]["location"]
                            .as_str()
                            .and_then(|l| l.strip_prefix("bystander-"))
                            .and_then(|n| n.parse::<u64>().ok())
                        {
                            arrived.insert(n, Instant::now());
                        }
                        quiet_since = None;
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(other) => panic!("the bystander's socket ended: {other:?}"),
                    Err(_) => {
                        if reader_stop.load(Ordering::SeqCst) {
                            let since = *quiet_since.get_or_insert_with(Instant::now);
                            if since.elapsed() > Duration::from_secs(1) {
                                return arrived;
                            }
                        }
                    }
                }
            }
        });
        let http = ctx.http.clone();
        let url = ctx.url("/missions/5");
        let writer = tokio::spawn(async move {
            let mut sent = BTreeMap::new();
            let mut n = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                n += 1;
                let at = Instant::now();
                let res = http
                    .put(&url)
                    .bearer_auth(&hq)
                    .json(&json!({"location": format!("bystander-{n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200, "the bystander's update {n} was refused");
                sent.insert(n, at);
            }
            sent
        });
        Bystander { writer, reader }
    }

    pub async fn finish(self) -> Latency {
        let sent = self.writer.await.unwrap();
        let arrived = self.reader.await.unwrap();
        let mut lat: Vec<Duration> = sent
            .iter()
            .filter_map(|(n, at)| arrived.get(n).map(|a| a.duration_since(*at)))
            .collect();
        lat.sort();
        let pick = |q: f64| {
            lat.get(((lat.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or_default()
        };
        Latency {
            count: lat.len(),
            p50: pick(0.5),
            p99: pick(0.99),
            max: lat.last().copied().unwrap_or_default(),
            missing: sent
                .keys()
                .filter(|n| !arrived.contains_key(n))
                .copied()
                .collect(),
        }
    }
}

/// Samples the server's RSS every 50 ms: the first sample is the baseline.
pub struct RssSampler(JoinHandle<(u64, u64)>);

impl RssSampler {
    pub fn start(pid: u32, stop: Arc<AtomicBool>) -> RssSampler {
        RssSampler(tokio::spawn(async move {
            let baseline = rss_of(pid);
            let mut peak = baseline;
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
                peak = peak.max(rss_of(pid));
            }
            (baseline, peak)
        }))
    }

    /// (baseline, peak) in bytes.
    pub async fn finish(self) -> (u64, u64) {
        self.0.await.unwrap()
    }
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
