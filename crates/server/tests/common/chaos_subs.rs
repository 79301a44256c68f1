//! The chaos test's clients: one subscriber loop per transport (native WebSocket, Socket.IO,
//! SSE, long-poll), each a plain client of its protocol that keeps its resume position the way
//! the docs tell a client to, reconnects to another node when its connection fails, and logs
//! what it saw for the checker (`chaos_check`) — duplicates included, nothing filtered. And the
//! publisher: `POST /api/publish` round-robin over the live nodes, each publication carrying its
//! sequence number.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_client::socketio::{self, Frame, Packet};
use switchboard_client::{ClientMessage, Connection, ServerMessage, sse};
use switchboard_core::cursor::Cursor;
use switchboard_core::publication::StreamPosition;
use tokio::sync::watch;

use super::chaos_check::{Ledger, Log, Obs, Published};

/// The channels every subscriber reads; the publisher alternates between them.
pub const CHANNELS: [&str; 2] = ["missions", "lobby"];
pub const EVENT: &str = "tick";

/// The nodes' addresses; `None` once a node was killed.
pub type Nodes = Arc<Mutex<Vec<Option<SocketAddr>>>>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transport {
    Ws,
    SocketIo,
    Sse,
    Poll,
}

/// The node to try on `attempt` (0 = home), skipping killed ones.
fn pick(nodes: &Nodes, home: usize, attempt: usize) -> Option<SocketAddr> {
    let nodes = nodes.lock().unwrap();
    let live: Vec<SocketAddr> = (0..nodes.len())
        .filter_map(|i| nodes[(home + i) % nodes.len()])
        .collect();
    (!live.is_empty()).then(|| live[attempt % live.len()])
}

fn position(v: &Value) -> Option<StreamPosition> {
    Some(StreamPosition {
        offset: v.get("offset")?.as_u64()?,
        epoch: v.get("epoch")?.as_str()?.to_owned(),
    })
}

fn seq_of(data: &Value) -> u64 {
    data["seq"].as_u64().unwrap_or(u64::MAX)
}

/// Where a subscriber stands: per channel for the native protocols, a cursor for the feeds.
#[derive(Default)]
struct State {
    positions: HashMap<String, StreamPosition>,
    cursor: Option<String>,
}

fn decode(cursor: &str) -> HashMap<String, StreamPosition> {
    Cursor::decode(cursor)
        .expect("a cursor the server issued decodes")
        .iter()
        .map(|(c, p)| (c.as_str().to_owned(), p.clone()))
        .collect()
}

