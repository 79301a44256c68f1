//! The console at `/` (SPEC §8): every `data-testid` the browser tests drive is on the page,
//! the page's script and the embedded JavaScript client are served by the server itself, and
//! nothing on the page points at another origin. The behaviour is tested in Chromium by
//! clients/js/test/browser/console.test.js.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use common::*;

async fn get(server: &TestServer, path: &str) -> (u16, String, String) {
    let res = reqwest::get(server.http(path)).await.unwrap();
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

#[tokio::test]
async fn the_page_carries_every_testid_and_loads_only_from_this_server() {
    let server = TestServer::start().await;
    let (status, kind, page) = get(&server, "/").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    for id in [
        "token-input",
        "transport-select",
        "connection-status",
        "edit-id",
        "edit-status",
        "edit-location",
        "edit-submit",
        "city-select",
        "city-metrics",
        "city-alerts",
        "chat-room",
        "chat-input",
        "chat-send",
        "chat-log",
        "pay-amount",
        "pay-button",
        "pay-status",
    ] {
        assert!(
            page.contains(&format!("data-testid=\"{id}\"")),
            "missing data-testid {id}"
        );
    }
    for option in ["websocket", "sse", "poll"] {
        assert!(page.contains(&format!("<option value=\"{option}\">")));
    }
    assert!(page.contains("<option>nairobi</option>"));

    let (status, kind, script) = get(&server, "/console.js").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/javascript"), "{kind}");
    assert!(script.contains("from \"/client/index.js\""));
    assert!(script.contains("mission-row-"));

    for text in [&page, &script] {
        assert!(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"));
    }
}

#[tokio::test]
async fn the_client_modules_are_served() {
    let server = TestServer::start().await;
    let (status, kind, index) = get(&server, "/client/index.js").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/javascript"), "{kind}");
    assert!(index.contains("export { Switchboard }"));
    let (status, _, ws) = get(&server, "/client/transports/websocket.js").await;
    assert_eq!(status, 200);
    assert!(ws.contains("class WebSocketTransport"));
    assert_eq!(get(&server, "/client/nope.js").await.0, 404);
    assert_eq!(get(&server, "/client/../Cargo.toml").await.0, 404);
}
