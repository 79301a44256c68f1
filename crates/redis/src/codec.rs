//! The wire format of a publication on Redis (history entries and pub/sub messages alike).
//!
//! A frame is `<kind><offset>:<epoch>:<body>`:
//! - `kind` is one byte: `S` a stream publication whose offset the broker assigned (it is in
//!   the channel's history), `X` a publication positioned elsewhere (the durable user inbox),
//!   `T` a transient publication (not stored, carries the channel's current position).
//! - `offset` and `epoch` come first and in plain text because the publish script only learns
//!   them inside Redis: it prepends them to the body the node serialized, so the payload is
//!   serialized once, by the publishing node, and never re-encoded by Redis or other nodes.
//! - `body` is JSON: `{"channel","event","timestamp","data":{"shared":…}|{"agent":…,"hq":…},
//!   "except"?}` with the per-audience DTOs embedded verbatim (already-serialized JSON).
//!
//! Decoding gives back a [`Publication`] each node hands to its hub, which encodes once per
//! (wire format, audience) for its own connections as it does for local publications.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::{Publication, PublicationData};

/// What a frame carries, as its first byte says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A publication the broker positioned; it is (or was) in the channel's Redis history.
    Stream,
    /// A publication positioned by someone else (the durable inbox); not in Redis history.
    External,
    /// A transient publication: delivered to current subscribers only, never stored.
    Transient,
}

impl FrameKind {
    fn tag(self) -> char {
        match self {
            Self::Stream => 'S',
            Self::External => 'X',
            Self::Transient => 'T',
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            b'S' => Some(Self::Stream),
            b'X' => Some(Self::External),
            b'T' => Some(Self::Transient),
            _ => None,
        }
    }
}

/// Why a frame read from Redis could not be decoded. Logged with the channel and dropped:
/// a malformed frame can only come from a different version or a foreign writer.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The `<kind><offset>:<epoch>:` header is missing or malformed.
    #[error("malformed frame header")]
    Header,
    /// The body has neither `shared` nor both `agent` and `hq` data.
    #[error("frame has no data")]
    NoData,
    /// The body is not the JSON this version writes.
    #[error("malformed frame body: {0}")]
    Body(#[from] serde_json::Error),
    /// The body names an invalid channel.
    #[error("invalid channel in frame: {0}")]
    Channel(#[from] switchboard_core::channel::ChannelNameError),
}

/// A decoded frame: the publication plus the delivery options that travel with it.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Stream, external or transient.
    pub kind: FrameKind,
    /// The publication, ready for `Hub::deliver`.
    pub publication: Publication,
    /// A connection id that must not receive it (a Socket.IO sender's own socket).
    pub except: Option<String>,
}

#[derive(Serialize)]
struct BodyOut<'a> {
    channel: &'a str,
    event: &'a str,
    timestamp: u64,
    data: DataOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    except: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DataOut<'a> {
    Shared {
        shared: &'a RawValue,
    },
    ByAudience {
        agent: &'a RawValue,
        hq: &'a RawValue,
    },
}

#[derive(Deserialize)]
struct BodyIn {
    channel: String,
    event: String,
    timestamp: u64,
    data: DataIn,
    #[serde(default)]
    except: Option<String>,
}

/// A struct of options rather than an untagged enum: serde buffers untagged input, which
/// `RawValue` does not survive.
#[derive(Deserialize)]
struct DataIn {
    shared: Option<Box<RawValue>>,
    agent: Option<Box<RawValue>>,
    hq: Option<Box<RawValue>>,
}

/// Serializes everything of a publication except its position (the body of a frame).
pub fn encode_body(
    channel: &ChannelName,
    event: &str,
    timestamp_ms: u64,
    data: &PublicationData,
    except: Option<&str>,
) -> Result<String, serde_json::Error> {
    let data = match data {
        PublicationData::Shared(v) => DataOut::Shared { shared: v },
        PublicationData::ByAudience { agent, hq } => DataOut::ByAudience { agent, hq },
    };
    serde_json::to_string(&BodyOut {
        channel: channel.as_str(),
        event,
        timestamp: timestamp_ms,
        data,
        except,
    })
}

/// A complete frame, for publications whose position is known before they reach Redis.
pub fn encode_frame(kind: FrameKind, offset: u64, epoch: &str, body: &str) -> String {
    format!("{}{offset}:{epoch}:{body}", kind.tag())
}

