//! One measured run: open N connections, push updates through `PUT /missions/:id` (open or
//! closed loop, see [`crate::publish`]), and reduce what every connection received to one JSON
//! line. All arithmetic happens after the measured window.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::conn::{self, Protocol, Target};
use crate::publish::{self, Route};
use crate::{procfs, pusher, stats};

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
    /// host:port the updates are published on (loopback), when not `addr`: a node other than
    /// the subscribers' measures the cross-node (Redis) path.
    #[arg(long)]
    pub publish_addr: Option<String>,
    /// Endpoint path; defaults to `/ws`, `/socket.io/?EIO=4&transport=websocket` or
    /// `/events?channels=missions`.
    #[arg(long, alias = "ws-path")]
    pub path: Option<String>,
    /// Bearer token for the PUTs (Switchboard requires an hq token) and for SSE.
    #[arg(long, env = "BENCH_TOKEN")]
    pub token: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub mission: u64,
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Updates per second (open loop); 0 with no --closed-loop measures setup and idle memory.
    #[arg(long, default_value_t = 10)]
    pub rate: u64,
    #[arg(long, default_value_t = 10)]
    pub duration_secs: u64,
    /// Keep-alive connections the open-loop publisher spreads its PUTs over (PUTs in flight).
    #[arg(long, default_value_t = 4)]
    pub publishers: usize,
    /// Publish as fast as deliveries complete instead of at a fixed rate.
    #[arg(long)]
    pub closed_loop: bool,
    /// Closed loop: updates allowed ahead of complete delivery.
    #[arg(long, default_value_t = 8)]
    pub window: u64,
    /// Spread client connections over this many source addresses 127.0.1.1, 127.0.1.2, …
    /// (1 = let the kernel choose).
    #[arg(long, default_value_t = 1)]
    pub source_ips: u8,
    /// Pusher protocol: the app as `id:key:secret` (the same three values the server was given).
    #[arg(long, default_value = "bench:bench-key:bench-secret")]
    pub pusher_app: String,
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
    /// Share of connections, in percent, that never read after subscribing (slow consumers);
    /// they are left out of the latency and loss figures, which are the others'.
    #[arg(long, default_value_t = 0)]
    pub stalled_percent: u8,
    /// Pause after the last connection is ready before reading memory, in ms.
    #[arg(long, default_value_t = 1000)]
    pub settle_ms: u64,
}

/// Whether connection `i` is one of the `percent` % that never read: every connection where
/// the running count of `percent / 100` crosses a whole number, so they are spread evenly.
fn is_stalled(i: usize, percent: u8) -> bool {
    let p = usize::from(percent.min(100));
    (i + 1) * p / 100 > i * p / 100
}

/// The source address of connection `i`, when spreading over several.
fn source_ip(i: usize, count: u8) -> Option<IpAddr> {
    (count > 1).then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + (i % count as usize) as u8)))
}

