//! The Turtle supervisor: deploys a compose stack on the Docker engine and
//! keeps it alive.
//!
//! # Layout
//!
//! - [`engine`]: the Docker engine behind one trait (bollard + a recording fake).
//! - [`names`]: names and labels of what Turtle owns.
//! - [`spec`]: the compose model turned into engine create requests.
//! - [`observe`]: what the engine has now, for one project.
//! - [`plan`]: `plan(project, observed) -> Plan`, pure.
//! - [`apply`]: runs a plan with bounded parallelism and depends_on conditions.
//! - [`store`]: the supervisor's state in SQLite.
//! - [`config`]: the supervisor's own config file.
//! - [`trust`]: the CA bundle, TLS leaves and public names injected into containers.
//! - [`device`]: the box's profile, budgets per priority, tuning; [`shed`] sheds load when hot.
//! - [`mdns`]: the mDNS publisher; [`announce`] keeps it in step with the projects.
//! - [`supervisor`]: up/down/status/actions and the keep-alive loop.
//! - [`api`]: the local HTTP API on a unix socket, server and client.
//! - [`engine_trust`]: the box's engine trusts and resolves the stack's registry.
//! - [`base`]: the Debian base of the stack's images: loaded, pulled or bootstrapped.
//! - [`images`]: the stack's images carry this executable, tagged by its build id.
//! - [`secrets`]: tokens and passwords made for the services that list them.
//! - [`logs`]: container output as prefixed lines.
//! - [`cli`]: the `turtle` command line, one file per verb.

pub mod announce;
pub mod api;
pub mod apply;
pub mod base;
pub mod cli;
pub mod config;
pub mod device;
pub mod engine;
pub mod engine_trust;
pub mod images;
pub mod logs;
pub mod mdns;
pub mod names;
pub mod observe;
pub mod plan;
pub mod secrets;
pub mod shed;
pub mod spec;
pub mod store;
pub mod supervisor;
#[cfg(test)]
mod test_support;
pub mod trust;
