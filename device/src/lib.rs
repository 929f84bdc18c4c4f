//! Turtle's device layer: what kind of box this is, and how to keep it healthy — a
//! swap file and a zram device sized for it, kernel settings, and a policy that sheds
//! low-priority services when the box runs hot or short of memory. A library without
//! Docker in it: the supervisor maps budgets and [`Action`]s onto containers.
//!
//! # Background
//!
//! Turtle runs on boxes from a 16 GB Intel NUC to a 1 GB Raspberry Pi 3. The small
//! ones need swap (compressed RAM first, then a file on the data partition) and
//! protection from their own services: a board in a warm enclosure throttles its
//! clock at 80 °C, and a 1 GB box with a leaking service starts killing processes at
//! random. A profile per kind of box says what to set up and where the limits are.
//!
//! # Design
//!
//! - **Profiles are data** (`device-profiles/*.yaml` at the repository root, each
//!   field documented in `device-profiles/README.md`), compiled in with
//!   `include_str!` so the binary carries them; a directory on disk adds or replaces
//!   profiles by name. They are validated when loaded: unknown keys, ranges and
//!   relations (`warn < throttle < critical`) are errors naming the file and the
//!   field path.
//! - **Detection** ([`detect`]): an override by name, else the device-tree model, else
//!   the DMI product name, else the architecture's generic profile.
//! - **Every system path is under a root** ([`Paths`]): `/` in production, a
//!   temporary directory with a fake `/proc` and `/sys` in tests. External programs
//!   (`mkswap`, `swapon`, `swapoff`, `fallocate`, `modprobe`) run through
//!   `std::process::Command`; the crate has no unsafe code, and free space comes from
//!   rustix's safe `statvfs`.
//! - **Turtle touches only what it created.** [`apply`] records every swap file, zram
//!   device and sysctl it sets up in a small JSON state file *before* the next step,
//!   and [`reset`] undoes exactly that. A swap file at the profile's path that Turtle
//!   did not create is refused and left alone; a zram device is added with `hot_add`
//!   rather than taking `zram0`; a sysctl someone changed after Turtle is not
//!   restored over their value. `apply` is idempotent: a second run changes nothing.
//! - **Swap order**: zram gets an explicit high priority (100), the swap file the
//!   kernel's default (negative) unless the profile sets one, so compressed RAM is
//!   used first and the SD card or eMMC last.
//! - **Shedding is pure** ([`ShedPolicy`]): readings in, ordered actions out, time an
//!   argument. The readers ([`read_zones`], [`read_psi`], [`read_oom_kills`],
//!   [`Sampler`]) never fail; the daemon owns the loop.
//!
//! # API
//!
//! ```text
//! // profiles
//! builtin_profiles() -> Result<Vec<Profile>, ProfileError>
//! load_profiles(dir: Option<&Path>) -> Result<Vec<Profile>, ProfileError>   builtins, dir overrides by name
//! Profile::from_yaml(text, file_label) / Profile::from_file(path) -> Result<Profile, ProfileError>
//! profile.validate(file_label) -> Result<(), ProfileError>
//! profile.budget(Priority) -> Budget { memory_bytes: i64, cpu_shares: i64, nano_cpus: Option<i64> }
//! profile.effective_sysctls() -> BTreeMap<String, String>
//! Priority::{Critical, Normal, Low}; Priority::from_label(Option<&str>) -> Result<Priority, PriorityError>
//! PRIORITY_LABEL = "io.turtle.priority"
//!
//! // detection
//! detect(root: &Path, arch: &str, profiles: &[Profile], override_name: Option<&str>)
//!     -> Result<Detected { profile, facts: Facts, reason: String }, DetectError>
//! read_facts(root, arch) -> Facts { arch, device_tree_model, dmi_product_name, mem_total }
//! choose(facts, profiles, override_name) -> Result<Detected, DetectError>
//!
//! // the system (blocking: use spawn_blocking from async code)
//! Paths::system() / Paths::new(root)
//! apply(&Paths, &Profile, state_file: &Path) -> Result<ApplyReport, SystemError>
//!     ApplyReport { profile, changes: Vec<Change>, swap_file: Option<PathBuf>, zram_device: Option<u32> }
//! reset(&Paths, state_file) -> Result<ResetReport { changes }, SystemError>
//! status(&Paths, state_file) -> DeviceStatus        (Serialize; never fails, see .problems)
//! read_swaps(&Paths) -> Result<Vec<SwapEntry>, SystemError>
//!
//! // readings and the policy
//! read_zones(&Paths, &ThermalConfig) -> Vec<ZoneReading { zone, kind, millideg, error }>
//! read_psi(&Paths) -> Option<Psi { some_avg10, ..., full_avg10, ... }>
//! read_oom_kills(&Paths) -> Option<u64>
//! Sampler::new(Paths, &Profile); sampler.sample() -> Sample { zones, psi, oom_kills_since_last }
//! ShedPolicy::new(&Profile)
//! policy.step(now: tokio::time::Instant, hottest: Option<&ZoneReading>,
//!             memory_pressure: Option<f64>, oom_kills_since_last: u32) -> Vec<ShedAction>
//! policy.step_sample(now, &Sample) -> Vec<ShedAction>
//! policy.level() -> Level; policy.shed() -> Vec<Action>; policy.status() -> ShedStatus
//! policy.throttle_nano_cpus() -> i64
//! ShedAction { action: Action, reason: String }
//! Action::{Level(Level), CapCpu(P), Pause(P), Stop(P), Start(P), Unpause(P), Uncap(P)}
//! ```
//!
//! # The state file
//!
//! [`apply`] keeps what it set up in the JSON file it is given (the supervisor's
//! choice, e.g. `/var/lib/turtle/device.json`), replaced atomically after every
//! change; [`reset`] removes it. An exclusive lock on `<state file>.lock` (left in
//! place) orders a daemon and a CLI.
//!
//! ```json
//! {
//!   "version": 1,
//!   "profile": "raspberrypi3",
//!   "swap_file": {"path": "/var/lib/turtle/swapfile", "size": 1073741824, "priority": null},
//!   "zram": {"device": 1, "disksize": 483127296, "algorithm": "lz4", "priority": 100,
//!            "boot_id": "823661b9-853f-488f-8074-dd8d533a679b"},
//!   "sysctls": {"vm.swappiness": {"previous": "60", "set": "100"}}
//! }
//! ```
//!
//! Paths are as on the box (not joined to the root). `previous` is the value before
//! Turtle's first write, kept across applies; reset restores it only while the
//! current value is still Turtle's `set`.
//!
//! # For the supervisor
//!
//! - At start-up: `load_profiles(dir)`, `detect(Path::new("/"), ARCH, ..,
//!   override)`, then `apply` in `spawn_blocking`; log each [`Change`] (`Display`).
//!   A failure is worth a warning, not a refusal to run: [`SystemError::Incomplete`]
//!   lists every failed part, the others are done.
//! - Budgets: a service's priority is its label [`PRIORITY_LABEL`]
//!   ([`Priority::from_label`]); [`Profile::budget`] gives `HostConfig.Memory`,
//!   `CpuShares` and `NanoCpus` for services that set none themselves.
//! - The loop: every `profile.shedding.poll`, `policy.step_sample(Instant::now(),
//!   &sampler.sample())` and carry out the actions in order (see [`ShedPolicy`] for
//!   what each one means on containers).
//! - `turtle device`: [`Detected`] (profile, facts, reason), [`status`]
//!   ([`DeviceStatus`]) and [`ShedPolicy::status`] ([`ShedStatus`]) are `Serialize`.
//! - `turtle device reset` (or uninstall): [`reset`].
//!
//! # Example
//!
//! ```no_run
//! use std::path::Path;
//! use turtle_device::{Paths, ShedPolicy, Sampler, apply, detect, load_profiles};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let profiles = load_profiles(Some(Path::new("/etc/turtle/device-profiles")))?;
//! let found = detect(Path::new("/"), std::env::consts::ARCH, &profiles, None)?;
//! println!("{}: {}", found.profile.name, found.reason);
//! let paths = Paths::system();
//! let report = apply(&paths, &found.profile, Path::new("/var/lib/turtle/device.json"))?;
//! for change in &report.changes {
//!     println!("{change}");
//! }
//! let mut sampler = Sampler::new(paths, &found.profile);
//! let mut policy = ShedPolicy::new(&found.profile);
//! // every found.profile.shedding.poll, in the daemon's loop:
//! for action in policy.step_sample(tokio::time::Instant::now(), &sampler.sample()) {
//!     println!("{:?}: {}", action.action, action.reason);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Current limitations
//!
//! - Swap files on btrfs need `chattr +C` before they are filled; Turtle does not do
//!   it, so `swapon` refuses them there (ext4, the data partition of the boxes, works).
//! - A zram device lives until the next boot; `apply` at start-up adds a new one. A
//!   record from an earlier boot is dropped without touching the device of that
//!   number.
//! - `zram.size` is fixed when the device is set up: a changed size or algorithm
//!   swaps the device off and on again, which needs room in RAM for what it held.
//! - The shedding policy sees one temperature (the hottest watched zone) and memory
//!   pressure; it does not know which service is hot or hungry.

mod detect;
mod paths;
mod policy;
mod priority;
mod profile;
mod sensors;
mod system;
pub mod units;

pub use detect::{DetectError, Detected, Facts, choose, detect, read_facts, read_mem_total};
pub use paths::Paths;
pub use policy::{Action, Level, ShedAction, ShedPolicy, ShedStatus};
pub use priority::{Budget, PRIORITY_LABEL, Priority, PriorityError};
pub use profile::{
    BudgetConfig, Budgets, KNOWN_ARCHES, Match, PressureConfig, Profile, ProfileError, Shedding,
    SwapConfig, ThermalConfig, ZRAM_ALGORITHMS, ZramConfig, ZramSize, builtin_profiles,
    load_profiles, sysctl_path,
};
pub use sensors::{
    Psi, Sample, Sampler, ZoneReading, hottest, parse_psi, read_oom_kills, read_psi, read_zones,
};
pub use system::state::{STATE_VERSION, State, SwapFileRecord, SysctlRecord, ZramRecord};
pub use system::{
    ApplyReport, Change, DeviceStatus, ResetReport, SwapEntry, SwapFileStatus, SysctlStatus,
    SystemError, ZramStatus, apply, parse_swaps, read_swaps, reset, status,
};
