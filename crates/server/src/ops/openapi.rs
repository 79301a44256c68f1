//! `GET /openapi.json` and `GET /docs`: the API described by the code itself (SPEC §8).
//!
//! Each handler carries its `#[utoipa::path]` (method, path, parameters, request body, every
//! answer with its body) next to its code, and each DTO and input type derives `ToSchema`, so
//! the document changes when the code does. Each app and each ops module gathers its routes
//! in one `#[derive(OpenApi)]` type; [`document`] merges them with the shared parts (the error
//! body, the bearer scheme). Only DTO types are ever named in a response — never a store
//! record — which `crates/server/tests/openapi.rs` checks by walking every response schema.
//!
//! `/docs` is Swagger UI, compiled into the binary by `utoipa-swagger-ui`'s `vendored`
//! feature: its build script unpacks a copy shipped inside a crate, so nothing is downloaded
//! at build or run time, and the page loads its scripts from this server.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{admin, client, health, metrics, publish};
use crate::http::error::ErrorBody;

/// Where the document is served (written out in the route too, where the route test reads it).
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where the viewer is served.
pub const VIEWER_PATH: &str = "/docs";

/// The parts of the document that are nobody's route: the title, the error body every route
/// answers with, and the bearer scheme the routes' `security` name.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "The REST API of a Switchboard node: the reference apps' routes and the \
                       operations routes. Real-time delivery (WebSocket /ws, Socket.IO, SSE \
                       /events, long-poll /poll) is described in docs/protocol.md."
    ),
    paths(document_json),
    components(schemas(ErrorBody)),
    modifiers(&Bearer),
    tags(
        (name = "ops", description = "Health, readiness, the server publish API, this document"),
    )
)]
struct Shared;

/// Adds the `bearer` scheme: a JWT in `Authorization: Bearer …` (SPEC §3).
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The whole document: the shared parts, the ops routes and `apps` (the apps' own documents,
/// merged by the caller, which sees both floors).
pub fn document(apps: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let mut doc = Shared::openapi();
    doc.merge(health::HealthApi::openapi());
    doc.merge(publish::PublishApi::openapi());
    doc.merge(client::ClientApi::openapi());
    doc.merge(metrics::MetricsApi::openapi());
    doc.merge(admin::AdminApi::openapi());
    doc.merge(apps);
    doc
}

/// The document, encoded once when the router is built.
#[derive(Clone)]
struct DocumentJson(Bytes);

/// This document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", tag = "ops",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API",
        content_type = "application/json", body = Object)))]
async fn document_json(
    Extension(DocumentJson(json)): Extension<DocumentJson>,
) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json)
}

/// The routes serving `doc`: the JSON, encoded once here, and the viewer.
pub fn routes<S: Clone + Send + Sync + 'static>(doc: &utoipa::openapi::OpenApi) -> Router<S> {
    let json = match doc.to_pretty_json() {
        Ok(json) => Bytes::from(json),
        Err(e) => {
            // Only a type whose schema cannot be encoded could get here: a bug, not input.
            tracing::error!(error = %e, "the OpenAPI document could not be encoded");
            Bytes::from_static(br#"{"error":"The OpenAPI document could not be encoded"}"#)
        }
    };
    let viewer = SwaggerUi::new(VIEWER_PATH).config(Config::from(DOCUMENT_PATH));
    Router::new()
        .route("/openapi.json", get(document_json))
        .layer(Extension(DocumentJson(json)))
        .merge(Router::from(viewer))
}
