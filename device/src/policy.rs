//! The shedding policy: a pure state machine from readings (hottest zone, memory
//! pressure, OOM kills) to actions on services by priority.
//!
//! ([`ShedPolicy`] documents the design, the actions and the limitations).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::priority::Priority;
use crate::profile::{PressureConfig, Profile, Shedding, ThermalConfig};
use crate::sensors::{Sample, ZoneReading};
use crate::units::Millidegrees;

/// How much trouble the box is in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Normal,
    Warn,
    Throttle,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Warn => "warn",
            Level::Throttle => "throttle",
            Level::Critical => "critical",
        }
    }

    /// The ladder stages this level allows: (taken on entry, at most).
    fn stages(self) -> (usize, usize) {
        match self {
            Level::Normal | Level::Warn => (0, 0),
            Level::Throttle => (1, 2),
            Level::Critical => (3, 4),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the daemon should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The box's level changed to this one: report only.
    Level(Level),
    CapCpu(Priority),
    Pause(Priority),
    Stop(Priority),
    Start(Priority),
    Unpause(Priority),
    Uncap(Priority),
}

/// The ladder: (shed, restore) per stage, stage 1 first.
const LADDER: [(Action, Action); 4] = [
    (Action::CapCpu(Priority::Low), Action::Uncap(Priority::Low)),
    (Action::Pause(Priority::Low), Action::Unpause(Priority::Low)),
    (Action::Stop(Priority::Low), Action::Start(Priority::Low)),
    (
        Action::Stop(Priority::Normal),
        Action::Start(Priority::Normal),
    ),
];

/// An action and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShedAction {
    pub action: Action,
    pub reason: String,
}

impl fmt::Display for ShedAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The policy's state for `turtle device`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShedStatus {
    pub level: Level,
    pub thermal_level: Level,
    pub pressure_level: Level,
    /// An OOM kill within `pressure.oom_hold` holds at least `throttle`.
    pub oom_hold: bool,
    /// Why the box is at its level.
    pub reason: String,
    /// The shed actions in effect, in the order taken.
    pub shed: Vec<Action>,
    pub hottest: Option<ZoneReading>,
    pub memory_pressure: Option<f64>,
}

/// The state machine: readings in, ordered actions out.
///
/// # Design
///
/// - **Levels** `Normal < Warn < Throttle < Critical`. Each source has its own:
///   temperature against `thermal.{warn,throttle,critical}`, PSI memory `some avg10`
///   against `pressure.{throttle,critical}`, and an OOM kill holds at least
///   `Throttle` for `pressure.oom_hold`. The box's level is the highest of them. A
///   level is entered when its threshold is reached and left only when the value
///   falls below threshold minus hysteresis, so a reading hovering at a threshold
///   does not flap.
/// - **One ladder**, climbed in order and descended in reverse:
///
///   | stage | shed | restore |
///   |---|---|---|
///   | 1 | `CapCpu(Low)` | `Uncap(Low)` |
///   | 2 | `Pause(Low)` | `Unpause(Low)` |
///   | 3 | `Stop(Low)` | `Start(Low)` |
///   | 4 | `Stop(Normal)` | `Start(Normal)` |
///
///   `Throttle` allows stages 1-2, `Critical` 1-4, lower levels none. Entering a level
///   takes its first stage at once (`Throttle`: 1; `Critical`: 3, with the stages
///   below it first, in order); each further stage up, and every stage down, waits
///   `shedding.hold` after the last change. `Warn` only reports. Critical-priority
///   services are never on the ladder.
/// - **Time is an argument** (`tokio::time::Instant`), so tests step through hours
///   without waiting; the daemon calls [`ShedPolicy::step`] every `shedding.poll`.
/// - Every action carries its reason: `thermal_zone0 at 85.2 °C >= critical 85 °C:
///   stopping low-priority services`.
///
/// # For the daemon
///
/// `Level(l)` is a report (log it; `warn` when rising). `CapCpu(p)`: set p's
/// services' CPU quota to [`ShedPolicy::throttle_nano_cpus`]; `Uncap(p)`: back to
/// the budget's `nano_cpus` (none: no quota). `Pause`/`Unpause`: freeze/thaw.
/// `Stop(p)`/`Start(p)`: stop and start again only services that were running when
/// stopped. A `Start(Low)` while `Pause(Low)` is still in [`ShedPolicy::shed`]
/// should leave them paused. Services started while something is shed (an `up`)
/// get what [`ShedPolicy::shed`] lists.
///
/// # Limitations
///
/// - No reading from a source means that source is at `Normal` (a box without
///   thermal zones sheds only for memory).
/// - `oom_kill` in `/proc/vmstat` counts kills inside a container's own memory limit
///   too; a service that outgrows its own budget pushes the whole box to `Throttle`
///   for `oom_hold`.
/// - Pausing keeps a service's memory; under memory pressure only stopping (at
///   `Critical`, `pressure.critical`) frees it.
#[derive(Debug, Clone)]
pub struct ShedPolicy {
    thermal: Option<ThermalConfig>,
    pressure: Option<PressureConfig>,
    hold: Duration,
    throttle_nano_cpus: i64,
    thermal_level: Level,
    pressure_level: Level,
    last_oom: Option<Instant>,
    oom_active: bool,
    level: Level,
    stage: usize,
    last_change: Option<Instant>,
    reason: String,
    hottest: Option<ZoneReading>,
    memory_pressure: Option<f64>,
}

