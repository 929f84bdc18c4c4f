//! What the service runs with, built once at start from the flags and the files they
//! name: tokens, the token signer, the VPN server's identity, public names.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::Args;
use crate::db::Target;
use crate::jwt::Signer;
use crate::rate::Rate;
use crate::subnet::Subnet;
use turtle_stack_common::{Token, read_secret};

/// The loaded configuration.
#[derive(Debug)]
pub struct Config {
    /// The stack's domain, such as `turtle.local`.
    pub domain: String,
    /// The public HTTPS port (443 unless the stack was started on another).
    pub https_port: u16,
    pub admin: Token,
    pub builder: Token,
    pub vpn_token: Token,
    pub vpn: VpnServer,
    pub signer: Signer,
    /// `iss` of registry tokens.
    pub issuer: String,
    /// `aud` of registry tokens: the registry's `service`.
    pub registry_service: String,
    /// Turtle's root certificate, served at `/ca.pem`.
    pub ca_file: PathBuf,
    /// How long and how many device log lines are kept.
    pub logs: LogPolicy,
    /// The rate limits.
    pub limits: Limits,
}

/// What is kept of device logs.
#[derive(Debug, Clone, Copy)]
pub struct LogPolicy {
    /// Lines go this long after they arrived; a device's timestamp is never
    /// put earlier than this before its arrival.
    pub retention: Duration,
    /// The most lines kept per device.
    pub max_lines: i64,
    /// How often the retention is applied to every device.
    pub sweep_interval: Duration,
}

/// The rate limits (see the flags of the same names).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub device_log: Rate,
    pub device_state: Rate,
    pub registration: Rate,
    pub registration_key: Rate,
}

/// The VPN server as devices see it.
#[derive(Debug, Clone)]
pub struct VpnServer {
    pub subnet: Subnet,
    /// base64 of the server's WireGuard public key.
    pub public_key: String,
    /// The public UDP port.
    pub port: u16,
    /// The name devices reach the server at (the domain).
    pub host: String,
    /// The share of device addresses kept free, in percent.
    pub reserve_percent: u8,
}

