//! One measured run: open N connections, push updates at a fixed rate through
//! `PUT /missions/:id`, and reduce what every connection received to one JSON line.
//!
//! Cheapness matters more than elegance here: on 2 cores every CPU cycle the generator spends is
//! taken from the server, so receivers only scan frames for the stamp (see [`crate::frame`]) and
//! keep `(stamp, receive time)` pairs; all arithmetic happens after the measured window.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::frame::{self, SioFrame};
use crate::{http, procfs, stats};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How the connections talk to the server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Switchboard's native protocol: send subscribe, ready at `subscribed`.
    Native,
    /// A plain WebSocket server that sends no reply: ready once subscribe is sent.
    Ws,
    /// Engine.IO v4 / Socket.IO v5 over the websocket transport: ready at the `40` ack.
    Socketio,
}

/// Parameters of one run.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Name of the server under test, copied into the JSON line (`switchboard`, `minimal`, …).
    #[arg(long)]
    pub server: String,
    /// Name of the scenario, copied into the JSON line.
    #[arg(long, default_value = "fanout")]
    pub scenario: String,
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// host:port of the server (loopback).
    #[arg(long)]
    pub addr: String,
    /// WebSocket path; defaults to `/ws`, or `/socket.io/?EIO=4&transport=websocket`.
    #[arg(long)]
    pub ws_path: Option<String>,
    /// Bearer token for the PUTs (Switchboard requires an hq token).
    #[arg(long, env = "BENCH_TOKEN")]
    pub token: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub mission: u64,
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Updates per second; 0 measures connections and idle memory only.
    #[arg(long, default_value_t = 10)]
    pub rate: u64,
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// pid of the server, for CPU time and memory from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    pub clk_tck: u64,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub setup_concurrency: usize,
    /// Longest wait for stragglers after the last update, in ms.
    #[arg(long, default_value_t = 3000)]
    pub drain_ms: u64,
    /// Pause after the last connection is ready before reading memory, in ms.
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("setup timed out")]
    SetupTimeout,
    #[error("server closed during setup")]
    ClosedDuringSetup,
    #[error("server refused the Socket.IO connect")]
    Refused,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Opens one connection and brings it to "ready to receive updates".
async fn setup(url: &str, protocol: Protocol) -> Result<Ws, RunError> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    match protocol {
        Protocol::Ws => ws.send(Message::text(frame::NATIVE_SUBSCRIBE)).await?,
        Protocol::Native => {
            ws.send(Message::text(frame::NATIVE_SUBSCRIBE)).await?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) if frame::is_native_subscribed(&t) => break,
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Err(RunError::ClosedDuringSetup),
                }
            }
        }
        Protocol::Socketio => loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => match frame::classify_sio(&t) {
                    SioFrame::Open => ws.send(Message::text(frame::SIO_CONNECT)).await?,
                    SioFrame::Ping => ws.send(Message::text(frame::SIO_PONG)).await?,
                    SioFrame::Connected => break,
                    SioFrame::ConnectError => return Err(RunError::Refused),
                    SioFrame::Event(_) | SioFrame::Other => {}
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(RunError::ClosedDuringSetup),
            }
        },
    }
    Ok(ws)
}

/// Receives until told to stop; returns `(stamp, receive micros)` for every stamped update.
async fn receive(
    mut ws: Ws,
    protocol: Protocol,
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
) -> Vec<(u64, u64)> {
    let mut got = Vec::new();
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => break,
        };
        let text = match msg {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break,
        };
        let at = now_micros();
        let stamp = match protocol {
            Protocol::Native | Protocol::Ws => {
                if frame::is_native_mission_update(&text) {
                    frame::extract_stamp(&text)
                } else {
                    None
                }
            }
            Protocol::Socketio => match frame::classify_sio(&text) {
                SioFrame::Ping => {
                    if ws.send(Message::text(frame::SIO_PONG)).await.is_err() {
                        break;
                    }
                    None
                }
                SioFrame::Event(p) if frame::is_sio_mission_update(p) => frame::extract_stamp(p),
                _ => None,
            },
        };
        if let Some(s) = stamp {
            got.push((s, at));
            delivered.fetch_add(1, Ordering::Relaxed);
        }
    }
    got
}

