//! The API against a real PostgreSQL, over real HTTP on 127.0.0.1.
//!
//! Needs the PostgreSQL server (`apt-get install -y postgresql`); each test starts
//! its own throwaway cluster and stops it at the end, even on failure.

mod fixture;
mod postgres;

mod bench;
mod database;
mod devices;
mod fleet_scale;
mod fleets;
mod input;
mod limits;
mod registration;
mod registry;
mod revocation;
mod vpn;
