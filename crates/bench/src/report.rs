//! Turns the JSON lines of several rounds into the Markdown table of `bench/results/<date>.md`:
//! per scenario, one row per figure, one column per server with the median and the spread
//! (min–max over rounds), then the ratio of each peer's median to Switchboard's.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::chart::{Bar, Group, Spec, grouped_bars};
use crate::stats::median_spread;

/// The figures reported, in table order: (JSON key, label, lower is better).
pub const FIGURES: &[(&str, &str, bool)] = &[
    ("deliveries_per_sec", "deliveries/s", false),
    ("latency_p50_ms", "latency p50 ms", true),
    ("latency_p95_ms", "latency p95 ms", true),
    ("latency_p99_ms", "latency p99 ms", true),
    ("latency_max_ms", "latency max ms", true),
    ("lost", "lost", true),
    ("duplicates", "duplicated", true),
    ("setup_p50_ms", "setup p50 ms", true),
    ("setup_p99_ms", "setup p99 ms", true),
    ("server_cpu_us_per_delivery", "server CPU µs/delivery", true),
    ("server_cpu_secs", "server CPU s in window", true),
    ("mem_per_conn_kib", "server KiB/connection", true),
    ("setup_errors", "setup errors", true),
    ("put_errors", "PUT errors", true),
];

/// The servers ratios are taken against (this project's transports); every other server,
/// `switchboard-before` included, is a peer.
pub const BASELINES: &[&str] = &["switchboard", "switchboard-sio", "switchboard-sse"];

/// Ratios compare like with like: a Socket.IO peer against Switchboard's Socket.IO run, any
/// other peer against Switchboard's native WebSocket run.
fn is_socketio(runs: &[Value]) -> bool {
    protocol(runs) == Some("socketio")
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// scenario → server → runs, plus the servers in order of first appearance.
type Groups = BTreeMap<String, BTreeMap<String, Vec<Value>>>;

/// Groups JSON lines (unparseable lines are skipped) by scenario and server.
fn group(lines: &str) -> (Groups, Vec<String>) {
    let mut groups = Groups::new();
    let mut order: Vec<String> = Vec::new();
    for line in lines.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
        let (scenario, server) = (field("scenario"), field("server"));
        if !order.contains(&server) {
            order.push(server.clone());
        }
        groups
            .entry(scenario)
            .or_default()
            .entry(server)
            .or_default()
            .push(v);
    }
    (groups, order)
}

fn protocol(runs: &[Value]) -> Option<&str> {
    runs.first()
        .and_then(|v| v.get("protocol"))
        .and_then(Value::as_str)
}