impl ShedPolicy {
    /// The policy of a profile's `thermal`, `pressure` and `shedding`.
    pub fn new(profile: &Profile) -> Self {
        Self::with_config(
            profile.thermal.clone(),
            profile.pressure.clone(),
            &profile.shedding,
        )
    }

    pub fn with_config(
        thermal: Option<ThermalConfig>,
        pressure: Option<PressureConfig>,
        shedding: &Shedding,
    ) -> Self {
        Self {
            thermal,
            pressure,
            hold: shedding.hold.as_std(),
            throttle_nano_cpus: shedding.throttle_nano_cpus(),
            thermal_level: Level::Normal,
            pressure_level: Level::Normal,
            last_oom: None,
            oom_active: false,
            level: Level::Normal,
            stage: 0,
            last_change: None,
            reason: "no readings yet".into(),
            hottest: None,
            memory_pressure: None,
        }
    }

    /// The box's level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The shed actions in effect, in the order they were taken.
    pub fn shed(&self) -> Vec<Action> {
        LADDER[..self.stage].iter().map(|(shed, _)| *shed).collect()
    }

    /// The CPU quota of `CapCpu`, in the engine's unit (1e9 per CPU).
    pub fn throttle_nano_cpus(&self) -> i64 {
        self.throttle_nano_cpus
    }

    pub fn status(&self) -> ShedStatus {
        ShedStatus {
            level: self.level,
            thermal_level: self.thermal_level,
            pressure_level: self.pressure_level,
            oom_hold: self.oom_active,
            reason: self.reason.clone(),
            shed: self.shed(),
            hottest: self.hottest.clone(),
            memory_pressure: self.memory_pressure,
        }
    }

    /// [`ShedPolicy::step`] with a [`Sample`].
    pub fn step_sample(&mut self, now: Instant, sample: &Sample) -> Vec<ShedAction> {
        self.step(
            now,
            sample.hottest(),
            sample.memory_pressure(),
            sample.oom_kills_since_last,
        )
    }

