//! The binary as a user runs it: config errors name the key, `token` mints verifiable tokens,
//! `serve` without a secret prints the URL and demo tokens, `migrate` creates the database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_core::auth::{JwtVerifier, Role};

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");
const SECRET: &str = "cli-test-secret-0123456789";

fn cmd(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn token_mints_a_verifiable_jwt() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args([
            "token",
            "--sub",
            "alice",
            "--role",
            "hq",
            "--channels",
            "city:*,room:1",
            "--ttl",
            "1h",
        ])
        .env("SWITCHBOARD_AUTH__JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap();
    let claims = JwtVerifier::hs256(SECRET.as_bytes())
        .verify(token.trim())
        .unwrap();
    assert_eq!(claims.sub.as_deref(), Some("alice"));
    assert_eq!(claims.role, Role::Hq);
    assert_eq!(claims.channels, ["city:*", "room:1"]);

    let out = cmd(dir.path())
        .args(["token", "--sub", "alice"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("auth.jwt_secret"));
}

#[test]
fn bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        "[heartbeat]\ninterval_ms = 5000\ntimeout_ms = 1000\n",
    )
    .unwrap();
    let out = cmd(dir.path()).arg("migrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heartbeat.timeout_ms"), "{err}");

    let out = cmd(dir.path())
        .args(["--config", "missing.toml", "migrate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));

    // A typo is refused with the nearest known key, not silently ignored.
    std::fs::write(
        dir.path().join("switchboard.toml"),
        "lisen = \"127.0.0.1:3999\"\n",
    )
    .unwrap();
    let out = cmd(dir.path()).arg("migrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown key `lisen`"), "{err}");
    assert!(err.contains("did you mean `listen`?"), "{err}");
    assert!(!err.contains("default."), "{err}");
}

#[test]
fn migrate_creates_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = cmd(dir.path())
        .args(["--data-dir", "d", "migrate"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("d/switchboard.db").exists());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Run again: it says there was nothing to apply.
    let out = cmd(dir.path())
        .args(["--data-dir", "d", "migrate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("nothing to apply"), "{said}");
}

#[test]
fn serve_prints_url_and_working_demo_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = cmd(dir.path())
        .args(["--listen", "127.0.0.1:0", "--data-dir", "data"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    while Instant::now() < deadline
        && !lines
            .iter()
            .any(|l: &String| l.trim_start().starts_with("Try:"))
    {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    let url = lines
        .iter()
        .find_map(|l| l.strip_prefix("Switchboard is listening on "))
        .map(str::to_owned);
    let demo_token = |var: &str| {
        lines.iter().find_map(|l| {
            l.trim_start()
                .strip_prefix(&format!("export {var}="))
                .map(|t| t.trim().to_owned())
        })
    };
    let (hq, agent, pipeline) = (
        demo_token("HQ"),
        demo_token("AGENT"),
        demo_token("PIPELINE"),
    );
    let result = (|| {
        let url = url.ok_or("no URL printed")?;
        let hq = hq.ok_or("no hq token printed")?;
        let agent = agent.ok_or("no agent token printed")?;
        let pipeline = pipeline.ok_or("no pipeline token printed")?;
        assert!(!url.ends_with(":0/"), "the real port is printed: {url}");
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let res = reqwest::Client::new()
                .put(format!("{url}missions/1"))
                .bearer_auth(&hq)
                .json(&serde_json::json!({"status":"aborted"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let client = reqwest::Client::new();
            // The agent token is valid (authenticated, not 401) and carries role agent: it
            // reads the agent DTO and may not write.
            let res = client
                .put(format!("{url}missions/1"))
                .bearer_auth(&agent)
                .json(&serde_json::json!({"status":"active"}))
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                403,
                "agent token refused for the right reason"
            );
            let res = client
                .get(format!("{url}missions/1"))
                .bearer_auth(&agent)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let dto: serde_json::Value = res.json().await.unwrap();
            assert!(dto.get("objective").is_none(), "agent DTO: {dto}");
            // The pipeline token may feed a city dashboard.
            let res = client
                .post(format!("{url}api/cities/nairobi/data"))
                .bearer_auth(&pipeline)
                .json(&serde_json::json!({"metrics":{"traffic":0.5}}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "pipeline token may post city data");
            let page = reqwest::get(url.clone())
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(page.contains("Switchboard"));
        });
        Ok::<(), &str>(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result.unwrap();
}