impl Config {
    /// Reads every file the flags name. `env` looks up the stack-wide variables
    /// (`TURTLE_DOMAIN`, `TURTLE_HTTPS_PORT`, `TURTLE_VPN_PORT`) that stand in for
    /// `--domain`, `--https-port` and `--vpn-port` when those are not given.
    pub fn load(
        args: &Args,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> anyhow::Result<(Config, Target)> {
        let domain = match &args.domain {
            Some(d) => d.clone(),
            None => env("TURTLE_DOMAIN").ok_or_else(|| {
                anyhow::anyhow!(
                    "no domain: pass --domain (or set TURTLE_API_DOMAIN or TURTLE_DOMAIN), \
                     such as turtle.local"
                )
            })?,
        };
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if domain.is_empty() || domain.contains(['/', ':', ' ']) {
            anyhow::bail!("--domain {domain:?} is not a DNS name: give one such as turtle.local");
        }
        let https_port = port(
            args.https_port,
            "--https-port",
            "TURTLE_HTTPS_PORT",
            443,
            env,
        )?;
        let vpn_port = port(args.vpn_port, "--vpn-port", "TURTLE_VPN_PORT", 51820, env)?;
        let registry_service = args
            .registry_service
            .clone()
            .unwrap_or_else(|| with_port(&format!("registry.{domain}"), https_port));

        let admin = Token::new(&read_secret(
            "admin token",
            "--admin-token-file",
            &args.admin_token_file,
        )?);
        let builder = Token::new(&read_secret(
            "builder token",
            "--builder-token-file",
            &args.builder_token_file,
        )?);
        let vpn_token = Token::new(&read_secret(
            "vpn token",
            "--vpn-token-file",
            &args.vpn_token_file,
        )?);
        let public_key = read_secret(
            "vpn public key",
            "--vpn-public-key-file",
            &args.vpn_public_key_file,
        )?;
        let public_key = check_wireguard_key(&public_key).map_err(|e| {
            anyhow::anyhow!(
                "--vpn-public-key-file {}: {e}",
                args.vpn_public_key_file.display()
            )
        })?;
        let password = read_secret(
            "database password",
            "--database-password-file",
            &args.database_password_file,
        )?;
        let target = Target::new(&args.database_url, &password)?;
        let signer = Signer::load(&args.token_key, &args.token_chain)?;
        let config = Config {
            vpn: VpnServer {
                subnet: args.vpn_subnet,
                public_key,
                port: vpn_port,
                host: domain.clone(),
                reserve_percent: args.vpn_reserve_percent,
            },
            domain,
            https_port,
            admin,
            builder,
            vpn_token,
            signer,
            issuer: args.token_issuer.clone(),
            registry_service,
            ca_file: args.ca_file.clone(),
            logs: LogPolicy {
                retention: args.log_retention,
                max_lines: args.log_max_lines,
                sweep_interval: args.log_sweep_interval,
            },
            limits: Limits {
                device_log: args.device_log_limit,
                device_state: args.device_state_limit,
                registration: args.registration_limit,
                registration_key: args.registration_key_limit,
            },
        };
        Ok((config, target))
    }

    /// `https://<host>` with `:<port>` when the HTTPS port is not 443.
    pub fn public_url(&self, host: &str) -> String {
        format!("https://{}", with_port(host, self.https_port))
    }
}

/// `host` or `host:port` when the port is not 443.
/// `host`, with `:port` unless it is 443.
pub fn with_port(host: &str, port: u16) -> String {
    if port == 443 {
        host.to_string()
    } else {
        format!("{host}:{port}")
    }
}

fn port(
    flag: Option<u16>,
    name: &str,
    var: &str,
    default: u16,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
) -> anyhow::Result<u16> {
    if let Some(p) = flag {
        return Ok(p);
    }
    match env(var) {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| {
            anyhow::anyhow!("{var}={text:?} is not a port number: fix it or pass {name}")
        }),
    }
}

/// Checks a WireGuard public key as WireGuard writes keys: base64 of 32 bytes.
/// Returns it re-encoded canonically (so it compares with what devices send).
pub fn check_wireguard_key(key: &str) -> Result<String, String> {
    match STANDARD.decode(key.trim()) {
        Ok(bytes) if bytes.len() == 32 => Ok(STANDARD.encode(bytes)),
        _ => Err(
            "the key must be 32 bytes in base64 (44 characters), as the vpn-key.pub secret is"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wireguard_public_key_is_32_bytes_of_base64() {
        assert!(check_wireguard_key("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=").is_ok());
        assert!(
            check_wireguard_key("abcd")
                .unwrap_err()
                .contains("32 bytes")
        );
    }

    #[test]
    fn ports_come_from_the_flag_then_the_stack_variable() {
        let env = |v: &str| (v == "TURTLE_HTTPS_PORT").then(|| "8443".to_string());
        assert_eq!(
            port(Some(9443), "--https-port", "TURTLE_HTTPS_PORT", 443, &env).unwrap(),
            9443
        );
        assert_eq!(
            port(None, "--https-port", "TURTLE_HTTPS_PORT", 443, &env).unwrap(),
            8443
        );
        assert_eq!(
            port(None, "--vpn-port", "TURTLE_VPN_PORT", 51820, &env).unwrap(),
            51820
        );
        let bad = |_: &str| Some("x".to_string());
        let e = port(None, "--vpn-port", "TURTLE_VPN_PORT", 51820, &bad).unwrap_err();
        assert!(e.to_string().contains("--vpn-port"), "{e}");
        assert_eq!(with_port("registry.t.local", 443), "registry.t.local");
        assert_eq!(with_port("registry.t.local", 8443), "registry.t.local:8443");
    }
}
