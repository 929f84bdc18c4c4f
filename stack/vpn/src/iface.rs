//! The interface's address, MTU and link state, set with iproute2's `ip`
//! (the stack's image carries it). Rejected: a netlink crate, a second
//! dependency tree for three calls made once at start.
//!
//! The commands run in the network namespace of the calling thread (a
//! child process inherits it), the same one [`crate::device::Device::create`]
//! made the interface in.

use std::process::Command;

use crate::cidr::Cidr;

/// Why the interface could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IfaceError {
    #[error("cannot run `ip` (iproute2): {0}: install iproute2 in the image")]
    Spawn(std::io::Error),
    #[error("`ip {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error(
        "an interface named {0} already exists: another vpn service runs in this network namespace, or choose another --interface"
    )]
    Exists(String),
}

/// Fails when an interface of this name exists. boringtun would attach to
/// an existing tun interface as one more queue (it asks for a multi-queue
/// device), so two services would silently share one interface.
pub fn ensure_absent(interface: &str) -> Result<(), IfaceError> {
    let out = Command::new("ip")
        .args(["link", "show", "dev", interface])
        .output()
        .map_err(IfaceError::Spawn)?;
    if out.status.success() {
        return Err(IfaceError::Exists(interface.to_string()));
    }
    Ok(())
}

/// The `ip` argument lists that set the address and MTU and bring the
/// interface up (pure, so the exact commands are tested).
pub fn commands(interface: &str, address: Cidr, mtu: u16) -> Vec<Vec<String>> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        // `replace`, not `add`: a restart on an interface that kept its
        // address is not an error.
        v(&["address", "replace", &address.to_string(), "dev", interface]),
        v(&[
            "link",
            "set",
            "dev",
            interface,
            "mtu",
            &mtu.to_string(),
            "up",
        ]),
    ]
}

/// Sets the address and MTU and brings the interface up.
pub fn configure(interface: &str, address: Cidr, mtu: u16) -> Result<(), IfaceError> {
    for args in commands(interface, address, mtu) {
        let out = Command::new("ip")
            .args(&args)
            .output()
            .map_err(IfaceError::Spawn)?;
        if !out.status.success() {
            return Err(IfaceError::Failed {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_then_mtu_and_up() {
        let c = commands("wg0", "10.99.0.1/16".parse().unwrap(), 1420);
        assert_eq!(
            c.iter().map(|a| a.join(" ")).collect::<Vec<_>>(),
            [
                "address replace 10.99.0.1/16 dev wg0",
                "link set dev wg0 mtu 1420 up"
            ]
        );
    }
}
