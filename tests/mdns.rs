//! mDNS across network namespaces: `turtle_mdns::Publisher` in one namespace
//! (run by the `mdns_tool` binary), and clients in the other, over a veth
//! pair: real multicast packets, no Docker.
//!
//! The resolver is a hand-built legacy unicast query (mdns_tool `resolve`), so
//! it shares no code with the publisher; the browser is mdns-sd's own.
//!
//! The tests need root (network namespaces); without it they pass after
//! saying they were skipped.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use turtle_e2e::netns::{Host, NsChild, VethPair, is_root};
use turtle_e2e::wait_until;

const TOOL: &str = env!("CARGO_BIN_EXE_mdns_tool");

fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipping {test}: network namespaces need root (run the tests as root)");
    true
}

/// Starts `mdns_tool publish` in `host`; returns once its first status is out.
fn publish(host: &Host, domain: &str, names: &[&str], txt: &[(&str, &str)]) -> NsChild {
    let mut cmd = host.command(TOOL);
    cmd.args(["publish", "--domain", domain]);
    for n in names {
        cmd.args(["--name", n]);
    }
    for (k, v) in txt {
        cmd.args(["--txt", &format!("{k}={v}")]);
    }
    let child = NsChild::spawn(cmd, &format!("the publisher in {}", host.ns));
    child.wait_json("its first status", Duration::from_secs(10), |s| {
        s["publishing"] == true
    });
    child
}

/// Waits until every name in the publisher's status is announced; returns
/// that status.
fn wait_announced(p: &NsChild) -> Value {
    p.wait_json("every name announced", Duration::from_secs(20), |s| {
        s["names"]
            .as_array()
            .is_some_and(|n| !n.is_empty() && n.iter().all(|n| n["announced"] == true))
            && s["service"]["announced"] == true
    })
}

/// Runs `mdns_tool ARGS` in `host` to completion.
fn tool(host: &Host, args: &[&str]) -> (bool, Value, String) {
    let out = host
        .command(TOOL)
        .args(args)
        .output()
        .expect("run mdns_tool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (out.status.success(), v, stderr)
}

/// Resolves `name` from `host` with the hand-built query; panics when nobody
/// answers within 10 s. Returns (addresses, responders).
fn resolve(host: &Host, name: &str) -> (BTreeSet<IpAddr>, BTreeSet<IpAddr>) {
    let (ok, v, stderr) = tool(host, &["resolve", name, "--timeout", "10"]);
    assert!(ok, "resolving {name} from {}: {v}\n{stderr}", host.ns);
    (ip_set(&v["addresses"]), ip_set(&v["responders"]))
}

/// A JSON array of addresses.
fn ip_set(v: &Value) -> BTreeSet<IpAddr> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array of addresses: {v}"))
        .iter()
        .map(|a| a.as_str().unwrap().parse().unwrap())
        .collect()
}

fn v4(addrs: &BTreeSet<IpAddr>) -> BTreeSet<IpAddr> {
    addrs.iter().filter(|a| a.is_ipv4()).copied().collect()
}

/// `names[i]` of a status, by requested name.
fn name_status<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["names"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {status}"))
}