    /// Takes one poll's readings and returns what to do now, in order.
    /// `memory_pressure` is PSI memory `some avg10` (percent).
    pub fn step(
        &mut self,
        now: Instant,
        hottest: Option<&ZoneReading>,
        memory_pressure: Option<f64>,
        oom_kills_since_last: u32,
    ) -> Vec<ShedAction> {
        self.hottest = hottest.cloned();
        self.memory_pressure = memory_pressure;
        if oom_kills_since_last > 0 {
            self.last_oom = Some(now);
        }
        self.thermal_level = match (&self.thermal, hottest.and_then(|z| z.millideg)) {
            (Some(cfg), Some(t)) => thermal_level(cfg, self.thermal_level, t),
            _ => Level::Normal,
        };
        self.pressure_level = match (&self.pressure, memory_pressure) {
            (Some(cfg), Some(p)) => pressure_level(cfg, self.pressure_level, p),
            _ => Level::Normal,
        };
        let oom_level = self.oom_level(now);
        self.oom_active = oom_level > Level::Normal;
        let level = self.thermal_level.max(self.pressure_level).max(oom_level);
        self.reason = self.cause(level, now);

        let mut out = Vec::new();
        if level != self.level {
            out.push(ShedAction {
                action: Action::Level(level),
                reason: format!("{}: level {level} (was {})", self.reason, self.level),
            });
            self.level = level;
            self.last_change = Some(now);
        }

        let (entry, max) = level.stages();
        let held = self
            .last_change
            .is_none_or(|t| now.saturating_duration_since(t) >= self.hold);
        if self.stage < entry {
            while self.stage < entry {
                out.push(self.shed_action(LADDER[self.stage].0));
                self.stage += 1;
            }
            self.last_change = Some(now);
        } else if self.stage < max && held {
            out.push(self.shed_action(LADDER[self.stage].0));
            self.stage += 1;
            self.last_change = Some(now);
        } else if self.stage > max && held {
            self.stage -= 1;
            out.push(self.shed_action(LADDER[self.stage].1));
            self.last_change = Some(now);
        }
        out
    }

    fn oom_level(&self, now: Instant) -> Level {
        match (&self.pressure, self.last_oom) {
            (Some(cfg), Some(t)) if now.saturating_duration_since(t) < cfg.oom_hold.as_std() => {
                Level::Throttle
            }
            _ => Level::Normal,
        }
    }

    fn shed_action(&self, action: Action) -> ShedAction {
        let what = match action {
            Action::Level(l) => format!("level {l}"),
            Action::CapCpu(p) => format!(
                "capping the CPU of {p}-priority services at {} CPUs",
                self.throttle_nano_cpus as f64 / 1e9
            ),
            Action::Pause(p) => format!("pausing {p}-priority services"),
            Action::Stop(p) => format!("stopping {p}-priority services"),
            Action::Start(p) => format!("starting {p}-priority services again"),
            Action::Unpause(p) => format!("unpausing {p}-priority services"),
            Action::Uncap(p) => format!("lifting the CPU cap of {p}-priority services"),
        };
        ShedAction {
            action,
            reason: format!("{}: {what}", self.reason),
        }
    }

    /// Why the box is at `level`: the source that puts it there (temperature first,
    /// then pressure, then OOM kills), or, at `normal`, every source's reading.
    fn cause(&self, level: Level, now: Instant) -> String {
        let thermal = match (&self.thermal, &self.hottest) {
            (Some(cfg), Some(z)) => z
                .millideg
                .map(|t| thermal_cause(cfg, self.thermal_level, &z.zone, Millidegrees(t))),
            _ => None,
        };
        let pressure = match (&self.pressure, self.memory_pressure) {
            (Some(cfg), Some(p)) => Some(pressure_cause(cfg, self.pressure_level, p)),
            _ => None,
        };
        if level > Level::Normal {
            if self.thermal_level == level
                && let Some(t) = thermal
            {
                return t;
            }
            if self.pressure_level == level
                && let Some(p) = pressure
            {
                return p;
            }
            if self.oom_active
                && let (Some(cfg), Some(t)) = (&self.pressure, self.last_oom)
            {
                return format!(
                    "OOM kill {}s ago (held at throttle for {} after one)",
                    now.saturating_duration_since(t).as_secs(),
                    cfg.oom_hold
                );
            }
        }
        let parts: Vec<String> = [thermal, pressure].into_iter().flatten().collect();
        if parts.is_empty() {
            "no temperature or memory pressure readings".into()
        } else {
            parts.join("; ")
        }
    }
}

