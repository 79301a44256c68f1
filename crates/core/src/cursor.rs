//! Stream cursors for Server-Sent Events and long-polling: a sans-IO codec.
//!
//! A cursor records, for several channels at once, where a client's stream stopped: each
//! channel's last offset and the epoch that offset belongs to. SSE writes it as the `id:` of
//! every event (so `Last-Event-ID` resumes exactly there) and long-polling returns it as
//! `cursor`. Clients treat it as opaque; it only has to survive URLs, headers and SSE `id:`
//! lines untouched, so it is base64url (no padding) over a small binary form:
//!
//! ```text
//! version = 0x01
//! then per channel, sorted by name, no duplicates:
//!   varint(len(channel)) channel  varint(len(epoch)) epoch  varint(offset)
//! ```
//!
//! Varints are unsigned LEB128. Decoding is strict — one canonical encoding per cursor — and
//! every failure is a [`CursorError`] whose message is safe to show the client (a 400).

use std::collections::BTreeMap;

use crate::channel::ChannelName;
use crate::publication::StreamPosition;

/// Format version written as the first byte; a different one is refused, never guessed at.
pub const CURSOR_VERSION: u8 = 1;
/// Longest cursor text [`Cursor::decode`] accepts: bounds the work a hostile `?cursor=` can
/// cause when the caller has no channel limit to go by. Servers use
/// [`Cursor::decode_for`], whose bound follows from how many channels a stream may have, so a
/// cursor the server issued is always accepted back.
pub const MAX_CURSOR_LEN: usize = 32 * 1024;
/// Longest channel name (SPEC §2), the bound for one entry's name.
const MAX_CHANNEL_LEN: usize = 255;
/// Longest epoch accepted inside a cursor (the brokers' epochs are a few characters).
pub const MAX_EPOCH_LEN: usize = 255;

/// Why a cursor was refused. Messages are safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Longer than [`MAX_CURSOR_LEN`] (or than a cursor over the allowed channels can be).
    #[error("cursor is too long")]
    TooLong,
    /// More channels than a stream may have.
    #[error("cursor names too many channels")]
    TooManyChannels,
    /// Not base64url text.
    #[error("cursor is not valid base64url")]
    NotBase64,
    /// Empty, or a version this server does not write.
    #[error("cursor version is not supported")]
    Version,
    /// Ends in the middle of an entry.
    #[error("cursor is truncated")]
    Truncated,
    /// A number does not fit or is not minimally encoded.
    #[error("cursor contains a malformed number")]
    BadNumber,
    /// A channel name is not valid.
    #[error("cursor contains an invalid channel name")]
    BadChannel,
    /// An epoch is empty, too long or not UTF-8.
    #[error("cursor contains an invalid epoch")]
    BadEpoch,
    /// Channels are not in strictly ascending order (so duplicated or not canonical).
    #[error("cursor channels are duplicated or out of order")]
    Order,
}

/// Where a multi-channel stream stopped: channel → (offset, epoch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    positions: BTreeMap<ChannelName, StreamPosition>,
}

impl Cursor {
    /// An empty cursor (no channel has a position yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// The position recorded for `channel`.
    pub fn get(&self, channel: &ChannelName) -> Option<&StreamPosition> {
        self.positions.get(channel)
    }

    /// Records `channel`'s position (replacing any previous one).
    pub fn set(&mut self, channel: ChannelName, position: StreamPosition) {
        self.positions.insert(channel, position);
    }

    /// Moves `channel` to `offset` within its recorded epoch; returns false (and changes
    /// nothing) when the channel has no position yet, since an offset without its epoch would
    /// be meaningless.
    pub fn advance(&mut self, channel: &ChannelName, offset: u64) -> bool {
        match self.positions.get_mut(channel) {
            Some(p) => {
                p.offset = offset;
                true
            }
            None => false,
        }
    }

