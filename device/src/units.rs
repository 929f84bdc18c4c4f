//! The units a profile is written in, parsed once at the edge: temperatures
//! (`80C`, `80.5C` or millidegrees) and shares of RAM (`50%`) here; byte sizes
//! (`1GiB`, `512MiB`, `1G`, `64m`) and durations (`5s`, `500ms`, `2m`) are
//! Turtle's one [`ByteSize`] and [`Duration`] (`turtle-units`), re-exported.
//!
//! Each type deserializes from a string or a plain number and serializes back to a
//! string the parser reads, so a profile printed as YAML loads again unchanged.
//! Parse errors are plain strings; serde puts the field path and line in front.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use turtle_units::{ByteSize, Duration};

/// A temperature in millidegrees Celsius, as `/sys/class/thermal/*/temp` reports it.
/// Written `80C`, `80.5C`, `80 °C` or as a plain number of millidegrees (`80000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millidegrees(pub i64);

impl FromStr for Millidegrees {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid temperature {s:?}: write degrees Celsius such as 80C or 80.5C, \
                 or a whole number of millidegrees such as 80000"
            )
        };
        let t = s.trim();
        let (num, celsius) = if let Some(n) = t.strip_suffix("°C").or_else(|| t.strip_suffix('C'))
        {
            (n.trim(), true)
        } else if let Some(n) = t.strip_suffix('c') {
            (n.trim(), true)
        } else {
            (t, false)
        };
        if celsius {
            let c: f64 = num.parse().map_err(|_| bad())?;
            if !c.is_finite() {
                return Err(bad());
            }
            Ok(Self((c * 1000.0).round() as i64))
        } else {
            num.parse::<i64>().map(Self).map_err(|_| bad())
        }
    }
}

/// `85 °C`, `85.2 °C`: for messages.
impl fmt::Display for Millidegrees {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        if m % 1000 == 0 {
            write!(f, "{} °C", m / 1000)
        } else {
            write!(f, "{:.1} °C", m as f64 / 1000.0)
        }
    }
}

impl Serialize for Millidegrees {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        if m % 1000 == 0 {
            s.serialize_str(&format!("{}C", m / 1000))
        } else {
            s.serialize_str(&format!("{}C", m as f64 / 1000.0))
        }
    }
}

impl<'de> Deserialize<'de> for Millidegrees {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(n) => Ok(Self(n)),
            NumOrStr::Float(x) => Err(serde::de::Error::custom(format!(
                "invalid temperature {x}: write degrees with a unit such as {x}C, \
                 or a whole number of millidegrees"
            ))),
            NumOrStr::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A whole percentage, written `50%` or `50`. Range checks belong to the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent(pub u32);

impl Percent {
    /// `self` percent of `total`.
    pub fn of(self, total: u64) -> u64 {
        (u128::from(total) * u128::from(self.0) / 100) as u64
    }
}

impl FromStr for Percent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let n = t.strip_suffix('%').unwrap_or(t).trim();
        n.parse::<u32>()
            .map(Self)
            .map_err(|_| format!("invalid percentage {s:?}: write a whole number such as 50%"))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(n) => u32::try_from(n)
                .map(Self)
                .map_err(|_| serde::de::Error::custom(format!("invalid percentage {n}"))),
            NumOrStr::Float(x) => Err(serde::de::Error::custom(format!(
                "invalid percentage {x}: write a whole number such as 50%"
            ))),
            NumOrStr::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// What a YAML scalar can be, for the types above.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrStr {
    Int(i64),
    Float(f64),
    Str(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_size_yaml_round_trip() {
        for text in ["1GiB", "512MiB", "4097"] {
            let b: ByteSize = serde_norway::from_str(text).unwrap();
            let back = serde_norway::to_string(&b).unwrap();
            assert_eq!(serde_norway::from_str::<ByteSize>(&back).unwrap(), b);
        }
        assert_eq!(serde_norway::from_str::<ByteSize>("1024").unwrap().0, 1024);
        assert!(serde_norway::from_str::<ByteSize>("-5").is_err());
    }

    #[test]
    fn temperatures() {
        assert_eq!("80C".parse::<Millidegrees>().unwrap().0, 80_000);
        assert_eq!("80.5C".parse::<Millidegrees>().unwrap().0, 80_500);
        assert_eq!("80 °C".parse::<Millidegrees>().unwrap().0, 80_000);
        assert_eq!("80000".parse::<Millidegrees>().unwrap().0, 80_000);
        assert!("80F".parse::<Millidegrees>().is_err());
        assert!("hot".parse::<Millidegrees>().is_err());
        assert_eq!(Millidegrees(85_200).to_string(), "85.2 °C");
        assert_eq!(Millidegrees(85_000).to_string(), "85 °C");
        assert_eq!(
            serde_norway::from_str::<Millidegrees>("75000").unwrap().0,
            75_000
        );
        assert_eq!(
            serde_norway::from_str::<Millidegrees>("5C").unwrap().0,
            5_000
        );
        let back = serde_norway::to_string(&Millidegrees(72_500)).unwrap();
        assert_eq!(
            serde_norway::from_str::<Millidegrees>(&back).unwrap().0,
            72_500
        );
    }

    #[test]
    fn percents_and_durations() {
        assert_eq!("50%".parse::<Percent>().unwrap(), Percent(50));
        assert_eq!(
            serde_norway::from_str::<Percent>("25").unwrap(),
            Percent(25)
        );
        assert_eq!(Percent(50).of(1000), 500);
        assert!("half".parse::<Percent>().is_err());
        // Durations as profiles write them, read through turtle-units.
        for (text, ms) in [("5s", 5000), ("500ms", 500), ("2m", 120_000)] {
            let d: Duration = serde_norway::from_str(text).unwrap();
            assert_eq!(d.as_millis(), ms);
        }
        assert!(serde_norway::from_str::<Duration>("soon").is_err());
    }
}
