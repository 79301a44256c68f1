//! Validation of mission bodies: every field checked, and a 422 naming the first one that is
//! wrong (`{"error", "field"}`), before anything reaches the store.

use bytes::Bytes;
use serde_json::{Map, Value};
use switchboard_store::{MissionPatch, MissionStatus, NewMission};

use crate::http::error::ApiError;

/// Longest accepted string field.
pub const MAX_FIELD_CHARS: usize = 200;

/// Parses a JSON object body; anything else is a 422 naming `body`, and so is an object that
/// names a field twice.
fn object_body(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if let Ok(UniqueKeys(map)) = serde_json::from_slice::<UniqueKeys>(body) {
        return Ok(map);
    }
    // Refused: read it again only to say why.
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => Err(ApiError::invalid("body", "Body names a field twice")),
        Ok(_) => Err(ApiError::invalid("body", "Body must be a JSON object")),
        Err(_) => Err(ApiError::invalid("body", "Body is not valid JSON")),
    }
}

/// A JSON object whose keys are all different. serde_json's `Value` keeps the last of two
/// `status` keys; a proxy, a WAF or an audit log that reads the first would see another update
/// than the one applied, so such a body is refused (as serde's derived structs refuse it).
struct UniqueKeys(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object with unique keys")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut map = Map::new();
                while let Some((key, value)) = access.next_entry::<String, Value>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom("duplicate key"));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueKeys(map))
            }
        }
        d.deserialize_map(Keys)
    }
}

fn string_field(
    map: &Map<String, Value>,
    field: &'static str,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) if required => {
            Err(ApiError::invalid(field, format!("{field} is required")))
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            if trimmed.chars().count() > MAX_FIELD_CHARS {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} must be at most {MAX_FIELD_CHARS} characters"),
                ));
            }
            if trimmed.chars().any(char::is_control) {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} must not contain control characters"),
                ));
            }
            if required && trimmed.is_empty() {
                return Err(ApiError::invalid(
                    field,
                    format!("{field} must not be empty"),
                ));
            }
            Ok(Some(trimmed.to_owned()))
        }
        Some(_) => Err(ApiError::invalid(
            field,
            format!("{field} must be a string"),
        )),
    }
}

fn status_field(map: &Map<String, Value>) -> Result<Option<MissionStatus>, ApiError> {
    match map.get("status") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => MissionStatus::parse(s).map(Some).ok_or_else(|| {
            ApiError::invalid(
                "status",
                "status must be one of planned, active, compromised, completed, aborted",
            )
        }),
        Some(_) => Err(ApiError::invalid("status", "status must be a string")),
    }
}

fn reject_unknown(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        // The field name is client input: report it without echoing arbitrary content.
        Some(_) => Err(ApiError::invalid(
            "body",
            format!("Unknown field; allowed fields are {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// Validates a `PUT` body.
pub fn parse_patch(body: &Bytes) -> Result<MissionPatch, ApiError> {
    let map = object_body(body)?;
    reject_unknown(&map, &["status", "location", "objective"])?;
    let patch = MissionPatch {
        status: status_field(&map)?,
        location: string_field(&map, "location", false)?,
        objective: string_field(&map, "objective", false)?,
    };
    if patch.location.as_deref() == Some("") {
        return Err(ApiError::invalid("location", "location must not be empty"));
    }
    if patch.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "Body must contain at least one of status, location, objective",
        ));
    }
    Ok(patch)
}

/// Validates a `POST` body.
pub fn parse_new(body: &Bytes) -> Result<NewMission, ApiError> {
    let map = object_body(body)?;
    reject_unknown(
        &map,
        &[
            "codename",
            "status",
            "location",
            "objective",
            "handler_notes",
            "asset_identity",
            "extraction_code",
        ],
    )?;
    Ok(NewMission {
        codename: string_field(&map, "codename", true)?.unwrap_or_default(),
        status: status_field(&map)?,
        location: string_field(&map, "location", true)?.unwrap_or_default(),
        objective: string_field(&map, "objective", false)?.unwrap_or_default(),
        handler_notes: string_field(&map, "handler_notes", false)?.unwrap_or_default(),
        asset_identity: string_field(&map, "asset_identity", false)?.unwrap_or_default(),
        extraction_code: string_field(&map, "extraction_code", false)?.unwrap_or_default(),
    })
}
