//! City dashboards: per-city metric streams, snapshots and alerts (SPEC §1.4).
//!
//! A pipeline posts a city's metrics; they are validated, stored as the city's latest snapshot,
//! published as `data_update` on `city:<cityId>`, and checked against the `[[cities.alerts]]`
//! rules — every breach of one post goes out together as one `alerts` publication. A client that
//! subscribes to a city first receives `initial_data` with the snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use garde::Validate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_core::auth::Role;
use switchboard_core::channel::ChannelName;
use switchboard_core::publication::PublicationData;
use switchboard_core::refusal::Refusal;
use switchboard_store::{ChangeEvent, ChangeTable, CitySnapshotRecord};
use utoipa::ToSchema;

use crate::config::AlertRule;
use crate::http::auth::{identify, require_role};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::input::{self, BodySpec, Unknown, rule_error};
use crate::node::error::{AppError, PublishError};
use crate::node::publish::Origin;
use crate::node::scope::{ClientScope, JoinError};
use crate::node::{App, Node, Notice};

/// Most metrics accepted in one post.
pub const MAX_METRICS: usize = 100;

/// A city snapshot as clients see it.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CitySnapshotDto {
    pub city_id: String,
    /// Metric name → value.
    pub metrics: BTreeMap<String, f64>,
    /// When the snapshot was stored.
    pub updated_at: String,
}

impl From<&CitySnapshotRecord> for CitySnapshotDto {
    fn from(r: &CitySnapshotRecord) -> Self {
        Self {
            city_id: r.city_id.clone(),
            metrics: r.metrics.clone(),
            updated_at: r.updated_at.clone(),
        }
    }
}

/// One alert of an `alerts` publication.
#[derive(Debug, Clone, Serialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertDto {
    /// The metric that crossed its threshold.
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    pub severity: String,
    /// Human-readable summary.
    pub message: String,
}

/// What `POST /api/cities/:cityId/data` answers: the stored snapshot and the alerts it raised.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PostAnswer {
    pub city_id: String,
    /// Metric name → value.
    pub metrics: BTreeMap<String, f64>,
    /// When the snapshot was stored.
    pub updated_at: String,
    /// The rules this post breached (also published as `alerts`).
    pub alerts: Vec<AlertDto>,
}

/// The body of a post: `{"metrics": {"<name>": <finite number>, …}}`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsBody {
    /// Metric name (1-64 of letters, digits, `_`, `-`, `.`) → finite number; 1 to 100 of them.
    #[serde(default)]
    #[garde(custom(metrics_rule))]
    #[schema(value_type = BTreeMap<String, f64>, required)]
    pub metrics: Option<BTreeMap<String, Value>>,
}

/// The event of a stored snapshot.
pub const DATA_EVENT: &str = "data_update";
/// The event of the rules a snapshot breached.
pub const ALERTS_EVENT: &str = "alerts";
/// The notice a new subscriber of a city receives first: its current snapshot.
pub const INITIAL_EVENT: &str = "initial_data";
/// The client event that joins a city's stream (the native `auth` message's `cityId`).
pub const JOIN_EVENT: &str = "join-city";
/// The message for a city id that is not `[a-z0-9-]{1,64}`.
const BAD_CITY_ID: &str = "city id must match [a-z0-9-]{1,64}";

/// The city dashboards app.
pub struct Cities;

#[async_trait::async_trait]
impl App for Cities {
    fn name(&self) -> &'static str {
        "cities"
    }

    fn routes(&self) -> Router<Arc<Node>> {
        Router::new()
            .route("/api/cities/{city_id}", get(show))
            .route("/api/cities/{city_id}/data", post(ingest))
    }

    fn server_events(&self) -> &'static [&'static str] {
        &[DATA_EVENT, ALERTS_EVENT, INITIAL_EVENT]
    }

    fn client_events(&self) -> &'static [&'static str] {
        &[JOIN_EVENT]
    }

    /// `join-city` cityId: subscribes to `city:<cityId>` if the token allows it, answered like
    /// a subscribe (`subscribed`, then `initial_data`); joining a city twice is not an error.
    async fn on_client_event(
        &self,
        _node: &Node,
        client: &mut dyn ClientScope,
        _event: &str,
        data: &Value,
    ) -> Result<Value, Refusal> {
        let channel = data
            .as_str()
            .filter(|city| valid_city_id(city))
            .and_then(|city| channel_for(city).ok())
            .ok_or_else(|| Refusal::bad("cityId must match [a-z0-9-]{1,64}"))?;
        match client.join(channel, true).await {
            // A failed announced join has already told the client.
            Ok(_) | Err(JoinError::Failed) => Ok(Value::Null),
            Err(JoinError::Refused(refusal)) => Err(refusal),
        }
    }

    /// A dashboard starts from the current snapshot: `initial_data` with it, or `null` data
    /// when the city has none yet.
    async fn on_join(
        &self,
        node: &Node,
        channel: &ChannelName,
    ) -> Result<Option<Notice>, AppError> {
        if channel.namespace() != "city" {
            return Ok(None);
        }
        let city_id = channel.suffix().unwrap_or_default();
        let snapshot = if valid_city_id(city_id) {
            node.store
                .get_city_snapshot(city_id)
                .await?
                .as_ref()
                .map(CitySnapshotDto::from)
        } else {
            None
        };
        Ok(Some(Notice {
            event: INITIAL_EVENT,
            data: serde_json::to_value(snapshot)?,
        }))
    }

    /// A snapshot written by another writer is published like an API post.
    async fn on_change(&self, node: &Node, change: &ChangeEvent) -> Result<bool, AppError> {
        if change.table != ChangeTable::CitySnapshots {
            return Ok(false);
        }
        let channel = channel_for(&change.key).map_err(|_| AppError::BadKey(change.key.clone()))?;
        // A deleted snapshot has nothing to publish; new subscribers get `null` data.
        if let Some(record) = node.store.get_city_snapshot(&change.key).await? {
            publish_snapshot(node, &channel, &record, Origin::Change(change)).await?;
            tracing::info!(city = %change.key, "published a city snapshot changed outside the API");
        }
        Ok(true)
    }
}

