//! Channel names and namespaces.
//!
//! A channel name is validated once, when it enters the system, so every later layer (hub,
//! broker, permissions) can rely on it being well-formed and cheap to clone.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, OnceLock};

/// Longest channel name accepted (SPEC §2).
pub const MAX_CHANNEL_LEN: usize = 255;

/// A validated channel name: `[A-Za-z0-9_:.\-]{1,255}`.
///
/// Cloning shares the same allocation, because a name is copied into every subscription and
/// publication that mentions it. The name's hash is computed once, when it is parsed: every
/// delivery looks its channel up in each receiving connection's stream gate, and hashing the
/// name there, once per subscriber, was 2–2.7 % of a fan-out's CPU (issue 14). [`Hash`] writes
/// only that [`key`](Self::key); equality still compares the names.
#[derive(Clone)]
pub struct ChannelName {
    name: Arc<str>,
    key: u64,
}

impl PartialEq for ChannelName {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.name == other.name
    }
}

impl Eq for ChannelName {}

impl PartialOrd for ChannelName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ChannelName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(&other.name)
    }
}

impl Hash for ChannelName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.key);
    }
}

/// The keyed hash behind [`ChannelName::key`]: random per process, so no client can choose
/// names that collide in a gate's table.
fn key_of(name: &str) -> u64 {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    STATE.get_or_init(RandomState::new).hash_one(name)
}

/// Why a string is not a channel name; the message is safe to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelNameError {
    /// Empty string.
    #[error("channel name is empty")]
    Empty,
    /// Longer than [`MAX_CHANNEL_LEN`].
    #[error("channel name is longer than {MAX_CHANNEL_LEN} characters")]
    TooLong,
    /// Contains a character outside the allowed set.
    #[error("channel name may only contain letters, digits, '_', ':', '.' and '-'")]
    BadCharacter,
}

impl ChannelName {
    /// Validates `name` and wraps it.
    pub fn parse(name: &str) -> Result<Self, ChannelNameError> {
        if name.is_empty() {
            return Err(ChannelNameError::Empty);
        }
        if name.len() > MAX_CHANNEL_LEN {
            return Err(ChannelNameError::TooLong);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'.' | b'-'))
        {
            return Err(ChannelNameError::BadCharacter);
        }
        Ok(Self {
            name: Arc::from(name),
            key: key_of(name),
        })
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether both are clones of one allocation: equal names compared without reading them.
    pub fn same_allocation(&self, other: &ChannelName) -> bool {
        Arc::ptr_eq(&self.name, &other.name)
    }

    /// The name's hash, computed once at parse time (random per process): the stream gate's
    /// table is keyed by it, so a delivery finds its channel's state without hashing the name.
    /// Equal names have equal keys; unequal names almost never do, and the gate compares the
    /// names too.
    pub fn key(&self) -> u64 {
        self.key
    }

    /// The part before the first `:` (the whole name when there is none); namespaces carry
    /// settings such as history size and whether clients may publish.
    pub fn namespace(&self) -> &str {
        self.name.split_once(':').map_or(&self.name, |(ns, _)| ns)
    }

    /// The part after the first `:`, if any (`missions:3` → `3`).
    pub fn suffix(&self) -> Option<&str> {
        self.name.split_once(':').map(|(_, rest)| rest)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names_and_splits_namespace() {
        let c = ChannelName::parse("city:nairobi").unwrap();
        assert_eq!(c.namespace(), "city");
        assert_eq!(c.suffix(), Some("nairobi"));
        let l = ChannelName::parse("lobby").unwrap();
        assert_eq!(l.namespace(), "lobby");
        assert_eq!(l.suffix(), None);
        assert!(ChannelName::parse("a.b-c_d:e:f").is_ok());
    }

    #[test]
    fn equal_names_share_a_key_and_order_by_name() {
        let a = ChannelName::parse("missions").unwrap();
        let b = ChannelName::parse("missions").unwrap();
        let c = ChannelName::parse("lobby").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key(), b.key());
        assert_ne!(a, c);
        assert_ne!(a.key(), c.key());
        assert!(c < a, "ordered by name, as before the key");
        let set: std::collections::HashSet<ChannelName> = [a.clone(), b, c].into_iter().collect();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn rejects_invalid_names() {
        assert_eq!(ChannelName::parse(""), Err(ChannelNameError::Empty));
        assert_eq!(
            ChannelName::parse(&"a".repeat(256)),
            Err(ChannelNameError::TooLong)
        );
        assert!(ChannelName::parse(&"a".repeat(255)).is_ok());
        assert_eq!(
            ChannelName::parse("room 1"),
            Err(ChannelNameError::BadCharacter)
        );
        assert_eq!(
            ChannelName::parse("city/x"),
            Err(ChannelNameError::BadCharacter)
        );
    }
}
