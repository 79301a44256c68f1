//! The demo as a newcomer meets it (issue 18): the binary on its defaults (no secret, SQLite in
//! a temporary data dir) prints working tokens that survive a restart, `switchboard token`
//! signs for it, the cities have data and the pipeline feeds them, native chat reaches its
//! sender, logs are plain text on a pipe, and start-up failures (store, port, data dir, a
//! second process on the same data dir) stop before the banner with the cause and the key.
//! `.ci/run` runs this file a second time against `target/release/switchboard`
//! (`SWITCHBOARD_TEST_BIN`), the build `cargo run --release` gives a newcomer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::bin::{self, Binary};
use common::*;
use serde_json::{Value, json};

const BANNER: &str = "Switchboard is listening on";

/// Waits (at most 5 s) until the binary has printed its demo block (the `Try:` line ends it).
async fn demo_lines(b: &Binary) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let lines = b.lines.lock().unwrap().clone();
        if lines.iter().any(|l| l.starts_with("Try:")) {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no demo block printed:\n{}",
            lines.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn exported(lines: &[String], var: &str) -> String {
    let prefix = format!("export {var}=");
    lines
        .iter()
        .find_map(|l| l.trim_start().strip_prefix(&prefix))
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| panic!("no {var} printed:\n{}", lines.join("\n")))
}

async fn put_status(b: &Binary, token: &str, status: &str) -> u16 {
    reqwest::Client::new()
        .put(b.http("/missions/1"))
        .bearer_auth(token)
        .json(&json!({ "status": status }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Runs the binary with `args` (no `SWITCHBOARD_*` from outside) to its exit, at most 30 s.
async fn run_to_exit(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Output, String) {
    let mut c = tokio::process::Command::new(bin::bin_path());
    c.current_dir(dir).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD_") {
            c.env_remove(k);
        }
    }
    c.args(args).envs(env.iter().copied()).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), c.output())
        .await
        .expect("the binary exited by itself")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[tokio::test]
async fn the_demo_works_end_to_end_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = bin::spawn(bin::command(dir.path())).await;
    // The banner promised a server: it is ready, not just up.
    let ready = reqwest::get(first.http("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let lines = demo_lines(&first).await;
    let (hq, viewer) = (exported(&lines, "HQ"), exported(&lines, "VIEWER"));
    exported(&lines, "AGENT");
    exported(&lines, "PIPELINE");

    // The secret is kept private in the data dir and never printed; the tokens are in a file.
    let secret = std::fs::read_to_string(data.join("demo-secret")).unwrap();
    assert!(secret.trim().len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in ["demo-secret", "demo-tokens.env"] {
            let mode = std::fs::metadata(data.join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    let env_file = std::fs::read_to_string(data.join("demo-tokens.env")).unwrap();
    assert!(env_file.contains(&format!("export HQ={hq} ")), "{env_file}");
    // Logs on a pipe carry no colour codes.
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "ANSI escapes on a pipe:\n{}",
        lines.join("\n")
    );

    assert_eq!(put_status(&first, &hq, "active").await, 200);

    // The cities have data from the start, and the viewer token may read them.
    let res = reqwest::Client::new()
        .get(first.http("/api/cities/nairobi"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let city: Value = res.json().await.unwrap();
    assert!(city["metrics"]["air_quality"].is_number(), "{city}");

    // A dashboard subscriber gets the snapshot first, then the pipeline's next post.
    let mut ws = Ws::connect(&format!("ws://{}/ws?token={viewer}", first.addr)).await;
    ws.subscribe("city:nairobi").await;
    let initial = ws.recv_type("initial_data").await;
    assert!(initial["data"]["metrics"].is_object(), "{initial}");
    let update = ws.recv_type("data_update").await;
    assert_eq!(update["channel"], "city:nairobi");

    // Native chat reaches its sender.
    let mut chat = Ws::connect(&format!("ws://{}/ws", first.addr)).await;
    chat.send(json!({"type":"chat","message":"hello demo"}))
        .await;
    assert_eq!(
        chat.recv_type("chat").await["data"]["message"],
        "hello demo"
    );

    // `switchboard token` signs with the demo's secret.
    let data_arg = data.to_str().unwrap();
    let (out, text) = run_to_exit(
        dir.path(),
        &[
            "--data-dir",
            data_arg,
            "token",
            "--sub",
            "bob",
            "--role",
            "hq",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{text}");
    let minted = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(put_status(&first, &minted, "planned").await, 200);

    // A second process on the same data dir refuses to start, naming the holder.
    let (out, text) = run_to_exit(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--data-dir", data_arg],
        &[],
    )
    .await;
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains(BANNER), "{text}");
    assert!(
        text.contains(&format!(
            "another switchboard process (pid {})",
            first.pid()
        )),
        "{text}"
    );

    let output = {
        let mut first = first;
        first.signal("TERM");
        tokio::time::timeout(Duration::from_secs(15), first.child.wait())
            .await
            .expect("stopped on SIGTERM")
            .unwrap();
        first.output().await
    };
    assert!(!output.contains(secret.trim()), "the secret was printed");

    // After a restart the tokens copied before still work, and the cities kept their data.
    let second = bin::spawn(bin::command(dir.path())).await;
    assert_eq!(put_status(&second, &hq, "completed").await, 200);
    let mut ws = Ws::connect(&format!("ws://{}/ws?token={viewer}", second.addr)).await;
    assert_eq!(ws.recv_type("authenticated").await["user"], "viewer-demo");
    ws.subscribe("city:nairobi").await;
    let initial = ws.recv_type("initial_data").await;
    assert!(initial["data"]["metrics"].is_object(), "{initial}");
}

#[tokio::test]
async fn an_unreachable_store_stops_before_the_banner_with_its_cause_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (out, text) = run_to_exit(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[(
            "SWITCHBOARD_STORE__URL",
            "postgres://postgres@127.0.0.1:1/test",
        )],
    )
    .await;
    assert!(!out.status.success(), "{text}");
    assert!(
        !text.contains(BANNER),
        "banner before the store answered:\n{text}"
    );
    assert!(!text.contains("export HQ="), "{text}");
    assert!(text.contains("store.url"), "{text}");
    assert!(
        text.to_lowercase().contains("refused"),
        "the cause is named:\n{text}"
    );
}

#[tokio::test]
async fn a_taken_port_and_an_unusable_data_dir_name_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = dir.path().join("data");
    let (out, text) = run_to_exit(
        dir.path(),
        &["--listen", &addr, "--data-dir", data.to_str().unwrap()],
        &[],
    )
    .await;
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains(BANNER), "{text}");
    assert!(
        text.contains("in use") && text.contains("--listen"),
        "{text}"
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let under_file = file.join("data");
    let (out, text) = run_to_exit(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            under_file.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains(BANNER), "{text}");
    assert!(text.contains("--data-dir"), "{text}");
}

#[tokio::test]
async fn an_unreachable_broker_stops_before_the_banner_with_its_cause_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (out, text) = run_to_exit(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("SWITCHBOARD_BROKER__URL", "redis://127.0.0.1:1")],
    )
    .await;
    assert!(!out.status.success(), "{text}");
    assert!(
        !text.contains(BANNER),
        "banner before the broker answered:\n{text}"
    );
    assert!(text.contains("broker.url"), "{text}");
    assert!(
        text.to_lowercase().contains("refused"),
        "the cause is named:\n{text}"
    );
}
