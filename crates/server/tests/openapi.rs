//! `GET /openapi.json` (SPEC §8): an OpenAPI 3.1 document generated from the code. These tests
//! read the document the server serves and check that it parses as OpenAPI 3.1 with every
//! reference resolving, that every REST route the sources mount is in it (the list is read
//! from the sources, as `layout.rs` reads them), that no response schema — walked through
//! every `$ref` — names a classified mission column, and that the error answers (401, 403,
//! 404, 413, 422, 429) are documented wherever they can happen.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use common::TestServer;

/// The mission columns no audience may ever see (SPEC §1.1; `MissionRecord` in the store).
const CLASSIFIED: &[&str] = &["handler_notes", "asset_identity", "extraction_code"];

/// Mounted routes that are not REST: the transports (described in docs/protocol.md) and the
/// console's page and scripts. Everything else a source mounts must be in the document.
const NOT_REST: &[&str] = &[
    "/",
    "/console.js",
    "/client/{*path}",
    "/ws",
    "/events",
    "/poll",
];

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

async fn document() -> Value {
    let server = TestServer::start().await;
    let res = reqwest::get(server.http("/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    res.json().await.unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `(method, path)` a `.route("…", get(…).post(…))` in the server's sources mounts,
/// outside test modules. A route whose path is not a literal fails the test: it could not be
/// checked.
fn mounted_routes() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut routes = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let mut rest = code;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            // The call's arguments: up to the parenthesis that closes `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap();
            let args = &rest[..end];
            let path = args.trim_start();
            assert!(
                path.starts_with('"'),
                "{}: a route whose path is not a literal: .route({args})",
                file.display()
            );
            let path = path[1..path[1..].find('"').unwrap() + 1].to_owned();
            let handlers = &args[path.len() + 2..];
            let mut found = false;
            for method in METHODS {
                let call = format!("{method}(");
                let mounted = handlers
                    .match_indices(&call)
                    .any(|(i, _)| i == 0 || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric());
                if mounted {
                    routes.insert(((*method).to_owned(), path.clone()));
                    found = true;
                }
            }
            assert!(found, "{}: no method in .route({args})", file.display());
        }
    }
    routes
}

/// The document's operations: `(method, path)` → operation.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if METHODS.contains(&method.as_str()) {
                ops.insert((method.clone(), path.clone()), op);
            }
        }
    }
    ops
}

/// Resolves a local `$ref` (`#/components/schemas/X`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("not a local reference: {reference}"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("dangling reference {reference}"))
}

/// Every `$ref` anywhere in `v`.
fn refs_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs_in(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// Every property name of `schema` and of every schema it reaches (through `$ref`s, `oneOf`,
/// `items`, `additionalProperties`, …), and the names of the component schemas it reaches.
fn reachable(
    doc: &Value,
    schema: &Value,
    names: &mut BTreeSet<String>,
    seen: &mut BTreeSet<String>,
) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref")
                && seen.insert(r.clone())
            {
                names.insert(r.rsplit('/').next().unwrap().to_owned());
                reachable(doc, resolve(doc, r), names, seen);
            }
            if let Some(Value::Object(props)) = map.get("properties") {
                names.extend(props.keys().cloned());
            }
            if let Some(Value::Array(required)) = map.get("required") {
                names.extend(
                    required
                        .iter()
                        .filter_map(|r| r.as_str().map(str::to_owned)),
                );
            }
            for (k, v) in map {
                if k != "$ref" && k != "description" && k != "example" {
                    reachable(doc, v, names, seen);
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                reachable(doc, v, names, seen);
            }
        }
        _ => {}
    }
}

/// The names reachable from one operation's responses (`responses`) or request body.
fn names_under(doc: &Value, part: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    reachable(doc, part, &mut names, &mut BTreeSet::new());
    names
}

