//! `ChannelName::parse`, `auth::pattern_matches` and `AccessPolicy::can_read`: channel names
//! from every transport and the channel patterns of a token's `channels` claim.
//!
//! Input: `channel \n conn-id \n user \n role \n pattern \n pattern …`. Checks that parse accepts
//! exactly `[A-Za-z0-9_:.-]{1,255}` and that namespace/suffix split the name at its first `:`;
//! that a pattern grants exactly the documented set (the exact name, or for `prefix*` one
//! non-empty segment without `:`); and the permission invariants of SPEC §3: an admin reads
//! everything, nobody else reads another connection's `conn:` or another user's `user:`
//! channel, and anything else is read only through a public namespace or a granting pattern.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_core::auth::{AccessPolicy, Identity, Role, pattern_matches};
use switchboard_core::channel::{ChannelName, MAX_CHANNEL_LEN};
use switchboard_fuzz::{bounded, split_n, text};

fn valid(name: &str) -> bool {
    (1..=MAX_CHANNEL_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:.-".contains(&b))
}

/// The documented meaning of a pattern, written from SPEC §3 rather than from the code.
fn grants(pattern: &str, channel: &str) -> bool {
    if let Some(prefix) = pattern.strip_suffix('*') {
        channel.len() > prefix.len()
            && channel.starts_with(prefix)
            && !channel[prefix.len()..].contains(':')
    } else {
        pattern == channel
    }
}

fuzz_target!(|data: &[u8]| {
    let parts = split_n(data, b'\n', 8);
    let name = text(parts[0]);
    let parsed = bounded(name.len(), || ChannelName::parse(&name));
    assert_eq!(parsed.is_ok(), valid(&name), "{name:?}");
    let patterns: Vec<String> = parts[4..]
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| text(p))
        .collect();
    for p in &patterns {
        assert_eq!(
            pattern_matches(p, &name),
            grants(p, &name),
            "{p:?} vs {name:?}"
        );
    }
    let Ok(channel) = parsed else { return };
    assert_eq!(channel.as_str(), name);
    assert_eq!(channel.to_string(), name);
    match channel.suffix() {
        Some(suffix) => assert_eq!(format!("{}:{suffix}", channel.namespace()), name),
        None => assert_eq!(channel.namespace(), name),
    }
    assert!(!channel.namespace().contains(':'));

    let conn_id = text(parts[1]);
    let user = Some(text(parts[2])).filter(|u| !u.is_empty());
    let role = match parts[3].first().map(|b| b % 5) {
        Some(0) => Role::Admin,
        Some(1) => Role::Hq,
        Some(2) => Role::Pipeline,
        _ => Role::Agent,
    };
    let anonymous = parts[3].first().is_some_and(|b| b % 5 == 4);
    let who = if anonymous {
        Identity::anonymous()
    } else {
        Identity {
            user: user.clone(),
            role,
            channels: patterns.clone(),
            expires_at: Some(1),
        }
    };
    let policy = AccessPolicy {
        public_namespaces: vec!["missions".into(), "lobby".into(), "room".into()],
    };
    let can = policy.can_read(&who, &conn_id, &channel);
    if who.role == Role::Admin {
        assert!(can, "an admin is refused {name:?}");
        return;
    }
    if !can {
        return;
    }
    match channel.namespace() {
        "conn" => assert_eq!(
            channel.suffix(),
            Some(conn_id.as_str()),
            "foreign conn channel"
        ),
        "user" => {
            assert!(who.user.is_some(), "anonymous user channel");
            assert_eq!(
                channel.suffix(),
                who.user.as_deref(),
                "foreign user channel"
            );
        }
        ns => assert!(
            policy.public_namespaces.iter().any(|p| p == ns)
                || who.channels.iter().any(|p| grants(p, &name)),
            "{name:?} read without a grant"
        ),
    }
});
