//! Turtle's device layer: per-board profiles, their detection, and setting the box
//! up (swap file, zram, sysctls) (work in progress).

mod detect;
mod paths;
mod priority;
mod profile;
mod system;
pub mod units;

pub use detect::{DetectError, Detected, Facts, choose, detect, read_facts, read_mem_total};
pub use paths::Paths;
pub use priority::{Budget, PRIORITY_LABEL, Priority, PriorityError};
pub use profile::{
    BudgetConfig, Budgets, KNOWN_ARCHES, Match, PressureConfig, Profile, ProfileError, Shedding,
    SwapConfig, ThermalConfig, ZRAM_ALGORITHMS, ZramConfig, ZramSize, builtin_profiles,
    load_profiles, sysctl_path,
};
pub use system::state::{STATE_VERSION, State, SwapFileRecord, SysctlRecord, ZramRecord};
pub use system::{
    ApplyReport, Change, DeviceStatus, ResetReport, SwapEntry, SwapFileStatus, SysctlStatus,
    SystemError, ZramStatus, apply, parse_swaps, read_swaps, reset, status,
};
