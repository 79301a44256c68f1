//! The reference applications. Each owns its routes, records, DTOs and rules, and publishes
//! through the [`Node`](crate::node::Node); none touches a socket.

pub mod chat;
pub mod cities;
pub mod missions;
pub mod payments;
