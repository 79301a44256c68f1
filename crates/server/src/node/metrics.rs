//! The node's Prometheus metrics (SPEC §8), on the `metrics` facade with
//! `metrics-exporter-prometheus` (the pair DESIGN.md names; the exporter renders the classic
//! Prometheus text format, which every scraper reads).
//!
//! Each node owns its own recorder instead of installing a global one: tests run several nodes
//! in one process, and a global registry would mix their counts. Handles are registered once,
//! here, so the hot paths only add to an atomic:
//! - deliveries, drops and publish latency are reported by the hub once per fan-out
//!   ([`FanOutObserver`]), never per subscriber;
//! - connection and subscription gauges are read from the session registry and the hub at
//!   scrape time, so opening a connection costs no metrics call at all.
//!
//! Labels are bounded: `transport` (4 values), `namespace` (the configured namespaces, else
//! `other`), `reason` (a fixed list), `code` (the error-code catalogue), `route` (the route
//! template, or `unmatched`) and `status` (the HTTP status code) — never a channel, user or
//! raw path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Recorder};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use switchboard_core::codes::ErrorCode;
use switchboard_core::hub::{FanOut, FanOutObserver, Transport};
use switchboard_core::publication::now_ms;

use crate::config::Config;

/// Why a message or delivery was dropped: the `reason` label of `switchboard_dropped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A connection's outbound queue was full (the connection closes with 4009).
    SlowConsumer,
    /// A client message over the client's rate limit.
    RateLimited,
    /// A message or body larger than `limits.max_message_bytes`.
    TooLarge,
}

impl DropReason {
    const ALL: [DropReason; 3] = [Self::SlowConsumer, Self::RateLimited, Self::TooLarge];

    fn as_str(self) -> &'static str {
        match self {
            Self::SlowConsumer => "slow_consumer",
            Self::RateLimited => "rate_limited",
            Self::TooLarge => "too_large",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::SlowConsumer => 0,
            Self::RateLimited => 1,
            Self::TooLarge => 2,
        }
    }
}

/// Every error code a client can be sent, for the `code` label.
const ERROR_CODES: [ErrorCode; 7] = [
    ErrorCode::InvalidJson,
    ErrorCode::InvalidMessage,
    ErrorCode::UnknownType,
    ErrorCode::Forbidden,
    ErrorCode::NotFound,
    ErrorCode::RateLimited,
    ErrorCode::BadRequest,
];

/// Publish latency buckets, in seconds: 1 ms to 2.5 s (the timestamps it is measured with are
/// milliseconds, so the first bucket holds everything under one).
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The metrics of one node.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    m: Registered,
}

/// The handles, registered while the recorder is lent to the `metrics` macros.
struct Registered {
    connections: [Gauge; Transport::COUNT],
    subscriptions: Gauge,
    publications: HashMap<String, Counter>,
    other_publications: Counter,
    deliveries: [Counter; Transport::COUNT],
    dropped: [Counter; 3],
    client_errors: [Counter; ERROR_CODES.len()],
    publish_latency: Histogram,
    broker_errors: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers every family, with the namespaces `config` names as the `namespace` values.
    pub fn new(config: &Config) -> Self {
        let builder = PrometheusBuilder::new();
        // Only fails for an empty bucket list; these are constants.
        let builder = builder
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let mut namespaces: Vec<String> = config.namespaces.keys().cloned().collect();
        namespaces.extend(config.auth.public_namespaces.iter().cloned());
        namespaces.sort();
        namespaces.dedup();
        let m = metrics::with_local_recorder(&recorder, || {
            describe();
            Registered {
                connections: Transport::ALL.map(|t| {
                    metrics::gauge!("switchboard_connections", "transport" => t.as_str())
                }),
                subscriptions: metrics::gauge!("switchboard_subscriptions"),
                publications: namespaces
                    .iter()
                    .map(|ns| {
                        let c = metrics::counter!("switchboard_publications_total", "namespace" => ns.clone());
                        (ns.clone(), c)
                    })
                    .collect(),
                other_publications: metrics::counter!("switchboard_publications_total", "namespace" => "other"),
                deliveries: Transport::ALL.map(|t| {
                    metrics::counter!("switchboard_deliveries_total", "transport" => t.as_str())
                }),
                dropped: DropReason::ALL.map(|r| {
                    metrics::counter!("switchboard_dropped_total", "reason" => r.as_str())
                }),
                client_errors: ERROR_CODES.map(|c| {
                    metrics::counter!("switchboard_client_errors_total", "code" => c.as_str())
                }),
                publish_latency: metrics::histogram!("switchboard_publish_latency_seconds"),
                broker_errors: metrics::counter!("switchboard_broker_errors_total"),
            }
        });
        Self {
            recorder,
            handle,
            m,
        }
    }

