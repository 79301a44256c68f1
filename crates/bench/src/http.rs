//! Just enough HTTP/1.1 for the bench: a keep-alive client for `PUT /missions/:id` and request
//! parsing for the minimal server. Hand-rolled so the bench pulls in no HTTP stack of its own
//! and a PUT costs one write and one read on a warm connection; the head parsing is sans-IO.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Heads larger than this are refused: the bench only ever sees tiny ones.
pub const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed HTTP head")]
    Malformed,
    #[error("HTTP head larger than {MAX_HEAD} bytes")]
    TooLarge,
    #[error("connection closed before a full response")]
    Closed,
}

/// Index just past the `\r\n\r\n` that ends a head, if the buffer holds a whole head.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The value of a header (case-insensitive name) in a head's text.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub content_length: usize,
    /// `Upgrade: websocket` was asked for.
    pub websocket: bool,
}

/// Parses a request head (the bytes up to and including `\r\n\r\n`).
pub fn parse_request_head(head: &[u8]) -> Result<RequestHead, HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpError::Malformed)?;
    let line = text.split("\r\n").next().ok_or(HttpError::Malformed)?;
    let mut parts = line.split(' ');
    let method = parts
        .next()
        .filter(|m| !m.is_empty())
        .ok_or(HttpError::Malformed)?;
    let path = parts.next().ok_or(HttpError::Malformed)?;
    let content_length = match header(text, "content-length") {
        Some(v) => v.parse().map_err(|_| HttpError::Malformed)?,
        None => 0,
    };
    let websocket = header(text, "upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    Ok(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        content_length,
        websocket,
    })
}

/// Status and body length from a response head. Only `Content-Length` bodies are supported:
/// every server the bench talks to sends one for its JSON answers.
pub fn parse_response_head(head: &[u8]) -> Result<(u16, usize), HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpError::Malformed)?;
    let line = text.split("\r\n").next().ok_or(HttpError::Malformed)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(HttpError::Malformed)?;
    let len = match header(text, "content-length") {
        Some(v) => v.parse().map_err(|_| HttpError::Malformed)?,
        None => 0,
    };
    Ok((status, len))
}

/// Reads one head plus its body from `stream`, keeping leftovers in `buf` for the next one.
pub async fn read_message(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    body_len: impl Fn(&[u8]) -> Result<usize, HttpError>,
) -> Result<(Vec<u8>, Vec<u8>), HttpError> {
    let end = loop {
        if let Some(end) = head_end(buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err(HttpError::TooLarge);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head: Vec<u8> = buf.drain(..end).collect();
    let len = body_len(&head)?;
    while buf.len() < len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf.drain(..len).collect();
    Ok((head, body))
}

/// A keep-alive HTTP/1.1 connection that sends JSON PUTs; reconnects once when the server
/// closed it.
pub struct Client {
    addr: String,
    token: Option<String>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    pub fn new(addr: &str, token: Option<String>) -> Self {
        Self {
            addr: addr.to_owned(),
            token,
            stream: None,
            buf: Vec::new(),
        }
    }

    /// Sends `PUT path` with a JSON body and returns the status.
    pub async fn put_json(&mut self, path: &str, body: &str) -> Result<u16, HttpError> {
        self.send_json("PUT", path, body).await
    }

    /// Sends `method path` with a JSON body and returns the status; reconnects once when the
    /// server closed the keep-alive connection.
    pub async fn send_json(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<u16, HttpError> {
        match self.try_send(method, path, body).await {
            Ok(s) => Ok(s),
            Err(HttpError::Closed | HttpError::Io(_)) => {
                self.stream = None;
                self.try_send(method, path, body).await
            }
            Err(e) => Err(e),
        }
    }

    async fn try_send(&mut self, method: &str, path: &str, body: &str) -> Result<u16, HttpError> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().ok_or(HttpError::Closed)?;
        let auth = match &self.token {
            Some(t) => format!("authorization: Bearer {t}\r\n"),
            None => String::new(),
        };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        stream.write_all(req.as_bytes()).await?;
        let (head, _body) = read_message(stream, &mut self.buf, |h| {
            parse_response_head(h).map(|(_, l)| l)
        })
        .await?;
        let (status, _) = parse_response_head(&head)?;
        if header(std::str::from_utf8(&head).unwrap_or(""), "connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        {
            self.stream = None;
        }
        Ok(status)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn request_head() {
        let raw = b"PUT /missions/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 25\r\n\r\n{\"location\":\"t:1\"}";
        let end = head_end(raw).expect("whole head");
        let h = parse_request_head(&raw[..end]).expect("parses");
        assert_eq!(
            h,
            RequestHead {
                method: "PUT".into(),
                path: "/missions/1".into(),
                content_length: 25,
                websocket: false
            }
        );
        let up = b"GET /ws HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n";
        assert!(parse_request_head(up).expect("parses").websocket);
        assert!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n").is_none());
        assert!(parse_request_head(b"\r\n\r\n").is_err());
        assert!(parse_request_head(b"PUT / HTTP/1.1\r\ncontent-length: x\r\n\r\n").is_err());
    }

    #[test]
    fn response_head() {
        let raw =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n";
        assert_eq!(parse_response_head(raw).expect("parses"), (200, 12));
        assert_eq!(
            parse_response_head(b"HTTP/1.1 429 Too Many\r\n\r\n").expect("parses"),
            (429, 0)
        );
        assert!(parse_response_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }
}