/// Every `type` in a schema is one of JSON Schema's (a string or a list of them, as 3.1 allows).
fn json_schema_types_are_valid(name: &str, schema: &Value) {
    const TYPES: &[&str] = &[
        "null", "boolean", "object", "array", "number", "string", "integer",
    ];
    match schema {
        Value::Object(map) => {
            match map.get("type") {
                None => {}
                Some(Value::String(t)) => assert!(TYPES.contains(&t.as_str()), "{name}: type {t}"),
                Some(Value::Array(ts)) => {
                    for t in ts {
                        assert!(
                            TYPES.contains(&t.as_str().unwrap_or_default()),
                            "{name}: {t}"
                        );
                    }
                }
                Some(other) => panic!("{name}: type {other}"),
            }
            for (k, v) in map {
                if k == "properties" {
                    for v in v.as_object().unwrap().values() {
                        json_schema_types_are_valid(name, v);
                    }
                } else if k != "type" && k != "example" {
                    json_schema_types_are_valid(name, v);
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|v| json_schema_types_are_valid(name, v)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let doc = document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Switchboard");
    assert!(
        doc["info"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );
    // The fixed fields OpenAPI 3.1 requires, with the types it requires (the schemathesis run
    // in tests/schemathesis/ loads the same document with a full 3.1 validator).
    for path in doc["paths"].as_object().unwrap().keys() {
        assert!(path.starts_with('/'), "{path}");
    }
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        json_schema_types_are_valid(name, schema);
    }
    let mut refs = Vec::new();
    refs_in(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in &refs {
        resolve(&doc, r);
    }
    let mut ids = BTreeSet::new();
    for ((method, path), op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        let responses = op["responses"].as_object().unwrap();
        assert!(!responses.is_empty(), "{method} {path}");
        for (status, response) in responses {
            let code: u16 = status
                .parse()
                .unwrap_or_else(|_| panic!("{method} {path}: status {status}"));
            assert!(
                (100..600).contains(&code),
                "{method} {path}: status {status}"
            );
            assert!(
                response["description"].is_string(),
                "{method} {path} {status}: no description"
            );
        }
        // Every `{param}` of the template is declared as a required path parameter.
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path" && p["required"] == true)
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, template, "{method} {path}: path parameters");
        for requirement in op["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(
                    doc["components"]["securitySchemes"][scheme].is_object(),
                    "{method} {path}: unknown security scheme {scheme}"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_rest_route_the_router_mounts_is_documented() {
    let doc = document().await;
    let documented: BTreeSet<(String, String)> = operations(&doc).into_keys().collect();
    let mounted = mounted_routes();
    // The scan sees the routes it must (a broken reader would pass with nothing to check).
    for route in [
        ("put", "/missions/{id}"),
        ("post", "/api/publish"),
        ("get", "/healthz"),
    ] {
        assert!(
            mounted.contains(&(route.0.to_owned(), route.1.to_owned())),
            "{route:?} not found in the sources"
        );
    }
    let rest: BTreeSet<(String, String)> = mounted
        .into_iter()
        .filter(|(_, path)| !NOT_REST.contains(&path.as_str()))
        .collect();
    let missing: Vec<_> = rest.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "mounted but not in /openapi.json: {missing:?}"
    );
    let unmounted: Vec<_> = documented.difference(&rest).collect();
    assert!(
        unmounted.is_empty(),
        "in /openapi.json but not mounted: {unmounted:?}"
    );
}

#[tokio::test]
async fn no_response_schema_names_a_classified_column() {
    let doc = document().await;
    let mut requests = BTreeSet::new();
    for ((method, path), op) in operations(&doc) {
        let names = names_under(&doc, &op["responses"]);
        for column in CLASSIFIED {
            assert!(
                !names.contains(*column),
                "{method} {path}: a response schema names {column}: {names:?}"
            );
        }
        for name in &names {
            assert!(
                !name.ends_with("Record"),
                "{method} {path}: a record type {name}"
            );
        }
        requests.extend(names_under(&doc, &op["requestBody"]));
    }
    // The walk sees write-only request fields, so it would see them in a response too.
    for column in CLASSIFIED {
        assert!(
            requests.contains(*column),
            "{column} not in any request body"
        );
    }
}

#[tokio::test]
async fn error_answers_are_documented_where_they_apply() {
    let doc = document().await;
    for ((method, path), op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        let security = op["security"].as_array().cloned().unwrap_or_default();
        let reads_token = security
            .iter()
            .any(|r| r.as_object().is_some_and(|r| r.contains_key("bearer")));
        let needs_token = !security.is_empty()
            && security
                .iter()
                .all(|r| r.as_object().is_some_and(|r| !r.is_empty()));
        let writes = method != "get";
        let what = format!("{method} {path}");
        if reads_token {
            assert!(has("401"), "{what}: reads a token but documents no 401");
        }
        if needs_token {
            assert!(has("403"), "{what}: needs a role but documents no 403");
        }
        if path.contains('{') {
            assert!(
                has("404"),
                "{what}: has a path parameter but documents no 404"
            );
        }
        if op.get("requestBody").is_some() {
            assert!(
                has("422") && has("413"),
                "{what}: takes a body but documents no 422/413"
            );
        }
        if writes {
            let limited = responses
                .get("429")
                .unwrap_or_else(|| panic!("{what}: no 429"));
            assert!(
                limited["headers"]["Retry-After"].is_object(),
                "{what}: 429 without Retry-After"
            );
        }
        for (status, response) in responses {
            if status.starts_with('4') {
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/Error",
                    "{what} {status}: not the error body"
                );
            }
        }
    }
    let error = &doc["components"]["schemas"]["Error"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    assert_eq!(error["additionalProperties"], false);
}

#[tokio::test]
async fn the_viewer_is_served_from_the_binary() {
    let server = TestServer::start().await;
    let page = reqwest::get(server.http("/docs/")).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Its scripts come from this server, not from a CDN.
    assert!(!html.contains("https://"), "{html}");
    let script = reqwest::get(server.http("/docs/swagger-ui-bundle.js"))
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    let config = reqwest::get(server.http("/docs/swagger-initializer.js"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(config.contains("/openapi.json"), "{config}");
}