/// The thermal level for temperature `t` when the previous level was `prev`.
fn thermal_level(cfg: &ThermalConfig, prev: Level, t: i64) -> Level {
    let h = cfg.hysteresis.0;
    let mut level = Level::Normal;
    for (l, threshold) in [
        (Level::Warn, cfg.warn.0),
        (Level::Throttle, cfg.throttle.0),
        (Level::Critical, cfg.critical.0),
    ] {
        if t >= threshold || (l <= prev && t >= threshold - h) {
            level = l;
        }
    }
    level
}

/// The pressure level for PSI `p` when the previous level was `prev`.
fn pressure_level(cfg: &PressureConfig, prev: Level, p: f64) -> Level {
    let mut level = Level::Normal;
    let thresholds = [
        Some((Level::Throttle, cfg.throttle)),
        cfg.critical.map(|c| (Level::Critical, c)),
    ];
    for (l, threshold) in thresholds.into_iter().flatten() {
        if p >= threshold || (l <= prev && p >= threshold - cfg.hysteresis) {
            level = l;
        }
    }
    level
}

fn thermal_cause(cfg: &ThermalConfig, level: Level, zone: &str, t: Millidegrees) -> String {
    let threshold = match level {
        Level::Normal => return format!("{zone} at {t} is below warn {}", cfg.warn),
        Level::Warn => cfg.warn,
        Level::Throttle => cfg.throttle,
        Level::Critical => cfg.critical,
    };
    if t >= threshold {
        format!("{zone} at {t} >= {level} {threshold}")
    } else {
        format!(
            "{zone} at {t}, not yet below {} ({level} {threshold} - hysteresis {})",
            Millidegrees(threshold.0 - cfg.hysteresis.0),
            cfg.hysteresis
        )
    }
}

