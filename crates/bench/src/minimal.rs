//! The minimal-server reference: the least a broadcaster can do for the same workload. One
//! tokio-tungstenite socket per client, a hand-rolled `PUT /missions/:id` on the same port, and
//! each update encoded once and the same frame (shared bytes) queued to every socket.
//!
//! It is the floor the others are measured against, not a server: no auth, no history, no
//! validation beyond "JSON object".

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::http;

/// Frames queued per socket before the socket is dropped (a slow client never blocks others).
const QUEUE: usize = 1024;

#[derive(Default)]
struct State {
    next_id: AtomicU64,
    sockets: Mutex<HashMap<u64, mpsc::Sender<Message>>>,
    mission: Mutex<Value>,
}

impl State {
    /// Queues one pre-encoded frame to every socket; the lock is never held across an await.
    fn broadcast(&self, frame: Utf8Bytes) {
        let Ok(mut sockets) = self.sockets.lock() else {
            return;
        };
        sockets.retain(|_, tx| tx.try_send(Message::Text(frame.clone())).is_ok());
    }
}

/// Serves until the process is stopped.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let state = Arc::new(State {
        mission: Mutex::new(
            json!({"id":1,"codename":"Nightingale","status":"active","location":"Berlin"}),
        ),
        ..State::default()
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let _ = handle(stream, state).await;
        });
    }
}

/// Peeks the head to tell a WebSocket upgrade (given whole to tungstenite) from plain HTTP.
async fn handle(mut stream: TcpStream, state: Arc<State>) -> Result<(), http::HttpError> {
    let mut peek = vec![0u8; http::MAX_HEAD];
    let head = loop {
        let n = stream.peek(&mut peek).await?;
        if n == 0 {
            return Ok(());
        }
        if let Some(end) = http::head_end(&peek[..n]) {
            break http::parse_request_head(&peek[..end])?;
        }
        if n == peek.len() {
            return Err(http::HttpError::TooLarge);
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    };
    // The 16 KiB peek buffer must not live as long as the socket: it would be most of an idle
    // connection's memory.
    drop(peek);
    if head.websocket {
        socket(stream, state).await;
        return Ok(());
    }
    let mut buf = Vec::new();
    loop {
        let (head, body) = match http::read_message(&mut stream, &mut buf, |h| {
            http::parse_request_head(h).map(|r| r.content_length)
        })
        .await
        {
            Ok(m) => m,
            Err(http::HttpError::Closed) => return Ok(()),
            Err(e) => return Err(e),
        };
        let req = http::parse_request_head(&head)?;
        let (status, answer) = put(&state, &req, &body);
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        stream.write_all(resp.as_bytes()).await?;
    }
}

/// Applies `PUT /missions/1` and broadcasts the DTO; anything else is 404.
fn put(state: &State, req: &http::RequestHead, body: &[u8]) -> (&'static str, String) {
    if req.method != "PUT" || req.path != "/missions/1" {
        return ("404 Not Found", r#"{"error":"Not found"}"#.to_owned());
    }
    let Ok(Value::Object(update)) = serde_json::from_slice::<Value>(body) else {
        return ("400 Bad Request", r#"{"error":"Invalid JSON"}"#.to_owned());
    };
    let dto = {
        let Ok(mut m) = state.mission.lock() else {
            return (
                "500 Internal Server Error",
                r#"{"error":"poisoned"}"#.to_owned(),
            );
        };
        for key in ["status", "location"] {
            if let (Some(v), Some(slot)) = (update.get(key), m.get_mut(key)) {
                *slot = v.clone();
            }
        }
        m.clone()
    };
    let frame = json!({"type":"mission-update","channel":"missions","data":&dto}).to_string();
    state.broadcast(Utf8Bytes::from(frame));
    ("200 OK", dto.to_string())
}

/// One WebSocket: a writer task drains the queue; the reader discards client frames and notices
/// the close.
async fn socket(stream: TcpStream, state: Arc<State>) {
    // 4 KiB read buffers (tungstenite's default is 128 KiB): clients only send a subscribe, and
    // idle memory per connection is one of the figures this floor sets.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(QUEUE);
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut s) = state.sockets.lock() {
        s.insert(id, tx);
    }
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(_)) = source.next().await {}
    if let Ok(mut s) = state.sockets.lock() {
        s.remove(&id);
    }
    writer.abort();
}