/// Whether `id` is a valid city id: `[a-z0-9-]{1,64}`.
pub fn valid_city_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_metric_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

const METRICS_SHAPE: &str = "metrics must be an object of metric name to number";

/// One rule for the whole map, because its messages name the metric at fault (a value that is
/// not a number is a rule here, not a type error, so the message can say which).
fn metrics_rule(metrics: &Option<BTreeMap<String, Value>>, _: &()) -> garde::Result {
    let Some(metrics) = metrics else {
        return Err(rule_error(METRICS_SHAPE));
    };
    if metrics.is_empty() {
        return Err(rule_error("metrics must not be empty"));
    }
    if metrics.len() > MAX_METRICS {
        return Err(garde::Error::new(format!(
            "at most {MAX_METRICS} metrics per post"
        )));
    }
    for (name, value) in metrics {
        if !valid_metric_name(name) {
            return Err(rule_error(
                "metric names are 1-64 characters of letters, digits, '_', '-', '.'",
            ));
        }
        if !value.as_f64().is_some_and(f64::is_finite) {
            return Err(garde::Error::new(format!(
                "metric {name} must be a finite number"
            )));
        }
    }
    Ok(())
}

const BODY: BodySpec = BodySpec {
    fields: &["metrics"],
    unknown: Unknown::Last,
    unknown_message: "Unknown field; only metrics is allowed",
    not_json: "Body is not valid JSON",
    not_object: "Body must be a JSON object",
    type_message: |_| METRICS_SHAPE,
};

/// Validates a post body: `{"metrics": {"<name>": <finite number>, …}}`.
pub fn parse_metrics(body: &Bytes) -> Result<BTreeMap<String, f64>, ApiError> {
    let body: MetricsBody = input::parse(body, &BODY)?;
    Ok(body
        .metrics
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.as_f64()?)))
        .collect())
}

/// The alerts a set of metrics triggers under `rules`.
pub fn evaluate_alerts(rules: &[AlertRule], metrics: &BTreeMap<String, f64>) -> Vec<AlertDto> {
    rules
        .iter()
        .filter_map(|rule| {
            let value = *metrics.get(&rule.metric)?;
            (value > rule.above).then(|| AlertDto {
                metric: rule.metric.clone(),
                value,
                threshold: rule.above,
                severity: rule.severity.clone(),
                message: format!(
                    "{} is {value}, above the {} threshold of {}",
                    rule.metric, rule.severity, rule.above
                ),
            })
        })
        .collect()
}

/// The `city:<id>` channel of a city.
pub fn channel_for(city_id: &str) -> Result<ChannelName, ApiError> {
    ChannelName::parse(&format!("city:{city_id}"))
        .map_err(|_| ApiError::invalid("cityId", BAD_CITY_ID))
}

fn checked_city(city_id: &str) -> Result<ChannelName, ApiError> {
    if !valid_city_id(city_id) {
        return Err(ApiError::invalid("cityId", BAD_CITY_ID));
    }
    channel_for(city_id)
}

/// Stores a city's metrics (role `pipeline` or `hq`), publishes `data_update` and any `alerts`.
#[utoipa::path(post, path = "/api/cities/{city_id}/data", operation_id = "postCityData", tag = "cities",
    params(("city_id" = String, Path, description = "The city id, `[a-z0-9-]{1,64}`", example = "nairobi")),
    request_body = MetricsBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored and published", body = PostAnswer),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token's role is not pipeline or hq", body = ErrorBody),
        (status = 404, description = "No such route (an empty city id)", body = ErrorBody),
        (status = 413, description = "Body over limits.max_message_bytes", body = ErrorBody),
        (status = 422, description = "Invalid city id or body; `field` names it", body = ErrorBody),
        (status = 429, description = "Too many writes", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Saved, but not broadcast; retry", body = ErrorBody),
    ))]
