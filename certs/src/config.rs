//! What the CA is for: its domain, the ip ranges it may certify, lifetimes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::names;

const DAY: u64 = 24 * 60 * 60;
const YEAR: u64 = 365 * DAY;

/// The ranges a new CA permits when the configuration names none: the private and
/// loopback ranges of IPv4 and IPv6 and the carrier-grade NAT range (tailnets).
pub const DEFAULT_PERMITTED_IPS: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "100.64.0.0/10",
    "fc00::/7",
    "::1/128",
];

/// The settings of a CA.
///
/// The domain and the permitted ranges become the name constraints of the root and
/// the intermediate when the CA is created and cannot change afterwards; the
/// lifetimes of the root and the intermediate apply at creation; the leaf lifetime and
/// the renewal point apply to every leaf issued from then on.
#[derive(Debug, Clone, PartialEq)]
pub struct CaConfig {
    /// The DNS name the CA serves, such as `vm.local`: the CA may issue it and every
    /// name under it, nothing else.
    pub domain: String,
    /// The ip ranges the CA may put into certificates.
    pub permitted_ips: Vec<IpNet>,
    /// Lifetime of a root Turtle creates (default 20 × 365 days).
    pub root_lifetime: Duration,
    /// Lifetime of the intermediate (default 5 × 365 days; never beyond the root's end).
    pub intermediate_lifetime: Duration,
    /// Lifetime of a leaf (default 90 days; never beyond the intermediate's end).
    pub leaf_lifetime: Duration,
    /// When a leaf is renewed, as the fraction of its lifetime that has passed
    /// (default 2/3: a 90-day leaf is renewed after 60 days).
    pub renew_at: f64,
}

impl CaConfig {
    /// The defaults for `domain`. Nothing is checked here; opening the CA checks.
    pub fn new(domain: impl Into<String>) -> Self {
        CaConfig {
            domain: domain.into(),
            permitted_ips: DEFAULT_PERMITTED_IPS
                .iter()
                .map(|s| s.parse().expect("the default ranges parse"))
                .collect(),
            root_lifetime: Duration::from_secs(20 * YEAR),
            intermediate_lifetime: Duration::from_secs(5 * YEAR),
            leaf_lifetime: Duration::from_secs(90 * DAY),
            renew_at: 2.0 / 3.0,
        }
    }

    /// Checks the settings and returns the domain in its canonical form (lowercase,
    /// no trailing dot).
    pub(crate) fn validate(&self) -> Result<String, Error> {
        let domain = names::canonical_domain(&self.domain)?;
        let invalid = |reason: &str| {
            Err(Error::InvalidConfig {
                reason: reason.to_string(),
            })
        };
        if !(self.renew_at.is_finite() && self.renew_at > 0.0 && self.renew_at < 1.0) {
            return invalid("renew_at must be a fraction between 0 and 1, such as 0.66");
        }
        // Short lifetimes exist for tests of renewal against a running
        // stack; below 10 s a restart cannot finish before the next renewal.
        if self.leaf_lifetime < Duration::from_secs(10) {
            return invalid("the leaf lifetime must be at least 10 seconds");
        }
        if self.intermediate_lifetime <= self.leaf_lifetime {
            return invalid("the intermediate lifetime must be longer than the leaf lifetime");
        }
        if self.root_lifetime < self.intermediate_lifetime {
            return invalid("the root lifetime must be at least the intermediate lifetime");
        }
        if self.root_lifetime > Duration::from_secs(100 * YEAR) {
            return invalid("the root lifetime must be at most 100 years");
        }
        Ok(domain)
    }
}

/// An ip range: an address and a prefix length, written `10.0.0.0/8` or `fc00::/7`.
/// A bare address is a range of one (`/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The range of `prefix` leading bits of `addr`; host bits must be zero.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, Error> {
        let net = IpNet { addr, prefix };
        let invalid = |reason: String| Error::InvalidIpNet {
            value: format!("{addr}/{prefix}"),
            reason,
        };
        if prefix > net.max_prefix() {
            return Err(invalid(format!(
                "the prefix of an {} range is at most {}",
                if addr.is_ipv4() { "IPv4" } else { "IPv6" },
                net.max_prefix()
            )));
        }
        let network = net.network();
        if network != addr {
            return Err(invalid(format!(
                "host bits are set (did you mean {network}/{prefix}?)"
            )));
        }
        Ok(net)
    }

    /// The first address of the range.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The number of leading bits that are fixed.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in the range (an IPv4 address is never in an IPv6 range).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask32(self.prefix);
                u32::from(net) & mask == u32::from(*ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask128(self.prefix);
                u128::from(net) & mask == u128::from(*ip) & mask
            }
            _ => false,
        }
    }

    fn max_prefix(&self) -> u8 {
        if self.addr.is_ipv4() { 32 } else { 128 }
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(self.prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(self.prefix)).into()),
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for IpNet {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidIpNet {
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| invalid("not an ip address"))?;
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .map_err(|_| invalid("the prefix is not a number"))?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        IpNet::new(addr, prefix)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_contain() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(&"10.200.3.4".parse().unwrap()));
        assert!(!net.contains(&"11.0.0.1".parse().unwrap()));
        assert!(!net.contains(&"::1".parse().unwrap()));
        let net: IpNet = "fc00::/7".parse().unwrap();
        assert!(net.contains(&"fd12::1".parse().unwrap()));
        assert!(!net.contains(&"fe80::1".parse().unwrap()));
        let one: IpNet = "::1".parse().unwrap();
        assert_eq!(one.to_string(), "::1/128");
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&"8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn bad_ranges_say_why() {
        let err = "10.1.2.3/8".parse::<IpNet>().unwrap_err().to_string();
        assert!(err.contains("did you mean 10.0.0.0/8"), "{err}");
        let err = "10.0.0.0/33".parse::<IpNet>().unwrap_err().to_string();
        assert!(err.contains("at most 32"), "{err}");
        assert!("vm.local/8".parse::<IpNet>().is_err());
    }

    #[test]
    fn defaults_validate() {
        let cfg = CaConfig::new("VM.local.");
        assert_eq!(cfg.validate().unwrap(), "vm.local");
        assert_eq!(cfg.permitted_ips.len(), DEFAULT_PERMITTED_IPS.len());
        let mut bad = cfg.clone();
        bad.renew_at = 1.5;
        assert!(bad.validate().is_err());
        let mut bad = cfg.clone();
        bad.leaf_lifetime = bad.intermediate_lifetime;
        assert!(bad.validate().is_err());
        let mut bad = cfg;
        bad.root_lifetime = Duration::MAX;
        assert!(bad.validate().is_err());
    }
}