    /// One publication accepted on a channel of `namespace`.
    pub fn publication(&self, namespace: &str) {
        self.m
            .publications
            .get(namespace)
            .unwrap_or(&self.m.other_publications)
            .increment(1);
    }

    /// A message or delivery dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) {
        self.m.dropped[reason.index()].increment(1);
    }

    /// An error sent to a client.
    pub fn client_error(&self, code: ErrorCode) {
        if let Some(i) = ERROR_CODES.iter().position(|c| *c == code) {
            self.m.client_errors[i].increment(1);
        }
    }

    /// A broker operation that failed (a publish, a delivery, a subscribe).
    pub fn broker_error(&self) {
        self.m.broker_errors.increment(1);
    }

    /// One HTTP request answered: `route` is the matched route template (bounded by the
    /// router), `status` its status code.
    pub fn http_request(&self, route: &str, status: u16, elapsed: Duration) {
        let route = route.to_owned();
        metrics::with_local_recorder(&self.recorder, || {
            metrics::counter!(
                "switchboard_http_requests_total",
                "route" => route.clone(),
                "status" => status.to_string()
            )
            .increment(1);
            metrics::histogram!("switchboard_http_request_duration_seconds", "route" => route)
                .record(elapsed.as_secs_f64());
        });
    }

    /// The Prometheus text of every family, with the gauges set from `connections` (per
    /// [`Transport::ALL`]) and `subscriptions` first.
    pub fn render(&self, connections: [u64; Transport::COUNT], subscriptions: usize) -> String {
        for (gauge, n) in self.m.connections.iter().zip(connections) {
            gauge.set(n as f64);
        }
        self.m.subscriptions.set(subscriptions as f64);
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets. The exporter keeps samples until
    /// this runs (or a scrape renders), so the node calls it periodically: without it an
    /// unscraped node's memory would grow with every publication.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The recorder, for code that must register a family of its own.
    pub fn recorder(&self) -> &dyn Recorder {
        &self.recorder
    }
}

impl FanOutObserver for MetricsObserver {
    fn fanned_out(&self, fan_out: &FanOut<'_>) {
        let m = &self.0.m;
        for (counter, n) in m.deliveries.iter().zip(fan_out.delivered) {
            if n > 0 {
                counter.increment(n as u64);
            }
        }
        if fan_out.dropped > 0 {
            m.dropped[DropReason::SlowConsumer.index()].increment(fan_out.dropped as u64);
        }
        if !fan_out.transient {
            let ms = now_ms().saturating_sub(fan_out.publication.timestamp_ms);
            m.publish_latency.record(ms as f64 / 1000.0);
        }
    }
}

/// The hub's view of the metrics: a separate type so the hub holds an `Arc` to the metrics
/// alone, not to the node.
#[derive(Debug)]
pub struct MetricsObserver(pub Arc<Metrics>);

fn describe() {
    metrics::describe_gauge!(
        "switchboard_connections",
        "Open connections, per transport."
    );
    metrics::describe_gauge!(
        "switchboard_subscriptions",
        "Channel subscriptions on this node."
    );
    metrics::describe_counter!(
        "switchboard_publications_total",
        "Publications accepted by this node, per channel namespace."
    );
    metrics::describe_counter!(
        "switchboard_deliveries_total",
        "Publication frames queued to connections, per transport."
    );
    metrics::describe_counter!(
        "switchboard_dropped_total",
        "Messages or deliveries dropped, per reason."
    );
    metrics::describe_counter!(
        "switchboard_client_errors_total",
        "Errors sent to clients, per error code."
    );
    metrics::describe_histogram!(
        "switchboard_publish_latency_seconds",
        metrics::Unit::Seconds,
        "From a publication's timestamp (store commit) to its bytes queued for this node's subscribers."
    );
    metrics::describe_counter!(
        "switchboard_broker_errors_total",
        "Broker operations that failed."
    );
    metrics::describe_counter!(
        "switchboard_http_requests_total",
        "HTTP requests answered, per route template and status."
    );
    metrics::describe_histogram!(
        "switchboard_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request (to the response head for streams), per route template."
    );
}
