//! `turtle backend vpn`'s flags (each also an environment variable
//! `TURTLE_VPN_<FLAG>`), and the sync interval's syntax.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::cidr::Cidr;

/// Command-line arguments of `turtle backend vpn`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Base URL of the api (plain HTTP on the stack's network); the peers
    /// come from its GET /v1/vpn/peers.
    #[arg(long, env = "TURTLE_VPN_API", default_value = "http://api:8080")]
    pub api: String,
    /// File holding the vpn-token, sent as `Authorization: Bearer` to the api.
    #[arg(
        long,
        env = "TURTLE_VPN_TOKEN_FILE",
        default_value = "/run/turtle/secrets/vpn-token"
    )]
    pub token_file: PathBuf,
    /// File holding the server's WireGuard private key (64 hex characters,
    /// or base64).
    #[arg(
        long,
        env = "TURTLE_VPN_KEY_FILE",
        default_value = "/run/turtle/secrets/vpn-key"
    )]
    pub key_file: PathBuf,
    /// UDP port WireGuard listens on (the stack publishes it on the host).
    #[arg(long, env = "TURTLE_VPN_LISTEN_PORT", default_value_t = 51820)]
    pub listen_port: u16,
    /// Name of the tun interface to create (1 to 15 characters).
    #[arg(long, env = "TURTLE_VPN_INTERFACE", default_value = "wg0")]
    pub interface: String,
    /// The server's address in the tunnel, with the tunnel network's prefix.
    #[arg(long, env = "TURTLE_VPN_ADDRESS", default_value = "10.99.0.1/16")]
    pub address: Cidr,
    /// How often to fetch the peer list from the api (e.g. 2s, 500ms, 1m).
    #[arg(long, env = "TURTLE_VPN_SYNC_INTERVAL", default_value = "2s")]
    pub sync_interval: Interval,
    /// Address of the health endpoint (GET /health), plain HTTP.
    #[arg(
        long,
        env = "TURTLE_VPN_HEALTH_LISTEN",
        default_value = "127.0.0.1:8081"
    )]
    pub health_listen: std::net::SocketAddr,
}

/// A positive duration written as a number and a unit (`ms`, `s`, `m`;
/// seconds when there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl FromStr for Interval {
    type Err = String;

    fn from_str(s: &str) -> Result<Interval, String> {
        let d = s
            .parse::<turtle_units::Duration>()
            .map_err(|e| e.to_string())?
            .as_std();
        if d.is_zero() {
            return Err(format!("{s:?}: the interval must be more than zero"));
        }
        Ok(Interval(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn intervals() {
        assert_eq!("2s".parse(), Ok(Interval(Duration::from_secs(2))));
        assert_eq!("500ms".parse(), Ok(Interval(Duration::from_millis(500))));
        assert_eq!("1m".parse(), Ok(Interval(Duration::from_secs(60))));
        assert_eq!("3".parse(), Ok(Interval(Duration::from_secs(3))));
        // Turtle's one duration syntax: hours and fractions read too.
        assert_eq!("1.5s".parse(), Ok(Interval(Duration::from_millis(1500))));
        for bad in ["", "s", "0s", "-1s", "soon"] {
            assert!(bad.parse::<Interval>().is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_are_the_contracts() {
        let a = Cli::try_parse_from(["vpn"]).unwrap().args;
        assert_eq!(a.api, "http://api:8080");
        assert_eq!(a.token_file, PathBuf::from("/run/turtle/secrets/vpn-token"));
        assert_eq!(a.key_file, PathBuf::from("/run/turtle/secrets/vpn-key"));
        assert_eq!(a.listen_port, 51820);
        assert_eq!(a.interface, "wg0");
        assert_eq!(a.address.to_string(), "10.99.0.1/16");
        assert_eq!(a.sync_interval, Interval(Duration::from_secs(2)));
        assert_eq!(a.health_listen.to_string(), "127.0.0.1:8081");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        assert!(Cli::try_parse_from(["vpn", "--address", "10.99.0.1"]).is_err());
        assert!(Cli::try_parse_from(["vpn", "--sync-interval", "0s"]).is_err());
    }
}
