//! Turtle's device layer: per-board profiles and their detection (work in progress).

mod detect;
mod paths;
mod priority;
mod profile;
pub mod units;

pub use detect::{DetectError, Detected, Facts, choose, detect, read_facts, read_mem_total};
pub use paths::Paths;
pub use priority::{Budget, PRIORITY_LABEL, Priority, PriorityError};
pub use profile::{
    BudgetConfig, Budgets, KNOWN_ARCHES, Match, PressureConfig, Profile, ProfileError, Shedding,
    SwapConfig, ThermalConfig, ZRAM_ALGORITHMS, ZramConfig, ZramSize, builtin_profiles,
    load_profiles, sysctl_path,
};
