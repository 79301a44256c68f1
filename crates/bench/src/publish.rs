//! The publisher side of a run: `PUT /missions/:id` with a stamp in `location`, either open
//! loop (a fixed rate, several PUTs in flight, each stamped with the time it was *due*) or
//! closed loop (as fast as the server delivers, a bounded window of updates in flight).
//!
//! Stamping with the due time, not the send time, is what keeps a slow server honest: when
//! PUTs queue up, the lag shows up in the latency instead of silently lowering the rate
//! (coordinated omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::conn::now_micros;
use crate::{frame, http, pusher};

/// Where to send the updates.
#[derive(Debug, Clone)]
pub struct Route {
    pub host: String,
    pub token: Option<String>,
    /// `PUT` path (`/missions/:id`) for servers with the missions API.
    pub path: String,
    /// For a Pusher-protocol server: publish the DTO through its signed events API instead.
    pub pusher: Option<pusher::App>,
}

impl Route {
    /// Publishes the update stamped `stamp`; the status the server answered.
    async fn send(&self, client: &mut http::Client, stamp: u64) -> Result<u16, http::HttpError> {
        match &self.pusher {
            None => client.put_json(&self.path, &body(stamp)).await,
            Some(app) => {
                // The DTO a missions backend would publish, built here: Pusher servers have no
                // missions API, only "publish this event".
                let dto = format!(
                    r#"{{"id":1,"codename":"Nightingale","status":"active","location":"{}"}}"#,
                    frame::stamp_location(stamp)
                );
                let body = pusher::event_body("mission-update", "missions", &dto);
                let path = pusher::signed_events_path(app, &body, now_micros() / 1_000_000);
                client.send_json("POST", &path, &body).await
            }
        }
    }
}

/// What the publisher got done.
#[derive(Debug, Default)]
pub struct Published {
    /// Stamps of the updates that got a 200, ascending.
    pub sent: Vec<u64>,
    pub put_errors: u64,
    pub first_error: Option<String>,
    /// Unix micros of the first update (due or sent).
    pub first: u64,
    /// Closed loop only: the window never reopened within the stall limit (deliveries lost).
    pub stalled: bool,
}

impl Published {
    fn record(&mut self, stamp: u64, outcome: Result<u16, http::HttpError>) {
        match outcome {
            Ok(200) => self.sent.push(stamp),
            Ok(s) => self.error(format!("status {s}")),
            Err(e) => self.error(e.to_string()),
        }
    }

    fn error(&mut self, e: String) {
        self.put_errors += 1;
        self.first_error.get_or_insert(e);
    }
}

fn body(stamp: u64) -> String {
    format!(r#"{{"location":"{}"}}"#, frame::stamp_location(stamp))
}

/// `rate` updates per second for `secs` seconds from `publishers` keep-alive connections, update
/// `i` due at `start + i / rate` and sent by publisher `i % publishers`.
pub async fn open_loop(route: &Route, rate: u64, secs: u64, publishers: usize) -> Published {
    let total = rate * secs;
    let mut out = Published::default();
    if total == 0 {
        return out;
    }
    let interval_us = (1_000_000 / rate.max(1)).max(1);
    let publishers = publishers.clamp(1, 64) as u64;
    // A short lead so every publisher is waiting before the first update is due.
    let lead = Duration::from_millis(20);
    let base = Instant::now() + lead;
    let first = now_micros() + lead.as_micros() as u64;
    out.first = first;
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let route = route.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = http::Client::new(&route.host, route.token.clone());
            let mut mine = Published::default();
            let mut i = p;
            while i < total {
                let offset = Duration::from_micros(i * interval_us);
                tokio::time::sleep_until(base + offset).await;
                let stamp = first + i * interval_us;
                let outcome = route.send(&mut client, stamp).await;
                mine.record(stamp, outcome);
                i += publishers;
            }
            mine
        }));
    }
    for t in tasks {
        match t.await {
            Ok(mine) => {
                out.sent.extend(mine.sent);
                out.put_errors += mine.put_errors;
                if let Some(e) = mine.first_error {
                    out.first_error.get_or_insert(e);
                }
            }
            Err(e) => out.error(format!("publisher task: {e}")),
        }
    }
    out.sent.sort_unstable();
    out
}

/// Publishes for `secs` seconds, never more than `window` updates ahead of delivery: update
/// `k + window` goes out once `delivered` shows update `k` reached all `receivers`. Gives up
/// (and says so) when the window stays shut for `stall`, e.g. because deliveries were lost.
pub async fn closed_loop(
    route: &Route,
    secs: u64,
    window: u64,
    receivers: u64,
    delivered: Arc<AtomicU64>,
    stall: Duration,
) -> Published {
    let mut out = Published {
        first: now_micros(),
        ..Published::default()
    };
    if receivers == 0 {
        return out;
    }
    let window = window.max(1);
    let mut client = http::Client::new(&route.host, route.token.clone());
    let end = Instant::now() + Duration::from_secs(secs);
    let mut last = 0u64;
    while Instant::now() < end {
        // Updates fully delivered must be at least (accepted + 1 − window).
        let need = (out.sent.len() as u64 + 1).saturating_sub(window) * receivers;
        let waiting_since = Instant::now();
        while delivered.load(Ordering::Relaxed) < need {
            if waiting_since.elapsed() > stall {
                out.stalled = true;
                return out;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let stamp = now_micros().max(last + 1);
        last = stamp;
        let outcome = route.send(&mut client, stamp).await;
        out.record(stamp, outcome);
    }
    out
}
