//! The daemon's local HTTP API on a unix socket: the server and the CLI's client.

pub mod client;
pub mod server;
