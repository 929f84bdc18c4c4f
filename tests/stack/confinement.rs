//! What each service of the stack runs as, may do and holds.

use std::process::Command;

use serde_json::json;
use turtle_e2e::{Env, docker};

/// What each service runs as and may do: (service, the container's user,
/// the capabilities added back, the secrets it holds). Every one drops all
/// capabilities, cannot gain privileges and has a read-only root file system.
pub(crate) const CONFINEMENT: [(&str, &str, &[&str], &[&str]); 6] = [
    // Starts as root only to hand the leaf's key to uid 10002 (see below).
    ("proxy", "", &["SETUID", "SETGID"], &[]),
    (
        "api",
        "10001:10001",
        &[],
        &[
            "admin-token",
            "builder-token",
            "db-password",
            "registry-token.crt",
            "registry-token.key",
            "vpn-key.pub",
            "vpn-token",
        ],
    ),
    ("db", "postgres", &[], &["db-password"]),
    ("registry", "docker-registry", &[], &["registry-token.crt"]),
    ("builder", "0:0", &[], &["admin-token", "builder-token"]),
    ("vpn", "0:0", &["NET_ADMIN"], &["vpn-key", "vpn-token"]),
];

/// A field of `/proc/<pid>/status` (`Uid:` gives the real uid first).
pub(crate) fn proc_status(pid: i64, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Each service's container is confined as [`CONFINEMENT`] says, its main
/// process runs with the uid and the capabilities it should, and it holds
/// only its own secrets.
pub(crate) fn least_privilege(env: &Env) {
    for (service, user, cap_add, secrets) in CONFINEMENT {
        let c = turtle_e2e::inspect(&env.container(service)).unwrap();
        let hc = &c["HostConfig"];
        assert_eq!(hc["Privileged"], false, "{service}");
        assert_ne!(hc["NetworkMode"], "host", "{service}");
        assert_eq!(c["Config"]["User"], user, "{service}: User");
        assert_eq!(hc["ReadonlyRootfs"], true, "{service}: ReadonlyRootfs");
        assert_eq!(hc["CapDrop"], json!(["ALL"]), "{service}: CapDrop");
        let added = hc["CapAdd"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            added,
            json!(cap_add).as_array().unwrap().clone(),
            "{service}: CapAdd"
        );
        assert!(
            hc["SecurityOpt"]
                .as_array()
                .is_some_and(|o| o.contains(&json!("no-new-privileges:true"))),
            "{service}: SecurityOpt {}",
            hc["SecurityOpt"]
        );
        // The process itself: HAProxy runs as uid 10002 with no capability
        // left, the vpn with NET_ADMIN (bit 12) alone, the rest with none.
        let pid = c["State"]["Pid"].as_i64().unwrap();
        let uid: u32 = proc_status(pid, "Uid:").parse().unwrap();
        match service {
            "proxy" => assert_eq!(uid, 10002, "HAProxy's uid"),
            "api" => assert_eq!(uid, 10001, "the api's uid"),
            "builder" | "vpn" => assert_eq!(uid, 0, "{service}'s uid"),
            _ => assert_ne!(uid, 0, "{service} runs as its image's user"),
        }
        let want_caps = if service == "vpn" { 1u64 << 12 } else { 0 };
        let caps = u64::from_str_radix(&proc_status(pid, "CapEff:"), 16).unwrap();
        assert_eq!(
            caps, want_caps,
            "{service}: effective capabilities {caps:#x}"
        );
        // Only the secrets it lists, and nothing else, are in the container.
        let held = docker(&[
            "exec",
            &env.container(service),
            "sh",
            "-c",
            "ls -1 /run/turtle/secrets 2>/dev/null; true",
        ]);
        let held: Vec<&str> = held.lines().collect();
        assert_eq!(held, secrets, "{service}: the secrets it holds");
    }
    // E.g. the proxy cannot read the database's password.
    let read = Command::new("docker")
        .args(["exec", &env.container("proxy")])
        .args(["cat", "/run/turtle/secrets/db-password"])
        .output()
        .unwrap();
    assert!(!read.status.success(), "the proxy read the db password");
}