async fn ingest(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(city_id): Path<String>,
    body: Bytes,
) -> Result<Json<PostAnswer>, ApiError> {
    require_role(&node.verifier, &headers, &[Role::Pipeline, Role::Hq])?;
    let channel = checked_city(&city_id)?;
    let metrics = parse_metrics(&body)?;
    let record = node.store.put_city_snapshot(&city_id, &metrics).await?;
    let (snapshot, alerts) = publish_snapshot(&node, &channel, &record, Origin::Direct).await?;
    Ok(Json(PostAnswer {
        city_id: snapshot.city_id,
        metrics: snapshot.metrics,
        updated_at: snapshot.updated_at,
        alerts,
    }))
}

/// Publishes a stored snapshot as `data_update` on `channel`, then `alerts` for any rule it
/// breaches (also used for snapshots written outside the API, via change capture).
pub async fn publish_snapshot(
    node: &Node,
    channel: &ChannelName,
    record: &CitySnapshotRecord,
    origin: Origin<'_>,
) -> Result<(CitySnapshotDto, Vec<AlertDto>), PublishError> {
    let snapshot = CitySnapshotDto::from(record);
    let data = PublicationData::shared(&snapshot)?;
    node.publish_from(origin, channel, DATA_EVENT, data).await?;
    let alerts = evaluate_alerts(&node.config.cities.alerts, &record.metrics);
    if !alerts.is_empty() {
        tracing::info!(city = %record.city_id, count = alerts.len(), "city alerts");
        let data = PublicationData::shared(&alerts)?;
        node.publish_from(origin, channel, ALERTS_EVENT, data)
            .await?;
    }
    Ok((snapshot, alerts))
}

/// A city's latest snapshot, for callers whose token may read `city:<cityId>`.
#[utoipa::path(get, path = "/api/cities/{city_id}", operation_id = "getCity", tag = "cities",
    params(("city_id" = String, Path, description = "The city id, `[a-z0-9-]{1,64}`", example = "nairobi")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The snapshot", body = CitySnapshotDto),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token may not read this city", body = ErrorBody),
        (status = 404, description = "No snapshot for this city yet", body = ErrorBody),
        (status = 422, description = "Invalid city id (`field`: cityId)", body = ErrorBody),
    ))]
async fn show(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    Path(city_id): Path<String>,
) -> Result<Json<CitySnapshotDto>, ApiError> {
    let who = identify(&node.verifier, &headers)?;
    let channel = checked_city(&city_id)?;
    if !node.policy.can_read(&who, "", &channel) {
        return Err(if who.is_authenticated() {
            ApiError::forbidden("Your token does not allow this city")
        } else {
            switchboard_core::auth::AuthError::Missing.into()
        });
    }
    let record = node
        .store
        .get_city_snapshot(&city_id)
        .await?
        .ok_or_else(|| ApiError::not_found("City not found"))?;
    Ok(Json(CitySnapshotDto::from(&record)))
}

/// The city routes in `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(show, ingest),
    components(schemas(CitySnapshotDto, AlertDto, PostAnswer, MetricsBody)),
    tags((name = "cities", description = "Per-city streams, snapshots and alerts (SPEC 1.4)"))
)]
pub struct CitiesApi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let bad = |s: &str| {
            parse_metrics(&Bytes::from(s.to_owned()))
                .unwrap_err()
                .field()
        };
        assert_eq!(bad(r#"{"metrics":{"a":"x"}}"#), Some("metrics"));
        assert_eq!(bad(r#"{"metrics":{"a":null}}"#), Some("metrics"));
        assert_eq!(bad(r#"{"metrics":{}}"#), Some("metrics"));
        assert_eq!(bad(r#"{"metrics":[1]}"#), Some("metrics"));
        assert_eq!(bad(r#"{"metrics":{"a b":1}}"#), Some("metrics"));
        assert_eq!(bad(r#"{"metrics":{"a":1},"x":2}"#), Some("body"));
        assert_eq!(bad("nope"), Some("body"));
        // JSON has no NaN/Infinity literals; a huge exponent overflows and is refused at parse.
        assert!(parse_metrics(&Bytes::from_static(br#"{"metrics":{"a":1e999}}"#)).is_err());
        let ok = parse_metrics(&Bytes::from_static(
            br#"{"metrics":{"air_quality":151,"temp":21.5}}"#,
        ))
        .unwrap();
        assert_eq!(ok["air_quality"], 151.0);
        assert!(valid_city_id("nairobi") && valid_city_id("new-york-2"));
        assert!(!valid_city_id("Nairobi") && !valid_city_id("") && !valid_city_id(&"a".repeat(65)));
    }

    #[test]
    fn alerts_fire_above_threshold_only() {
        let rules = vec![AlertRule {
            metric: "air_quality".into(),
            above: 150.0,
            severity: "critical".into(),
        }];
        let at = BTreeMap::from([("air_quality".to_owned(), 150.0)]);
        assert!(evaluate_alerts(&rules, &at).is_empty());
        let above = BTreeMap::from([("air_quality".to_owned(), 180.0)]);
        let alerts = evaluate_alerts(&rules, &above);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].threshold, 150.0);
        assert_eq!(alerts[0].severity, "critical");
        assert!(alerts[0].message.contains("air_quality"));
    }
}
