//! `switchboard`: thin entry point; everything lives in the library.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use switchboard::cli::{Cli, Command, generate_secret, mint};
use switchboard::config::{Config, Overrides};
use switchboard_core::auth::Role;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
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
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&mut config).await,
        Command::Token(args) => {
            if config.auth.jwt_secret.is_empty() {
                eprintln!(
                    "switchboard: auth.jwt_secret is not set; set it in switchboard.toml or SWITCHBOARD_AUTH__JWT_SECRET"
                );
                return ExitCode::from(2);
            }
            match mint(
                &config.auth.jwt_secret,
                &args.sub,
                args.role,
                args.channels,
                args.ttl,
            ) {
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
        Command::Migrate => match switchboard_store::open(&config.store.url).await {
            Ok(_) => {
                println!(
                    "migrations applied to {}",
                    switchboard_store::redact_url(&config.store.url)
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("switchboard: {e}");
                ExitCode::FAILURE
            }
        },
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

/// `RUST_LOG` (default `info`), with [`LOG_CAPS`] applied on top at every level.
fn init_logging() {
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
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(requested.and(caps)),
        )
        .init();
}

async fn serve(config: &mut Config) -> ExitCode {
    let generated = config.auth.jwt_secret.is_empty() && config.auth.public_key_file.is_none();
    if generated {
        config.auth.jwt_secret = generate_secret();
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "switchboard: cannot listen on {} (listen): {e}",
                config.listen
            );
            return ExitCode::FAILURE;
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
    if generated {
        let day = Duration::from_secs(86_400);
        let demo = [
            (
                "hq",
                "hq-demo",
                Role::Hq,
                vec!["city:*".to_owned(), "missions:*".to_owned()],
            ),
            ("agent", "agent-007", Role::Agent, vec!["city:*".to_owned()]),
            ("pipeline", "pipeline-demo", Role::Pipeline, vec![]),
        ];
        println!(
            "No auth.jwt_secret configured: generated one for this run. Demo tokens (valid 24 h, until restart):"
        );
        for (label, sub, role, channels) in demo {
            match mint(&config.auth.jwt_secret, sub, role, channels, day) {
                Ok(t) => println!("  {label:<9} {t}"),
                Err(e) => eprintln!("switchboard: could not sign the {label} token: {e}"),
            }
        }
        println!(
            "Try: curl -X PUT http://{addr}/missions/1 -H \"Authorization: Bearer <hq token>\" -H 'Content-Type: application/json' -d '{{\"status\":\"compromised\",\"location\":\"Berlin\"}}'"
        );
    }
    match switchboard::serve(config.clone(), listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard: {e}");
            ExitCode::FAILURE
        }
    }
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
