//! SVG bar charts for the results page, written by hand: a grouped bar chart (one group per
//! scenario, one bar per server, a whisker for the spread over rounds, optionally an inner bar
//! for a second figure such as p50 inside p99) is all the report needs, and plain SVG renders
//! on GitHub and in any browser without a plotting dependency.

use std::fmt::Write as _;

/// One bar: a server's median with the spread over rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub server: String,
    pub median: f64,
    pub lo: f64,
    pub hi: f64,
    /// A second, smaller figure drawn inside the bar (e.g. p50 inside p99).
    pub inner: Option<f64>,
}

/// The bars of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub bars: Vec<Bar>,
}

/// What a chart shows.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    /// Logarithmic y axis, for figures spanning orders of magnitude (latency).
    pub log: bool,
    /// Legend text for the inner bar, when bars have one.
    pub inner_label: Option<&'a str>,
}

/// Legend entries per row, and the width of each: the plot is at least this wide so the legend
/// and the footnote fit.
const LEGEND_COLUMNS: usize = 3;
const LEGEND_WIDTH: f64 = 170.0;

/// One colour per server, stable across charts (by position in `servers`).
const PALETTE: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn label(x: f64) -> String {
    if x == 0.0 {
        "0".to_owned()
    } else if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 1.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// The y-axis range and ticks: linear from 0, or log from a power of ten below the smallest
/// positive value.
fn axis(groups: &[Group], log: bool) -> (f64, f64, Vec<f64>) {
    let values = groups
        .iter()
        .flat_map(|g| g.bars.iter())
        .flat_map(|b| [b.median, b.hi, b.lo].into_iter().chain(b.inner))
        .filter(|v| v.is_finite() && *v > 0.0);
    let (mut min, mut max) = (f64::INFINITY, 0.0f64);
    for v in values {
        min = min.min(v);
        max = max.max(v);
    }
    if max <= 0.0 {
        return (0.0, 1.0, vec![0.0, 1.0]);
    }
    if log {
        let lo = 10f64.powf(min.log10().floor());
        let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
        let mut ticks = Vec::new();
        let mut t = lo;
        while t <= hi * 1.0001 {
            ticks.push(t);
            t *= 10.0;
        }
        (lo, hi, ticks)
    } else {
        let raw = max / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let hi = (max / step).ceil() * step;
        let ticks = (0..=((hi / step).round() as usize))
            .map(|i| i as f64 * step)
            .collect();
        (0.0, hi, ticks)
    }
}

/// Renders a grouped bar chart. `servers` fixes the colour and legend order.
pub fn grouped_bars(spec: &Spec<'_>, servers: &[String], groups: &[Group]) -> String {
    let (left, right, top, bottom) = (70.0, 20.0, 50.0, 70.0);
    let bar_w = 18.0;
    let gap = 28.0;
    let group_w: Vec<f64> = groups
        .iter()
        .map(|g| g.bars.len().max(1) as f64 * bar_w + gap)
        .collect();
    let plot_w = group_w
        .iter()
        .sum::<f64>()
        .max(LEGEND_COLUMNS as f64 * LEGEND_WIDTH);
    let plot_h = 260.0;
    let width = left + plot_w + right;
    let legend_rows = servers.len().div_ceil(LEGEND_COLUMNS) as f64;
    let height = top + plot_h + bottom + 18.0 * legend_rows;
    let (lo, hi, ticks) = axis(groups, spec.log);
    let y = |v: f64| -> f64 {
        let f = if spec.log {
            let v = v.max(lo);
            (v.log10() - lo.log10()) / (hi.log10() - lo.log10())
        } else {
            (v - lo) / (hi - lo)
        };
        top + plot_h - f.clamp(0.0, 1.0) * plot_h
    };
    let colour = |server: &str| -> &str {
        let i = servers.iter().position(|s| s == server).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{:.0}" y="22" font-size="14" font-weight="bold" text-anchor="middle">{}</text>"#,
        width / 2.0,
        escape(spec.title)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(16 {:.0}) rotate(-90)" text-anchor="middle">{}</text>"#,
        top + plot_h / 2.0,
        escape(spec.y_label)
    );
    for t in &ticks {
        let ty = y(*t);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{:.1}" y1="{ty:.1}" y2="{ty:.1}" stroke="#ddd"/><text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            ty + 4.0,
            label(*t)
        );
    }
    let mut x = left + gap / 2.0;
    for (g, w) in groups.iter().zip(&group_w) {
        for (i, b) in g.bars.iter().enumerate() {
            let bx = x + i as f64 * bar_w;
            let by = y(b.median);
            let base = top + plot_h;
            let _ = writeln!(
                s,
                r#"<rect x="{bx:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="0.55"><title>{}: {} [{}–{}]</title></rect>"#,
                bar_w - 2.0,
                (base - by).max(0.0),
                colour(&b.server),
                escape(&b.server),
                label(b.median),
                label(b.lo),
                label(b.hi)
            );
            if let Some(inner) = b.inner {
                let iy = y(inner);
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{iy:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                    bx + 3.0,
                    bar_w - 8.0,
                    (base - iy).max(0.0),
                    colour(&b.server)
                );
            }
            let cx = bx + (bar_w - 2.0) / 2.0;
            let _ = writeln!(
                s,
                r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#222"/>"##,
                y(b.lo),
                y(b.hi)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x + (w - gap) / 2.0,
            top + plot_h + 16.0,
            escape(&g.name)
        );
        x += w;
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" x2="{left}" y1="{top}" y2="{:.1}" stroke="#222"/>"##,
        top + plot_h
    );
    let legend_y = top + plot_h + 40.0;
    for (i, server) in servers.iter().enumerate() {
        let lx = left + (i % LEGEND_COLUMNS) as f64 * LEGEND_WIDTH;
        let ly = legend_y + (i / LEGEND_COLUMNS) as f64 * 18.0;
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.0}" y="{:.0}" width="12" height="12" fill="{}"/><text x="{:.0}" y="{:.0}">{}</text>"#,
            ly - 10.0,
            colour(server),
            lx + 16.0,
            ly,
            escape(server)
        );
    }
    let mut note = String::from("bars: median over rounds; whiskers: min–max");
    if let Some(inner) = spec.inner_label {
        let _ = write!(note, "; inner bar: {inner}");
    }
    if spec.log {
        note.push_str("; log scale");
    }
    let _ = writeln!(
        s,
        r##"<text x="{:.0}" y="{:.0}" text-anchor="end" fill="#555">{}</text>"##,
        width - right,
        height - 6.0,
        escape(&note)
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn bar(server: &str, m: f64) -> Bar {
        Bar {
            server: server.into(),
            median: m,
            lo: m * 0.9,
            hi: m * 1.1,
            inner: Some(m / 2.0),
        }
    }

    #[test]
    fn linear_axis_is_round() {
        let groups = vec![Group {
            name: "g".into(),
            bars: vec![bar("a", 9.0), bar("b", 17.0)],
        }];
        let (lo, hi, ticks) = axis(&groups, false);
        assert_eq!(lo, 0.0);
        assert_eq!(hi, 20.0);
        assert_eq!(ticks, vec![0.0, 5.0, 10.0, 15.0, 20.0]);
        let (lo, hi, ticks) = axis(&groups, true);
        assert_eq!((lo, hi), (1.0, 100.0));
        assert_eq!(ticks.len(), 3);
    }

    #[test]
    fn svg_has_one_bar_per_server_and_scenario_and_escapes_names() {
        let servers = vec!["switchboard".to_owned(), "a<b".to_owned()];
        let groups = vec![
            Group {
                name: "fanout-1000".into(),
                bars: vec![bar("switchboard", 5.0), bar("a<b", 12.0)],
            },
            Group {
                name: "fanout-5000".into(),
                bars: vec![bar("switchboard", 50.0)],
            },
        ];
        let spec = Spec {
            title: "latency",
            y_label: "ms",
            log: true,
            inner_label: Some("p50"),
        };
        let svg = grouped_bars(&spec, &servers, &groups);
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<title>").count(), 3);
        assert!(svg.contains("a&lt;b"));
        assert!(!svg.contains("a<b"));
        assert!(svg.contains("fanout-5000"));
        assert!(svg.contains("inner bar: p50; log scale"));
        assert!(!svg.contains("NaN"));
    }
}
