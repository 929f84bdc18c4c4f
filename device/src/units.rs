//! The units a profile is written in, parsed once at the edge: byte sizes (`1GiB`,
//! `512MiB`, `1G`, `64m`), temperatures (`80C`, `80.5C` or millidegrees), shares of
//! RAM (`50%`) and durations (`5s`, `500ms`, `2m`).
//!
//! Each type deserializes from a string or a plain number and serializes back to a
//! string the parser reads, so a profile printed as YAML loads again unchanged.
//! Parse errors are plain strings; serde puts the field path and line in front.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes. Units are binary multiples and case-insensitive: `k`, `kb`,
/// `kib` are all 1024 (as docker and compose read them); `m`, `g`, `t`, `p` likewise.
/// A bare number is bytes. Decimals are allowed (`1.5GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const KIB: u64 = 1 << 10;
    pub const MIB: u64 = 1 << 20;
    pub const GIB: u64 = 1 << 30;

    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid size {s:?}: write a number with a unit, such as 512MiB, 1GiB, 1G or 64m"
            )
        };
        let t = s.trim().to_ascii_lowercase();
        let num_len = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = t[..num_len].parse().map_err(|_| bad())?;
        let factor: u64 = match t[num_len..].trim() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            "t" | "tb" | "tib" => 1 << 40,
            "p" | "pb" | "pib" => 1 << 50,
            _ => return Err(bad()),
        };
        let bytes = (value * factor as f64).round();
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(format!("size {s:?} is too large"));
        }
        Ok(Self(bytes as u64))
    }
}

/// `1 GiB`, `512 MiB`, `1.5 GiB`, `300 B`: for messages.
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (unit, factor) in [
            ("PiB", 1u64 << 50),
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if b >= factor {
                if b.is_multiple_of(factor) {
                    return write!(f, "{} {unit}", b / factor);
                }
                return write!(f, "{:.1} {unit}", b as f64 / factor as f64);
            }
        }
        write!(f, "{b} B")
    }
}

/// Serialized as the parser's own syntax (`1GiB`, or bytes when not a whole unit).
impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.0;
        for (unit, factor) in [
            ("PiB", 1u64 << 50),
            ("TiB", 1 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if b >= factor && b.is_multiple_of(factor) {
                return s.serialize_str(&format!("{}{unit}", b / factor));
            }
        }
        s.serialize_u64(b)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(n) if n >= 0 => Ok(Self(n as u64)),
            NumOrStr::Int(n) => Err(serde::de::Error::custom(format!(
                "invalid size {n}: a size cannot be negative"
            ))),
            NumOrStr::Float(x) => Err(serde::de::Error::custom(format!(
                "invalid size {x}: write a whole number of bytes or a unit, such as 1.5GiB"
            ))),
            NumOrStr::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

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

/// A duration: `500ms`, `5s`, `2m`, `1h`, or a plain number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid duration {s:?}: write e.g. 500ms, 5s, 2m or 1h");
        let t = s.trim().to_ascii_lowercase();
        let num_len = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = t[..num_len].parse().map_err(|_| bad())?;
        let seconds = match t[num_len..].trim() {
            "ms" => value / 1000.0,
            "" | "s" => value,
            "m" => value * 60.0,
            "h" => value * 3600.0,
            _ => return Err(bad()),
        };
        std::time::Duration::try_from_secs_f64(seconds)
            .map(Self)
            .map_err(|_| bad())
    }
}

/// `500ms`, `5s`, `2m`: for messages and serialization.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else if ms.is_multiple_of(3_600_000) && ms > 0 {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(n) if n >= 0 => Ok(Self(std::time::Duration::from_secs(n as u64))),
            NumOrStr::Int(n) => Err(serde::de::Error::custom(format!(
                "invalid duration {n}: a duration cannot be negative"
            ))),
            NumOrStr::Float(x) => std::time::Duration::try_from_secs_f64(x)
                .map(Self)
                .map_err(|_| serde::de::Error::custom(format!("invalid duration {x}"))),
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
    fn byte_sizes() {
        assert_eq!("1GiB".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert_eq!("512MiB".parse::<ByteSize>().unwrap().0, 512 << 20);
        assert_eq!("1G".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert_eq!("64m".parse::<ByteSize>().unwrap().0, 64 << 20);
        assert_eq!("1.5GiB".parse::<ByteSize>().unwrap().0, 3 << 29);
        assert_eq!("1PiB".parse::<ByteSize>().unwrap().0, 1 << 50);
        assert_eq!("4096".parse::<ByteSize>().unwrap().0, 4096);
        for bad in ["", "GiB", "12q", "-1m", "1..2g"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(ByteSize(1 << 30).to_string(), "1 GiB");
        assert_eq!(ByteSize(300 << 20).to_string(), "300 MiB");
        assert_eq!(ByteSize(3 << 29).to_string(), "1.5 GiB");
        assert_eq!(ByteSize(12).to_string(), "12 B");
    }

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
        assert_eq!("5s".parse::<Duration>().unwrap().0.as_secs(), 5);
        assert_eq!("500ms".parse::<Duration>().unwrap().0.as_millis(), 500);
        assert_eq!("2m".parse::<Duration>().unwrap().0.as_secs(), 120);
        assert_eq!(
            Duration(std::time::Duration::from_secs(120)).to_string(),
            "2m"
        );
        assert_eq!(
            Duration(std::time::Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert!("soon".parse::<Duration>().is_err());
    }
}