/// Renders the tables for the given JSON lines (unparseable lines are skipped).
pub fn render(lines: &str) -> String {
    let (groups, order) = group(lines);
    let mut out = String::new();
    for (scenario, servers) in &groups {
        let cols: Vec<&String> = order.iter().filter(|s| servers.contains_key(*s)).collect();
        let rounds = servers.values().map(Vec::len).max().unwrap_or(0);
        let _ = writeln!(out, "### {scenario} ({rounds} rounds; median [min–max])\n");
        let baselines: Vec<&String> = cols
            .iter()
            .copied()
            .filter(|s| BASELINES.contains(&s.as_str()))
            .collect();
        // (peer, its baseline)
        let peers: Vec<(&String, &String)> = cols
            .iter()
            .copied()
            .filter(|s| !BASELINES.contains(&s.as_str()))
            .filter_map(|p| {
                let want = if is_socketio(&servers[p]) {
                    "socketio"
                } else {
                    "native"
                };
                let base = baselines
                    .iter()
                    .copied()
                    .find(|b| protocol(&servers[*b]) == Some(want))?;
                Some((p, base))
            })
            .collect();
        let mut header = String::from("| figure |");
        let mut rule = String::from("|---|");
        for c in &cols {
            let _ = write!(header, " {c} |");
            rule.push_str("---|");
        }
        for (p, b) in &peers {
            let _ = write!(header, " {p} ÷ {b} |");
            rule.push_str("---|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        for (key, label, _) in FIGURES {
            let mut row = format!("| {label} |");
            let mut medians = BTreeMap::new();
            for c in &cols {
                let vals: Vec<f64> = servers[*c]
                    .iter()
                    .filter_map(|v| v.get(*key).and_then(Value::as_f64))
                    .collect();
                match median_spread(&vals) {
                    Some((m, lo, hi)) => {
                        medians.insert(c.as_str(), m);
                        let _ = write!(row, " {} [{}–{}] |", fmt_num(m), fmt_num(lo), fmt_num(hi));
                    }
                    None => row.push_str(" – |"),
                }
            }
            for (p, b) in &peers {
                match (medians.get(p.as_str()), medians.get(b.as_str())) {
                    (Some(pm), Some(bm)) if *bm != 0.0 => {
                        let _ = write!(row, " {:.2}× |", pm / bm);
                    }
                    _ => row.push_str(" – |"),
                }
            }
            let _ = writeln!(out, "{row}");
        }
        out.push('\n');
    }
    out
}

/// The median and spread of one figure over a server's runs.
fn figure(runs: &[Value], key: &str) -> Option<(f64, f64, f64)> {
    let vals: Vec<f64> = runs
        .iter()
        .filter_map(|v| v.get(key).and_then(Value::as_f64))
        .collect();
    median_spread(&vals)
}

/// One chart per figure: (file suffix, SVG). A scenario appears in a chart only when some server
/// has that figure there (idle scenarios have no latency).
pub fn charts(lines: &str) -> Vec<(&'static str, String)> {
    let (groups, order) = group(lines);
    let build = |key: &str, inner: Option<&str>| -> Vec<Group> {
        groups
            .iter()
            .filter_map(|(scenario, servers)| {
                let bars: Vec<Bar> = order
                    .iter()
                    .filter_map(|server| {
                        let runs = servers.get(server)?;
                        let (median, lo, hi) = figure(runs, key)?;
                        let inner = inner.and_then(|k| figure(runs, k)).map(|(m, _, _)| m);
                        Some(Bar {
                            server: server.clone(),
                            median,
                            lo,
                            hi,
                            inner,
                        })
                    })
                    .collect();
                (!bars.is_empty()).then(|| Group {
                    name: scenario.clone(),
                    bars,
                })
            })
            .collect()
    };
    let specs: [(&str, Spec<'_>, &str, Option<&str>); 4] = [
        (
            "latency",
            Spec {
                title: "End-to-end latency p99 (inner bar p50)",
                y_label: "ms",
                log: true,
                inner_label: Some("p50"),
            },
            "latency_p99_ms",
            Some("latency_p50_ms"),
        ),
        (
            "throughput",
            Spec {
                title: "Deliveries per second",
                y_label: "deliveries/s",
                log: false,
                inner_label: None,
            },
            "deliveries_per_sec",
            None,
        ),
        (
            "cpu",
            Spec {
                title: "Server CPU time per delivery (lower is better)",
                y_label: "µs/delivery",
                log: false,
                inner_label: None,
            },
            "server_cpu_us_per_delivery",
            None,
        ),
        (
            "memory",
            Spec {
                title: "Server memory per idle connection (lower is better)",
                y_label: "KiB/connection",
                log: false,
                inner_label: None,
            },
            "mem_per_conn_kib",
            None,
        ),
    ];
    specs
        .into_iter()
        .filter_map(|(suffix, spec, key, inner)| {
            let gs = build(key, inner);
            (!gs.is_empty()).then(|| (suffix, grouped_bars(&spec, &order, &gs)))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn table_with_median_spread_and_ratio() {
        let lines = [
            r#"{"server":"switchboard","protocol":"native","scenario":"s","server_cpu_us_per_delivery":2.0}"#,
            r#"{"server":"peer","protocol":"ws","scenario":"s","server_cpu_us_per_delivery":8.0}"#,
            r#"{"server":"switchboard","protocol":"native","scenario":"s","server_cpu_us_per_delivery":4.0}"#,
            r#"{"server":"peer","protocol":"ws","scenario":"s","server_cpu_us_per_delivery":12.0}"#,
            r#"{"server":"switchboard-sio","protocol":"socketio","scenario":"s","server_cpu_us_per_delivery":5.0}"#,
            r#"{"server":"sio-peer","protocol":"socketio","scenario":"s","server_cpu_us_per_delivery":10.0}"#,
            "not json",
        ]
        .join("\n");
        let md = render(&lines);
        assert!(md.contains("### s (2 rounds; median [min–max])"), "{md}");
        assert!(
            md.contains("| figure | switchboard | peer | switchboard-sio | sio-peer | peer ÷ switchboard | sio-peer ÷ switchboard-sio |"),
            "{md}"
        );
        assert!(
            md.contains("| server CPU µs/delivery | 3.00 [2.00–4.00] | 10.0 [8.00–12.0] | 5.00 [5.00–5.00] | 10.0 [10.0–10.0] | 3.33× | 2.00× |"),
            "{md}"
        );
        assert!(md.contains("| lost | – | – | – | – | – | – |"), "{md}");
    }

    #[test]
    fn charts_skip_missing_figures_and_prefer_the_native_baseline() {
        let lines = [
            r#"{"server":"switchboard-sse","protocol":"sse","scenario":"f","latency_p99_ms":9.0,"latency_p50_ms":3.0,"server_cpu_us_per_delivery":6.0}"#,
            r#"{"server":"switchboard","protocol":"native","scenario":"f","latency_p99_ms":8.0,"latency_p50_ms":2.0,"server_cpu_us_per_delivery":4.0}"#,
            r#"{"server":"peer","protocol":"ws","scenario":"f","latency_p99_ms":20.0,"latency_p50_ms":5.0,"server_cpu_us_per_delivery":8.0}"#,
            r#"{"server":"switchboard","protocol":"native","scenario":"idle","mem_per_conn_kib":12.0}"#,
        ]
        .join("\n");
        let charts = charts(&lines);
        let names: Vec<&str> = charts.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, vec!["latency", "cpu", "memory"]);
        let (_, latency) = &charts[0];
        assert!(
            latency.contains(">f<") && !latency.contains(">idle<"),
            "{latency}"
        );
        assert_eq!(latency.matches("<title>").count(), 3);
        // The ws peer is compared with the native run, not with the SSE run listed first.
        let md = render(&lines);
        assert!(md.contains("| server CPU µs/delivery | 6.00 [6.00–6.00] | 4.00 [4.00–4.00] | 8.00 [8.00–8.00] | 2.00× |"), "{md}");
    }
}
