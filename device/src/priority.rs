//! Service priorities and the budgets a profile gives each.
//!
//! A service says how much it matters with the label [`PRIORITY_LABEL`]
//! (`critical`, `normal` or `low`; absent: `normal`). The shedding policy never
//! touches critical services, stops normal ones last and low ones first.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The compose label a service's priority is read from.
pub const PRIORITY_LABEL: &str = "io.turtle.priority";

/// How much a service matters when the box runs hot or short of memory.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Shed first: CPU capped, paused, then stopped.
    Low,
    /// Stopped only at the critical level, after every low-priority service.
    #[default]
    Normal,
    /// Never shed.
    Critical,
}

/// A label value that is not a priority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid priority {value:?} in label {PRIORITY_LABEL}: use critical, normal or low")]
pub struct PriorityError {
    pub value: String,
}

impl Priority {
    /// All priorities, most important first.
    pub const ALL: [Priority; 3] = [Priority::Critical, Priority::Normal, Priority::Low];

    /// The priority a service's label gives: absent means [`Priority::Normal`].
    pub fn from_label(value: Option<&str>) -> Result<Priority, PriorityError> {
        value.map_or(Ok(Priority::Normal), str::parse)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
}

impl FromStr for Priority {
    type Err = PriorityError;

    /// `critical`, `normal`, `low`, case-insensitive, surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, PriorityError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Ok(Priority::Critical),
            "normal" => Ok(Priority::Normal),
            "low" => Ok(Priority::Low),
            _ => Err(PriorityError {
                value: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One priority's limits in the engine's units (`HostConfig.Memory`,
/// `CpuShares`, `NanoCpus`), from [`crate::Profile::budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Memory limit per container, bytes.
    pub memory_bytes: i64,
    /// Relative CPU weight (1024 = the engine's default).
    pub cpu_shares: i64,
    /// Hard CPU cap, 1e9 per CPU; `None`: no cap.
    pub nano_cpus: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(Priority::from_label(None).unwrap(), Priority::Normal);
        assert_eq!(Priority::from_label(Some("low")).unwrap(), Priority::Low);
        assert_eq!(
            Priority::from_label(Some(" Critical ")).unwrap(),
            Priority::Critical
        );
        let err = Priority::from_label(Some("urgent")).unwrap_err();
        assert!(
            err.to_string().contains("use critical, normal or low"),
            "{err}"
        );
        assert!(Priority::Low < Priority::Normal && Priority::Normal < Priority::Critical);
    }
}
