//! The VPN's IPv4 subnet (`--vpn-subnet`, such as `10.99.0.0/16`): `.1` is the
//! server, devices get `.2` onwards, the last address (broadcast) is never given.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network with its host bits zero and a prefix of 8 to 30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The VPN server's own address: the network plus one.
    pub fn server(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The offset (from the network address) of the last address a device may get.
    pub fn last_offset(&self) -> i64 {
        (1i64 << (32 - self.prefix)) - 2
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("{s:?} is not a VPN subnet: {why}");
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| bad("write it as <IPv4 network>/<prefix>, such as 10.99.0.0/16"))?;
        let network: Ipv4Addr = addr
            .parse()
            .map_err(|_| bad("the address is not IPv4, such as 10.99.0.0"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| bad("the prefix must be a number from 8 to 30"))?;
        let mask = u32::MAX << (32 - prefix);
        if u32::from(network) & !mask != 0 {
            let base = Ipv4Addr::from(u32::from(network) & mask);
            return Err(bad(&format!(
                "host bits are set: did you mean {base}/{prefix}?"
            )));
        }
        Ok(Subnet { network, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_subnet() {
        let s: Subnet = "10.99.0.0/16".parse().unwrap();
        assert_eq!(s.server(), Ipv4Addr::new(10, 99, 0, 1));
        assert_eq!(s.last_offset(), 65534);
        assert_eq!(s.to_string(), "10.99.0.0/16");
    }

    #[test]
    fn bad_subnets_say_why() {
        for (text, why) in [
            ("10.99.0.0", "write it as"),
            ("10.99.0.1/16", "did you mean 10.99.0.0/16"),
            ("10.99.0.0/31", "from 8 to 30"),
            ("fd00::/64", "not IPv4"),
        ] {
            let e = text.parse::<Subnet>().unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
