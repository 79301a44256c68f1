//! What the fuzz targets share: an allocation guard, a reference SSE parser, the canonical
//! encoding of a decoded native message, and small input-splitting helpers.
//!
//! See docs/fuzzing.md for what each target checks.

pub mod commands_model;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use switchboard_core::protocol::{ClientMessage, Envelope};

// ---------------------------------------------------------------------------------------------
// The allocation guard: "never allocates in proportion to a declared length".
//
// Every target runs its decoder inside `bounded(input_len, ..)`, which records the largest
// single allocation made on this thread while the decoder ran and fails if it is larger than a
// generous multiple of the bytes the client actually sent. A decoder that trusts a length field
// (`varint(len)` in a cursor, a count in a header) and reserves that much fails here at once,
// long before the process would run out of memory. It works without a sanitizer, so the
// targets can be built with `--sanitizer none` (our crates forbid `unsafe`; ASan adds little
// there and halves the speed).
// ---------------------------------------------------------------------------------------------

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The global allocator of every fuzz binary: `System`, plus the per-thread record above.
pub struct Guard;

fn note(size: usize) {
    // `try_with`: the thread-locals may already be gone while a thread exits.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the bookkeeping touches only
// const-initialised thread-locals (no allocation, no re-entry).
unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Guard = Guard;

/// The largest single allocation allowed while decoding `input_len` bytes: proportional to what
/// was *sent* (a JSON array of `0,` costs 32 bytes of `Value` per 2 input bytes, doubled by
/// `Vec` growth), never to what a length field *claims*.
pub fn allocation_limit(input_len: usize) -> usize {
    64 * input_len + 64 * 1024
}

/// Runs `f` and panics if any single allocation it made on this thread exceeded
/// [`allocation_limit`]`(input_len)`.
pub fn bounded<R>(input_len: usize, f: impl FnOnce() -> R) -> R {
    LARGEST.with(|l| l.set(0));
    ARMED.with(|a| a.set(true));
    let out = f();
    ARMED.with(|a| a.set(false));
    let largest = LARGEST.with(Cell::get);
    let limit = allocation_limit(input_len);
    assert!(
        largest <= limit,
        "a {largest}-byte allocation while decoding {input_len} bytes (limit {limit})"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Input helpers.
// ---------------------------------------------------------------------------------------------

/// Splits `data` at the first `n - 1` occurrences of `sep` into exactly `n` parts (the last ones
/// empty when there are too few separators).
pub fn split_n(data: &[u8], sep: u8, n: usize) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = data.splitn(n, |&b| b == sep).collect();
    while parts.len() < n {
        parts.push(&[]);
    }
    parts
}

/// Lossy UTF-8: the fuzzer's bytes as the `&str` a transport would have handed on.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url, written independently of `switchboard_core::cursor` so a target can feed
/// raw binary to the cursor's inner parser (and to JWT segments).
pub fn base64url(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The native protocol: a canonical encoding of what `protocol::decode` returned.
// ---------------------------------------------------------------------------------------------

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Writes a decoded client message back as native JSON, with every field it carries (so two
/// messages with equal encodings are equal). `data` is spliced in raw, as the server forwards it.
pub fn encode_client(envelope: &Envelope) -> String {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let kind = match &envelope.message {
        ClientMessage::Auth { token, city_id } => {
            fields.push(("token", json_str(token)));
            if let Some(c) = city_id {
                fields.push(("cityId", json_str(c)));
            }
            "auth"
        }
        ClientMessage::Subscribe { channel, since } => {
            fields.push(("channel", json_str(channel)));
            if let Some(s) = since {
                fields.push(("since", serde_json::to_string(s).unwrap_or_default()));
            }
            "subscribe"
        }
        ClientMessage::Unsubscribe { channel } => {
            fields.push(("channel", json_str(channel)));
            "unsubscribe"
        }
        ClientMessage::Publish {
            channel,
            event,
            data,
        } => {
            fields.push(("channel", json_str(channel)));
            fields.push(("event", json_str(event)));
            fields.push(("data", data.get().to_owned()));
            "publish"
        }
        ClientMessage::Chat { message } => {
            fields.push(("message", json_str(message)));
            "chat"
        }
        ClientMessage::Presence { channel } => {
            fields.push(("channel", json_str(channel)));
            "presence"
        }
        ClientMessage::Ack { channel, offset } => {
            fields.push(("channel", json_str(channel)));
            fields.push(("offset", offset.to_string()));
            "ack"
        }
        ClientMessage::Ping => "ping",
    };
    let mut out = format!("{{\"type\":{}", json_str(kind));
    for (name, value) in fields {
        out.push_str(&format!(",{}:{}", json_str(name), value));
    }
    if let Some(r) = &envelope.r#ref {
        out.push_str(&format!(
            ",\"ref\":{}",
            serde_json::to_string(r).unwrap_or_default()
        ));
    }
    out.push('}');
    out
}

// ---------------------------------------------------------------------------------------------
// A reference SSE parser (the WHATWG "interpret an event stream" algorithm), to check that what
// `switchboard_core::sse` writes is what an EventSource reads.
// ---------------------------------------------------------------------------------------------

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` (empty: the default `message`).
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id after this event.
    pub id: String,
    /// The last `retry:` seen, if any.
    pub retry: Option<u64>,
}

/// Parses a byte stream as an EventSource does and returns the dispatched events (an
/// unterminated last line or an event without a blank line after it is not dispatched).
pub fn parse_sse(stream: &[u8]) -> Vec<SseEvent> {
    let text = String::from_utf8_lossy(stream);
    let mut events = Vec::new();
    let (mut event, mut data, mut id, mut retry) =
        (String::new(), String::new(), String::new(), None);
    let mut has_data = false;
    let mut rest: &str = &text;
    loop {
        let Some(end) = rest.find(['\r', '\n']) else {
            // An unterminated last line is never processed.
            return events;
        };
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + skip..];
        if line.is_empty() {
            if has_data {
                let mut d = std::mem::take(&mut data);
                if d.ends_with('\n') {
                    d.pop();
                }
                events.push(SseEvent {
                    event: std::mem::take(&mut event),
                    data: d,
                    id: id.clone(),
                    retry,
                });
            }
            event.clear();
            data.clear();
            has_data = false;
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
                has_data = true;
            }
            "id" if !value.contains('\0') => id = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                retry = value.parse().ok();
            }
            _ => {}
        }
    }
}
