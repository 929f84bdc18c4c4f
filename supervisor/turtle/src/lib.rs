//! The Turtle supervisor: deploys a compose stack on the Docker engine and
//! keeps it alive.
//!
//! # Layout
//!
//! - [`engine`]: the Docker engine behind one trait (bollard + a recording fake).
//! - [`names`]: names and labels of what Turtle owns.

pub mod engine;
pub mod logs;
pub mod names;
pub mod api;
pub mod apply;
pub mod cli;
pub mod observe;
pub mod plan;
pub mod spec;
pub mod store;
pub mod supervisor;
