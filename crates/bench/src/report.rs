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

/// The server the ratios are taken against.
pub const BASELINE: &str = "switchboard";

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
        let peers: Vec<&&String> = cols.iter().filter(|s| s.as_str() != BASELINE).collect();
        let mut header = String::from("| figure |");
        let mut rule = String::from("|---|");
        for c in &cols {
            let _ = write!(header, " {c} |");
            rule.push_str("---|");
        }
        for p in &peers {
            let _ = write!(header, " {p} ÷ {BASELINE} |");
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
            for p in &peers {
                match (medians.get(p.as_str()), medians.get(BASELINE)) {
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
            r#"{"server":"switchboard","scenario":"s","server_cpu_us_per_delivery":2.0}"#,
            r#"{"server":"peer","scenario":"s","server_cpu_us_per_delivery":8.0}"#,
            r#"{"server":"switchboard","scenario":"s","server_cpu_us_per_delivery":4.0}"#,
            r#"{"server":"peer","scenario":"s","server_cpu_us_per_delivery":12.0}"#,
            "not json",
        ]
        .join("\n");
        let md = render(&lines);
        assert!(md.contains("### s (2 rounds; median [min–max])"), "{md}");
        assert!(
            md.contains("| figure | switchboard | peer | peer ÷ switchboard |"),
            "{md}"
        );
        assert!(
            md.contains("| server CPU µs/delivery | 3.00 [2.00–4.00] | 10.0 [8.00–12.0] | 3.33× |"),
            "{md}"
        );
        assert!(md.contains("| lost | – | – | – |"), "{md}");
    }
}
