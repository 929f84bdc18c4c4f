//! Which interfaces names are published on.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// Interface name prefixes of container and VM plumbing, never published on
/// by default: Docker (`docker0`, `docker_gwbridge`, `br-<id>`, `veth*`),
/// libvirt, LXC/LXD, CNI, flannel, Calico, VXLAN, Podman, Cilium, Weave,
/// kube-router.
pub(crate) const CONTAINER_PREFIXES: &[&str] = &[
    "docker", "br-", "veth", "virbr", "lxcbr", "lxdbr", "cni", "flannel", "cali", "vxlan",
    "podman", "cilium", "weave", "kube-",
];

/// The interfaces (and their addresses) the daemon uses: up, not
/// point-to-point (its own rules), and allowed by our filter.
pub(crate) fn current_interfaces(only: Option<&[String]>) -> (Vec<String>, Vec<IpAddr>) {
    let all = if_addrs::get_if_addrs().unwrap_or_default();
    let used: Vec<_> = all
        .iter()
        .filter(|i| {
            i.is_oper_up() && !i.is_p2p() && interface_allowed(only, &i.name, i.is_loopback())
        })
        .collect();
    let names: BTreeSet<String> = used.iter().map(|i| i.name.clone()).collect();
    let addrs: BTreeSet<IpAddr> = used.iter().map(|i| i.ip()).collect();
    (names.into_iter().collect(), addrs.into_iter().collect())
}

/// Whether names are published on interface `name`: with a list, only the
/// interfaces it names; without, every interface but loopback and container
/// or VM plumbing ([`CONTAINER_PREFIXES`]).
pub fn interface_allowed(only: Option<&[String]>, name: &str, is_loopback: bool) -> bool {
    match only {
        Some(list) => list.iter().any(|n| n == name),
        None => {
            !is_loopback && name != "lo" && !CONTAINER_PREFIXES.iter().any(|p| name.starts_with(p))
        }
    }
}
