//! The model of the stateful `commands` target: the inputs (`Op`, `TokenSpec`), the fixed
//! names they pick from, and the oracle — SPEC §3 re-stated independently of `AccessPolicy`,
//! and the identity a correct server derives from a token. Kept apart from the harness so
//! the target reads as "drive the node, check against this".

use arbitrary::Arbitrary;
use switchboard_core::auth::{Claims, Identity, JwtSigner, Role};
use switchboard_core::channel::ChannelName;

/// The HS256 secret the harness's node verifies with.
pub const SECRET: &str = "fuzz-secret";
pub const SLOTS: usize = 4;
pub const IDS: [&str; SLOTS] = ["c0", "c1", "c2", "c3"];
/// Every channel a client can name or be put on; `joined` is checked over all of them.
pub const CHANNELS: &[&str] = &[
    "missions",
    "missions:1",
    "lobby",
    "room:1",
    "room:2",
    "city:nairobi",
    "city:paris",
    "city:nairobi:raw",
    "payments",
    "secret",
    "secret:x",
    "user:alice",
    "user:bob",
    "conn:c0",
    "conn:c1",
    "conn:c2",
    "conn:c3",
];
pub const PATTERNS: &[&str] = &[
    "city:*",
    "room:1",
    "secret",
    "secret:*",
    "user:*",
    "conn:*",
    "*",
    "payments",
    "city:nairobi",
    "city:nairobi:*",
];
pub const USERS: &[Option<&str>] = &[None, Some("alice"), Some("bob"), Some("")];
pub const ROOMS: &[&str] = &["1", "2"];
pub const CITIES: &[&str] = &["nairobi", "paris"];
/// A marker only the HQ DTO of a server publication carries.
pub const HQ_ONLY: &str = "hq-only-marker";

#[derive(Arbitrary, Debug, Clone)]
pub struct TokenSpec {
    pub user: u8,
    pub role: u8,
    pub patterns: Vec<u8>,
    /// 0: valid; 1: expired; 2: not a token; else valid.
    pub kind: u8,
}

#[derive(Arbitrary, Debug)]
pub enum Op {
    Connect {
        slot: u8,
        token: Option<TokenSpec>,
    },
    Auth {
        slot: u8,
        token: TokenSpec,
        city: Option<u8>,
    },
    Subscribe {
        slot: u8,
        channel: u8,
        since: Option<(u8, bool)>,
    },
    Unsubscribe {
        slot: u8,
        channel: u8,
    },
    Publish {
        slot: u8,
        channel: u8,
    },
    Presence {
        slot: u8,
        channel: u8,
    },
    Ack {
        slot: u8,
        channel: u8,
        offset: u8,
    },
    JoinRoom {
        slot: u8,
        room: u8,
    },
    LeaveRoom {
        slot: u8,
        room: u8,
    },
    RoomMessage {
        slot: u8,
        room: u8,
    },
    Typing {
        slot: u8,
        room: u8,
    },
    Lobby {
        slot: u8,
    },
    ServerPublish {
        channel: u8,
        split: bool,
    },
    Disconnect {
        slot: u8,
    },
}

pub fn pick<T: Copy>(list: &[T], i: u8) -> T {
    list[usize::from(i) % list.len()]
}

/// A channel of the model's fixed name lists. Only called with those constants (never with
/// fuzzer bytes), all valid names: a panic here is a bug in the model, which is what a fuzz
/// harness should report.
pub fn ch(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The token text and the identity a correct server derives from it (None: refused).
pub fn token(spec: &TokenSpec) -> (String, Option<Identity>) {
    let claims = Claims {
        sub: pick(USERS, spec.user).map(str::to_owned),
        exp: if spec.kind == 1 {
            now() - 100
        } else {
            now() + 3600
        },
        role: pick(
            &[Role::Agent, Role::Hq, Role::Pipeline, Role::Admin],
            spec.role,
        ),
        channels: spec
            .patterns
            .iter()
            .take(4)
            .map(|&p| pick(PATTERNS, p).to_owned())
            .collect(),
    };
    if spec.kind == 2 {
        return ("not-a-token".into(), None);
    }
    // Signing well-formed claims with an HMAC key cannot fail (no key parsing, no I/O); the
    // harness is test code, not reachable by a client.
    let text = JwtSigner::hs256(SECRET.as_bytes()).sign(&claims).unwrap();
    let identity = (spec.kind != 1).then(|| Identity::from_claims(claims));
    (text, identity)
}

/// SPEC §3, re-stated independently of `AccessPolicy`.
pub fn may_read(who: &Identity, conn: &str, channel: &str) -> bool {
    if who.role == Role::Admin {
        return true;
    }
    let (ns, suffix) = match channel.split_once(':') {
        Some((ns, s)) => (ns, Some(s)),
        None => (channel, None),
    };
    match ns {
        "conn" => suffix == Some(conn),
        "user" => who.user.is_some() && suffix == who.user.as_deref(),
        "missions" | "lobby" | "room" => true,
        _ => who.channels.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => channel
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains(':')),
            None => p == channel,
        }),
    }
}
