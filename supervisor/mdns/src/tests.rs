//! The publisher's pure parts, and one that starts nothing.

use super::*;

fn cfg(domain: &str, names: &[&str]) -> MdnsConfig {
    MdnsConfig {
        domain: domain.into(),
        names: names.iter().map(|s| s.to_string()).collect(),
        port: 443,
        txt: vec![("api".into(), format!("https://api.{domain}"))],
        interfaces: None,
    }
}

fn published(cfg: &MdnsConfig) -> Published {
    match plan(cfg).expect("valid config") {
        Plan::Publish(p) => p,
        off => panic!("expected publishing, got {off:?}"),
    }
}

#[test]
fn default_filter_skips_loopback_and_container_bridges() {
    for name in [
        "lo",
        "docker0",
        "docker_gwbridge",
        "br-1a2b3c4d5e6f",
        "veth12ab34c",
        "virbr0",
        "cni0",
        "flannel.1",
        "cali0123",
        "vxlan.calico",
        "podman0",
        "cilium_host",
        "kube-bridge",
    ] {
        assert!(!interface_allowed(None, name, false), "{name} is allowed");
    }
    // Loopback by flag, whatever its name.
    assert!(!interface_allowed(None, "lo0", true));
    for name in ["eth0", "enp3s0", "wlan0", "wlp2s0", "bond0", "tm1234a"] {
        assert!(interface_allowed(None, name, false), "{name} is refused");
    }
}

#[test]
fn an_interface_list_allows_exactly_those() {
    let only = vec!["eth1".to_string(), "lo".to_string()];
    assert!(interface_allowed(Some(&only), "eth1", false));
    // Named explicitly: loopback and bridges too.
    assert!(interface_allowed(Some(&only), "lo", true));
    assert!(!interface_allowed(Some(&only), "eth0", false));
    assert!(!interface_allowed(Some(&[]), "eth0", false));
}

#[test]
fn a_domain_outside_local_turns_publishing_off_with_the_reason() {
    let Plan::Off { domain, reason } =
        plan(&cfg("vm.example.com", &["api.vm.example.com"])).expect("not an error")
    else {
        panic!("publishing a non-.local domain");
    };
    assert_eq!(domain, "vm.example.com");
    assert!(reason.contains(".local"), "{reason}");

    let Plan::Off { reason, .. } = plan(&cfg("", &[])).unwrap() else {
        panic!("publishing with no domain");
    };
    assert!(reason.contains("no domain"), "{reason}");
}

#[test]
fn publisher_with_a_non_local_domain_reports_why_and_starts_nothing() {
    let p = Publisher::start(cfg("vm.lan", &["api.vm.lan"])).expect("not an error");
    let s = p.status();
    assert!(!s.publishing);
    assert!(
        s.reason
            .as_deref()
            .unwrap()
            .contains("does not end in .local")
    );
    assert!(s.names.is_empty() && s.interfaces.is_empty() && s.addresses.is_empty());
    assert!(p.shared.lock().daemon.is_none());
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["publishing"], false);
    assert!(json["reason"].as_str().unwrap().contains(".local"));
    p.shutdown();
}

#[test]
fn names_are_normalized_deduplicated_and_the_domain_comes_first() {
    let p = published(&cfg(
        "VM.local.",
        &["api.vm.local", "API.vm.local.", "vm.local"],
    ));
    assert_eq!(p.domain, "vm.local");
    assert_eq!(p.names, ["vm.local", "api.vm.local"]);
    assert_eq!(p.aliases.len(), 2);
    assert_eq!(p.aliases[1].host, "api.vm.local");
    assert_eq!(p.aliases[1].instance, "api vm");
    assert_eq!(p.aliases[1].key(), "api vm._turtle-alias._tcp.local.");
    assert_eq!(p.service.host, "vm.local");
    assert_eq!(p.service.key(), "vm._turtle._tcp.local.");
    // TXT values are published as given.
    assert_eq!(
        p.service.txt,
        [("api".to_string(), "https://api.VM.local.".to_string())]
    );
    // The keys match what mdns-sd builds.
    for spec in std::iter::once(&p.service).chain(&p.aliases) {
        let info = spec.info().unwrap();
        assert_eq!(info.get_fullname().to_lowercase(), spec.key());
        assert_eq!(info.get_hostname(), format!("{}.", spec.host));
        assert!(info.is_addr_auto());
    }
}