fn pressure_cause(cfg: &PressureConfig, level: Level, p: f64) -> String {
    let threshold = match level {
        Level::Normal | Level::Warn => {
            return format!("memory pressure {p:.1}% is below {}%", cfg.throttle);
        }
        Level::Throttle => cfg.throttle,
        Level::Critical => cfg.critical.unwrap_or(cfg.throttle),
    };
    if p >= threshold {
        format!("memory pressure {p:.1}% (some avg10) >= {level} {threshold}%")
    } else {
        format!(
            "memory pressure {p:.1}% (some avg10), not yet below {}% ({level} {threshold}% - hysteresis {})",
            threshold - cfg.hysteresis,
            cfg.hysteresis
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Duration as Dur;

    const LOW: Priority = Priority::Low;
    const NORMAL: Priority = Priority::Normal;

    fn thermal(hysteresis_c: i64) -> ThermalConfig {
        ThermalConfig {
            zones: vec!["thermal_zone0".into()],
            warn: Millidegrees(70_000),
            throttle: Millidegrees(80_000),
            critical: Millidegrees(85_000),
            hysteresis: Millidegrees(hysteresis_c * 1000),
        }
    }

    fn pressure() -> PressureConfig {
        PressureConfig {
            throttle: 40.0,
            critical: Some(80.0),
            hysteresis: 10.0,
            oom_hold: Dur::from_secs(60),
        }
    }

    fn shedding() -> Shedding {
        Shedding {
            poll: Dur::from_secs(5),
            hold: Dur::from_secs(10),
            throttle_cpus: 0.25,
        }
    }

    fn zone(millideg: i64) -> ZoneReading {
        ZoneReading {
            zone: "thermal_zone0".into(),
            kind: Some("cpu-thermal".into()),
            millideg: Some(millideg),
            error: None,
        }
    }

    /// Drives a policy with a poll every 5 s.
    struct Run {
        policy: ShedPolicy,
        start: Instant,
        t: u64,
    }

    impl Run {
        fn new(policy: ShedPolicy) -> Run {
            Run {
                policy,
                start: Instant::now(),
                t: 0,
            }
        }

        fn thermal(hysteresis_c: i64) -> Run {
            Run::new(ShedPolicy::with_config(
                Some(thermal(hysteresis_c)),
                Some(pressure()),
                &shedding(),
            ))
        }

        /// One poll at `t` seconds (then the clock moves 5 s on).
        fn poll(&mut self, temp: Option<i64>, psi: Option<f64>, oom: u32) -> Vec<ShedAction> {
            let now = self.start + Duration::from_secs(self.t);
            self.t += 5;
            let z = temp.map(zone);
            self.policy.step(now, z.as_ref(), psi, oom)
        }

        fn temp(&mut self, millideg: i64) -> Vec<Action> {
            actions(self.poll(Some(millideg), Some(0.0), 0))
        }
    }

    fn actions(v: Vec<ShedAction>) -> Vec<Action> {
        v.into_iter().map(|a| a.action).collect()
    }

    #[test]
    fn escalation_goes_in_order_one_step_per_hold() {
        let mut r = Run::thermal(5);
        assert_eq!(r.temp(60_000), []);
        assert_eq!(r.policy.level(), Level::Normal);
        assert_eq!(r.temp(72_000), [Action::Level(Level::Warn)]);
        // Throttle: the CPU cap at once, the pause one hold later.
        assert_eq!(
            r.temp(82_000),
            [Action::Level(Level::Throttle), Action::CapCpu(LOW)]
        );
        assert_eq!(r.temp(82_000), []);
        assert_eq!(r.temp(82_000), [Action::Pause(LOW)]);
        assert_eq!(r.temp(82_000), []);
        assert_eq!(r.temp(82_000), []);
        assert_eq!(r.policy.shed(), [Action::CapCpu(LOW), Action::Pause(LOW)]);
        // Critical: low-priority services stop at once, normal ones a hold later.
        let v = r.poll(Some(86_000), Some(0.0), 0);
        assert_eq!(
            actions(v.clone()),
            [Action::Level(Level::Critical), Action::Stop(LOW)]
        );
        assert_eq!(
            v[1].reason,
            "thermal_zone0 at 86 °C >= critical 85 °C: stopping low-priority services"
        );
        assert_eq!(r.temp(85_200), []);
        let v = r.poll(Some(85_200), Some(0.0), 0);
        assert_eq!(actions(v.clone()), [Action::Stop(NORMAL)]);
        assert_eq!(
            v[0].reason,
            "thermal_zone0 at 85.2 °C >= critical 85 °C: stopping normal-priority services"
        );
        for _ in 0..10 {
            assert_eq!(r.temp(90_000), []);
        }
        assert_eq!(
            r.policy.shed(),
            [
                Action::CapCpu(LOW),
                Action::Pause(LOW),
                Action::Stop(LOW),
                Action::Stop(NORMAL)
            ]
        );
        let st = r.policy.status();
        assert_eq!(st.level, Level::Critical);
        assert_eq!(st.thermal_level, Level::Critical);
        assert_eq!(st.hottest.unwrap().millideg, Some(90_000));
    }

    #[test]
    fn a_jump_to_critical_takes_the_lower_steps_first() {
        let mut r = Run::thermal(5);
        let v = r.poll(Some(95_000), None, 0);
        assert_eq!(
            actions(v.clone()),
            [
                Action::Level(Level::Critical),
                Action::CapCpu(LOW),
                Action::Pause(LOW),
                Action::Stop(LOW)
            ]
        );
        assert_eq!(
            v[1].reason,
            "thermal_zone0 at 95 °C >= critical 85 °C: capping the CPU of low-priority services at 0.25 CPUs"
        );
        assert_eq!(r.temp(95_000), []);
        assert_eq!(r.temp(95_000), [Action::Stop(NORMAL)]);
    }

    #[test]
    fn hysteresis_stops_flapping_at_a_threshold() {
        let count_levels = |hysteresis_c: i64| {
            let mut r = Run::thermal(hysteresis_c);
            assert_eq!(r.temp(75_000), [Action::Level(Level::Warn)]);
            let mut all = Vec::new();
            for i in 0..40 {
                all.extend(r.temp(if i % 2 == 0 { 80_100 } else { 79_900 }));
            }
            all
        };
        let all = count_levels(5);
        let levels: Vec<_> = all
            .iter()
            .filter(|a| matches!(a, Action::Level(_)))
            .collect();
        assert_eq!(levels, [&Action::Level(Level::Throttle)]);
        // The ladder climbs to its throttle stages and never comes back down.
        assert_eq!(all[1..], [Action::CapCpu(LOW), Action::Pause(LOW)]);

        // Without hysteresis the same readings flap on every poll.
        let flapping = count_levels(0)
            .iter()
            .filter(|a| matches!(a, Action::Level(_)))
            .count();
        assert_eq!(flapping, 40);
    }

    #[test]
    fn cooling_restores_in_reverse_one_step_per_hold() {
        let mut r = Run::thermal(5);
        r.temp(95_000);
        r.temp(95_000);
        r.temp(95_000);
        assert_eq!(r.policy.shed().len(), 4);

        // 82 °C: still above 80 °C (critical 85 - 5) -> critical, nothing restored.
        assert_eq!(r.temp(82_000), []);
        // 79 °C: below 80 -> throttle; restore after a hold, down to the pause.
        let v = r.poll(Some(79_000), None, 0);
        assert_eq!(actions(v), [Action::Level(Level::Throttle)]);
        assert_eq!(r.temp(79_000), []);
        let v = r.poll(Some(79_000), None, 0);
        assert_eq!(actions(v.clone()), [Action::Start(NORMAL)]);
        assert_eq!(
            v[0].reason,
            "thermal_zone0 at 79 °C, not yet below 75 °C (throttle 80 °C - hysteresis 5 °C): \
             starting normal-priority services again"
        );
        assert_eq!(r.temp(79_000), []);
        assert_eq!(r.temp(79_000), [Action::Start(LOW)]);
        for _ in 0..5 {
            assert_eq!(r.temp(79_000), []);
        }
        assert_eq!(r.policy.shed(), [Action::CapCpu(LOW), Action::Pause(LOW)]);

        // 50 °C: normal; the rest comes back in reverse.
        assert_eq!(r.temp(50_000), [Action::Level(Level::Normal)]);
        assert_eq!(r.temp(50_000), []);
        let v = r.poll(Some(50_000), None, 0);
        assert_eq!(actions(v.clone()), [Action::Unpause(LOW)]);
        assert_eq!(
            v[0].reason,
            "thermal_zone0 at 50 °C is below warn 70 °C: unpausing low-priority services"
        );
        assert_eq!(r.temp(50_000), []);
        assert_eq!(r.temp(50_000), [Action::Uncap(LOW)]);
        for _ in 0..5 {
            assert_eq!(r.temp(50_000), []);
        }
        assert!(r.policy.shed().is_empty());
    }

    #[test]
    fn critical_services_are_never_touched() {
        let mut r = Run::thermal(5);
        // Temperature ramps 40 -> 100 -> 40 °C over 240 polls, with jitter, memory
        // pressure and OOM kills on top: every level, up and down, several times.
        let mut seen = std::collections::HashSet::new();
        for i in 0u64..2000 {
            let phase = (i % 240) as i64;
            let ramp = if phase < 120 { phase } else { 240 - phase };
            let jitter = ((i * 7919) % 7) as i64 * 300 - 900;
            let temp = 40_000 + ramp * 500 + jitter;
            let psi = if i % 50 < 5 { 60.0 } else { (i % 7) as f64 };
            let oom = u32::from(i % 97 == 0);
            for a in r.poll(Some(temp), Some(psi), oom) {
                seen.insert(a.action);
                let p = match a.action {
                    Action::Level(_) => continue,
                    Action::CapCpu(p)
                    | Action::Pause(p)
                    | Action::Stop(p)
                    | Action::Start(p)
                    | Action::Unpause(p)
                    | Action::Uncap(p) => p,
                };
                assert_ne!(p, Priority::Critical, "{a:?}");
            }
        }
        // The walk did reach the top of the ladder and come back.
        assert!(seen.contains(&Action::Stop(NORMAL)));
        assert!(seen.contains(&Action::Uncap(LOW)));
    }

    #[test]
    fn memory_pressure_climbs_the_same_ladder() {
        let mut r = Run::new(ShedPolicy::with_config(None, Some(pressure()), &shedding()));
        assert_eq!(actions(r.poll(None, Some(5.0), 0)), []);
        let v = r.poll(None, Some(45.0), 0);
        assert_eq!(
            actions(v.clone()),
            [Action::Level(Level::Throttle), Action::CapCpu(LOW)]
        );
        assert_eq!(
            v[1].reason,
            "memory pressure 45.0% (some avg10) >= throttle 40%: \
             capping the CPU of low-priority services at 0.25 CPUs"
        );
        // 35% is within the hysteresis (left below 30%).
        assert_eq!(actions(r.poll(None, Some(35.0), 0)), []);
        assert_eq!(actions(r.poll(None, Some(35.0), 0)), [Action::Pause(LOW)]);
        assert_eq!(r.policy.status().pressure_level, Level::Throttle);
        // 85%: critical.
        assert_eq!(
            actions(r.poll(None, Some(85.0), 0)),
            [Action::Level(Level::Critical), Action::Stop(LOW)]
        );
        // 25%: normal again, restored one step per hold.
        assert_eq!(
            actions(r.poll(None, Some(25.0), 0)),
            [Action::Level(Level::Normal)]
        );
        let mut restored = Vec::new();
        for _ in 0..10 {
            restored.extend(actions(r.poll(None, Some(25.0), 0)));
        }
        assert_eq!(
            restored,
            [Action::Start(LOW), Action::Unpause(LOW), Action::Uncap(LOW)]
        );
    }

    #[test]
    fn an_oom_kill_holds_the_throttle_level() {
        let mut r = Run::thermal(5);
        let v = r.poll(Some(50_000), Some(1.0), 2);
        assert_eq!(
            actions(v.clone()),
            [Action::Level(Level::Throttle), Action::CapCpu(LOW)]
        );
        assert!(
            v[1].reason
                .starts_with("OOM kill 0s ago (held at throttle for 1m after one)"),
            "{}",
            v[1].reason
        );
        assert!(r.policy.status().oom_hold);
        // Held for oom_hold (60 s) after the kill: polls at 5..55 s.
        let mut during = Vec::new();
        for _ in 0..11 {
            during.extend(actions(r.poll(Some(50_000), Some(1.0), 0)));
        }
        assert_eq!(during, [Action::Pause(LOW)]);
        assert_eq!(r.policy.level(), Level::Throttle);
        // At 60 s it is over.
        assert_eq!(
            actions(r.poll(Some(50_000), Some(1.0), 0)),
            [Action::Level(Level::Normal)]
        );
        assert!(!r.policy.status().oom_hold);
        // A hotter source still wins: the thermal reason is given.
        let v = r.poll(Some(86_000), Some(1.0), 1);
        assert!(
            v[0].reason
                .starts_with("thermal_zone0 at 86 °C >= critical"),
            "{}",
            v[0].reason
        );
    }

    #[test]
    fn no_readings_shed_nothing() {
        let mut r = Run::thermal(5);
        for _ in 0..10 {
            assert!(r.poll(None, None, 0).is_empty());
        }
        assert_eq!(r.policy.level(), Level::Normal);
        assert_eq!(
            r.policy.status().reason,
            "no temperature or memory pressure readings"
        );
        // A profile without thermal and pressure sections ignores readings.
        let mut r = Run::new(ShedPolicy::with_config(None, None, &shedding()));
        assert!(r.poll(Some(99_000), Some(99.0), 5).is_empty());
    }
}
