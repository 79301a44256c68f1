//! Reading a REST body into an input type: serde checks the JSON and the field types, garde
//! checks the rules declared on the type (`#[garde(...)]`), and the first problem becomes the
//! one 422 every endpoint answers, `{"error": …, "field": …}`.
//!
//! Two checks stay hand-written here because neither serde's derive nor garde can say them the
//! way the API does:
//! - **a field named twice** (`{"status":"active","status":"aborted"}`): serde's derive refuses
//!   it only with a generic message, and `serde_json::Value` silently keeps the last one, so the
//!   object is read once by [`UniqueKeys`] first;
//! - **unknown fields**: `#[serde(deny_unknown_fields)]` reports them as a type error, not
//!   naming the field `body`, and some endpoints check them before the other fields, some after;
//!   [`BodySpec::unknown`] says which, so each endpoint keeps its answer.
//!
//! Rule messages name their field with the `{field}` placeholder: garde's built-in rules get
//! their wording from [`Wording`], custom rules (`#[garde(custom(...))]`) write it themselves.

use std::borrow::Cow;
use std::fmt::Display;

use garde::i18n::{
    DefaultI18n, I18n, InvalidCreditCard, InvalidEmail, InvalidPhoneNumber, InvalidUrl, IpKind,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;

/// When an endpoint refuses unknown fields: before reading any field, or once every known
/// field was found valid (the order each endpoint had before garde, kept so it answers alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// Refused before anything else is read.
    First,
    /// Refused after the known fields are valid.
    Last,
}

/// How one endpoint reads its body: the fields it knows, in the order they are reported, and
/// the wording of its structural errors.
#[derive(Debug, Clone, Copy)]
pub struct BodySpec {
    /// Every field the body may carry (the `field` of a 422 is one of these, or `body`).
    pub fields: &'static [&'static str],
    /// When unknown fields are refused.
    pub unknown: Unknown,
    /// The error for an unknown field (`field: body`).
    pub unknown_message: &'static str,
    /// The error for a body that is not JSON.
    pub not_json: &'static str,
    /// The error for JSON that is not an object.
    pub not_object: &'static str,
    /// The error for a field of the wrong JSON type, by field (`{field}` is replaced).
    pub type_message: fn(&str) -> &'static str,
}

/// The usual wording for a mistyped field.
pub fn must_be_a_string(_field: &str) -> &'static str {
    "{field} must be a string"
}

/// Reads `body` into `T` by `spec`: one JSON object with unique keys, known fields, right
/// types, then `T`'s garde rules. The first failure is the 422.
pub fn parse<T>(body: &[u8], spec: &BodySpec) -> Result<T, ApiError>
where
    T: DeserializeOwned + garde::Validate<Context = ()>,
{
    let map = object_body(body, spec)?;
    if spec.unknown == Unknown::First {
        reject_unknown(&map, spec)?;
    }
    let unknown = spec.unknown == Unknown::Last && has_unknown(&map, spec);
    // Known fields only: an unknown one must not turn into a type error of its own.
    let known: Map<String, Value> = map
        .into_iter()
        .filter(|(k, _)| spec.fields.contains(&k.as_str()))
        .collect();
    let value: T = serde_path_to_error::deserialize(Value::Object(known)).map_err(|e| {
        let field = known_field(spec, &first_segment(e.path()));
        ApiError::invalid(field, (spec.type_message)(field).replace("{field}", field))
    })?;
    if let Err(report) = garde::i18n::with_i18n(Wording, || value.validate()) {
        return Err(from_report(&report, spec));
    }
    if unknown {
        return Err(ApiError::invalid("body", spec.unknown_message));
    }
    Ok(value)
}

/// Reads `body` straight into `T` with serde's derive (which refuses a field named twice, an
/// unknown field and a wrong type alike, all answered with `message` naming `body`), then
/// `T`'s garde rules. For bodies that keep part of the JSON as written
/// (`serde_json::value::RawValue`), which a detour through [`Value`] would re-encode.
pub fn parse_strict<T>(
    body: &[u8],
    fields: &'static [&'static str],
    message: &str,
) -> Result<T, ApiError>
where
    T: DeserializeOwned + garde::Validate<Context = ()>,
{
    let value: T = serde_json::from_slice(body).map_err(|_| ApiError::invalid("body", message))?;
    let spec = BodySpec {
        fields,
        unknown: Unknown::First,
        unknown_message: "",
        not_json: "",
        not_object: "",
        type_message: must_be_a_string,
    };
    match garde::i18n::with_i18n(Wording, || value.validate()) {
        Ok(()) => Ok(value),
        Err(report) => Err(from_report(&report, &spec)),
    }
}

