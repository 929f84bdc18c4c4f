//! The Turtle supervisor at run time: it carries out plans on the engine,
//! keeps the applied projects alive, and holds the box's state.
//!
//! # Layout
//!
//! - [`store`]: the supervisor's state in SQLite.
//! - [`config`]: the supervisor's own config file.
//! - [`host_paths`]: the host side of a service's mounts, readied before create.
//! - [`apply`]: runs a plan with bounded parallelism and depends_on conditions.
//! - [`objects`]: secrets and configs copied into containers; [`hooks`]: `post_start` and `pre_stop`.
//! - [`supervisor`]: up/down/status/actions, heal and the keep-alive loop.
//! - [`handle`]: the narrow handle the daemon's workers run on; [`error`]: what fails.
//! - [`trust`]: the CA bundle, TLS leaves and public names injected into containers.
//! - [`secrets`]: tokens and passwords made for the services that list them.
//! - [`device`]: the box's profile, budgets per priority, tuning; [`shed`] sheds load when hot.
//! - [`announce`]: keeps the mDNS publisher (`turtle-mdns`) in step with the projects.
//! - [`engine_trust`]: the box's engine trusts and resolves the stack's registry.
//! - [`base`]: the Debian base of the stack's images: loaded, pulled or bootstrapped.
//! - [`images`]: the stack's images carry this executable, tagged by its build id.
//! - [`logs`]: container output as prefixed lines.
//! - [`release`]: releases pushed like an app: the journal, strategies,
//!   update locks, the health gate and rollback; [`handover`]: the
//!   hand-over strategy, and [`forward`] the port forwarder it publishes a
//!   hand-over service's ports through.
//!
//! Below it: `turtle-reconcile` (names, specs, the planner, pure) and
//! `turtle-engine` (the engine's trait and its bollard implementation).
//! Above it: `turtle-control` (the trait every verb goes through, its
//! server on the daemon's socket and its client) and the `turtle` binary.

pub mod announce;
pub mod apply;
pub mod base;
pub mod config;
pub mod device;
pub mod engine_trust;
pub mod error;
pub mod forward;
pub mod handle;
pub mod handover;
pub mod hooks;
pub mod host_paths;
pub mod images;
pub mod logs;
pub mod objects;
pub mod probe;
pub mod ready;
pub mod release;
#[cfg(test)]
mod roundtrip;
pub mod secrets;
pub mod shed;
pub mod store;
pub mod supervisor;
pub mod trust;
