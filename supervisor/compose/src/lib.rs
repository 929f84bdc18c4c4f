//! Compose files read the way docker compose reads them.
//!
//! # Design
//!
//! Loading is a pipeline of pure stages (the only IO is reading the compose
//! files, `.env` and `env_file`s): YAML value -> merge keys (`<<`) ->
//! interpolation -> `-f` file merge -> `extends` -> unknown-key check ->
//! typed parse with docker-compose-types -> [`model::Project`], our normalized
//! model. The supervisor plans from [`model::Project`] only.
//!
//! Each service carries a config hash ([`hash::service_hash`]): the SHA-256 of
//! the canonical JSON of the fields that shape its container. A change in the
//! hash is what makes the supervisor recreate a container.

pub mod hash;
pub mod model;

pub use hash::service_hash;

pub use model::*;
