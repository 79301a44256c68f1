//! The command line: `switchboard [serve]`, `switchboard token`, `switchboard migrate`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use switchboard_core::auth::{Claims, JwtSigner, Role};

/// Switchboard: a real-time API server.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about)]
pub struct Cli {
    /// Configuration file (default: ./switchboard.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides `listen`).
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory (overrides `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API, the transports and the demo console (the default).
    Serve,
    /// Mint a JWT signed with `auth.jwt_secret`.
    Token(TokenArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
}

/// `switchboard token` options.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// User id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// Role: agent, hq, pipeline or admin.
    #[arg(long, default_value = "agent", value_parser = parse_role)]
    pub role: Role,
    /// Channel patterns the token may read, comma-separated (e.g. `city:*,room:42`).
    #[arg(long, value_delimiter = ',')]
    pub channels: Vec<String>,
    /// Lifetime: seconds, or a number with s, m, h or d (e.g. 15m, 24h).
    #[arg(long, default_value = "24h", value_parser = parse_ttl)]
    pub ttl: Duration,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s)
        .ok_or_else(|| format!("unknown role {s:?}: expected agent, hq, pipeline or admin"))
}

/// Parses `90`, `90s`, `15m`, `24h`, `7d`.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 3600, 15m, 24h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err(format!("invalid duration unit in {s:?}: use s, m, h or d")),
    };
    if secs == 0 {
        return Err("ttl must be positive".into());
    }
    Ok(Duration::from_secs(secs))
}

/// Builds and signs a token.
pub fn mint(
    secret: &str,
    sub: &str,
    role: Role,
    channels: Vec<String>,
    ttl: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .saturating_add(ttl.as_secs());
    JwtSigner::hs256(secret.as_bytes()).sign(&Claims {
        sub: Some(sub.to_owned()),
        exp,
        role,
        channels,
    })
}

/// A random HS256 secret for a server started without one.
pub fn generate_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("24h").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_ttl("0").is_err());
        assert!(parse_ttl("5y").is_err());
        assert!(parse_ttl("abc").is_err());
    }

    #[test]
    fn parses_subcommands() {
        let cli = Cli::parse_from([
            "switchboard",
            "token",
            "--sub",
            "u",
            "--role",
            "hq",
            "--channels",
            "city:*,room:1",
        ]);
        match cli.command {
            Some(Command::Token(t)) => {
                assert_eq!(t.role, Role::Hq);
                assert_eq!(t.channels, ["city:*", "room:1"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::parse_from(["switchboard"]).command.is_none());
        assert!(
            Cli::try_parse_from(["switchboard", "token", "--sub", "u", "--role", "boss"]).is_err()
        );
    }
}
