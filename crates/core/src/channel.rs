//! Channel names and namespaces.
//!
//! A channel name is validated once, when it enters the system, so every later layer (hub,
//! broker, permissions) can rely on it being well-formed and cheap to clone.

use std::fmt;
use std::sync::Arc;

/// Longest channel name accepted (SPEC §2).
pub const MAX_CHANNEL_LEN: usize = 255;

/// A validated channel name: `[A-Za-z0-9_:.\-]{1,255}`.
///
/// Cloning shares the same allocation, because a name is copied into every subscription and
/// publication that mentions it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

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
        Ok(Self(Arc::from(name)))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `:` (the whole name when there is none); namespaces carry
    /// settings such as history size and whether clients may publish.
    pub fn namespace(&self) -> &str {
        self.0.split_once(':').map_or(&self.0, |(ns, _)| ns)
    }

    /// The part after the first `:`, if any (`missions:3` → `3`).
    pub fn suffix(&self) -> Option<&str> {
        self.0.split_once(':').map(|(_, rest)| rest)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
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