/// Runs one scenario and returns its JSON line.
pub async fn run(a: RunArgs) -> serde_json::Value {
    let path = a.ws_path.clone().unwrap_or_else(|| match a.protocol {
        Protocol::Socketio => "/socket.io/?EIO=4&transport=websocket".to_owned(),
        _ => "/ws".to_owned(),
    });
    let url = format!("ws://{}{}", a.addr, path);
    let rss_before = a.server_pid.and_then(procfs::rss_kib);

    // Connect everyone, a bounded number of handshakes at a time.
    let (stop_tx, stop_rx) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(a.setup_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<u64, String>>(a.connections.max(1));
    let mut tasks = Vec::with_capacity(a.connections);
    let setup_started = Instant::now();
    for _ in 0..a.connections {
        let (url, permits, ready, stop, delivered) = (
            url.clone(),
            permits.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
            delivered.clone(),
        );
        let protocol = a.protocol;
        tasks.push(tokio::spawn(async move {
            let ws = {
                let Ok(_permit) = permits.acquire().await else {
                    return Vec::new();
                };
                let t0 = Instant::now();
                match tokio::time::timeout(Duration::from_secs(15), setup(&url, protocol)).await {
                    Ok(Ok(ws)) => {
                        let _ = ready.send(Ok(t0.elapsed().as_micros() as u64)).await;
                        ws
                    }
                    Ok(Err(e)) => {
                        let _ = ready.send(Err(e.to_string())).await;
                        return Vec::new();
                    }
                    Err(_) => {
                        let _ = ready.send(Err(RunError::SetupTimeout.to_string())).await;
                        return Vec::new();
                    }
                }
            };
            drop(ready);
            receive(ws, protocol, stop, delivered).await
        }));
    }
    drop(ready_tx);
    let mut setup_us = Vec::with_capacity(a.connections);
    let mut setup_errors = 0u64;
    let mut first_error = None;
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(us) => setup_us.push(us),
            Err(e) => {
                setup_errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let setup_wall_ms = setup_started.elapsed().as_millis() as u64;
    let connected = setup_us.len() as u64;
    tokio::time::sleep(Duration::from_millis(a.settle_ms)).await;
    let rss_after = a.server_pid.and_then(procfs::rss_kib);

    // The measured window: first PUT to last delivery (or drain timeout).
    let cpu0 = a.server_pid.and_then(procfs::cpu_ticks);
    let window_start = Instant::now();
    let first_send = now_micros();
    let total = a.rate * a.duration_secs;
    let mut sent = Vec::with_capacity(total as usize);
    let (mut put_errors, mut first_put_error) = (0u64, None);
    if total > 0 {
        let mut client = http::Client::new(&a.addr, a.token.clone());
        let route = format!("/missions/{}", a.mission);
        let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / a.rate.max(1)));
        let mut last = 0u64;
        for _ in 0..total {
            tick.tick().await;
            let stamp = now_micros().max(last + 1);
            last = stamp;
            let body = format!(r#"{{"location":"{}"}}"#, frame::stamp_location(stamp));
            match client.put_json(&route, &body).await {
                Ok(200) => sent.push(stamp),
                Ok(s) => {
                    put_errors += 1;
                    first_put_error.get_or_insert(format!("status {s}"));
                }
                Err(e) => {
                    put_errors += 1;
                    first_put_error.get_or_insert(e.to_string());
                }
            }
        }
    }
    let expected = sent.len() as u64 * connected;
    let drain_deadline = Instant::now() + Duration::from_millis(a.drain_ms);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let window = window_start.elapsed();
    let cpu1 = a.server_pid.and_then(procfs::cpu_ticks);

    let _ = stop_tx.send(true);
    let mut latencies = Vec::new();
    let (mut unique, mut dups, mut foreign, mut last_recv) = (0u64, 0u64, 0u64, first_send);
    for t in tasks {
        let got = t.await.unwrap_or_default();
        let mut stamps: Vec<u64> = got.iter().map(|&(s, _)| s).collect();
        let tally = stats::tally(&mut stamps, &sent);
        unique += tally.unique;
        dups += tally.duplicates;
        foreign += tally.foreign;
        // Latency of the first receipt of each sent stamp.
        let mut seen = std::collections::HashSet::with_capacity(got.len());
        for (s, at) in got {
            if sent.binary_search(&s).is_ok() && seen.insert(s) {
                latencies.push(at.saturating_sub(s));
                last_recv = last_recv.max(at);
            }
        }
    }
    let lat = stats::summarize(latencies);
    let setup = stats::summarize(setup_us);
    let active_secs = (last_recv.saturating_sub(first_send)) as f64 / 1e6;
    let cpu_us_per_delivery = match (cpu0, cpu1) {
        (Some(c0), Some(c1)) if unique > 0 => {
            Some((c1.saturating_sub(c0)) as f64 * 1e6 / a.clk_tck as f64 / unique as f64)
        }
        _ => None,
    };
    let cpu_secs = match (cpu0, cpu1) {
        (Some(c0), Some(c1)) => Some(c1.saturating_sub(c0) as f64 / a.clk_tck as f64),
        _ => None,
    };
    let mem_per_conn_kib = match (rss_before, rss_after) {
        (Some(b), Some(af)) if connected > 0 => Some((af as f64 - b as f64) / connected as f64),
        _ => None,
    };
    json!({
        "server": a.server, "scenario": a.scenario, "protocol": format!("{:?}", a.protocol).to_lowercase(),
        "connections": a.connections, "connected": connected, "setup_errors": setup_errors,
        "first_setup_error": first_error,
        "setup_p50_ms": setup.map(|s| s.p50 as f64 / 1000.0), "setup_p99_ms": setup.map(|s| s.p99 as f64 / 1000.0),
        "setup_wall_ms": setup_wall_ms,
        "rate": a.rate, "duration_secs": a.duration_secs, "updates_sent": sent.len(), "put_errors": put_errors,
        "first_put_error": first_put_error,
        "expected": expected, "delivered": unique, "lost": expected.saturating_sub(unique),
        "duplicates": dups, "foreign": foreign,
        "deliveries_per_sec": if active_secs > 0.0 { Some(unique as f64 / active_secs) } else { None },
        "latency_p50_ms": lat.map(|s| s.p50 as f64 / 1000.0), "latency_p95_ms": lat.map(|s| s.p95 as f64 / 1000.0),
        "latency_p99_ms": lat.map(|s| s.p99 as f64 / 1000.0), "latency_max_ms": lat.map(|s| s.max as f64 / 1000.0),
        "window_secs": window.as_secs_f64(), "server_cpu_secs": cpu_secs,
        "server_cpu_us_per_delivery": cpu_us_per_delivery,
        "rss_before_kib": rss_before, "rss_after_kib": rss_after, "mem_per_conn_kib": mem_per_conn_kib,
    })
}
