//! Clients for the HTTP feeds: an SSE reader over a real streaming `reqwest` response, and a
//! long-poll helper.

use std::time::Duration;

use serde_json::Value;

use super::{TestServer, WAIT};

/// One parsed SSE block (an event, or a comment-only block).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: Option<String>,
    pub retry: Option<u64>,
    pub comments: Vec<String>,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().expect("event without data")).expect("json data")
    }
}

/// A streaming SSE response, parsed block by block.
pub struct Sse {
    pub response: reqwest::Response,
    buf: String,
    /// The raw text received so far, for exact-bytes checks.
    pub raw: String,
}

impl Sse {
    /// Opens `/events?<query>` with optional headers, expecting 200.
    pub async fn open(server: &TestServer, query: &str, headers: &[(&str, &str)]) -> Sse {
        let response = Self::request(server, query, headers).await;
        assert_eq!(response.status(), 200, "SSE open failed");
        Self::from_response(response)
    }

    /// Wraps an already opened streaming response.
    pub fn from_response(response: reqwest::Response) -> Sse {
        Sse {
            response,
            buf: String::new(),
            raw: String::new(),
        }
    }

    pub async fn request(
        server: &TestServer,
        query: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = reqwest::Client::new().get(server.http(&format!("/events?{query}")));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("request")
    }

    /// The next block, or `None` when the stream ended. Fails after [`WAIT`].
    pub async fn next_block(&mut self) -> Option<SseEvent> {
        self.next_block_within(WAIT)
            .await
            .expect("timed out waiting for an SSE block")
    }

    /// Like [`next_block`], but `Err(())` on timeout instead of failing.
    pub async fn next_block_within(&mut self, d: Duration) -> Result<Option<SseEvent>, ()> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                return Ok(Some(parse_block(&block)));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .map_err(|_| ())?;
            match chunk {
                Ok(Some(bytes)) => {
                    let text = std::str::from_utf8(&bytes).expect("utf-8 stream");
                    self.buf.push_str(text);
                    self.raw.push_str(text);
                }
                Ok(None) => return Ok(None),
                Err(e) => panic!("SSE stream error: {e}"),
            }
        }
    }

    /// The next block that carries data (skipping heartbeat comments).
    pub async fn next_event(&mut self) -> SseEvent {
        loop {
            let block = self.next_block().await.expect("stream ended");
            if block.data.is_some() {
                return block;
            }
        }
    }

    /// Asserts no data event arrives for `d` (comments are allowed).
    pub async fn expect_no_event(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_block_within(left).await {
                Err(()) => return,
                Ok(None) => panic!("stream ended"),
                Ok(Some(b)) if b.data.is_some() => panic!("expected no event, got {b:?}"),
                Ok(Some(_)) => {}
            }
        }
    }
}

fn parse_block(block: &str) -> SseEvent {
    let mut ev = SseEvent::default();
    for line in block.lines() {
        if let Some(c) = line.strip_prefix(':') {
            ev.comments.push(c.trim_start().to_owned());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => ev.id = Some(value.to_owned()),
            "event" => ev.event = Some(value.to_owned()),
            "retry" => ev.retry = value.parse().ok(),
            "data" => {
                ev.data = Some(match ev.data.take() {
                    Some(d) => format!("{d}\n{value}"),
                    None => value.to_owned(),
                })
            }
            _ => {}
        }
    }
    ev
}

/// `GET /poll?<query>`: status and JSON body.
pub async fn poll(server: &TestServer, query: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(server.http(&format!("/poll?{query}")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = tokio::time::timeout(Duration::from_secs(70), req.send())
        .await
        .expect("poll answered")
        .expect("request");
    let status = res.status().as_u16();
    let body = res.json().await.expect("json body");
    (status, body)
}

/// Offsets of a list of native deliveries.
pub fn offsets(updates: &Value) -> Vec<u64> {
    updates
        .as_array()
        .expect("updates array")
        .iter()
        .map(|u| u["offset"].as_u64().expect("offset"))
        .collect()
}
