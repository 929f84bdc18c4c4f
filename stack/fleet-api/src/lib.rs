//! The fleet API of Turtle's backend stack, as its callers see it: the request
//! and answer types of every route of `turtle-api` (fleets, releases,
//! provisioning keys, registration, a device's target, state and logs, registry
//! tokens, the VPN, health, errors), and a typed async client of those routes.
//!
//! A fleet's name is a [`FleetName`], checked when it is made or read, so no
//! name that is not a valid repository path component crosses the wire.
//!
//! # Who uses it
//!
//! - `turtle-api` (`stack/api`) writes its answers and reads its bodies with
//!   these types, so the wire names live in one place; it takes the crate
//!   without the `client` feature.
//! - The api's integration tests drive it through `Client`.
//! - Next: the device agent on child devices (registration, polling the target
//!   with its ETag, reporting state and logs) and the dashboard (the admin
//!   routes).
//!
//! The contract itself is `stack/api/openapi.json`, served at
//! `/v1/openapi.json`; each type here names its schema there.
//!
//! # The client (feature `client`, on by default)
//!
//! `Client` has one method per route, calls as the `Credentials` it was
//! given (`Authorization: Bearer`, or HTTP Basic for the registry's token
//! endpoint, as the api expects), answers the typed value, and fails with an
//! `Error` that tells an answer of the api (its status and `{"error"}`
//! message) from a failure to reach it. The target and the peer list take the
//! ETag of the last answer and say `Conditional::NotModified` on a 304.
//! `https` trusts one root, given as PEM (Turtle's own CA), and nothing else.
//!
//! It is built on hyper-util's pooled client with a small connector of its own
//! (TCP, then tokio-rustls with the ring provider), not on reqwest: hyper,
//! hyper-util, http-body-util, rustls, tokio-rustls are in the workspace's tree
//! already (the api, the vpn, the supervisor and the certs use them), so the
//! client adds no crate to the tree, and the one TLS provider stays ring (the
//! config names it, so no process-wide provider needs installing, and aws-lc
//! never enters). reqwest 0.13 (`rustls-no-provider`, `json`) would add crates
//! of its own for what a hundred lines do here: url with its IDNA tables, tower,
//! tower-http, sync_wrapper, hyper-rustls; and its default provider is aws-lc, a
//! feature away from the tree. The price is HTTP/1.1 only, which the api and the
//! stack's proxy both speak.
//!
//! Without the feature the crate is the types alone: serde, serde_json and
//! thiserror.

mod fleet_name;
mod query;
mod types;

pub use fleet_name::{FLEET_NAME_MAX, FleetName, FleetNameError};
pub use types::*;

#[cfg(feature = "client")]
mod client;
#[cfg(feature = "client")]
mod connect;

#[cfg(feature = "client")]
pub use client::{Client, ClientBuilder, Conditional, Credentials, Error, Page, Result};
