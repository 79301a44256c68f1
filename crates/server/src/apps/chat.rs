//! Chat: the lobby on the native protocol (SPEC §1.2). The server sets `sender` and the
//! timestamp; the text is validated here so every transport applies the same rules.

use serde::Serialize;

/// Longest accepted message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;

/// Why a chat message was refused (the text is shown to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// Nothing left after stripping control characters and whitespace.
    #[error("Message must not be empty")]
    Empty,
    /// Over [`MAX_MESSAGE_CHARS`].
    #[error("Message must be at most 2000 characters")]
    TooLong,
}

/// Strips control characters (keeping none) and trims; refuses empty and over-long text.
pub fn clean_message(raw: &str) -> Result<String, ChatError> {
    let cleaned: String = raw.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        return Err(ChatError::Empty);
    }
    if cleaned.chars().count() > MAX_MESSAGE_CHARS {
        return Err(ChatError::TooLong);
    }
    Ok(cleaned.to_owned())
}

/// Data of a lobby `chat` publication.
#[derive(Debug, Clone, Serialize)]
pub struct LobbyChatDto<'a> {
    /// The cleaned text.
    pub message: &'a str,
    /// Who sent it: the user id, or the connection id when anonymous.
    pub sender: &'a str,
    /// When the server accepted it (ISO-8601, UTC).
    pub timestamp: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_validates() {
        assert_eq!(clean_message(" hi\u{0007} there\n").unwrap(), "hi there");
        assert_eq!(clean_message("\u{0000}\u{001b} "), Err(ChatError::Empty));
        assert_eq!(clean_message(&"a".repeat(2001)), Err(ChatError::TooLong));
        assert!(clean_message(&"é".repeat(2000)).is_ok());
    }
}
