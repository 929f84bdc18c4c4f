//! The Turtle supervisor: deploys a compose stack on the Docker engine and
//! keeps it alive.
//!
//! # Layout
//!
//! - [`engine`]: the Docker engine behind one trait (bollard + a recording fake).
//! - [`names`]: names and labels of what Turtle owns.
//! - [`spec`]: the compose model turned into engine create requests.

pub mod engine;
pub mod names;
pub mod spec;