/// Runs one subscriber until `stop`: connect (home node first), read until the connection
/// fails, log it, try the next node after a short pause.
pub async fn subscriber(
    transport: Transport,
    nodes: Nodes,
    home: usize,
    log: Arc<Log>,
    seed: HashMap<String, StreamPosition>,
    mut stop: watch::Receiver<bool>,
) {
    let mut state = State {
        // Socket.IO resumes through `auth.since` only, so it starts from the seed positions.
        positions: if transport == Transport::SocketIo {
            seed
        } else {
            HashMap::new()
        },
        cursor: None,
    };
    let mut attempt = 0;
    while !*stop.borrow() {
        let Some(addr) = pick(&nodes, home, attempt) else {
            return;
        };
        let run = async {
            match transport {
                Transport::Ws => ws(addr, &mut state, &log).await,
                Transport::SocketIo => socket_io(addr, &mut state, &log).await,
                Transport::Sse => events(addr, &mut state, &log).await,
                Transport::Poll => poll(addr, &mut state, &log).await,
            }
        };
        tokio::select! {
            why = run => log.push(Obs::Lost(why)),
            _ = stop.wait_for(|s| *s) => return,
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ws(addr: SocketAddr, state: &mut State, log: &Log) -> String {
    let url = format!("ws://{addr}/ws");
    let Ok(Ok((mut conn, _))) =
        tokio::time::timeout(Duration::from_secs(2), Connection::connect(&url, None)).await
    else {
        return "connect failed".into();
    };
    for channel in CHANNELS {
        let since = state.positions.get(channel).cloned();
        let subscribe = ClientMessage::Subscribe {
            channel: channel.into(),
            since,
        };
        if conn.send_message(&subscribe, None).await.is_err() {
            return "send failed".into();
        }
    }
    log.push(Obs::Connected(addr));
    loop {
        let frame = match conn.recv().await {
            Ok(f) => f,
            Err(e) => return e.to_string(),
        };
        match frame.message {
            ServerMessage::Subscribed {
                channel,
                position,
                recovered,
            } => {
                let asked = state.positions.get(&channel).cloned();
                if !(asked.is_some() && recovered) {
                    state.positions.insert(channel.clone(), position.clone());
                }
                log.push(Obs::Sync {
                    channel,
                    asked,
                    position: Some(position),
                    recovered,
                });
            }
            // A refused subscribe (this node cannot reach Redis): try another node.
            ServerMessage::Error { code, message } => return format!("{code}: {message}"),
            ServerMessage::Delivery(d) if d.event == EVENT => {
                let Some(position) = d.position else {
                    continue;
                };
                state.positions.insert(d.channel.clone(), position.clone());
                log.push(Obs::Delivery {
                    channel: d.channel,
                    position,
                    seq: seq_of(&d.data),
                    resume_from: None,
                });
            }
            _ => {}
        }
    }
}

async fn socket_io(addr: SocketAddr, state: &mut State, log: &Log) -> String {
    let url = socketio::endpoint(&format!("ws://{addr}"));
    let Ok(Ok(mut conn)) =
        tokio::time::timeout(Duration::from_secs(2), Connection::open(url)).await
    else {
        return "connect failed".into();
    };
    let since: serde_json::Map<String, Value> = state
        .positions
        .iter()
        .map(|(c, p)| (c.clone(), json!({"offset": p.offset, "epoch": p.epoch})))
        .collect();
    let auth = json!({ "since": since });
    match tokio::time::timeout(
        Duration::from_secs(2),
        socketio::connect(&mut conn, Some(&auth)),
    )
    .await
    {
        Ok(Ok(_)) => {}
        _ => return "socket.io connect failed".into(),
    }
    log.push(Obs::Connected(addr));
    loop {
        let text = match conn.next_text().await {
            Ok(t) => t,
            Err(e) => return e.to_string(),
        };
        match socketio::classify(&text) {
            Frame::Ping => {
                let _ = conn.send_text(socketio::PONG).await;
            }
            Frame::Disconnect | Frame::Close => return "socket.io disconnect".into(),
            Frame::Event(_) => match Packet::parse(&text) {
                Some(Packet::Event { event, args }) if event == "subscribed" => {
                    let Some(body) = args.first() else { continue };
                    let channel = body["channel"].as_str().unwrap_or_default().to_owned();
                    let recovered = body["recovered"].as_bool().unwrap_or(false);
                    let asked = state.positions.get(&channel).cloned();
                    let at = position(body);
                    if let Some(p) = at.clone().filter(|_| !recovered) {
                        state.positions.insert(channel.clone(), p);
                    }
                    log.push(Obs::Sync {
                        channel,
                        asked,
                        position: at,
                        recovered,
                    });
                }
                Some(Packet::Event { event, args }) if event == EVENT => {
                    let (Some(data), Some(meta)) = (args.first(), args.get(1)) else {
                        continue;
                    };
                    let (Some(p), Some(channel)) = (position(meta), meta["channel"].as_str())
                    else {
                        continue;
                    };
                    state.positions.insert(channel.to_owned(), p.clone());
                    log.push(Obs::Delivery {
                        channel: channel.to_owned(),
                        position: p,
                        seq: seq_of(data),
                        resume_from: None,
                    });
                }
                _ => {}
            },
            _ => {}
        }
    }
}

async fn events(addr: SocketAddr, state: &mut State, log: &Log) -> String {
    let mut req = reqwest::Client::new().get(format!(
        "http://{addr}/events?channels={}",
        CHANNELS.join(",")
    ));
    if let Some(c) = &state.cursor {
        req = req.header("Last-Event-ID", c);
    }
    let mut res = match tokio::time::timeout(Duration::from_secs(3), req.send()).await {
        Ok(Ok(r)) if r.status() == 200 => r,
        Ok(Ok(r)) => return format!("SSE open: {}", r.status()),
        _ => return "SSE open failed".into(),
    };
    let mut parser = sse::SseParser::default();
    loop {
        while let Some(block) = parser.next_event() {
            let Some(data) = block.data.as_deref() else {
                continue;
            };
            let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            let asked = state.cursor.as_deref().map(decode).unwrap_or_default();
            match (block.event.as_deref(), v["type"].as_str()) {
                (None, Some("connected")) => {
                    log.push(Obs::Connected(addr));
                    if state.cursor.is_none()
                        && let Some(id) = &block.id
                    {
                        for (channel, p) in decode(id) {
                            log.push(Obs::Sync {
                                channel,
                                asked: None,
                                position: Some(p),
                                recovered: false,
                            });
                        }
                        state.cursor = Some(id.clone());
                    }
                }
                (Some("subscribed"), _) => {
                    let channel = v["channel"].as_str().unwrap_or_default().to_owned();
                    log.push(Obs::Sync {
                        asked: asked.get(&channel).cloned(),
                        channel,
                        position: position(&v),
                        recovered: v["recovered"].as_bool().unwrap_or(false),
                    });
                }
                (Some("close"), _) => return format!("SSE close {}", v["code"]),
                (Some(EVENT), _) => {
                    let channel = v["channel"].as_str().unwrap_or_default().to_owned();
                    let id = block.id.clone().unwrap_or_default();
                    let resume = decode(&id).remove(&channel);
                    state.cursor = Some(id);
                    log.push(Obs::Delivery {
                        position: position(&v).expect("a positioned SSE delivery"),
                        seq: seq_of(&v["data"]),
                        resume_from: resume,
                        channel,
                    });
                }
                _ => {}
            }
        }
        match res.chunk().await {
            Ok(Some(bytes)) => parser.push(&bytes),
            Ok(None) => return "SSE stream ended".into(),
            Err(e) => return format!("SSE stream: {e}"),
        }
    }
}

async fn poll(addr: SocketAddr, state: &mut State, log: &Log) -> String {
    let client = reqwest::Client::new();
    let mut first = true;
    loop {
        let mut url = format!(
            "http://{addr}/poll?channels={}&timeout=2",
            CHANNELS.join(",")
        );
        if let Some(c) = &state.cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let body: Value =
            match tokio::time::timeout(Duration::from_secs(5), client.get(url).send()).await {
                Ok(Ok(r)) if r.status() == 200 => match r.json().await {
                    Ok(v) => v,
                    Err(e) => return format!("poll body: {e}"),
                },
                Ok(Ok(r)) => return format!("poll: {}", r.status()),
                Ok(Err(e)) => return format!("poll: {e}"),
                Err(_) => return "poll timed out".into(),
            };
        if std::mem::take(&mut first) {
            log.push(Obs::Connected(addr));
        }
        let next = body["cursor"].as_str().expect("a cursor").to_owned();
        let after = decode(&next);
        let asked = state.cursor.as_deref().map(decode);
        let updates = body["updates"].as_array().cloned().unwrap_or_default();
        match &asked {
            None => {
                for (channel, p) in &after {
                    log.push(Obs::Sync {
                        channel: channel.clone(),
                        asked: None,
                        position: Some(p.clone()),
                        recovered: false,
                    });
                }
            }
            Some(asked) => {
                for channel in body["unrecovered"].as_array().into_iter().flatten() {
                    let channel = channel.as_str().unwrap_or_default().to_owned();
                    // With updates of the channel in this answer, they start the new position;
                    // without, the cursor holds it.
                    let any = updates.iter().any(|u| u["channel"] == channel.as_str());
                    log.push(Obs::Sync {
                        asked: asked.get(&channel).cloned(),
                        position: (!any).then(|| after.get(&channel).cloned()).flatten(),
                        channel,
                        recovered: false,
                    });
                }
            }
        }
        for (i, u) in updates.iter().enumerate() {
            let channel = u["channel"].as_str().unwrap_or_default().to_owned();
            let last_of_channel = !updates[i + 1..]
                .iter()
                .any(|n| n["channel"] == u["channel"]);
            log.push(Obs::Delivery {
                position: position(u).expect("a positioned update"),
                seq: seq_of(&u["data"]),
                resume_from: last_of_channel
                    .then(|| after.get(&channel).cloned())
                    .flatten(),
                channel,
            });
        }
        state.cursor = Some(next);
    }
}

/// The publisher: every `every`, the next `seq` on the next channel through the next live
/// node, until `stop`. `seq` is the last one sent.
pub async fn publisher(
    nodes: Nodes,
    token: String,
    every: Duration,
    seq: Arc<AtomicU64>,
    ledger: Arc<Mutex<Ledger>>,
    mut stop: watch::Receiver<bool>,
) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut turn = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let n = seq.fetch_add(1, Ordering::SeqCst) + 1;
        let channel = CHANNELS[n as usize % CHANNELS.len()];
        turn += 1;
        let Some(addr) = pick(&nodes, turn, 0) else {
            return;
        };
        let sent = Instant::now();
        ledger.lock().unwrap().sent.insert(n, sent);
        let req = client
            .post(format!("http://{addr}/api/publish"))
            .bearer_auth(&token)
            .json(&json!({"channel": channel, "event": EVENT, "data": {"seq": n}}))
            .timeout(Duration::from_secs(3))
            .send();
        let outcome = match req.await {
            Ok(r) if r.status() == 200 => r.json::<Value>().await.ok().and_then(|v| position(&v)),
            Ok(r) if r.status().is_client_error() => {
                ledger.lock().unwrap().refused.push(sent);
                continue;
            }
            Err(e) if e.is_connect() => {
                ledger.lock().unwrap().refused.push(sent);
                continue;
            }
            _ => None,
        };
        let mut ledger = ledger.lock().unwrap();
        match outcome {
            Some(position) => ledger.acked.push(Published {
                seq: n,
                channel: channel.to_owned(),
                position,
                acked: Instant::now(),
            }),
            None => {
                ledger.uncertain.insert(n);
            }
        }
    }
}
