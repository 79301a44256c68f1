//! The input types of the mission writes, with their rules in garde (`#[garde(...)]`) and their
//! schemas in utoipa (`#[schema(...)]`): every field checked, and a 422 naming the first one
//! that is wrong (`{"error", "field"}`), before anything reaches the store. Strings are trimmed
//! as they are read, so the rules see what would be stored.

use garde::Validate;
use serde::{Deserialize, Deserializer};
use switchboard_store::{MissionPatch, MissionStatus, NewMission};
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::http::input::{self, BodySpec, Unknown, must_be_a_string, rule_error};

/// Longest accepted string field.
pub const MAX_FIELD_CHARS: usize = 200;

/// A mission's status as the API names it (the schema of `status` in bodies and DTOs).
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(
    dead_code,
    reason = "a schema only: the DTOs carry MissionStatus::as_str()"
)]
pub enum StatusName {
    /// Not started.
    Planned,
    /// Under way.
    Active,
    /// Blown.
    Compromised,
    /// Done.
    Completed,
    /// Called off.
    Aborted,
}

/// `PUT /missions/{id}`: any of `status`, `location`, `objective`, at least one.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[schema(as = MissionPatch)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    /// The new status.
    #[serde(default)]
    #[garde(inner(custom(known_status)))]
    #[schema(value_type = Option<StatusName>)]
    pub status: Option<String>,
    /// The new location (not empty).
    #[serde(default, deserialize_with = "trimmed")]
    #[garde(inner(length(chars, min = 1, max = MAX_FIELD_CHARS), custom(no_control)))]
    #[schema(min_length = 1, max_length = 200)]
    pub location: Option<String>,
    /// The new objective.
    #[serde(default, deserialize_with = "trimmed")]
    #[garde(inner(length(chars, max = MAX_FIELD_CHARS), custom(no_control)))]
    #[schema(max_length = 200)]
    pub objective: Option<String>,
}

/// `POST /missions`: a new mission. The classified fields may be written, never read back.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[schema(as = NewMission)]
#[serde(deny_unknown_fields)]
pub struct NewBody {
    /// Code name (required, not empty).
    #[serde(default, deserialize_with = "trimmed")]
    #[garde(required, inner(length(chars, min = 1, max = MAX_FIELD_CHARS), custom(no_control)))]
    #[schema(min_length = 1, max_length = 200)]
    pub codename: Option<String>,
    /// Status; `planned` when left out.
    #[serde(default)]
    #[garde(inner(custom(known_status)))]
    #[schema(value_type = Option<StatusName>)]
    pub status: Option<String>,
    /// Location (required, not empty).
    #[serde(default, deserialize_with = "trimmed")]
    #[garde(required, inner(length(chars, min = 1, max = MAX_FIELD_CHARS), custom(no_control)))]
    #[schema(min_length = 1, max_length = 200)]
    pub location: Option<String>,
    /// Objective.
    #[serde(default, deserialize_with = "trimmed")]
    #[garde(inner(length(chars, max = MAX_FIELD_CHARS), custom(no_control)))]
    #[schema(max_length = 200)]
    pub objective: Option<String>,
    /// Classified: stored, never shown to any audience.
    #[serde(default, deserialize_with = "trimmed")]
    #[garde(inner(length(chars, max = MAX_FIELD_CHARS), custom(no_control)))]
    #[schema(max_length = 200, write_only)]
    pub handler_notes: Option<String>,
    /// Classified: stored, never shown to any audience.
    #[serde(default, deserialize_with = "trimmed")]
    #[garde(inner(length(chars, max = MAX_FIELD_CHARS), custom(no_control)))]
    #[schema(max_length = 200, write_only)]
    pub asset_identity: Option<String>,
    /// Classified: stored, never shown to any audience.
    #[serde(default, deserialize_with = "trimmed")]
    #[garde(inner(length(chars, max = MAX_FIELD_CHARS), custom(no_control)))]
    #[schema(max_length = 200, write_only)]
    pub extraction_code: Option<String>,
}

const STATUS_MESSAGE: &str =
    "status must be one of planned, active, compromised, completed, aborted";

fn known_status(value: &str, _: &()) -> garde::Result {
    match MissionStatus::parse(value) {
        Some(_) => Ok(()),
        None => Err(rule_error(STATUS_MESSAGE)),
    }
}

fn no_control(value: &str, _: &()) -> garde::Result {
    if value.chars().any(char::is_control) {
        return Err(rule_error("{field} must not contain control characters"));
    }
    Ok(())
}

/// A string field, trimmed as it is read (`null` is as good as absent).
fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(value.map(|s| s.trim().to_owned()))
}

/// The status of a body that passed [`known_status`].
fn status_of(value: Option<&str>) -> Option<MissionStatus> {
    value.and_then(MissionStatus::parse)
}

const PATCH: BodySpec = BodySpec {
    fields: &["status", "location", "objective"],
    unknown: Unknown::First,
    unknown_message: "Unknown field; allowed fields are status, location, objective",
    not_json: "Body is not valid JSON",
    not_object: "Body must be a JSON object",
    type_message: must_be_a_string,
};

const NEW: BodySpec = BodySpec {
    fields: &[
        "codename",
        "status",
        "location",
        "objective",
        "handler_notes",
        "asset_identity",
        "extraction_code",
    ],
    unknown: Unknown::First,
    unknown_message: "Unknown field; allowed fields are codename, status, location, objective, \
                      handler_notes, asset_identity, extraction_code",
    not_json: "Body is not valid JSON",
    not_object: "Body must be a JSON object",
    type_message: must_be_a_string,
};

/// Validates a `PUT` body.
pub fn parse_patch(body: &[u8]) -> Result<MissionPatch, ApiError> {
    let body: PatchBody = input::parse(body, &PATCH)?;
    let patch = MissionPatch {
        status: status_of(body.status.as_deref()),
        location: body.location,
        objective: body.objective,
    };
    // Hand-written: "at least one field" is a rule about the whole body, and garde's rules are
    // per field.
    if patch.is_empty() {
        return Err(ApiError::invalid(
            "body",
            "Body must contain at least one of status, location, objective",
        ));
    }
    Ok(patch)
}

/// Validates a `POST` body.
pub fn parse_new(body: &[u8]) -> Result<NewMission, ApiError> {
    let body: NewBody = input::parse(body, &NEW)?;
    Ok(NewMission {
        codename: body.codename.unwrap_or_default(),
        status: status_of(body.status.as_deref()),
        location: body.location.unwrap_or_default(),
        objective: body.objective.unwrap_or_default(),
        handler_notes: body.handler_notes.unwrap_or_default(),
        asset_identity: body.asset_identity.unwrap_or_default(),
        extraction_code: body.extraction_code.unwrap_or_default(),
    })
}
