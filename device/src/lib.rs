//! Turtle's device layer: per-board profiles (work in progress).

mod priority;
mod profile;
pub mod units;

pub use priority::{Budget, PRIORITY_LABEL, Priority, PriorityError};
pub use profile::{
    BudgetConfig, Budgets, KNOWN_ARCHES, Match, PressureConfig, Profile, ProfileError, Shedding,
    SwapConfig, ThermalConfig, ZRAM_ALGORITHMS, ZramConfig, ZramSize, builtin_profiles,
    load_profiles, sysctl_path,
};
