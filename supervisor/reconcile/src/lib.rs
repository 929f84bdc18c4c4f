//! Reconciliation, pure: what a project should look like on the engine, and
//! the steps from what it looks like now.
//!
//! # Layout
//!
//! - [`names`]: names and labels of the engine objects Turtle owns.
//! - [`spec`]: a service of the compose model as engine create requests.
//! - [`observe`]: what the engine has for one project (reads through the
//!   [`turtle_engine::Engine`] trait; no client of its own).
//! - [`plan`]: `plan(project, observed, options) -> Plan`.
//! - [`refresh`]: the pulls and builds `up` runs before planning (`--build`,
//!   `pull_policy`).
//!
//! # Design
//!
//! Nothing here does IO of its own or links an HTTP client, tokio or
//! bollard's client (`cargo tree -p turtle-reconcile` shows it): the
//! engine's types come from `turtle-engine` without its `docker` feature,
//! bollard's request bodies from `bollard-stubs`. So the planner is tested
//! without Docker, and running it twice on the engine's state after an
//! apply gives an empty plan (that round trip is tested in
//! `turtle-runtime`, whose applier carries plans out).

pub mod names;
pub mod observe;
pub mod plan;
pub mod refresh;
pub mod spec;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
