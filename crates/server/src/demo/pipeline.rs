//! The demo pipeline (`demo.pipeline`): seeds the demo cities that have no snapshot yet, then
//! posts plausible metrics for them every `demo.interval_ms`, now and then above one of the
//! `[[cities.alerts]]` rules, through the same path as `POST /api/cities/:cityId/data` (stored,
//! `data_update`, `alerts`). It exists so a fresh demo's dashboards show something alive; a
//! real deployment turns it off (the default whenever a secret is configured).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::DemoError;
use crate::apps::cities::{channel_for, publish_snapshot};
use crate::node::Node;
use crate::node::publish::Origin;

/// The demo cities and the middle of each metric's range.
pub const DEMO_CITIES: [&str; 4] = ["nairobi", "london", "tokyo", "sao-paulo"];

/// Metric name, typical value, how far a round may move it either way.
const METRICS: [(&str, f64, f64); 4] = [
    ("air_quality", 80.0, 40.0),
    ("temperature", 21.0, 6.0),
    ("traffic", 55.0, 30.0),
    ("energy_mw", 420.0, 120.0),
];

/// One round in this many pushes a city above an alert rule.
const BREACH_ONE_IN: u32 = 6;

/// A city's metrics for one round: each near its typical value, and with `breach` one alert
/// rule's metric just above its threshold.
fn round(node: &Node, breach: bool) -> BTreeMap<String, f64> {
    let mut rng = rand::rng();
    let mut metrics: BTreeMap<String, f64> = METRICS
        .iter()
        .map(|(name, typical, spread)| {
            let v: f64 = typical + rng.random_range(-spread..*spread);
            ((*name).to_owned(), (v * 10.0).round() / 10.0)
        })
        .collect();
    let rules = &node.config.cities.alerts;
    if breach && !rules.is_empty() {
        let rule = &rules[rng.random_range(0..rules.len())];
        let over = rule.above.abs().max(1.0) * rng.random_range(0.02..0.25);
        metrics.insert(
            rule.metric.clone(),
            ((rule.above + over) * 10.0).round() / 10.0,
        );
    }
    // Plausible values never reach a rule by accident: only a breach round crosses one.
    for rule in rules {
        if !breach && metrics.get(&rule.metric).is_some_and(|v| *v > rule.above) {
            metrics.insert(rule.metric.clone(), rule.above);
        }
    }
    metrics
}

/// Gives every demo city without a snapshot one, so `GET /api/cities/nairobi` and the first
/// `initial_data` have data from the first second. Nothing is published: nobody listens yet.
pub async fn seed(node: &Node) -> Result<(), DemoError> {
    for city in DEMO_CITIES {
        if node.store.get_city_snapshot(city).await?.is_none() {
            node.store
                .put_city_snapshot(city, &round(node, false))
                .await?;
        }
    }
    Ok(())
}

/// Posts a round for every demo city each `demo.interval_ms`, until the task is aborted.
pub async fn run(node: Arc<Node>) {
    let period = Duration::from_millis(node.config.demo.interval_ms);
    tracing::info!(
        cities = %DEMO_CITIES.join(","),
        every_ms = node.config.demo.interval_ms,
        "demo pipeline posting city metrics (demo.pipeline = false turns it off)"
    );
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        for city in DEMO_CITIES {
            let breach = rand::rng().random_range(0..BREACH_ONE_IN) == 0;
            if let Err(e) = post(&node, city, &round(&node, breach)).await {
                tracing::warn!(city, error = %e, "demo pipeline post failed");
            }
        }
    }
}

async fn post(node: &Node, city: &str, metrics: &BTreeMap<String, f64>) -> Result<(), String> {
    let channel = channel_for(city).map_err(|e| format!("{e:?}"))?;
    let record = node
        .store
        .put_city_snapshot(city, metrics)
        .await
        .map_err(|e| e.to_string())?;
    publish_snapshot(node, &channel, &record, Origin::Direct)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}
