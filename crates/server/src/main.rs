//! `switchboard`: thin entry point; everything lives in the library.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use switchboard::cli::{Cli, Command, mint};
use switchboard::config::{Config, LogFormat, Overrides};
use switchboard::demo;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        data_dir: cli.data_dir.clone(),
    };
    let mut config = match Config::load(cli.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::from(2);
        }
    };
    // After the config, which picks the line format; a config error is printed plainly.
    init_logging(config.log.format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&mut config).await,
        Command::Token(args) => token(&config, args),
        Command::Migrate => match switchboard_store::open_migrated(&config.store.url).await {
            Ok((_, applied)) => {
                let url = switchboard_store::redact_url(&config.store.url);
                if applied == 0 {
                    println!("{url} is up to date: nothing to apply");
                } else {
                    println!("applied {applied} migration(s) to {url}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchboard: {e}; check store.url (SWITCHBOARD_STORE__URL)");
                ExitCode::FAILURE
            }
        },
    }
}

/// `switchboard token`: signs with `auth.jwt_secret`, or, when none is configured, with the
/// demo's secret from the data dir (the one `serve` uses then), so tokens minted here work
/// against the demo.
fn token(config: &Config, args: switchboard::cli::TokenArgs) -> ExitCode {
    let secret = if !config.auth.jwt_secret.is_empty() {
        config.auth.jwt_secret.clone()
    } else if config.auth.public_key_file.is_some() {
        eprintln!(
            "switchboard: auth.jwt_secret is not set: this server verifies tokens with auth.public_key_file, so sign them with its private key, or set auth.jwt_secret (SWITCHBOARD_AUTH__JWT_SECRET)"
        );
        return ExitCode::from(2);
    } else {
        match demo::secret_for_tokens(&config.data_dir) {
            Ok(secret) => secret,
            Err(e) => {
                eprintln!("switchboard: {e}");
                return ExitCode::from(2);
            }
        }
    };
    match mint(&secret, &args.sub, args.role, args.channels, args.ttl) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchboard: could not sign token: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Libraries that log what clients send or what the database runs, and the most each may say
/// whatever `RUST_LOG` asks for: tungstenite logs every frame it reads at `trace` (a native
/// `auth` message carries a token), engineioxide and socketioxide log packets and the
/// handshake's `auth` payload at `debug`, and sqlx logs every statement — the demo seed with its
/// classified values among them — so its statement log is off altogether (a slow statement's
/// warning quotes the statement too).
const LOG_CAPS: [(&str, tracing::Level); 9] = [
    ("tungstenite", tracing::Level::WARN),
    ("tokio_tungstenite", tracing::Level::WARN),
    ("engineioxide", tracing::Level::INFO),
    ("engineioxide_core", tracing::Level::INFO),
    ("socketioxide", tracing::Level::INFO),
    ("socketioxide_core", tracing::Level::INFO),
    ("socketioxide_parser_common", tracing::Level::INFO),
    ("sqlx", tracing::Level::WARN),
    ("h2", tracing::Level::INFO),
];

/// Whether log lines get ANSI colours: only when stderr is a terminal and `NO_COLOR` is unset
/// or empty (<https://no-color.org>), so files, pipes and CI logs stay plain text.
fn colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `RUST_LOG` (default `info`), with [`LOG_CAPS`] applied on top at every level; to stderr, as
/// text or as one JSON object a line (`log.format`).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let requested = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into());
    let caps = LOG_CAPS
        .iter()
        .fold(
            Targets::new().with_default(LevelFilter::TRACE),
            |t, (target, level)| t.with_target(*target, *level),
        )
        .with_target("sqlx::query", LevelFilter::OFF);
    let filter = requested.and(caps);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer.with_ansi(colours()).with_filter(filter))
            .init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().with_ansi(false).with_filter(filter))
            .init(),
    }
}

/// How long the store and the broker get to become reachable before start-up gives up.
const READY_WITHIN: Duration = Duration::from_secs(10);

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("switchboard: {e}");
    ExitCode::FAILURE
}

/// Opens the store and the broker, waits until they answer, binds, and only then prints the
/// banner (so a printed banner means `/readyz` answers 200), the demo tokens, and serves.
async fn serve(config: &mut Config) -> ExitCode {
    let is_demo = config.auth.jwt_secret.is_empty() && config.auth.public_key_file.is_none();
    if is_demo {
        match demo::load_or_create_secret(&config.data_dir) {
            Ok(secret) => config.auth.jwt_secret = secret,
            Err(e) => return fail(e),
        }
    }
    config.demo.pipeline.get_or_insert(is_demo);
    let prepared = match switchboard::prepare(config.clone()).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if let Err(e) = prepared.wait_ready(READY_WITHIN).await {
        return fail(e);
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return fail(format_args!(
                "cannot listen on {}: the address is in use (another Switchboard?); stop that process or pick another address with --listen (listen), e.g. --listen 127.0.0.1:3001",
                config.listen
            ));
        }
        Err(e) => {
            return fail(format_args!(
                "cannot listen on {}: {e}; pick another address with --listen (listen)",
                config.listen
            ));
        }
    };
    let addr = listener.local_addr().unwrap_or(config.listen);
    let (http, ws) = if config.tls_enabled() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    println!("Switchboard is listening on {http}://{addr}/");
    println!("  dashboard:  {http}://{addr}/");
    println!("  websocket:  {ws}://{addr}/ws");
    if is_demo && let Err(e) = print_demo_tokens(config, http, addr) {
        return fail(e);
    }
    match prepared.run(listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// The demo's tokens as `export` lines, also written to `data/demo-tokens.env`.
fn print_demo_tokens(
    config: &Config,
    http: &str,
    addr: std::net::SocketAddr,
) -> Result<(), demo::DemoError> {
    let tokens = demo::tokens(&config.auth.jwt_secret)?;
    let file = demo::write_tokens_file(&config.data_dir, &tokens)?;
    println!(
        "No auth.jwt_secret configured: running the demo on the secret kept in {} (tokens survive restarts).",
        demo::secret_path(&config.data_dir).display()
    );
    println!(
        "Demo tokens (valid 24 h), paste these lines or load them with: . {}",
        file.display()
    );
    for t in &tokens {
        println!("  export {}={}", t.var, t.token);
    }
    for t in &tokens {
        println!("  # {:<9} {}", t.var, t.about);
    }
    if config.demo.pipeline == Some(true) {
        println!(
            "Demo pipeline: posting metrics for {} every {} ms (demo.pipeline = false turns it off).",
            demo::pipeline::DEMO_CITIES.join(", "),
            config.demo.interval_ms
        );
    }
    println!(
        "Try: curl -X PUT {http}://{addr}/missions/1 -H \"Authorization: Bearer $HQ\" -H 'Content-Type: application/json' -d '{{\"status\":\"compromised\",\"location\":\"Berlin\"}}'"
    );
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