/// The kind and offset of a frame without decoding its body (recovery skips entries cheaply).
pub fn peek(frame: &[u8]) -> Option<(FrameKind, u64)> {
    let (&tag, rest) = frame.split_first()?;
    let kind = FrameKind::from_tag(tag)?;
    let end = rest.iter().position(|&b| b == b':')?;
    let offset = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    Some((kind, offset))
}

/// Decodes a frame read from history or pub/sub.
pub fn decode(frame: &[u8]) -> Result<Frame, DecodeError> {
    let (kind, offset) = peek(frame).ok_or(DecodeError::Header)?;
    let rest = &frame[1..];
    let first = rest
        .iter()
        .position(|&b| b == b':')
        .ok_or(DecodeError::Header)?;
    let after_offset = &rest[first + 1..];
    let second = after_offset
        .iter()
        .position(|&b| b == b':')
        .ok_or(DecodeError::Header)?;
    let epoch = std::str::from_utf8(&after_offset[..second]).map_err(|_| DecodeError::Header)?;
    let body: BodyIn = serde_json::from_slice(&after_offset[second + 1..])?;
    let data = match body.data {
        DataIn {
            shared: Some(shared),
            ..
        } => PublicationData::Shared(Arc::from(shared)),
        DataIn {
            agent: Some(agent),
            hq: Some(hq),
            ..
        } => PublicationData::ByAudience {
            agent: Arc::from(agent),
            hq: Arc::from(hq),
        },
        _ => return Err(DecodeError::NoData),
    };
    Ok(Frame {
        kind,
        publication: Publication {
            channel: ChannelName::parse(&body.channel)?,
            event: Arc::from(body.event),
            offset,
            epoch: Arc::from(epoch),
            timestamp_ms: body.timestamp,
            data,
        },
        except: body.except,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use switchboard_core::publication::Audience;

    #[test]
    fn round_trips_both_data_variants_byte_for_byte() {
        let ch = ChannelName::parse("missions:1").unwrap();
        let by = PublicationData::by_audience(
            &serde_json::json!({"id":1}),
            &serde_json::json!({"id":1,"objective":"x"}),
        )
        .unwrap();
        let body = encode_body(&ch, "mission-update", 42, &by, None).unwrap();
        let frame = format!("S7:ab12:{body}");
        let f = decode(frame.as_bytes()).unwrap();
        assert_eq!(f.kind, FrameKind::Stream);
        assert_eq!(f.publication.offset, 7);
        assert_eq!(&*f.publication.epoch, "ab12");
        assert_eq!(f.publication.channel, ch);
        assert_eq!(&*f.publication.event, "mission-update");
        assert_eq!(f.publication.timestamp_ms, 42);
        assert_eq!(
            f.publication.data.for_audience(Audience::Agent).get(),
            r#"{"id":1}"#
        );
        assert_eq!(
            f.publication.data.for_audience(Audience::Hq).get(),
            r#"{"id":1,"objective":"x"}"#
        );
        assert!(f.except.is_none());

        let shared = PublicationData::shared(&serde_json::json!({"shared":1})).unwrap();
        let body = encode_body(&ch, "e", 1, &shared, Some("conn-1")).unwrap();
        let f = decode(encode_frame(FrameKind::Transient, 3, "zz", &body).as_bytes()).unwrap();
        assert_eq!(f.kind, FrameKind::Transient);
        assert!(f.publication.data.is_shared());
        // A payload that itself looks like the shared wrapper stays the payload.
        assert_eq!(
            f.publication.data.for_audience(Audience::Hq).get(),
            r#"{"shared":1}"#
        );
        assert_eq!(f.except.as_deref(), Some("conn-1"));
    }

    #[test]
    fn rejects_malformed_frames() {
        assert!(decode(b"").is_err());
        assert!(decode(b"Q1:e:{}").is_err());
        assert!(decode(b"Sx:e:{}").is_err());
        assert!(decode(b"S1:e").is_err());
        assert!(decode(b"S1:e:{\"channel\":\"bad channel\",\"event\":\"e\",\"timestamp\":1,\"data\":{\"shared\":1}}").is_err());
        assert_eq!(peek(b"X12:e:{}"), Some((FrameKind::External, 12)));
    }
}
