//! Clients for the HTTP feeds: an SSE reader over a real streaming `reqwest` response, and a
//! long-poll helper.

use std::time::Duration;

use serde_json::Value;
use switchboard_client::sse;

use super::{TestServer, WAIT};

/// One parsed SSE block (an event, or a comment-only block): the client crate's, with a
/// test's shortcut to its JSON data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SseEvent(pub sse::SseEvent);

impl std::ops::Deref for SseEvent {
    type Target = sse::SseEvent;

    fn deref(&self) -> &sse::SseEvent {
        &self.0
    }
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().expect("event without data")).expect("json data")
    }
}

/// A streaming SSE response, parsed block by block.
pub struct Sse {
    pub response: reqwest::Response,
    parser: sse::SseParser,
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
            parser: sse::SseParser::default(),
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
            if let Some(block) = self.parser.next_event() {
                return Ok(Some(SseEvent(block)));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .map_err(|_| ())?;
            match chunk {
                Ok(Some(bytes)) => {
                    let text = std::str::from_utf8(&bytes).expect("utf-8 stream");
                    self.parser.push(&bytes);
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
