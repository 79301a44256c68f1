//! Sans-IO reading of a `text/event-stream` body (SPEC §4.3): bytes in, one [`SseEvent`] per
//! blank-line separated block out. Input may be split anywhere, a block across any number of
//! pushes, so it works on whatever pieces an HTTP client hands over.
//!
//! To resume a stream, send the last [`SseEvent::id`] seen as `Last-Event-ID` (or
//! `?since=<id>`) on the next request.

/// One block of an event stream: an event, or only comments (a heartbeat).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `id:` — the resume cursor after this event.
    pub id: Option<String>,
    /// `event:` — the event name (`None` means `message`).
    pub event: Option<String>,
    /// `data:` lines joined with `\n`; `None` when the block had none.
    pub data: Option<String>,
    /// `retry:` — the reconnect delay the server asks for, in ms.
    pub retry: Option<u64>,
    /// Comment lines (`: ping`), without the colon and leading spaces.
    pub comments: Vec<String>,
}

impl SseEvent {
    /// Parses one block (without its terminating blank line).
    pub fn parse(block: &str) -> SseEvent {
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
}

/// Splits a stream into blocks, keeping partial input between pushes.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Where the next block starts in `buf` (consumed bytes are dropped lazily).
    start: usize,
}

impl SseParser {
    /// Adds received body bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete block, if one has arrived. Invalid UTF-8 is replaced, not fatal.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        let rest = &self.buf[self.start..];
        let end = rest.windows(2).position(|w| w == b"\n\n")?;
        let event = SseEvent::parse(&String::from_utf8_lossy(&rest[..end]));
        self.start += end + 2;
        Some(event)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_across_pushes_anywhere() {
        let stream = "id: c1\nretry: 1000\ndata: {\"type\":\"connected\"}\n\n: ping\n\n\
                      id: c2\nevent: mission-update\ndata:a\ndata: b\n\n";
        for i in 0..stream.len() {
            let (a, b) = stream.as_bytes().split_at(i);
            let mut p = SseParser::default();
            let mut got = Vec::new();
            p.push(a);
            while let Some(e) = p.next_event() {
                got.push(e);
            }
            p.push(b);
            while let Some(e) = p.next_event() {
                got.push(e);
            }
            assert_eq!(got.len(), 3, "split at {i}");
            assert_eq!(got[0].id.as_deref(), Some("c1"));
            assert_eq!(got[0].retry, Some(1000));
            assert_eq!(got[0].data.as_deref(), Some("{\"type\":\"connected\"}"));
            assert_eq!(got[1].comments, vec!["ping".to_owned()]);
            assert_eq!(got[1].data, None);
            assert_eq!(got[2].event.as_deref(), Some("mission-update"));
            assert_eq!(got[2].data.as_deref(), Some("a\nb"));
        }
    }
}
