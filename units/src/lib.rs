//! Byte sizes and durations, one type each, parsed once at the edge and
//! used by every crate of Turtle: the compose model, device profiles, the
//! supervisor's config, and the flags of the stack's services.
//!
//! # Design
//!
//! - **One grammar, the widest one people write.** A size is a number
//!   (decimals allowed) with an optional binary unit, case-insensitive,
//!   with or without a space: `4096`, `512m`, `512MiB`, `1.5 GB`, `64k`;
//!   `k`, `kb` and `kib` all mean 1024, as docker and compose read them. A
//!   duration is Go's syntax, as compose reads it (`1h2m3.5s`, `500ms`,
//!   `90s`), where a bare number is seconds.
//! - **Written back the way compose writes it** (`512m`, `1m30s`): the
//!   normalized compose project serializes through these types and its
//!   config hash depends on that text, so it must never change; every
//!   form written is read back unchanged.
//! - **Shown to people in full** ([`ByteSize`]'s `Display`: `1.5 GiB`;
//!   [`ByteSize::compact`] is the written form).
//! - Durations are kept to the millisecond (compose's precision, and
//!   nothing Turtle times needs less).
//! - Deserializing takes a string or a plain number (bytes; seconds).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a size or a duration does not parse: the message names the input
/// and the forms that work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const KIB: u64 = 1 << 10;
    pub const MIB: u64 = 1 << 20;
    pub const GIB: u64 = 1 << 30;

    pub fn bytes(self) -> u64 {
        self.0
    }

    /// The written form, as compose writes it: `1g`, `512m`, `64k`, or the
    /// number of bytes.
    pub fn compact(self) -> String {
        let b = self.0;
        for (unit, factor) in [("g", Self::GIB), ("m", Self::MIB), ("k", Self::KIB)] {
            if b >= factor && b.is_multiple_of(factor) {
                return format!("{}{unit}", b / factor);
            }
        }
        b.to_string()
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, UnitError> {
        let bad = || {
            UnitError(format!(
                "invalid size {s:?}: write a number of bytes, or one with a unit such as 512m, 64k, 1GiB or 1.5 GB"
            ))
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
            return Err(UnitError(format!("size {s:?} is too large")));
        }
        Ok(Self(bytes as u64))
    }
}

/// `1 GiB`, `512 MiB`, `1.5 GiB`, `300 B`: for people.
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

/// The written form ([`ByteSize::compact`]), always a string.
impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.compact())
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(n) => u64::try_from(n).map(Self).map_err(|_| {
                serde::de::Error::custom(format!("invalid size {n}: a size cannot be negative"))
            }),
            NumOrStr::Float(x) => Err(serde::de::Error::custom(format!(
                "invalid size {x}: write a whole number of bytes or a unit, such as 1.5GiB"
            ))),
            NumOrStr::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A duration, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub u64);

impl Duration {
    pub fn from_secs(s: u64) -> Self {
        Self(s.saturating_mul(1000))
    }
    pub fn from_millis(ms: u64) -> Self {
        Self(ms)
    }
    pub fn as_millis(self) -> u64 {
        self.0
    }
    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }
    /// Nanoseconds, as the engine's healthcheck fields take them.
    pub fn as_nanos(self) -> i64 {
        (self.0 as i64).saturating_mul(1_000_000)
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.as_std()
    }
}

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, UnitError> {
        let bad = || {
            UnitError(format!(
                "invalid duration {s:?}: write e.g. 500ms, 30s, 2m, 1h or 1m30s (a bare number is seconds)"
            ))
        };
        let t = s.trim().to_ascii_lowercase();
        if t.is_empty() {
            return Err(bad());
        }
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Self::from_secs(n));
        }
        let mut total_ms = 0f64;
        let mut rest = t.as_str();
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(bad)?;
            if num_len == 0 {
                return Err(bad());
            }
            let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let factor = match rest[..unit_len].trim() {
                "h" => 3_600_000.0,
                "m" => 60_000.0,
                "s" => 1000.0,
                "ms" => 1.0,
                "us" | "µs" => 0.001,
                "ns" => 0.000_001,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total_ms += value * factor;
        }
        if !total_ms.is_finite() || total_ms >= u64::MAX as f64 {
            return Err(UnitError(format!("duration {s:?} is too long")));
        }
        Ok(Self(total_ms.round() as u64))
    }
}

