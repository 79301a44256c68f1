//! Sans-IO reading of a Server-Sent Events response for the load generator: HTTP/1.1 chunked
//! transfer decoding (the generator speaks HTTP over its own TCP streams); the event splitting
//! after it is `switchboard_client::sse`'s. Each complete event's `data:` text goes to the same
//! stamp scanner the WebSocket modes use.
//!
//! The decoder never assumes a chunk holds a whole event (hyper writes one chunk per body
//! item today, but a proxy or a future version may split or merge them), so bytes go through
//! [`Chunked`] first and the client's `SseParser` second, both of which keep partial input
//! across calls.

/// Decodes `Transfer-Encoding: chunked` bodies incrementally.
#[derive(Debug, Default)]
pub struct Chunked {
    /// Undecoded input (at most one partial size line or chunk tail).
    pending: Vec<u8>,
    /// Bytes of the current chunk's data still to come; `None` while reading a size line.
    remaining: Option<usize>,
    /// The zero-size last chunk was seen: the body is over.
    pub finished: bool,
}

/// A malformed chunked body.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkError;

impl Chunked {
    /// Feeds raw body bytes; appends decoded data to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        self.pending.extend_from_slice(input);
        let mut at = 0;
        loop {
            if self.finished {
                break;
            }
            match self.remaining {
                None => {
                    let Some(nl) = self.pending[at..].windows(2).position(|w| w == b"\r\n") else {
                        if self.pending.len() - at > 64 {
                            return Err(ChunkError);
                        }
                        break;
                    };
                    let line =
                        std::str::from_utf8(&self.pending[at..at + nl]).map_err(|_| ChunkError)?;
                    // Chunk extensions (`;name=value`) are allowed and ignored.
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(hex, 16).map_err(|_| ChunkError)?;
                    at += nl + 2;
                    if size == 0 {
                        self.finished = true;
                    } else {
                        // The data, then its trailing CRLF.
                        self.remaining = Some(size + 2);
                    }
                }
                Some(left) => {
                    let available = self.pending.len() - at;
                    if available == 0 {
                        break;
                    }
                    let take = available.min(left);
                    // The last two bytes of each chunk are its CRLF, not data.
                    let data_left = left.saturating_sub(2);
                    let data = take.min(data_left);
                    out.extend_from_slice(&self.pending[at..at + data]);
                    at += take;
                    let left = left - take;
                    self.remaining = if left == 0 { None } else { Some(left) };
                }
            }
        }
        self.pending.drain(..at);
        Ok(())
    }
}

/// Whether a response head declares a chunked body.
pub fn is_chunked(head: &str) -> bool {
    crate::http::header(head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn decode_all(pieces: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut c = Chunked::default();
        let mut out = Vec::new();
        for p in pieces {
            c.feed(p, &mut out).expect("well-formed");
        }
        (out, c.finished)
    }

    #[test]
    fn chunked_whole_and_split_anywhere() {
        let body = b"5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n";
        assert_eq!(decode_all(&[body]), (b"hello, world".to_vec(), true));
        // Every split point gives the same result.
        for i in 0..body.len() {
            let (a, b) = body.split_at(i);
            assert_eq!(
                decode_all(&[a, b]).0,
                b"hello, world".to_vec(),
                "split at {i}"
            );
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        assert_eq!(decode_all(&bytes), (b"hello, world".to_vec(), true));
    }

    #[test]
    fn chunked_refuses_garbage() {
        let mut c = Chunked::default();
        let mut out = Vec::new();
        assert_eq!(c.feed(b"zz\r\n", &mut out), Err(ChunkError));
        let mut c = Chunked::default();
        assert_eq!(c.feed(&[b'1'; 100], &mut out), Err(ChunkError));
    }

    #[test]
    fn chunked_heads() {
        assert!(is_chunked(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(!is_chunked("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n"));
    }
}
