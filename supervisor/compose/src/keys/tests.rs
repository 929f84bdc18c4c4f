use super::*;

fn checked(yaml: &str) -> (Vec<(String, IssueKind)>, Value) {
    let mut v: Value = serde_norway::from_str(yaml).unwrap();
    let found = check(&mut v, &TOP)
        .into_iter()
        .map(|i| (display_path(&i.path), i.kind))
        .collect();
    (found, v)
}

fn paths(found: &[(String, IssueKind)]) -> Vec<&str> {
    found.iter().map(|(p, _)| p.as_str()).collect()
}

#[test]
fn accepts_supported_and_extensions() {
    let (found, _) = checked(
        "x-common: {anything: 1}\ninclude: [a.yaml, {path: [b.yaml, c.yaml], project_directory: b, env_file: b.env}]\nservices:\n  web:\n    image: a\n    x-note: 1\n    ports: ['80', 81, {target: 1, published: 2, name: web, app_protocol: http}]\n    deploy: {resources: {limits: {cpus: '1', pids: 3}}}\n    networks: [a]\n    depends_on: {db: {condition: service_healthy}}\n    build: {context: ., x-extra: 1}\nnetworks:\n  a: {ipam: {config: [{subnet: 10.0.0.0/24, ip_range: 10.0.0.0/25}]}, x-net: 1}\n  b:\n",
    );
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn every_refused_key_is_reported_and_removed() {
    let (found, v) = checked(
        "include: [{path: a.yaml, envfile: x}]\nservices:\n  web:\n    image: a\n    linkz: [b]\n    ports: [{target: 1, bogus: 2}]\nsecrets:\n  s: {driver: vault}\nfoo: 1\n",
    );
    assert_eq!(
        paths(&found),
        vec![
            "include[0].envfile",
            "services.web.linkz",
            "services.web.ports[0].bogus",
            "secrets.s.driver",
            "foo"
        ]
    );
    assert!(matches!(found[3].1, IssueKind::Unsupported(_)));
    assert!(v["services"]["web"].get("linkz").is_none());
    assert!(v["services"]["web"]["ports"][0].get("bogus").is_none());
    assert!(v.get("foo").is_none());
}

#[test]
fn strings_become_the_type_the_key_wants() {
    // What interpolation leaves: strings everywhere.
    let (found, v) = checked(
        "services:\n  s:\n    init: 'true'\n    privileged: 'False'\n    tty: 'yes'\n    scale: '2'\n    cpus: '0.5'\n    healthcheck: {retries: ' 3'}\n    deploy: {replicas: '4'}\n    volumes: [{type: volume, target: /d, read_only: 'true'}]\n    ulimits: {nofile: '1024', core: {soft: '1', hard: '2'}}\n    labels: {port: 8080, none: null}\n    expose: [80]\nnetworks:\n  n: {external: 'true', enable_ipv6: 'false'}\n",
    );
    // Only the YAML 1.1 `yes` is worth a word.
    assert_eq!(paths(&found), vec!["services.s.tty"]);
    assert!(matches!(found[0].1, IssueKind::Yaml11Bool(_)));
    let s = &v["services"]["s"];
    assert_eq!(s["init"], Value::Bool(true));
    assert_eq!(s["privileged"], Value::Bool(false));
    assert_eq!(s["tty"], Value::Bool(true));
    assert_eq!(s["scale"], Value::from(2));
    assert_eq!(s["cpus"], Value::from(0.5));
    assert_eq!(s["healthcheck"]["retries"], Value::from(3));
    assert_eq!(s["deploy"]["replicas"], Value::from(4));
    assert_eq!(s["volumes"][0]["read_only"], Value::Bool(true));
    assert_eq!(s["ulimits"]["nofile"], Value::from(1024));
    assert_eq!(s["ulimits"]["core"]["hard"], Value::from(2));
    assert_eq!(s["labels"]["port"], Value::from("8080"));
    assert!(s["labels"]["none"].is_null());
    assert_eq!(s["expose"][0], Value::from("80"));
    assert_eq!(v["networks"]["n"]["external"], Value::Bool(true));
    assert_eq!(v["networks"]["n"]["enable_ipv6"], Value::Bool(false));
}

#[test]
fn values_that_cannot_be_converted_name_their_key() {
    let (found, _) = checked(
        "services:\n  s:\n    init: maybe\n    scale: two\n    healthcheck: {retries: 1.5}\n    environment: {A: [1]}\n    ports: {a: 1}\n    command: {a: b}\n",
    );
    let msgs: Vec<String> = found
        .iter()
        .map(|(p, k)| match k {
            IssueKind::Type(m) => format!("{p}: {m}"),
            other => panic!("{p}: {other:?}"),
        })
        .collect();
    assert_eq!(
        msgs,
        vec![
            "services.s.init: expected a boolean (true or false), got \"maybe\"",
            "services.s.scale: expected a whole number, got \"two\"",
            "services.s.healthcheck.retries: expected a whole number, got 1.5",
            "services.s.environment.A: expected a single value, got a list",
            "services.s.ports: expected a list, got a mapping",
            "services.s.command: expected a string or a list of strings, got a mapping",
        ]
    );
}

#[test]
fn swarm_and_buildkit_keys_are_warnings() {
    let (found, v) = checked(
        "services:\n  s:\n    image: a\n    build: {context: ., ssh: [default]}\n    deploy: {placement: {constraints: [a]}, replicas: 2}\n",
    );
    assert_eq!(
        paths(&found),
        vec!["services.s.build.ssh", "services.s.deploy.placement"]
    );
    assert!(
        found
            .iter()
            .all(|(_, k)| matches!(k, IssueKind::Ignored(_)))
    );
    assert!(!found[0].clone().into_issue().is_error(false));
    assert!(v["services"]["s"]["deploy"].get("placement").is_none());
}

#[test]
fn a_scalar_means_a_one_item_list_of_strings() {
    let (found, v) = checked("services:\n  s:\n    cap_add: NET_ADMIN\n    profiles: debug\n");
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(v["services"]["s"]["cap_add"][0], Value::from("NET_ADMIN"));
}

#[test]
fn paths_display() {
    assert_eq!(
        display_path(&["a".into(), "[0]".into(), "b".into()]),
        "a[0].b"
    );
}

trait IntoIssue {
    fn into_issue(self) -> KeyIssue;
}

impl IntoIssue for (String, IssueKind) {
    fn into_issue(self) -> KeyIssue {
        KeyIssue {
            path: vec![self.0],
            kind: self.1,
        }
    }
}
