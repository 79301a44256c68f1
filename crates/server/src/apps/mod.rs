//! The reference applications. Each owns its routes, records, DTOs and rules, registers itself
//! with the node through the [`App`](crate::node::App) seam, and publishes through the
//! [`Node`](crate::node::Node); none touches a socket or imports a transport.
//!
//! - [`missions`]: HQ updates a mission, every field agent sees it (SPEC §1.1).
//! - [`chat`]: the lobby and rooms, with typing indicators (§1.2).
//! - [`payments`]: a status pushed to the one connection that asked (§1.3).
//! - [`cities`]: per-city metric streams, snapshots and alerts (§1.4).
//!
//! Adding an app: a module here with a type implementing `App`, listed in [`all`].

pub mod chat;
pub mod cities;
pub mod missions;
pub mod payments;

use std::sync::Arc;

use crate::node::App;

/// The apps' part of `/openapi.json`: each app's routes, from its handlers' `#[utoipa::path]`s
/// and its DTOs (chat has no REST route).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    let mut doc = missions::MissionsApi::openapi();
    doc.merge(payments::PaymentsApi::openapi());
    doc.merge(cities::CitiesApi::openapi());
    doc
}

/// Every built-in app, in the order their hooks are asked.
pub fn all() -> Vec<Arc<dyn App>> {
    vec![
        Arc::new(missions::Missions),
        Arc::new(chat::Chat),
        Arc::new(payments::Payments),
        Arc::new(cities::Cities),
    ]
}