#[test]
fn malformed_names_are_refused_with_the_fix() {
    for bad in [
        "api.vm.com",
        "api..vm.local",
        "-api.vm.local",
        "api_x.vm.local",
        "other.local",
    ] {
        let err = plan(&cfg("vm.local", &[bad])).unwrap_err();
        assert!(
            matches!(&err, MdnsError::InvalidName { name, .. } if name == bad),
            "{bad}: {err}"
        );
    }
    let err = plan(&cfg("vm.local", &["other.local"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not vm.local or a name under it"), "{err}");
    let long = format!("{}.vm.local", "a".repeat(64));
    assert!(plan(&cfg("vm.local", &[&long])).is_err());
    assert!(matches!(
        plan(&cfg("bad_domain.local", &[])),
        Err(MdnsError::InvalidName { .. })
    ));
}

#[test]
fn malformed_txt_is_refused() {
    for (key, value) in [
        ("", "x"),
        ("a=b", "x"),
        ("ké", "x"),
        ("k", &"v".repeat(254)),
    ] {
        let mut c = cfg("vm.local", &[]);
        c.txt = vec![(key.to_string(), value.to_string())];
        assert!(
            matches!(plan(&c), Err(MdnsError::InvalidTxt { .. })),
            "{key:?} accepted"
        );
    }
    let mut c = cfg("vm.local", &[]);
    c.txt = vec![("ca".into(), "1".into()), ("CA".into(), "2".into())];
    assert!(plan(&c).unwrap_err().to_string().contains("twice"));
}

#[test]
fn conflicts_merge_record_types_and_follow_renames() {
    let mut conflicts = Vec::new();
    assert!(record_conflict(
        &mut conflicts,
        "api.vm.local.",
        "api-2.vm.local.",
        "A",
        "eth0",
        10
    ));
    // The AAAA record of the same rename: no new warning.
    assert!(!record_conflict(
        &mut conflicts,
        "api.vm.local.",
        "api-2.vm.local.",
        "AAAA",
        "eth0",
        11
    ));
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].records, ["A", "AAAA"]);
    assert_eq!(conflicts[0].renamed_to, "api-2.vm.local");
    // api-2 was taken too.
    assert!(record_conflict(
        &mut conflicts,
        "api.vm.local.",
        "api-3.vm.local.",
        "A",
        "eth0",
        20
    ));
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].detected_at_ms, 20);
    // The same name on another interface is its own rename.
    assert!(record_conflict(
        &mut conflicts,
        "api.vm.local.",
        "api-2.vm.local.",
        "A",
        "eth1",
        30
    ));
    assert_eq!(conflicts.len(), 2);
}

#[test]
fn status_shows_the_held_name_and_when_the_conflict_was_seen() {
    let p = published(&cfg("vm.local", &["api.vm.local"]));
    let mut st = State {
        registered: p.aliases.iter().map(|s| (s.key(), s.clone())).collect(),
        plan: Plan::Publish(p.clone()),
        ..State::default()
    };
    st.registered.insert(p.service.key(), p.service.clone());
    record_conflict(
        &mut st.conflicts,
        "api.vm.local.",
        "api-2.vm.local.",
        "A",
        "eth0",
        42,
    );
    record_conflict(
        &mut st.conflicts,
        "vm._turtle._tcp.local.",
        "vm (2)._turtle._tcp.local.",
        "SRV",
        "eth0",
        43,
    );
    // The daemon announces under the new name.
    let key = registered_key(&st, "vm (2)._turtle._tcp.local.").expect("renamed service");
    st.announced.insert(key);
    let key = registered_key(&st, "api vm._turtle-alias._tcp.local.").unwrap();
    st.announced.insert(key);

    let s = status_of(&st, vec!["eth0".into()], vec!["10.0.0.2".parse().unwrap()]);
    assert!(s.publishing);
    let vm = &s.names[0];
    assert_eq!(
        (vm.name.as_str(), vm.held.as_str(), vm.conflict),
        ("vm.local", "vm.local", false)
    );
    // The domain is the service's host: announced with it.
    assert!(vm.announced);
    let api = &s.names[1];
    assert_eq!(api.held, "api-2.vm.local");
    assert!(api.conflict && api.announced);
    assert_eq!(api.conflict_at_ms, Some(42));
    let service = s.service.as_ref().unwrap();
    assert_eq!(service.name, "vm._turtle._tcp.local");
    assert_eq!(service.held, "vm (2)._turtle._tcp.local");
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["names"][1]["held"], "api-2.vm.local");
    assert_eq!(json["addresses"][0], "10.0.0.2");
    assert_eq!(json["conflicts"][0]["records"][0], "A");
}
