//! Publications: what a channel carries, with its position in the channel's stream.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::channel::ChannelName;

/// Which DTO a receiver gets. Chosen per connection from its token's role; never from the
/// client's say-so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Field agents and anonymous clients: the narrowest DTO.
    Agent,
    /// Headquarters (and admins): the wider DTO. Never includes classified fields either.
    Hq,
}

impl Audience {
    /// Every audience, in index order.
    pub const ALL: [Audience; 2] = [Audience::Agent, Audience::Hq];

    /// A dense index for per-audience caches.
    pub fn index(self) -> usize {
        match self {
            Self::Agent => 0,
            Self::Hq => 1,
        }
    }
}

/// A position in a channel's stream: the offset of the last publication and the epoch that
/// offset belongs to. A different epoch means the history the offset referred to is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPosition {
    /// Offset of the last publication (0 when none was published in this epoch).
    pub offset: u64,
    /// Identifies one continuous history of the channel.
    pub epoch: String,
}

/// The payload of a publication, already serialized to JSON — once per audience, at publish
/// time — so fan-out only copies pointers.
#[derive(Debug, Clone)]
pub enum PublicationData {
    /// Every audience receives the same JSON.
    Shared(Arc<RawValue>),
    /// Each audience receives its own DTO.
    ByAudience {
        /// The agent (and anonymous) DTO.
        agent: Arc<RawValue>,
        /// The HQ DTO: HQ and admin connections only, as it may carry what agents must not see.
        hq: Arc<RawValue>,
    },
}

impl PublicationData {
    /// Serializes one value for everyone.
    pub fn shared<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Self::Shared(Arc::from(serde_json::value::to_raw_value(
            value,
        )?)))
    }

    /// Serializes one DTO per audience.
    pub fn by_audience<A: Serialize + ?Sized, H: Serialize + ?Sized>(
        agent: &A,
        hq: &H,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::ByAudience {
            agent: Arc::from(serde_json::value::to_raw_value(agent)?),
            hq: Arc::from(serde_json::value::to_raw_value(hq)?),
        })
    }

    /// The JSON a receiver of `audience` gets.
    pub fn for_audience(&self, audience: Audience) -> &RawValue {
        match (self, audience) {
            (Self::Shared(v), _) => v,
            (Self::ByAudience { agent, .. }, Audience::Agent) => agent,
            (Self::ByAudience { hq, .. }, Audience::Hq) => hq,
        }
    }

    /// Whether every audience gets the same bytes (so encoders can skip per-audience work).
    pub fn is_shared(&self) -> bool {
        matches!(self, Self::Shared(_))
    }
}

/// One message on one channel, at one position in its stream.
#[derive(Debug, Clone)]
pub struct Publication {
    /// Where it was published.
    pub channel: ChannelName,
    /// The event name clients dispatch on (`mission-update`, `chat`, …).
    pub event: Arc<str>,
    /// Position in the channel: grows by one per publication.
    pub offset: u64,
    /// The channel's current history epoch.
    pub epoch: Arc<str>,
    /// Milliseconds since the Unix epoch when the broker accepted it.
    pub timestamp_ms: u64,
    /// The payload, per audience.
    pub data: PublicationData,
}

/// Milliseconds since the Unix epoch, saturating at 0 if the clock is before 1970.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