/// The first field garde refused, with its message.
fn from_report(report: &garde::Report, spec: &BodySpec) -> ApiError {
    let Some((path, error)) = report.iter().next() else {
        return ApiError::invalid("body", "Body is invalid");
    };
    let path = path.to_string();
    let field = known_field(spec, path.split(['.', '[']).next().unwrap_or_default());
    ApiError::invalid(field, error.message().replace("{field}", field))
}

fn first_segment(path: &serde_path_to_error::Path) -> String {
    path.iter()
        .next()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

/// The `'static` name of a known field, or `body` for anything else. garde names a field by
/// its Rust name (`socket_id`), serde by its JSON name (`socketId`): both are found.
fn known_field(spec: &BodySpec, name: &str) -> &'static str {
    let plain = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    spec.fields
        .iter()
        .find(|f| **f == name || plain(f) == plain(name))
        .copied()
        .unwrap_or("body")
}

fn has_unknown(map: &Map<String, Value>, spec: &BodySpec) -> bool {
    map.keys().any(|k| !spec.fields.contains(&k.as_str()))
}

fn reject_unknown(map: &Map<String, Value>, spec: &BodySpec) -> Result<(), ApiError> {
    // The field name is client input: it is not echoed.
    if has_unknown(map, spec) {
        return Err(ApiError::invalid("body", spec.unknown_message));
    }
    Ok(())
}

/// Parses a JSON object body; anything else is a 422 naming `body`, and so is an object that
/// names a field twice.
fn object_body(body: &[u8], spec: &BodySpec) -> Result<Map<String, Value>, ApiError> {
    if let Ok(UniqueKeys(map)) = serde_json::from_slice::<UniqueKeys>(body) {
        return Ok(map);
    }
    // Refused: read it again only to say why.
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => Err(ApiError::invalid("body", "Body names a field twice")),
        Ok(_) => Err(ApiError::invalid("body", spec.not_object)),
        Err(_) => Err(ApiError::invalid("body", spec.not_json)),
    }
}

/// A JSON object whose keys are all different. serde_json's `Value` keeps the last of two
/// `status` keys; a proxy, a WAF or an audit log that reads the first would see another update
/// than the one applied, so such a body is refused.
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

/// The API's wording for garde's built-in rules, each naming its field as `{field}`. Only the
/// rules the input types use have their own wording; the others keep garde's.
pub struct Wording;

impl I18n for Wording {
    fn length_lower_than(&self, min: usize) -> Cow<'static, str> {
        if min <= 1 {
            "{field} must not be empty".into()
        } else {
            format!("{{field}} must be at least {min} characters").into()
        }
    }
    fn length_greater_than(&self, max: usize) -> Cow<'static, str> {
        format!("{{field}} must be at most {max} characters").into()
    }
    fn required_not_set(&self) -> Cow<'static, str> {
        "{field} is required".into()
    }
    fn range_lower_than(&self, min: &dyn Display) -> Cow<'static, str> {
        DefaultI18n.range_lower_than(min)
    }
    fn range_greater_than(&self, max: &dyn Display) -> Cow<'static, str> {
        DefaultI18n.range_greater_than(max)
    }
    fn credit_card_invalid(&self, reason: InvalidCreditCard) -> Cow<'static, str> {
        DefaultI18n.credit_card_invalid(reason)
    }
    fn pattern_no_match(&self, pattern: &dyn Display) -> Cow<'static, str> {
        DefaultI18n.pattern_no_match(pattern)
    }
    fn contains_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        DefaultI18n.contains_missing(pattern)
    }
    fn url_invalid(&self, reason: InvalidUrl) -> Cow<'static, str> {
        DefaultI18n.url_invalid(reason)
    }
    fn prefix_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        DefaultI18n.prefix_missing(pattern)
    }
    fn suffix_missing(&self, pattern: &dyn Display) -> Cow<'static, str> {
        DefaultI18n.suffix_missing(pattern)
    }
    fn phone_number_invalid(&self, reason: InvalidPhoneNumber) -> Cow<'static, str> {
        DefaultI18n.phone_number_invalid(reason)
    }
    fn ip_invalid(&self, kind: IpKind) -> Cow<'static, str> {
        DefaultI18n.ip_invalid(kind)
    }
    fn matches_field_mismatch(&self, field: &dyn Display) -> Cow<'static, str> {
        DefaultI18n.matches_field_mismatch(field)
    }
    fn email_invalid(&self, reason: InvalidEmail) -> Cow<'static, str> {
        DefaultI18n.email_invalid(reason)
    }
    fn ascii_invalid(&self) -> Cow<'static, str> {
        DefaultI18n.ascii_invalid()
    }
    fn alphanumeric_invalid(&self) -> Cow<'static, str> {
        DefaultI18n.alphanumeric_invalid()
    }
}

/// A custom garde rule's error, naming its field as `{field}`.
pub fn rule_error(message: &'static str) -> garde::Error {
    garde::Error::new(message)
}
