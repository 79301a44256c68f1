//! `switchboard_core::cursor::Cursor::decode/encode`: SSE `Last-Event-ID`, `?since=` and the
//! long-poll `?cursor=`.
//!
//! The first byte picks the mode: odd feeds the rest as the cursor text itself; even
//! base64url-encodes the rest first, so the fuzzer works directly on the binary form (varint
//! lengths, channel names, epochs, offsets) instead of on base64 it cannot see through.
//! Never panics; never allocates in proportion to a declared length; an accepted cursor is
//! canonical (encode gives back the exact text) and re-decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_core::cursor::{Cursor, MAX_CURSOR_LEN};
use switchboard_fuzz::{base64url, bounded, text};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let input = if mode & 1 == 1 {
        text(rest)
    } else {
        base64url(rest)
    };
    match bounded(input.len(), || Cursor::decode(&input)) {
        Ok(cursor) => {
            assert!(input.len() <= MAX_CURSOR_LEN);
            let encoded = cursor.encode();
            assert_eq!(encoded, input, "an accepted cursor is not canonical");
            assert_eq!(Cursor::decode(&encoded).as_ref(), Ok(&cursor));
            // Every entry is usable as it is: a valid channel, a non-empty epoch.
            for (channel, position) in cursor.iter() {
                assert!(!channel.as_str().is_empty());
                assert!(!position.epoch.is_empty());
            }
        }
        Err(e) => {
            // The message is a fixed text, safe to show the client in a 400.
            assert!(e.to_string().len() < 64);
        }
    }
});
