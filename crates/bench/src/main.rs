//! `switchboard-bench`: the load generator that compares Switchboard with its peers, the
//! minimal reference server, and the report that turns rounds into a table.
//! See bench/README.md for what each figure means and how `bench/run` drives it.
//!
//! The modules:
//! - `load`: one measured run (connections, publisher, the JSON line it prints).
//! - `publish`: the publisher side, open loop (fixed rate) or closed loop (bounded window).
//! - `conn`: one client connection per protocol, from a chosen loopback source address.
//! - `frame`, `sse_client`, `pusher`: sans-IO parsing of what the clients receive (WebSocket
//!   frames and stamps, Server-Sent Events, the Pusher protocol for sockudo).
//! - `http`: just enough HTTP/1.1 for `PUT /missions/:id` and the minimal server.
//! - `minimal`: the minimal tokio-tungstenite broadcaster every server is compared with.
//! - `procfs`: a server's CPU time and memory from /proc.
//! - `stats`: percentiles, loss and duplicates, medians and spreads (pure functions).
//! - `report`, `chart`: the Markdown table and SVG charts of `bench/results/`.

mod chart;
mod conn;
mod frame;
mod http;
mod load;
mod minimal;
mod procfs;
mod publish;
mod pusher;
mod report;
mod sse_client;
mod stats;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "switchboard-bench",
    about = "Switchboard load generator (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One measured run; prints a JSON line on stdout and a summary on stderr.
    Run(Box<load::RunArgs>),
    /// The minimal tokio-tungstenite broadcaster (`/ws` and `PUT /missions/1` on one port).
    Minimal {
        #[arg(long, default_value = "127.0.0.1:3103")]
        listen: String,
    },
    /// Renders JSON lines (a file) as the Markdown tables of a results page.
    Report {
        jsonl: std::path::PathBuf,
        /// Also write SVG charts as `<PREFIX>-latency.svg`, `-throughput.svg`, `-cpu.svg` and
        /// `-memory.svg`, and link them from the page (by file name: keep the page beside them).
        #[arg(long)]
        charts: Option<std::path::PathBuf>,
    },
}

/// Refuses anything but loopback: this tool only ever loads servers on this machine.
fn is_loopback(addr: &str) -> bool {
    addr.starts_with("127.") || addr.starts_with("localhost:") || addr.starts_with("[::1]:")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Run(args) => {
            let addrs = std::iter::once(&args.addr).chain(args.publish_addr.as_ref());
            if let Some(addr) = addrs.into_iter().find(|a| !is_loopback(a)) {
                eprintln!("refusing {addr}: loopback addresses only");
                return ExitCode::from(2);
            }
            let line = rt.block_on(load::run(*args));
            println!("{line}");
            let pace = if line["closed_loop"] == serde_json::Value::Bool(true) {
                format!("closed loop, window {}", line["window"])
            } else {
                format!("rate={}/s", line["rate"])
            };
            eprintln!(
                "{} {} n={} connected={} {pace}: delivered {}/{} lost {} dup {}; \
                 latency p50 {} p99 {} max {} ms; setup p50 {} p99 {} ms; CPU {} µs/delivery; {} KiB/conn",
                line["server"],
                line["scenario"],
                line["connections"],
                line["connected"],
                line["delivered"],
                line["expected"],
                line["lost"],
                line["duplicates"],
                line["latency_p50_ms"],
                line["latency_p99_ms"],
                line["latency_max_ms"],
                line["setup_p50_ms"],
                line["setup_p99_ms"],
                line["server_cpu_us_per_delivery"],
                line["mem_per_conn_kib"],
            );
            ExitCode::SUCCESS
        }
        Command::Minimal { listen } => {
            if !is_loopback(&listen) {
                eprintln!("refusing {listen}: loopback addresses only");
                return ExitCode::from(2);
            }
            let r = rt.block_on(async {
                let l = tokio::net::TcpListener::bind(&listen).await?;
                eprintln!("minimal listening on {}", l.local_addr()?);
                minimal::serve(l).await
            });
            match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("minimal: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Report { jsonl, charts } => match std::fs::read_to_string(&jsonl) {
            Ok(text) => {
                if let Some(prefix) = charts {
                    for (suffix, svg) in report::charts(&text) {
                        let path = format!("{}-{suffix}.svg", prefix.display());
                        if let Err(e) = std::fs::write(&path, svg) {
                            eprintln!("{path}: {e}");
                            return ExitCode::FAILURE;
                        }
                        let name = std::path::Path::new(&path)
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or(path.clone());
                        println!("![{suffix}]({name})\n");
                    }
                }
                print!("{}", report::render(&text));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", jsonl.display());
                ExitCode::FAILURE
            }
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    #[test]
    fn loopback_only() {
        assert!(super::is_loopback("127.0.0.1:3000"));
        assert!(super::is_loopback("[::1]:80"));
        assert!(!super::is_loopback("10.0.0.1:3000"));
        assert!(!super::is_loopback("example.com:80"));
    }
}
