//! An IP address with a prefix length (`10.99.0.1/16`, `10.99.0.2/32`): the
//! interface address (host bits kept) and a peer's allowed IPs (a network:
//! [`Cidr::network`] clears the host bits, as boringtun does when it stores
//! them, so what we send and what the device reports compare equal).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address and a prefix length, validated (at most 32 for IPv4, 128 for IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// Why a text is not `ADDRESS/PREFIX`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CidrError {
    #[error("{0:?} is not ADDRESS/PREFIX (e.g. 10.99.0.1/16)")]
    Form(String),
    #[error("{0:?}: {1:?} is not an IP address")]
    Address(String, String),
    #[error("{0:?}: the prefix length must be 0..=32 for IPv4 and 0..=128 for IPv6")]
    Prefix(String),
}

impl Cidr {
    /// The network: the same prefix with the host bits cleared.
    pub fn network(self) -> Cidr {
        let addr = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        Cidr {
            addr,
            prefix: self.prefix,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| CidrError::Form(s.to_string()))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(s.to_string(), addr.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| CidrError::Prefix(s.to_string()))?;
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_both_families() {
        assert_eq!(c("10.99.0.1/16").to_string(), "10.99.0.1/16");
        assert_eq!(c("fd00::1/64").to_string(), "fd00::1/64");
    }

    #[test]
    fn network_clears_host_bits() {
        assert_eq!(c("10.99.3.7/16").network(), c("10.99.0.0/16"));
        assert_eq!(c("10.99.0.2/32").network(), c("10.99.0.2/32"));
        assert_eq!(c("10.99.0.2/0").network(), c("0.0.0.0/0"));
        assert_eq!(c("fd00::1:2/112").network(), c("fd00::1:0/112"));
        assert_eq!(c("fd00::1/0").network(), c("::/0"));
    }

    #[test]
    fn rejects_what_is_not_a_cidr() {
        assert!(matches!(
            "10.99.0.1".parse::<Cidr>(),
            Err(CidrError::Form(_))
        ));
        assert!(matches!(
            "nope/3".parse::<Cidr>(),
            Err(CidrError::Address(..))
        ));
        assert!(matches!(
            "10.0.0.1/33".parse::<Cidr>(),
            Err(CidrError::Prefix(_))
        ));
        assert!(matches!(
            "fd00::/129".parse::<Cidr>(),
            Err(CidrError::Prefix(_))
        ));
        assert!(matches!(
            "10.0.0.1/x".parse::<Cidr>(),
            Err(CidrError::Prefix(_))
        ));
    }
}
