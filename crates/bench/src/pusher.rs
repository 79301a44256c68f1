//! Just enough of the Pusher protocol (channels protocol 7) to benchmark sockudo: the frames a
//! subscriber sees, and the signed `POST /apps/:id/events` a backend publishes with. Sans-IO and
//! tested against the signing example in Pusher's documentation.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;

/// App credentials, as given to the server (`SOCKUDO_DEFAULT_APP_ID`/`_KEY`/`_SECRET`).
#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub key: String,
    pub secret: String,
}

/// The WebSocket path a client opens for `app`.
pub fn socket_path(app_key: &str) -> String {
    format!("/app/{app_key}?protocol=7&client=switchboard-bench&version=1.0")
}

/// The subscribe message for a public channel.
pub fn subscribe_frame(channel: &str) -> String {
    format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{channel}"}}}}"#)
}

/// Whether a frame confirms the subscription (the connection is ready).
pub fn is_subscription_succeeded(text: &str) -> bool {
    text.contains("\"event\":\"pusher_internal:subscription_succeeded\"")
}

/// Whether a frame is the server's ping (answered with [`PONG`]).
pub fn is_ping(text: &str) -> bool {
    text.contains("\"event\":\"pusher:ping\"")
}

/// The pong a client answers a ping with.
pub const PONG: &str = r#"{"event":"pusher:pong","data":{}}"#;

/// Whether a frame is a `mission-update` event.
pub fn is_mission_update(text: &str) -> bool {
    text.contains("\"event\":\"mission-update\"")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The event body for `data` (a JSON text, sent as a string as Pusher requires).
pub fn event_body(event: &str, channel: &str, data: &str) -> String {
    let data = serde_json::Value::String(data.to_owned()).to_string();
    format!(r#"{{"name":"{event}","channel":"{channel}","data":{data}}}"#)
}

/// Path and query of a signed `POST /apps/:id/events` for `body` at `timestamp` (Unix seconds):
/// `auth_signature` is the hex HMAC-SHA256, keyed by the app secret, of
/// `POST\n<path>\n<sorted query without the signature>`.
pub fn signed_events_path(app: &App, body: &str, timestamp: u64) -> String {
    let path = format!("/apps/{}/events", app.id);
    let body_md5 = hex(&Md5::digest(body.as_bytes()));
    let query = format!(
        "auth_key={}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={body_md5}",
        app.key
    );
    let to_sign = format!("POST\n{path}\n{query}");
    let signature = match Hmac::<Sha256>::new_from_slice(app.secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(to_sign.as_bytes());
            hex(&mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; keep the request well-formed regardless.
        Err(_) => String::new(),
    };
    format!("{path}?{query}&auth_signature={signature}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_documented_example() {
        let app = App {
            id: "3".into(),
            key: "278d425bdf160c739803".into(),
            secret: "7ad3773142a6692b25b8".into(),
        };
        let body = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        assert_eq!(
            signed_events_path(&app, body, 1_353_088_179),
            "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0\
             &body_md5=ec365a775a4cd0599faeb73354201b6f\
             &auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }

    #[test]
    fn frames() {
        assert_eq!(
            subscribe_frame("missions"),
            r#"{"event":"pusher:subscribe","data":{"channel":"missions"}}"#
        );
        assert!(is_subscription_succeeded(
            r#"{"event":"pusher_internal:subscription_succeeded","channel":"missions","data":"{}"}"#
        ));
        assert!(is_ping(r#"{"event":"pusher:ping","data":{}}"#));
        let body = event_body(
            "mission-update",
            "missions",
            r#"{"id":1,"location":"t:42"}"#,
        );
        assert_eq!(
            body,
            r#"{"name":"mission-update","channel":"missions","data":"{\"id\":1,\"location\":\"t:42\"}"}"#
        );
        // What a subscriber receives carries the same escaped data.
        let frame = format!(
            r#"{{"event":"mission-update","channel":"missions","data":{}}}"#,
            serde_json::Value::String(r#"{"id":1,"location":"t:42"}"#.into())
        );
        assert!(is_mission_update(&frame));
        assert_eq!(crate::frame::extract_stamp(&frame), Some(42));
    }
}
