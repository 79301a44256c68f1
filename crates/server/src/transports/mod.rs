//! Transports translate a connection into hub operations and write bytes. They know their wire
//! format and nothing about missions or payments.

pub mod expiry;
pub mod feed;
pub mod poll;
pub mod socketio;
pub mod sse;
pub mod ws;
