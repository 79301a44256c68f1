//! The demo: what `serve` does when no `auth.jwt_secret` (and no public key) is configured.
//!
//! The generated secret is kept in the data dir (`demo-secret`, mode 0600, created atomically,
//! never printed or logged), so the tokens a newcomer copied keep working after a restart and
//! `switchboard token` signs with the same secret. The ready-made tokens are printed as
//! `export NAME=…` lines and written to `demo-tokens.env` beside it. A configured secret always
//! wins and none of this happens. The city pipeline that keeps the dashboards alive is in
//! [`pipeline`].

pub mod pipeline;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use switchboard_core::auth::Role;

use crate::cli::{generate_secret, mint};

/// The file, in the data dir, holding the demo's generated secret.
pub const SECRET_FILE: &str = "demo-secret";
/// The file, in the data dir, holding the printed demo tokens as `export` lines.
pub const TOKENS_FILE: &str = "demo-tokens.env";
/// How long the printed demo tokens are valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(86_400);

/// Why the demo secret or tokens could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The data dir, or a file in it, cannot be written.
    #[error(
        "cannot write {path}: {source}; pass --data-dir (data_dir) to a writable directory, or set auth.jwt_secret"
    )]
    Write {
        /// The file.
        path: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The secret file exists but holds no secret (truncated, edited).
    #[error(
        "{path} does not hold a demo secret (at least 32 characters); delete it to generate a new one, or set auth.jwt_secret"
    )]
    Corrupt {
        /// The file.
        path: String,
    },
    /// `switchboard token` without a configured secret, before the demo ever ran here.
    #[error(
        "auth.jwt_secret is not set and there is no demo secret at {path} yet: start `switchboard` once with this data dir, or set auth.jwt_secret (SWITCHBOARD_AUTH__JWT_SECRET)"
    )]
    Missing {
        /// Where it was looked for.
        path: String,
    },
    /// A token could not be signed.
    #[error("could not sign the demo tokens: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    /// Seeding the demo cities failed.
    #[error("demo cities: {0}")]
    Store(#[from] switchboard_store::StoreError),
}

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> DemoError + '_ {
    move |source| DemoError::Write {
        path: path.display().to_string(),
        source,
    }
}

/// Where the demo secret of `data_dir` lives.
pub fn secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SECRET_FILE)
}

/// Reads the demo secret of `data_dir`; `None` when there is none yet.
pub fn read_secret(data_dir: &Path) -> Result<Option<String>, DemoError> {
    let path = secret_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let secret = text.trim();
            if secret.len() < 32 {
                return Err(DemoError::Corrupt {
                    path: path.display().to_string(),
                });
            }
            Ok(Some(secret.to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(write_error(&path)(e)),
    }
}

/// The secret `switchboard token` signs with when none is configured: the demo's.
pub fn secret_for_tokens(data_dir: &Path) -> Result<String, DemoError> {
    read_secret(data_dir)?.ok_or_else(|| DemoError::Missing {
        path: secret_path(data_dir).display().to_string(),
    })
}

/// The demo secret of `data_dir`, generated and stored on first use. The file is written
/// complete under a temporary name with mode 0600 and then linked into place, so no reader ever
/// sees half a secret and two processes starting at once agree on one.
pub fn load_or_create_secret(data_dir: &Path) -> Result<String, DemoError> {
    if let Some(secret) = read_secret(data_dir)? {
        return Ok(secret);
    }
    std::fs::create_dir_all(data_dir).map_err(write_error(data_dir))?;
    let path = secret_path(data_dir);
    let tmp = data_dir.join(format!(".{SECRET_FILE}.{}.tmp", std::process::id()));
    let secret = generate_secret();
    write_private(&tmp, secret.as_bytes(), true)?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(secret),
        // Another process won the race: use its secret.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => secret_for_tokens(data_dir),
        Err(e) => Err(write_error(&path)(e)),
    }
}

/// Writes `bytes` to a new file only its owner may read.
fn write_private(path: &Path, bytes: &[u8], create_new: bool) -> Result<(), DemoError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(write_error(path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(write_error(path))
}

/// One ready-made demo token.
#[derive(Debug, Clone)]
pub struct DemoToken {
    /// The shell variable it is exported as (`HQ`, `AGENT`, …).
    pub var: &'static str,
    /// What it is for, for the banner.
    pub about: &'static str,
    /// The JWT.
    pub token: String,
}

/// The demo's tokens, valid [`TOKEN_TTL`]: HQ (writes missions, reads every city), an agent,
/// the pipeline (posts city data but may not read the cities) and a viewer (agent role, every
/// city: what a dashboard uses).
pub fn tokens(secret: &str) -> Result<Vec<DemoToken>, DemoError> {
    let all = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let specs = [
        (
            "HQ",
            "role hq: edits missions, reads city:*",
            "hq-demo",
            Role::Hq,
            all(&["city:*", "missions:*"]),
        ),
        (
            "AGENT",
            "role agent: the agent view of missions, city:*",
            "agent-007",
            Role::Agent,
            all(&["city:*"]),
        ),
        (
            "PIPELINE",
            "role pipeline: posts city data (cannot read the cities)",
            "pipeline-demo",
            Role::Pipeline,
            vec![],
        ),
        (
            "VIEWER",
            "role agent: watches every city (city:*), for dashboards",
            "viewer-demo",
            Role::Agent,
            all(&["city:*"]),
        ),
    ];
    specs
        .into_iter()
        .map(|(var, about, sub, role, channels)| {
            Ok(DemoToken {
                var,
                about,
                token: mint(secret, sub, role, channels, TOKEN_TTL)?,
            })
        })
        .collect()
}

/// Writes `tokens` as `export NAME=…` lines to `demo-tokens.env` in `data_dir` (mode 0600: they
/// are credentials), replacing it whole.
pub fn write_tokens_file(data_dir: &Path, tokens: &[DemoToken]) -> Result<PathBuf, DemoError> {
    let path = data_dir.join(TOKENS_FILE);
    let mut text = String::from(
        "# Switchboard demo tokens, valid 24 h from the last start; load them with: . ./data/demo-tokens.env\n",
    );
    for t in tokens {
        text.push_str(&format!("export {}={}   # {}\n", t.var, t.token, t.about));
    }
    let tmp = data_dir.join(format!(".{TOKENS_FILE}.{}.tmp", std::process::id()));
    write_private(&tmp, text.as_bytes(), false)?;
    std::fs::rename(&tmp, &path).map_err(write_error(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_kept_private_and_reused() {
        let dir = std::env::temp_dir().join(format!(
            "switchboard-demo-test-{}",
            switchboard_core::ids::new_id()
        ));
        assert!(matches!(
            secret_for_tokens(&dir),
            Err(DemoError::Missing { .. })
        ));
        let first = load_or_create_secret(&dir).unwrap();
        assert_eq!(load_or_create_secret(&dir).unwrap(), first);
        assert_eq!(secret_for_tokens(&dir).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(secret_path(&dir))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let tokens = tokens(&first).unwrap();
        let file = write_tokens_file(&dir, &tokens).unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.contains(&format!("export HQ={} ", tokens[0].token)),
            "{text}"
        );
        assert!(!text.contains(&first));
        std::fs::write(secret_path(&dir), "short").unwrap();
        assert!(matches!(
            load_or_create_secret(&dir),
            Err(DemoError::Corrupt { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
