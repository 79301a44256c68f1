//! A real nginx, configured from `deploy/nginx.conf`, in front of two nodes sharing Redis and
//! PostgreSQL: native WebSocket (upgrade, same-origin through the proxy), SSE unbuffered, and
//! the Socket.IO polling transport kept on one node by the sticky upstream. The real
//! socket.io-client through nginx (polling, then upgrade) runs in tests/interop/nginx.test.mjs.
//!
//! nginx runs as a child of the test with its own prefix in a temporary directory, listening
//! on a free 127.0.0.1 port, and is killed when the test ends. Without an `nginx` binary the
//! test is skipped with a printed reason, unless `SWITCHBOARD_REQUIRE_SERVICES=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;
#[path = "common/services.rs"]
#[allow(dead_code)] // shared helper; this file does not use every part of it
mod services;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::feeds::Sse;
use common::{TestServer, Ws, hq, put_mission};
use serde_json::{Value, json};
use services::{Services, services_or_skip};

fn required() -> bool {
    std::env::var("SWITCHBOARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The nginx binary: on PATH, or where Debian puts it (/usr/sbin is not on every PATH).
fn nginx_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A running nginx, stopped on drop (also when the test panics).
struct Nginx {
    port: u16,
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Renders `deploy/nginx.conf` for `nodes` and starts nginx, waiting until it proxies.
    /// nginx cannot listen on port 0 and report the port, so a free port is picked; if
    /// another process takes it before nginx binds, nginx says so and this tries another.
    async fn start(binary: &PathBuf, nodes: &[&TestServer]) -> Nginx {
        let mut lost = Vec::new();
        for _ in 0..5 {
            match Self::try_start(binary, nodes).await {
                Ok(nginx) => return nginx,
                Err(port) => lost.push(port),
            }
        }
        panic!("nginx lost its port to another process 5 times: {lost:?}");
    }

    /// `Err(port)` when the port was taken before nginx could bind it.
    async fn try_start(binary: &PathBuf, nodes: &[&TestServer]) -> Result<Nginx, u16> {
        let template = include_str!("../../../deploy/nginx.conf");
        let port = free_port();
        let servers: String = nodes
            .iter()
            .map(|n| format!("server {};", n.addr))
            .collect::<Vec<_>>()
            .join(" ");
        let conf = template
            .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
            .replace("@SERVERS@", &servers);
        assert!(!conf.contains('@'), "every placeholder filled");
        let dir = tempfile::tempdir().unwrap();
        // Workers may run as another user (nobody) when the test runs as root.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // What nginx says before it has read its error_log directive (e.g. a config error).
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = tokio::process::Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { port, child, dir };
        let client = reqwest::Client::new();
        let url = nginx.http("/healthz");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = client.get(&url).send().await
                && r.status() == 200
            {
                return Ok(nginx);
            }
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let logs = nginx.logs();
                if logs.contains("Address already in use") {
                    return Err(port);
                }
                panic!("nginx exited with {status}: {logs}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx did not proxy /healthz within 10 s: {}",
                nginx.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .join("\n")
    }

    /// SIGTERM to the master, which stops its workers first. (`kill_on_drop` sends SIGKILL,
    /// which would leave the workers running, orphaned, on the port; it is only the last
    /// resort.)
    fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Stops nginx and returns its access log (which node served each request).
    async fn stop(mut self) -> String {
        self.terminate();
        let exited = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        assert!(exited.is_ok(), "nginx stopped within 5 s");
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // After `stop` the child is reaped and has no id: nothing to do.
        self.terminate();
        for _ in 0..100 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Two nodes sharing this test's Redis prefix and PostgreSQL schema.
async fn nodes(s: &Services) -> (TestServer, TestServer) {
    let mut out = Vec::new();
    for _ in 0..2 {
        out.push(TestServer::start_with(|c| s.configure(c)).await);
    }
    let b = out.pop().unwrap();
    (out.pop().unwrap(), b)
}

/// nginx and both services, or `None` after printing why not (failing when they are required).
async fn setup(test: &str) -> Option<(Services, PathBuf)> {
    let Some(binary) = nginx_binary() else {
        assert!(
            !required(),
            "{test}: nginx required (SWITCHBOARD_REQUIRE_SERVICES=1) but not installed"
        );
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!("SKIPPED {test}: no nginx binary (apt-get install nginx)\n"),
        );
        return None;
    };
    let s = services_or_skip(test).await?;
    Some((s, binary))
}

#[tokio::test]
async fn native_websocket_and_sse_through_nginx_reach_both_nodes() {
    let Some((s, binary)) = setup("native_websocket_and_sse_through_nginx").await else {
        return;
    };
    let (a, b) = nodes(&s).await;
    let nginx = Nginx::start(&binary, &[&a, &b]).await;
    let ws_url = format!("ws://127.0.0.1:{}/ws", nginx.port);

    // Two WebSockets through nginx (least_conn spreads them); the second one as a browser page
    // served through nginx would open it: its Origin is nginx's own address, allowed as
    // same-origin because nginx passes the client's Host on.
    let mut first = Ws::connect(&ws_url).await;
    let origin = format!("http://127.0.0.1:{}", nginx.port);
    let mut second = Ws::connect_raw(&ws_url, Some(&origin)).await.unwrap();
    assert_eq!(second.recv().await["type"], "welcome");
    for ws in [&mut first, &mut second] {
        ws.subscribe("missions").await;
    }
    let refused = Ws::connect_raw(&ws_url, Some("http://evil.example")).await;
    assert!(
        refused.is_err(),
        "a foreign Origin is refused through nginx"
    );

    let mut sse = Sse::from_response(
        reqwest::get(nginx.http("/events?channels=missions"))
            .await
            .unwrap(),
    );
    assert_eq!(sse.next_event().await.json()["type"], "connected");

    // One publication through each node directly: whichever node each client landed on, one
    // of them comes from the other node.
    for (node, location) in [(&a, "Lagos"), (&b, "Accra")] {
        let res = put_mission(node, 1, Some(&hq()), json!({ "location": location })).await;
        assert_eq!(res.status(), 200);
        for ws in [&mut first, &mut second] {
            assert_eq!(
                ws.recv_type("mission-update").await["data"]["location"],
                location
            );
        }
        // Unbuffered: each event arrives on its own, before the next publication.
        let ev = sse.next_event().await.json();
        assert_eq!(ev["data"]["location"], location);
    }

    // A REST write through nginx reaches everyone too.
    let res = reqwest::Client::new()
        .put(nginx.http("/missions/1"))
        .bearer_auth(hq())
        .json(&json!({"location": "Dakar"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        first.recv_type("mission-update").await["data"]["location"],
        "Dakar"
    );
    drop((first, second, sse));
    let log = nginx.stop().await;
    assert!(log.contains("\"GET /ws HTTP/1.1\" 101"), "{log}");
    s.clean().await;
}

/// One Engine.IO polling request through nginx: status and body.
async fn eio(client: &reqwest::Client, base: &str, sid: &str, post: Option<&str>) -> (u16, String) {
    let url = format!("{base}/socket.io/?EIO=4&transport=polling&sid={sid}");
    let req = match post {
        Some(body) => client.post(url).body(body.to_owned()),
        None => client.get(url),
    };
    let res = tokio::time::timeout(Duration::from_secs(10), req.send())
        .await
        .expect("polling request answered")
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Polls until a packet matching `wanted` arrives and returns it, answering pings (`2`) with
/// pongs (`3`) as a client must. Packets in one body are separated by 0x1e.
async fn until(
    client: &reqwest::Client,
    base: &str,
    sid: &str,
    wanted: impl Fn(&str) -> bool,
) -> String {
    for _ in 0..20 {
        let (status, body) = eio(client, base, sid, None).await;
        assert_eq!(status, 200, "{body}");
        for packet in body.split('\u{1e}') {
            if packet == "2" {
                assert_eq!(eio(client, base, sid, Some("3")).await.0, 200);
            } else if wanted(packet) {
                return packet.to_owned();
            }
        }
    }
    panic!("the expected packet did not arrive in 20 polls");
}

#[tokio::test]
async fn socketio_polling_sticks_to_one_node_through_nginx() {
    let Some((s, binary)) = setup("socketio_polling_sticks_to_one_node").await else {
        return;
    };
    let (a, b) = nodes(&s).await;
    let nginx = Nginx::start(&binary, &[&a, &b]).await;
    let base = nginx.http("");
    let client = reqwest::Client::new();

    let open = client
        .get(format!("{base}/socket.io/?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let handshake: Value = serde_json::from_str(open.strip_prefix('0').expect("open packet"))
        .unwrap_or_else(|e| panic!("{open}: {e}"));
    let sid = handshake["sid"].as_str().unwrap().to_owned();
    assert_eq!(
        eio(&client, &base, &sid, Some("40")).await,
        (200, "ok".into())
    );
    let connected = until(&client, &base, &sid, |p| p.starts_with("40{")).await;
    assert!(connected.contains(&sid), "{connected}");

    // Several request/answer rounds, every one through nginx: each must reach the node that
    // holds the session, or it answers 400 (unknown session).
    for id in 1..=6 {
        let packet = format!("42{id}{}", json!(["subscribe", "lobby"]));
        assert_eq!(eio(&client, &base, &sid, Some(&packet)).await.0, 200);
        let ack = until(&client, &base, &sid, |p| p.starts_with(&format!("43{id}["))).await;
        assert!(ack.contains("\"ok\":true"), "{ack}");
    }

    // The control: the session lives on exactly one node, so without stickiness half of the
    // requests above would have failed.
    let mut owners = 0;
    for node in [&a, &b] {
        let (status, _) = eio(&client, &node.http(""), &sid, Some("42[\"typing\",{}]")).await;
        owners += usize::from(status == 200);
    }
    assert_eq!(owners, 1, "the session is known to exactly one node");
    nginx.stop().await;
    s.clean().await;
}