/// Runs one scenario and returns its JSON line.
pub async fn run(a: RunArgs) -> serde_json::Value {
    let path = a.path.clone().unwrap_or_else(|| match a.protocol {
        Protocol::Socketio => "/socket.io/?EIO=4&transport=websocket".to_owned(),
        Protocol::Sse => "/events?channels=missions".to_owned(),
        Protocol::Pusher => pusher::socket_path(a.pusher_app.split(':').nth(1).unwrap_or("")),
        Protocol::Native | Protocol::Ws => "/ws".to_owned(),
    });
    let addr: SocketAddr = match tokio::net::lookup_host(&a.addr).await.map(|mut i| i.next()) {
        Ok(Some(addr)) => addr,
        Ok(None) | Err(_) => {
            return json!({"server": a.server, "error": format!("cannot resolve {}", a.addr)});
        }
    };
    let target = Arc::new(Target {
        addr,
        host: a.addr.clone(),
        path,
        protocol: a.protocol,
        token: a.token.clone(),
    });
    let rss_before = a.server_pid.and_then(procfs::rss_kib);

    // Connect everyone, a bounded number of handshakes at a time.
    let (stop_tx, stop_rx) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    // Stalled connections the server had ended by the end of the run (slow consumers cut).
    let stalled_cut = Arc::new(AtomicU64::new(0));
    let permits = Arc::new(Semaphore::new(a.setup_concurrency.max(1)));
    let (ready_tx, mut ready_rx) =
        mpsc::channel::<Result<(u64, bool), String>>(a.connections.max(1));
    let mut tasks = Vec::with_capacity(a.connections);
    let setup_started = Instant::now();
    for i in 0..a.connections {
        let (target, permits, ready, stop, delivered, cut) = (
            target.clone(),
            permits.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
            delivered.clone(),
            stalled_cut.clone(),
        );
        let source = source_ip(i, a.source_ips);
        let stalled = is_stalled(i, a.stalled_percent);
        let recv_buffer = stalled.then_some(4096);
        tasks.push(tokio::spawn(async move {
            let conn = {
                let Ok(_permit) = permits.acquire().await else {
                    return Vec::new();
                };
                let t0 = Instant::now();
                match tokio::time::timeout(
                    Duration::from_secs(15),
                    conn::open(&target, source, recv_buffer),
                )
                .await
                {
                    Ok(Ok(c)) => {
                        let _ = ready
                            .send(Ok((t0.elapsed().as_micros() as u64, stalled)))
                            .await;
                        c
                    }
                    Ok(Err(e)) => {
                        let _ = ready.send(Err(e.to_string())).await;
                        return Vec::new();
                    }
                    Err(_) => {
                        let _ = ready.send(Err("setup timed out".to_owned())).await;
                        return Vec::new();
                    }
                }
            };
            drop(ready);
            if stalled {
                if conn::stall(conn, stop).await {
                    cut.fetch_add(1, Ordering::Relaxed);
                }
                return Vec::new();
            }
            conn::receive(conn, stop, delivered).await
        }));
    }
    drop(ready_tx);
    let mut setup_us = Vec::with_capacity(a.connections);
    let mut stalled = 0u64;
    let mut setup_errors = 0u64;
    let mut first_error = None;
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok((us, stalls)) => {
                setup_us.push(us);
                stalled += u64::from(stalls);
            }
            Err(e) => {
                setup_errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let setup_wall_ms = setup_started.elapsed().as_millis() as u64;
    // Only the connections that read are expected to receive.
    let connected = setup_us.len() as u64 - stalled;
    tokio::time::sleep(Duration::from_millis(a.settle_ms)).await;
    let rss_after = a.server_pid.and_then(procfs::rss_kib);

    // The measured window: first PUT to last delivery (or drain timeout).
    let cpu0 = a.server_pid.and_then(procfs::cpu_ticks);
    let window_start = Instant::now();
    let route = Route {
        host: a.publish_addr.clone().unwrap_or_else(|| a.addr.clone()),
        token: a.token.clone(),
        path: format!("/missions/{}", a.mission),
        pusher: (a.protocol == Protocol::Pusher).then(|| {
            let mut parts = a.pusher_app.splitn(3, ':');
            let mut next = || parts.next().unwrap_or("").to_owned();
            pusher::App {
                id: next(),
                key: next(),
                secret: next(),
            }
        }),
    };
    let published = if a.closed_loop {
        let stall = Duration::from_millis(a.drain_ms);
        publish::closed_loop(
            &route,
            a.duration_secs,
            a.window,
            connected,
            delivered.clone(),
            stall,
        )
        .await
    } else {
        publish::open_loop(&route, a.rate, a.duration_secs, a.publishers).await
    };
    let sent = published.sent;
    let first_send = published.first;
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
        "connections": a.connections, "connected": connected, "stalled_connections": stalled, "stalled_cut": stalled_cut.load(Ordering::Relaxed), "setup_errors": setup_errors,
        "first_setup_error": first_error,
        "setup_p50_ms": setup.map(|s| s.p50 as f64 / 1000.0), "setup_p99_ms": setup.map(|s| s.p99 as f64 / 1000.0),
        "setup_wall_ms": setup_wall_ms,
        "rate": a.rate, "duration_secs": a.duration_secs, "updates_sent": sent.len(), "put_errors": published.put_errors,
        "first_put_error": published.first_error, "closed_loop": a.closed_loop,
        "window": a.closed_loop.then_some(a.window), "publishers": (!a.closed_loop).then_some(a.publishers),
        "stalled": published.stalled, "source_ips": a.source_ips,
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