#[test]
fn names_resolve_and_the_service_is_found_from_another_host() {
    if skip_unless_root("names_resolve_and_the_service_is_found_from_another_host") {
        return;
    }
    let lan = VethPair::new();
    let domain = format!("vm-{}.local", std::process::id());
    let api = format!("api.{domain}");
    let api_url = format!("https://{api}");
    let mut a = publish(
        &lan.a,
        &domain,
        &[&domain, &api],
        &[("api", &api_url), ("ca", "sha256:0123abcd")],
    );
    let status = wait_announced(&a);

    // The publisher uses its end of the link only (lo is never published on).
    let a_addrs: BTreeSet<IpAddr> = lan.a.link_addresses().into_iter().collect();
    assert_eq!(
        status["interfaces"],
        serde_json::json!([lan.a.link]),
        "{status}"
    );
    let announced = ip_set(&status["addresses"]);
    assert_eq!(announced, a_addrs, "{status}");
    assert_eq!(name_status(&status, &api)["held"], api.as_str());
    assert_eq!(status["conflicts"], serde_json::json!([]));

    // From B, over the wire: A's link addresses, and only them.
    for name in [&api, &domain] {
        let (addrs, responders) = resolve(&lan.b, name);
        assert_eq!(
            v4(&addrs),
            BTreeSet::from([IpAddr::V4(lan.a.addr)]),
            "{name}"
        );
        assert!(
            addrs.is_subset(&a_addrs),
            "{name}: {addrs:?} not all of {a_addrs:?}"
        );
        assert_eq!(
            responders,
            BTreeSet::from([IpAddr::V4(lan.a.addr)]),
            "{name}"
        );
    }
    // A name nobody publishes gets no answer.
    let (ok, v, _) = tool(
        &lan.b,
        &["resolve", &format!("nope.{domain}"), "--timeout", "2"],
    );
    assert!(!ok && v["addresses"] == serde_json::json!([]), "{v}");

    // mdns-sd's browser finds the _turtle._tcp instance with its TXT. A fresh
    // browser per attempt: mdns-sd resolves an instance with the first
    // address it gets and does not ask for the others, and the responder
    // multicasts a record at most once a second per interface and family
    // (RFC 6762 §6), so a browser that asks just after someone else was
    // answered can be left with the IPv6 address alone.
    let instance = format!("vm-{}._turtle._tcp.local.", std::process::id());
    let mut found = Value::Null;
    wait_until(
        "a browser in B resolving the instance with A's IPv4 address",
        Duration::from_secs(30),
        || {
            let (ok, v, _) = tool(&lan.b, &["browse", "_turtle._tcp.local.", "--timeout", "3"]);
            found = v;
            ok
        },
    );
    assert_eq!(found["instance"], instance.as_str(), "{found}");
    assert_eq!(found["host"], format!("{domain}."), "{found}");
    assert_eq!(found["port"], 443);
    assert_eq!(found["txt"]["api"], api_url.as_str(), "{found}");
    assert_eq!(found["txt"]["ca"], "sha256:0123abcd", "{found}");
    let found_addrs = ip_set(&found["addresses"]);
    assert_eq!(
        v4(&found_addrs),
        BTreeSet::from([IpAddr::V4(lan.a.addr)]),
        "{found}"
    );
    assert!(found_addrs.is_subset(&a_addrs), "{found}");

    // A browser sees the instance go when the publisher shuts down (its
    // goodbye).
    let mut browse = NsChild::spawn(
        {
            let mut c = lan.b.command(TOOL);
            c.args([
                "browse",
                "_turtle._tcp.local.",
                "--timeout",
                "30",
                "--until-removed",
            ]);
            c
        },
        "the browser",
    );
    browse.wait_json("the instance", Duration::from_secs(20), |v| {
        v["instance"] == instance.as_str()
    });
    let exit = a.close_stdin_and_wait(Duration::from_secs(10));
    assert!(exit.success(), "publisher: {exit}\n{}", a.stderr());
    let gone = browse.wait_json("the instance's removal", Duration::from_secs(20), |v| {
        v.get("removed").is_some()
    });
    assert_eq!(gone["removed"], instance.as_str());
    assert!(browse.wait(Duration::from_secs(10)).success());
}

