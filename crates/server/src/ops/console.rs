//! The demo console at `/` and the JavaScript client it runs on, served from the binary: the
//! files are embedded at compile time (`include_str!`), so `cargo build` needs no npm and the
//! page makes no request outside this server. The client is served at `/client/…` under the
//! same relative layout as `clients/js/src/`, so its module imports resolve unchanged, and
//! any page on the server can `import { Switchboard } from "/client/index.js"`.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The client's modules, by their path under `clients/js/src/`.
const CLIENT: &[(&str, &str)] = &[
    (
        "index.js",
        include_str!("../../../../clients/js/src/index.js"),
    ),
    (
        "client.js",
        include_str!("../../../../clients/js/src/client.js"),
    ),
    (
        "backoff.js",
        include_str!("../../../../clients/js/src/backoff.js"),
    ),
    (
        "codes.js",
        include_str!("../../../../clients/js/src/codes.js"),
    ),
    (
        "cursor.js",
        include_str!("../../../../clients/js/src/cursor.js"),
    ),
    (
        "emitter.js",
        include_str!("../../../../clients/js/src/emitter.js"),
    ),
    (
        "http.js",
        include_str!("../../../../clients/js/src/http.js"),
    ),
    (
        "subscription.js",
        include_str!("../../../../clients/js/src/subscription.js"),
    ),
    (
        "token.js",
        include_str!("../../../../clients/js/src/token.js"),
    ),
    (
        "transports/websocket.js",
        include_str!("../../../../clients/js/src/transports/websocket.js"),
    ),
    (
        "transports/sse.js",
        include_str!("../../../../clients/js/src/transports/sse.js"),
    ),
    (
        "transports/poll.js",
        include_str!("../../../../clients/js/src/transports/poll.js"),
    ),
    (
        "transports/context.js",
        include_str!("../../../../clients/js/src/transports/context.js"),
    ),
];

/// The console page.
pub async fn page() -> Html<&'static str> {
    Html(include_str!("../web/index.html"))
}

/// The console's own script (`/console.js`), a module importing the client.
pub async fn script() -> Response {
    javascript(include_str!("../web/console.js"))
}

/// `GET /client/{*path}`: one of the client's modules, or 404.
pub async fn client(Path(path): Path<String>) -> Response {
    match CLIENT.iter().find(|(name, _)| *name == path) {
        Some((_, body)) => javascript(body),
        None => (StatusCode::NOT_FOUND, "Not found").into_response(),
    }
}

fn javascript(body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module the client imports is served (a missing one would break the console only
    /// in a browser).
    #[test]
    fn every_client_import_is_embedded() {
        for (name, body) in CLIENT {
            let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
            for line in body
                .lines()
                .filter(|l| l.starts_with("import ") || l.starts_with("export {"))
            {
                let Some(spec) = line.split('"').nth(1) else {
                    continue;
                };
                let mut parts: Vec<&str> = if dir.is_empty() {
                    vec![]
                } else {
                    dir.split('/').collect()
                };
                for seg in spec.split('/') {
                    match seg {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        s => parts.push(s),
                    }
                }
                let target = parts.join("/");
                assert!(
                    CLIENT.iter().any(|(n, _)| *n == target),
                    "{name} imports {spec} ({target}), which is not embedded"
                );
            }
        }
    }
}