/// As compose writes durations: `1m30s`, `500ms`, `1h`, `2.500s` after
/// minutes; `0s`.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        if ms == 0 {
            return f.write_str("0s");
        }
        let (h, m, s, rem) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 || (rem > 0 && (h > 0 || m > 0)) {
            if rem > 0 {
                write!(f, "{s}.{rem:03}s")?;
            } else {
                write!(f, "{s}s")?;
            }
        } else if rem > 0 {
            write!(f, "{rem}ms")?;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumOrStr::deserialize(d)? {
            NumOrStr::Int(n) => u64::try_from(n).map(Self::from_secs).map_err(|_| {
                serde::de::Error::custom(format!(
                    "invalid duration {n}: a duration cannot be negative"
                ))
            }),
            NumOrStr::Float(x) if x >= 0.0 && x.is_finite() => {
                Ok(Self((x * 1000.0).round() as u64))
            }
            NumOrStr::Float(x) => Err(serde::de::Error::custom(format!(
                "invalid duration {x}: a duration cannot be negative"
            ))),
            NumOrStr::Str(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// What a scalar can be, for the types above.
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
    fn sizes_in_every_form_people_write() {
        for (text, bytes) in [
            ("0", 0),
            ("4096", 4096),
            ("7b", 7),
            ("64k", 64 << 10),
            ("64kb", 64 << 10),
            ("3KiB", 3 << 10),
            ("512m", 512 << 20),
            ("512MiB", 512 << 20),
            ("2 GB", 2 << 30),
            ("1g", 1 << 30),
            ("1.5GiB", 3 << 29),
            ("1t", 1 << 40),
            ("1PiB", 1 << 50),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in ["", "GiB", "12q", "-1m", "1..2g", "1e3"] {
            let e = bad.parse::<ByteSize>().unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")) && e.contains("512m"), "{e}");
        }
        assert!(
            "99999999p"
                .parse::<ByteSize>()
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }

    #[test]
    fn sizes_are_written_as_compose_writes_them_and_read_back() {
        for (bytes, written, shown) in [
            (1 << 30, "1g", "1 GiB"),
            (512 << 20, "512m", "512 MiB"),
            (64 << 10, "64k", "64 KiB"),
            (1 << 40, "1024g", "1 TiB"),
            (1500, "1500", "1.5 KiB"),
            (300, "300", "300 B"),
        ] {
            let s = ByteSize(bytes);
            assert_eq!(s.compact(), written);
            assert_eq!(s.to_string(), shown);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{written}\""));
            assert_eq!(written.parse::<ByteSize>(), Ok(s));
        }
        let from_number: ByteSize = serde_json::from_str("4096").unwrap();
        assert_eq!(from_number, ByteSize(4096));
        assert!(serde_json::from_str::<ByteSize>("-1").is_err());
    }

    #[test]
    fn durations_in_go_syntax() {
        for (text, ms) in [
            ("90", 90_000),
            ("500ms", 500),
            ("30s", 30_000),
            ("1m30s", 90_000),
            ("1h2m3.5s", 3_723_500),
            ("2M", 120_000),
            ("1.5s", 1500),
            ("1500us", 2),
            ("0s", 0),
        ] {
            assert_eq!(text.parse::<Duration>(), Ok(Duration(ms)), "{text}");
        }
        for bad in ["", "s", "5x", "1m30", "-1s", "1..5s"] {
            let e = bad.parse::<Duration>().unwrap_err().to_string();
            assert!(
                e.contains(&format!("{bad:?}")) && e.contains("500ms"),
                "{e}"
            );
        }
    }

    #[test]
    fn durations_are_written_as_compose_writes_them_and_read_back() {
        for (ms, written) in [
            (0, "0s"),
            (500, "500ms"),
            (5000, "5s"),
            (90_000, "1m30s"),
            (120_000, "2m"),
            (3_600_000, "1h"),
            (3_723_500, "1h2m3.500s"),
            (60_500, "1m0.500s"),
        ] {
            let d = Duration(ms);
            assert_eq!(d.to_string(), written);
            assert_eq!(written.parse::<Duration>(), Ok(d), "{written}");
        }
        let secs: Duration = serde_json::from_str("30").unwrap();
        assert_eq!(secs, Duration::from_secs(30));
        let frac: Duration = serde_json::from_str("0.25").unwrap();
        assert_eq!(frac, Duration(250));
        assert_eq!(
            Duration(1500).as_std(),
            std::time::Duration::from_millis(1500)
        );
        assert_eq!(Duration(2).as_nanos(), 2_000_000);
    }
}