#[test]
fn a_second_host_claiming_the_same_names_is_renamed_and_reports_it() {
    if skip_unless_root("a_second_host_claiming_the_same_names_is_renamed_and_reports_it") {
        return;
    }
    let lan = VethPair::new();
    let pid = std::process::id();
    let domain = format!("vm-{pid}.local");
    let api = format!("api.{domain}");
    let mut a = publish(&lan.a, &domain, &[&domain, &api], &[("ca", "sha256:aaaa")]);
    let a_first = wait_announced(&a);
    assert_eq!(a_first["conflicts"], serde_json::json!([]));

    // B probes names A already answers for: A defends them, B renames.
    let mut b = publish(&lan.b, &domain, &[&domain, &api], &[("ca", "sha256:bbbb")]);
    let b_status = b.wait_json("B's renames, announced", Duration::from_secs(30), |s| {
        s["names"].as_array().is_some_and(|n| {
            n.iter()
                .all(|n| n["conflict"] == true && n["announced"] == true)
        }) && s["service"]["conflict"] == true
            && s["service"]["announced"] == true
    });

    // mdns-sd appends -2 to the first label of a host name ("api" ->
    // "api-2"), but a label that already ends in -N gets N+1: "vm-<pid>"
    // becomes "vm-<pid+1>", not "vm-<pid>-2".
    let api_2 = format!("api-2.{domain}");
    let domain_2 = format!("vm-{}.local", pid + 1);
    let b_api = name_status(&b_status, &api);
    assert_eq!(b_api["held"], api_2.as_str(), "{b_status}");
    assert!(b_api["conflict_at_ms"].as_i64().unwrap() > 0, "{b_status}");
    assert_eq!(
        name_status(&b_status, &domain)["held"],
        domain_2.as_str(),
        "{b_status}"
    );
    // A service instance name gets " (2)"; its SRV now points at the renamed host.
    assert_eq!(
        b_status["service"]["held"],
        format!("vm-{pid} (2)._turtle._tcp.local"),
        "{b_status}"
    );
    let conflict = b_status["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["original"] == api.as_str())
        .unwrap_or_else(|| panic!("no conflict for {api}: {b_status}"));
    assert_eq!(conflict["renamed_to"], api_2.as_str());
    assert_eq!(conflict["interface"], lan.b.link.as_str());
    assert!(
        conflict["records"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("A")),
        "{conflict}"
    );

    // On the wire: the original names are still A's, the renamed ones B's.
    let (addrs, responders) = resolve(&lan.b, &api);
    assert_eq!(v4(&addrs), BTreeSet::from([IpAddr::V4(lan.a.addr)]));
    assert_eq!(responders, BTreeSet::from([IpAddr::V4(lan.a.addr)]));
    for name in [&api_2, &domain_2] {
        let (addrs, responders) = resolve(&lan.a, name);
        assert_eq!(
            v4(&addrs),
            BTreeSet::from([IpAddr::V4(lan.b.addr)]),
            "{name}"
        );
        assert_eq!(
            responders,
            BTreeSet::from([IpAddr::V4(lan.b.addr)]),
            "{name}"
        );
    }

    assert!(a.close_stdin_and_wait(Duration::from_secs(10)).success());
    // The tool also stops cleanly on SIGTERM (as under a service manager).
    let b_exit = b.terminate(Duration::from_secs(10));
    assert!(b_exit.success(), "{b_exit}\n{}", b.stderr());
    // A kept its names and saw no conflict, to the end.
    let a_last: Value = serde_json::from_str(
        a.remaining_lines(Duration::from_secs(5))
            .last()
            .expect("A's final status"),
    )
    .unwrap();
    assert_eq!(a_last["conflicts"], serde_json::json!([]), "{a_last}");
    assert_eq!(name_status(&a_last, &api)["held"], api.as_str());
    assert!(
        !a.stderr().contains("conflict"),
        "A logged a conflict:\n{}",
        a.stderr()
    );
    // B warned, naming the original and the new name.
    let warned = b.stderr();
    assert!(
        warned.lines().any(|l| l.contains("WARN")
            && l.contains("mdns name conflict")
            && l.contains(&api)
            && l.contains(&api_2)),
        "no warning naming {api} and {api_2}:\n{warned}"
    );
}

#[test]
fn an_update_replaces_the_published_set() {
    if skip_unless_root("an_update_replaces_the_published_set") {
        return;
    }
    let lan = VethPair::new();
    let domain = format!("vm-{}.local", std::process::id());
    let api = format!("api.{domain}");
    let registry = format!("registry.{domain}");
    let mut a = publish(&lan.a, &domain, &[&domain, &api], &[("ca", "sha256:old")]);
    wait_announced(&a);
    resolve(&lan.b, &api);

    // api goes, registry comes, the TXT changes.
    a.send_line(
        &serde_json::json!({"names": [domain, registry], "txt": {"ca": "sha256:new"}}).to_string(),
    );
    let s = a.wait_json("the new set announced", Duration::from_secs(20), |s| {
        s["names"].as_array().is_some_and(|n| {
            n.len() == 2
                && n.iter().any(|n| n["name"] == registry.as_str())
                && n.iter().all(|n| n["announced"] == true)
        })
    });
    assert!(
        s["names"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["name"] != api.as_str()),
        "{s}"
    );
    let (addrs, _) = resolve(&lan.b, &registry);
    assert_eq!(v4(&addrs), BTreeSet::from([IpAddr::V4(lan.a.addr)]));
    // The daemon no longer answers for the name removed.
    let (ok, v, _) = tool(&lan.b, &["resolve", &api, "--timeout", "2"]);
    assert!(!ok, "{api} still answers: {v}");
    // Fresh browsers, for the reason given in the first test.
    wait_until(
        "a browser seeing the new TXT",
        Duration::from_secs(30),
        || {
            let (ok, v, _) = tool(&lan.b, &["browse", "_turtle._tcp.local.", "--timeout", "3"]);
            ok && v["txt"]["ca"] == "sha256:new"
        },
    );

    // A malformed update is refused and changes nothing.
    a.send_line(r#"{"names": ["bad_label.example.local"]}"#);
    let refused = a.wait_json("the refusal", Duration::from_secs(10), |v| {
        v.get("update_error").is_some()
    });
    assert!(
        refused["update_error"]
            .as_str()
            .unwrap()
            .contains("bad_label"),
        "{refused}"
    );
    resolve(&lan.b, &registry);

    // Only loopback: nothing is published on the link any more; then every
    // interface again (the filter is swapped in the running daemon).
    a.send_line(r#"{"interfaces": ["lo"]}"#);
    a.wait_json("loopback only", Duration::from_secs(10), |s| {
        s["interfaces"] == serde_json::json!(["lo"])
    });
    let (ok, v, _) = tool(&lan.b, &["resolve", &registry, "--timeout", "2"]);
    assert!(!ok, "{registry} still answers on the link: {v}");
    a.send_line(r#"{"interfaces": null}"#);
    a.wait_json("the link again", Duration::from_secs(10), |s| {
        s["interfaces"] == serde_json::json!([lan.a.link])
    });
    resolve(&lan.b, &registry);

    // A domain outside .local turns publishing off, with the reason.
    a.send_line(r#"{"domain": "vm.example", "names": []}"#);
    let off = a.wait_json("publishing off", Duration::from_secs(10), |s| {
        s["publishing"] == false
    });
    assert!(off["reason"].as_str().unwrap().contains(".local"), "{off}");
    assert_eq!(off["names"], serde_json::json!([]));
    let (ok, v, _) = tool(&lan.b, &["resolve", &domain, "--timeout", "2"]);
    assert!(!ok, "{domain} still answers: {v}");
    assert!(a.close_stdin_and_wait(Duration::from_secs(10)).success());
}

/// The harness leaves nothing behind: its namespaces (and links) are gone
/// after drop.
#[test]
fn namespaces_are_removed_on_drop() {
    if skip_unless_root("namespaces_are_removed_on_drop") {
        return;
    }
    let lan = VethPair::new();
    let (ns_a, ns_b, link_a) = (lan.a.ns.clone(), lan.b.ns.clone(), lan.a.link.clone());
    let listed = || {
        String::from_utf8_lossy(
            &Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    assert!(listed().contains(&ns_a) && listed().contains(&ns_b));
    drop(lan);
    let names = listed();
    assert!(!names.contains(&ns_a) && !names.contains(&ns_b), "{names}");
    let links = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-br", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(!links.contains(&link_a), "{links}");
}

/// The real daemon, in namespace A, publishing a stack it supervises: its
/// public names, the domain, and the `_turtle._tcp` instance carrying the API
/// URL and the fingerprint of the daemon's own CA; a name another host
/// already holds is renamed and shown by `turtle names`.
#[test]
fn the_daemon_publishes_its_stack_and_reports_a_taken_name() {
    if skip_unless_root("the_daemon_publishes_its_stack_and_reports_a_taken_name") {
        return;
    }
    let lan = VethPair::new();
    let mut env = turtle_e2e::Env::new("mdns");
    let domain = format!("d{}.local", std::process::id());
    env.config(&format!("domain: {domain}\ndevice: {{tune: false}}\n"));
    let stack = |names: &str| {
        format!(
            "services:\n  web:\n    image: {}\n    command: [\"sleep\", \"3600\"]\n    init: true\n    labels:\n      io.turtle.tls: \"{names}\"\n",
            turtle_e2e::IMAGE
        )
    };
    env.compose(&stack("@, api"));
    env.start_daemon_via(
        &["ip", "netns", "exec", &lan.a.ns],
        &["--resync-interval", "2"],
    );
    env.ok(&["up"]);

    let api = format!("api.{domain}");
    let names = || -> Value { serde_json::from_str(&env.box_ok(&["names", "--json"])).unwrap() };
    let announced = |s: &Value, name: &str| {
        s["names"].as_array().is_some_and(|n| {
            n.iter()
                .any(|n| n["name"] == name && n["announced"] == true)
        })
    };
    let mut status = Value::Null;
    wait_until(
        "the daemon announcing api.<domain>",
        Duration::from_secs(30),
        || {
            status = names();
            announced(&status, &api) && announced(&status, &domain)
        },
    );
    assert_eq!(
        status["interfaces"],
        serde_json::json!([lan.a.link]),
        "{status}"
    );

    // From B, with a client that is not ours: A's address.
    let (addrs, _) = resolve(&lan.b, &api);
    assert_eq!(v4(&addrs), BTreeSet::from([IpAddr::V4(lan.a.addr)]));

    // The DNS-SD instance tells a child device where the API is and which
    // CA to trust: the fingerprint of the daemon's own root.
    let ca: Value = serde_json::from_str(&env.box_ok(&["ca", "status", "--json"])).unwrap();
    let fingerprint = ca["root"]["fingerprint"].as_str().unwrap().to_string();
    let mut found = Value::Null;
    wait_until(
        "a browser in B finding _turtle._tcp",
        Duration::from_secs(30),
        || {
            let (ok, v, _) = tool(&lan.b, &["browse", "_turtle._tcp.local.", "--timeout", "3"]);
            found = v;
            ok
        },
    );
    assert_eq!(found["txt"]["api"], format!("https://{api}"), "{found}");
    assert_eq!(found["txt"]["ca"], fingerprint.as_str(), "{found}");
    assert_eq!(found["host"], format!("{domain}."), "{found}");

    // B already holds registry.<domain>; the stack then claims it too.
    let registry = format!("registry.{domain}");
    let holder = publish(&lan.b, &domain, &[&registry], &[]);
    wait_announced(&holder);
    env.compose(&stack("@, api, registry"));
    env.ok(&["up"]);
    wait_until(
        "the daemon reporting the taken name",
        Duration::from_secs(30),
        || {
            status = names();
            status["names"].as_array().is_some_and(|n| {
                n.iter().any(|n| {
                    n["name"] == registry.as_str()
                        && n["conflict"] == true
                        && n["held"] == format!("registry-2.{domain}")
                })
            })
        },
    );
    let text = env.box_ok(&["names"]);
    assert!(
        text.contains("CONFLICT") && text.contains(&format!("registry-2.{domain}")),
        "{text}"
    );
    // The name is still the holder's on the wire.
    let (addrs, _) = resolve(&lan.a, &registry);
    assert_eq!(v4(&addrs), BTreeSet::from([IpAddr::V4(lan.b.addr)]));
    drop(holder);

    // Publishing follows address changes: a new address on A's link is
    // answered for api.<domain> without restarting anything.
    let [x, y, z, _] = lan.a.addr.octets();
    let added = std::net::Ipv4Addr::new(x, y, z, 77);
    turtle_e2e::netns::ip(&[
        "-n",
        &lan.a.ns,
        "addr",
        "add",
        &format!("{added}/24"),
        "dev",
        &lan.a.link,
    ]);
    wait_until(
        "api.<domain> resolving to the new address",
        Duration::from_secs(30),
        || {
            let (ok, v, _) = tool(&lan.b, &["resolve", &api, "--timeout", "3"]);
            ok && ip_set(&v["addresses"]).contains(&IpAddr::V4(added))
        },
    );
}
