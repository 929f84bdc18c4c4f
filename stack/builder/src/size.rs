//! Byte sizes as flags take them: `2GiB`, `512m`, `1048576`.

use std::fmt;
use std::str::FromStr;

/// A number of bytes, parsed from a count with an optional binary suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// Why a size does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not a size: give a number of bytes with an optional suffix \
     k, m, g or t (binary: KiB, MiB, GiB, TiB), such as 2GiB or 512m"
)]
pub struct SizeError(String);

const UNITS: [(&str, u64); 4] = [
    ("t", 1 << 40),
    ("g", 1 << 30),
    ("m", 1 << 20),
    ("k", 1 << 10),
];

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<ByteSize, SizeError> {
        let err = || SizeError(s.to_string());
        let lower = s.trim().to_ascii_lowercase();
        let digits_end = lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len());
        let (number, unit) = lower.split_at(digits_end);
        let n: u64 = number.parse().map_err(|_| err())?;
        let unit = unit.trim();
        let unit = unit
            .strip_suffix("ib")
            .or_else(|| unit.strip_suffix('b'))
            .unwrap_or(unit);
        let factor = match unit {
            "" => 1,
            u => UNITS
                .iter()
                .find(|(name, _)| *name == u)
                .map(|(_, f)| *f)
                .ok_or_else(err)?,
        };
        n.checked_mul(factor).map(ByteSize).ok_or_else(err)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, factor) in UNITS {
            if self.0 >= factor && self.0.is_multiple_of(factor) {
                return write!(f, "{} {}iB", self.0 / factor, name.to_ascii_uppercase());
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        for (s, n) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("2GiB", 2 << 30),
            ("2g", 2 << 30),
            ("2 GB", 2 << 30),
            ("512m", 512 << 20),
            ("3KiB", 3 << 10),
            ("1t", 1 << 40),
            ("7b", 7),
        ] {
            assert_eq!(s.parse::<ByteSize>(), Ok(ByteSize(n)), "{s}");
        }
        for bad in [
            "",
            "g",
            "1.5g",
            "-1",
            "1x",
            "99999999999999999999",
            "16777216t",
        ] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_display_in_the_largest_whole_unit() {
        assert_eq!(ByteSize(2 << 30).to_string(), "2 GiB");
        assert_eq!(ByteSize(1536 << 20).to_string(), "1536 MiB");
        assert_eq!(ByteSize(1000).to_string(), "1000 bytes");
        assert_eq!(ByteSize(0).to_string(), "0 bytes");
    }
}
