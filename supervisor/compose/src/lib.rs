//! Compose files read the way docker compose reads them.
//!
//! # Design
//!
//! Loading is a pipeline of pure stages (the only IO is reading the compose
//! files, `.env` and `env_file`s). Each file goes: YAML value -> merge keys
//! (`<<`) -> interpolation ([`interpolate`]) -> unknown-key check ([`keys`],
//! reported as `file:line: key.path`, lines from [`locate`]) -> `extends`
//! ([`extends`]) -> `include` (each included file loaded as a project of its
//! own and its resources added, [`include`]); then the `-f` files are merged
//! ([`merge`]), keys that
//! docker-compose-types lacks are lifted out and the rest is parsed with it
//! ([`typed`]), and the result is normalized into [`model::Project`]
//! ([`normalize`]), our model. The supervisor plans from [`model::Project`]
//! only. Entry point: [`load()`].
//!
//! Each service carries a config hash ([`hash::service_hash`]): the SHA-256 of
//! the canonical JSON of the fields that shape its container. A change in the
//! hash is what makes the supervisor recreate a container.

mod context;
pub mod dotenv;
pub mod error;
pub mod extends;
pub mod hash;
pub mod include;
pub mod interpolate;
pub mod keys;
pub mod load;
pub mod locate;
pub mod merge;
pub mod model;
pub mod normalize;
mod paths;
pub mod shell;
pub mod typed;

pub use error::LoadError;
pub use hash::service_hash;
pub use load::{LoadOptions, Loaded, load};
pub use model::*;