    /// Keeps only the channels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&ChannelName) -> bool) {
        self.positions.retain(|c, _| keep(c));
    }

    /// Channels and positions, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&ChannelName, &StreamPosition)> {
        self.positions.iter()
    }

    /// Number of channels recorded.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether no channel is recorded.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The cursor's text form: base64url without padding, safe in URLs, headers and SSE ids.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(1 + self.positions.len() * 24);
        raw.push(CURSOR_VERSION);
        for (channel, position) in &self.positions {
            put_bytes(&mut raw, channel.as_str().as_bytes());
            put_bytes(&mut raw, position.epoch.as_bytes());
            put_varint(&mut raw, position.offset);
        }
        base64url_encode(&raw)
    }

    /// The longest text [`encode`](Self::encode) writes for `channels` channels: each entry at
    /// most a 255-character name, a [`MAX_EPOCH_LEN`] epoch and a ten-byte offset, each
    /// length-prefixed, in base64url.
    pub fn max_encoded_len(channels: usize) -> usize {
        let entry = 2 + MAX_CHANNEL_LEN + 2 + MAX_EPOCH_LEN + 10;
        let raw = channels.saturating_mul(entry).saturating_add(1);
        raw.saturating_mul(4).div_ceil(3)
    }

    /// Parses a cursor of a stream that may have at most `max_channels` channels: anything the
    /// server issued for such a stream is accepted, whatever its length, and nothing longer
    /// or with more channels is read.
    pub fn decode_for(text: &str, max_channels: usize) -> Result<Self, CursorError> {
        if text.len() > Self::max_encoded_len(max_channels).max(MAX_CURSOR_LEN) {
            return Err(CursorError::TooLong);
        }
        let cursor = Self::parse(text)?;
        if cursor.len() > max_channels {
            return Err(CursorError::TooManyChannels);
        }
        Ok(cursor)
    }

    /// Parses a cursor's text form, refusing anything [`encode`](Self::encode) would not write.
    pub fn decode(text: &str) -> Result<Self, CursorError> {
        if text.len() > MAX_CURSOR_LEN {
            return Err(CursorError::TooLong);
        }
        Self::parse(text)
    }

    fn parse(text: &str) -> Result<Self, CursorError> {
        let raw = base64url_decode(text.as_bytes()).ok_or(CursorError::NotBase64)?;
        let (&version, mut rest) = raw.split_first().ok_or(CursorError::Version)?;
        if version != CURSOR_VERSION {
            return Err(CursorError::Version);
        }
        let mut positions = BTreeMap::new();
        let mut previous: Option<ChannelName> = None;
        while !rest.is_empty() {
            let name = take_bytes(&mut rest)?;
            let name = std::str::from_utf8(name).map_err(|_| CursorError::BadChannel)?;
            let channel = ChannelName::parse(name).map_err(|_| CursorError::BadChannel)?;
            let epoch = take_bytes(&mut rest)?;
            if epoch.is_empty() || epoch.len() > MAX_EPOCH_LEN {
                return Err(CursorError::BadEpoch);
            }
            let epoch = std::str::from_utf8(epoch).map_err(|_| CursorError::BadEpoch)?;
            let offset = take_varint(&mut rest)?;
            if previous.as_ref().is_some_and(|p| *p >= channel) {
                return Err(CursorError::Order);
            }
            previous = Some(channel.clone());
            positions.insert(
                channel,
                StreamPosition {
                    offset,
                    epoch: epoch.to_owned(),
                },
            );
        }
        Ok(Self { positions })
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn take_varint(input: &mut &[u8]) -> Result<u64, CursorError> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = input.split_first().ok_or(CursorError::Truncated)?;
        *input = rest;
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may only carry the top bit of a u64.
        if i == 9 && bits > 1 {
            return Err(CursorError::BadNumber);
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            // A trailing zero group means the same number had a shorter encoding.
            if i > 0 && bits == 0 {
                return Err(CursorError::BadNumber);
            }
            return Ok(value);
        }
    }
    Err(CursorError::BadNumber)
}

fn take_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], CursorError> {
    let len = usize::try_from(take_varint(input)?).map_err(|_| CursorError::BadNumber)?;
    if len > input.len() {
        return Err(CursorError::Truncated);
    }
    let (bytes, rest) = input.split_at(len);
    *input = rest;
    Ok(bytes)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let symbols = chunk.len() + 1;
        for i in 0..symbols {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize] as char);
        }
    }
    out
}

fn symbol_value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    }))
}

