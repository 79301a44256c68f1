//! Turns the JSON lines of several rounds into the Markdown table of `bench/results/<date>.md`:
//! per scenario, one row per figure, one column per server with the median and the spread
//! (min–max over rounds), then the ratio of each peer's median to Switchboard's.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

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

/// Servers whose names start with this are baselines; every other server is a peer.
pub const BASELINE_PREFIX: &str = "switchboard";

/// Ratios compare like with like: a Socket.IO peer against Switchboard's Socket.IO run, any
/// other peer against Switchboard's native WebSocket run.
fn is_socketio(runs: &[Value]) -> bool {
    runs.first()
        .and_then(|v| v.get("protocol"))
        .and_then(Value::as_str)
        == Some("socketio")
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

/// Renders the tables for the given JSON lines (unparseable lines are skipped).
pub fn render(lines: &str) -> String {
    // scenario -> server -> runs
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for line in lines.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let scenario = v
            .get("scenario")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let server = v
            .get("server")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
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
    let mut out = String::new();
    for (scenario, servers) in &groups {
        let cols: Vec<&String> = order.iter().filter(|s| servers.contains_key(*s)).collect();
        let rounds = servers.values().map(Vec::len).max().unwrap_or(0);
        let _ = writeln!(out, "### {scenario} ({rounds} rounds; median [min–max])\n");
        let baselines: Vec<&String> = cols
            .iter()
            .copied()
            .filter(|s| s.starts_with(BASELINE_PREFIX))
            .collect();
        // (peer, its baseline)
        let peers: Vec<(&String, &String)> = cols
            .iter()
            .copied()
            .filter(|s| !s.starts_with(BASELINE_PREFIX))
            .filter_map(|p| {
                let sio = is_socketio(&servers[p]);
                let base = baselines
                    .iter()
                    .copied()
                    .find(|b| is_socketio(&servers[*b]) == sio)?;
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

#[cfg(test)]
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
}
