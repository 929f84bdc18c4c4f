//! Compose files read the way docker compose reads them.
//!
//! # Design
//!
//! Loading is a pipeline of pure stages (the only IO is reading the compose
//! files, `.env`, `env_file`s and `label_file`s). Each file goes: YAML value
//! -> merge keys (`<<`, innermost first, [`yaml`]) -> interpolation
//! ([`interpolate`]) -> the key check ([`keys`]: values converted to the type
//! their key wants, as compose-go casts after interpolation; every unknown,
//! refused or mistyped key reported at once as `file:line: key.path`, lines
//! from [`locate`]) -> `extends` ([`extends`]) -> `include` (each included
//! file loaded as a project of its own and its resources added,
//! [`include`](mod@include)); then the `-f` files are merged ([`merge`],
//! honouring `!reset` and `!override`) and the merged value is normalized
//! into [`model::Project`] ([`normalize`]), our model. There is no typed
//! parse in between: the key check has made the value's shape right, and
//! normalization reads it key by key. The supervisor plans
//! from [`model::Project`] only. Entry point: [`load()`]; [`load_in_memory`]
//! is the same load over files held in memory (it never reads the disk).
//!
//! Each service carries a config hash ([`hash::service_hash`]): the SHA-256 of
//! the canonical JSON of the fields that shape its container. A change in the
//! hash is what makes the supervisor recreate a container.
//!
//! # Layout
//!
//! The loading stages, from the top; each module uses only modules listed
//! after it, never one before it (no import cycles):
//!
//! - [`load`](mod@load): the entry point. Finds the files (`-f`, `COMPOSE_FILE`, else
//!   the default file and its override), reads `.env`, sets up the context,
//!   then runs `include::load_model` and [`normalize`].
//! - [`include`](mod@include): the per-file loop (`load_model`: read each
//!   file, resolve its `extends`, load and import its `include:`s as projects
//!   of their own, merge the files) and `include:` itself.
//! - [`extends`]: `extends:`, per service, recursively, across files.
//! - [`normalize`]: from the merged value to [`model::Project`]. A directory:
//!   `normalize/mod.rs` is the project flow (project name, profiles,
//!   top-level objects, services, cross-service checks); `service.rs` reads
//!   one service, with `env.rs` (`env_file`, `environment`), `ports.rs`,
//!   `volumes.rs` (top-level volumes, mounts, `tmpfs`), `networks.rs`
//!   (top-level networks, `network_mode`/`networks`, the `default` network),
//!   `depends.rs` (`depends_on`, references between services, cycles),
//!   `resources.rs` (memory/CPU/pids, `cpu_*`, `blkio_config`, `ulimits`,
//!   GPUs and other device requests), `options.rs` (the container's runtime
//!   options: identity, hosts and DNS, namespaces, logging, hooks),
//!   `secrets.rs` (secrets and configs) and `values.rs` (the small readers
//!   they share).
//! - [`merge`]: compose's merge rules, for `-f` files and `extends`.
//! - `context` (private): what the stages share: `Ctx` (environment,
//!   warnings, each file read once through YAML -> `<<` -> [`interpolate`] ->
//!   [`keys`] check, lines from [`locate`]) and `read_env_file` (`.env`
//!   files, [`dotenv`] syntax).
//! - `paths` (private): lexical path resolution (`~`, relative paths) and the
//!   rebasing of a service's relative paths onto another file's directory.
//! - `source` (private): where files are read from, the disk or memory.
//! - Leaves: [`yaml`] (merge keys, `!reset`/`!override`), [`interpolate`],
//!   [`keys`] (`keys/schema.rs`: every key and its type), [`locate`], [`dotenv`], [`shell`],
//!   [`hash`], [`model`], [`name`] (the project and service names, parsed
//!   once), [`error`].

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
pub mod name;
pub mod normalize;
mod paths;
pub mod shell;
mod source;
pub mod yaml;

pub use error::LoadError;
pub use hash::service_hash;
pub use load::{LoadOptions, Loaded, load, load_in_memory};
pub use model::*;
pub use name::{NameError, ProjectName, ServiceName};