fn base64url_decode(input: &[u8]) -> Option<Vec<u8>> {
    // A lone trailing symbol cannot carry a whole byte.
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 2);
    for chunk in input.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= symbol_value(c)? << (18 - 6 * i);
        }
        let bytes = chunk.len() - 1;
        // Unused low bits must be zero, so each byte string has exactly one text form.
        let unused = 24 - 8 * bytes as u32;
        if unused > 0 && n & ((1 << unused) - 1) != 0 && chunk.len() < 4 {
            return None;
        }
        for i in 0..bytes {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn pos(offset: u64, epoch: &str) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: epoch.to_owned(),
        }
    }

    fn ch(name: &str) -> ChannelName {
        ChannelName::parse(name).unwrap()
    }

    #[test]
    fn exact_bytes() {
        assert_eq!(Cursor::new().encode(), "AQ");
        let mut c = Cursor::new();
        c.set(ch("missions"), pos(5, "abc"));
        // 01 | 08 "missions" | 03 "abc" | 05
        assert_eq!(c.encode(), "AQhtaXNzaW9ucwNhYmMF");
        let mut c = Cursor::new();
        c.set(ch("missions:2"), pos(0, "e"));
        c.set(ch("city"), pos(300, "k2j4x9zq"));
        // Sorted by name; 300 = ac 02 as LEB128.
        assert_eq!(c.encode(), "AQRjaXR5CGsyajR4OXpxrAIKbWlzc2lvbnM6MgFlAA");
        assert_eq!(
            Cursor::decode("AQRjaXR5CGsyajR4OXpxrAIKbWlzc2lvbnM6MgFlAA"),
            Ok(c)
        );
    }

    #[test]
    fn advance_needs_a_known_epoch() {
        let mut c = Cursor::new();
        assert!(!c.advance(&ch("lobby"), 3));
        c.set(ch("lobby"), pos(1, "x"));
        assert!(c.advance(&ch("lobby"), 3));
        assert_eq!(c.get(&ch("lobby")), Some(&pos(3, "x")));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        let bad = [
            ("", CursorError::Version),
            ("AA", CursorError::Version), // version 0
            ("not a cursor", CursorError::NotBase64),
            ("AQ==", CursorError::NotBase64), // padding is not written, so not accepted
            ("A", CursorError::NotBase64),    // lone symbol
            ("AR", CursorError::NotBase64),   // non-zero unused bits
            ("AQg", CursorError::Truncated),  // length 8, no bytes
            ("AQEgAWUA", CursorError::BadChannel), // channel " "
            ("AQFhAAA", CursorError::BadEpoch), // empty epoch
            ("AQFhAWWAAA", CursorError::BadNumber), // overlong zero
        ];
        for (text, want) in bad {
            assert_eq!(Cursor::decode(text), Err(want), "{text:?}");
        }
        // Out of order / duplicated channels.
        let mut raw = vec![CURSOR_VERSION];
        for name in ["b", "a"] {
            put_bytes(&mut raw, name.as_bytes());
            put_bytes(&mut raw, b"e");
            put_varint(&mut raw, 1);
        }
        assert_eq!(
            Cursor::decode(&base64url_encode(&raw)),
            Err(CursorError::Order)
        );
        assert_eq!(
            Cursor::decode(&"A".repeat(MAX_CURSOR_LEN + 4)),
            Err(CursorError::TooLong)
        );
        // u64::MAX round-trips; one more bit does not fit.
        let mut c = Cursor::new();
        c.set(ch("a"), pos(u64::MAX, "e"));
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        let mut raw = vec![CURSOR_VERSION];
        put_bytes(&mut raw, b"a");
        put_bytes(&mut raw, b"e");
        raw.extend_from_slice(&[0xff; 9]);
        raw.push(0x02);
        assert_eq!(
            Cursor::decode(&base64url_encode(&raw)),
            Err(CursorError::BadNumber)
        );
    }

    fn random_name(rng: &mut StdRng) -> String {
        const CHARS: &[u8] = b"abcXYZ019_:.-";
        let len = rng.random_range(1..=40);
        (0..len)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
            .collect()
    }

    #[test]
    fn property_round_trip_and_canonical_text() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for _ in 0..2000 {
            let mut c = Cursor::new();
            for _ in 0..rng.random_range(0..6) {
                let offset = match rng.random_range(0..3) {
                    0 => rng.random_range(0..200),
                    1 => rng.random(),
                    _ => u64::MAX - rng.random_range(0..3),
                };
                let epoch: String = (0..rng.random_range(1..=20))
                    .map(|_| char::from(rng.random_range(b'!'..=b'~')))
                    .collect();
                c.set(ch(&random_name(&mut rng)), pos(offset, &epoch));
            }
            let text = c.encode();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "{text}"
            );
            let back = Cursor::decode(&text).unwrap();
            assert_eq!(back, c);
            assert_eq!(back.encode(), text);
        }
    }

    #[test]
    fn property_random_text_never_panics_and_valid_is_canonical() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..5000 {
            let len = rng.random_range(0..48);
            let text: String = (0..len)
                .map(|_| ALPHABET[rng.random_range(0..64)] as char)
                .collect();
            let with_prefix = format!("AQ{text}");
            for t in [text, with_prefix] {
                if let Ok(c) = Cursor::decode(&t) {
                    assert_eq!(c.encode(), t);
                }
            }
        }
    }

    #[test]
    fn every_cursor_encode_writes_is_accepted_by_decode_for() {
        let mut cursor = Cursor::new();
        for i in 0..1000 {
            let name = format!("city:{i:04}-{}", "n".repeat(245));
            cursor.set(
                ChannelName::parse(&name).unwrap(),
                StreamPosition {
                    offset: u64::MAX,
                    epoch: "e".repeat(MAX_EPOCH_LEN),
                },
            );
        }
        let text = cursor.encode();
        assert!(text.len() <= Cursor::max_encoded_len(1000));
        assert!(text.len() > MAX_CURSOR_LEN);
        assert_eq!(Cursor::decode_for(&text, 1000).unwrap(), cursor);
        assert!(Cursor::decode_for(&text, 999).is_err());
        let mut three = Cursor::new();
        for name in ["a", "b", "c"] {
            three.set(
                ChannelName::parse(name).unwrap(),
                StreamPosition {
                    offset: 1,
                    epoch: "e".into(),
                },
            );
        }
        assert_eq!(
            Cursor::decode_for(&three.encode(), 2),
            Err(CursorError::TooManyChannels)
        );
        let too_long = "A".repeat(Cursor::max_encoded_len(10).max(MAX_CURSOR_LEN) + 1);
        assert_eq!(Cursor::decode_for(&too_long, 10), Err(CursorError::TooLong));
    }
}
