//! Trust against the real engine: every container trusts Turtle's CA with
//! no flags (curl, Python), resolves the stack's names, a TLS service serves
//! its leaf, renewal reaches the running service, and `turtle ca` works.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use turtle_e2e::tls::handshake;
use turtle_e2e::{Env, debian_image, docker, free_port, host, wait_until};

const DOMAIN: &str = "turtle-test.local";

/// A TLS server (openssl s_server, reading the leaf Turtle mounts), a client
/// that trusts what Turtle injects, and one that opted out.
fn stack(port: u16) -> String {
    let image = debian_image();
    format!(
        r#"
services:
  web:
    image: {image}
    command: ["openssl", "s_server", "-quiet", "-www", "-accept", "8443",
              "-cert", "/etc/turtle/tls/cert.pem", "-key", "/etc/turtle/tls/key.pem",
              "-cert_chain", "/etc/turtle/tls/chain.pem"]
    labels:
      io.turtle.tls: "@, api"
    ports: ["{port}:8443"]
  client:
    image: {image}
    command: ["sleep", "infinity"]
    init: true
  outsider:
    image: {image}
    command: ["sleep", "infinity"]
    init: true
    labels:
      io.turtle.trust: "false"
"#
    )
}

fn root_pem(env: &Env) -> String {
    env.box_ok(&["ca", "export"])
}

fn ca_status(env: &Env) -> Value {
    serde_json::from_str(&env.box_ok(&["ca", "status", "--json"])).expect("status JSON")
}

/// The `web` service's leaf in `turtle ca status --json`.
fn web_leaf(env: &Env) -> Value {
    let status = ca_status(env);
    status["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == format!("{}.web", env.project))
        .cloned()
        .unwrap_or_else(|| panic!("no leaf for web in {status:#}"))
}

/// Runs a command in a container; returns (exit code, stdout + stderr).
fn exec(container: &str, cmd: &[&str]) -> (i32, String) {
    let out = std::process::Command::new("docker")
        .args(["exec", container])
        .args(cmd)
        .output()
        .expect("docker exec");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Waits until the TLS service answers a handshake as `name`.
fn wait_serving(port: u16, name: &str, root: &str) {
    wait_until("the TLS service to answer", Duration::from_secs(30), || {
        handshake(addr(port), name, root).is_ok()
    });
}

#[test]
fn containers_trust_the_ca_and_resolve_the_stack_names_with_no_flags() {
    let mut env = Env::new("trust");
    let port = free_port();
    env.compose(&stack(port));
    env.start_daemon();
    env.ok(&["up"]);
    let root = root_pem(&env);
    wait_serving(port, &format!("api.{DOMAIN}"), &root);

    // From the host, trusting only Turtle's root: every name of the leaf.
    let leaf = web_leaf(&env);
    for name in [DOMAIN.to_string(), format!("api.{DOMAIN}")] {
        let served = handshake(addr(port), &name, &root)
            .unwrap_or_else(|e| panic!("handshake as {name}: {e}"));
        assert_eq!(
            served.leaf_fingerprint,
            leaf["fingerprint"].as_str().unwrap()
        );
        assert!(served.chain_len >= 2, "the intermediate must be served too");
    }
    let e = handshake(addr(port), "other.example.com", &root).unwrap_err();
    assert!(
        e.contains("NotValidForName") || e.contains("not valid for"),
        "{e}"
    );

    // Inside a Debian container: curl and Python, no CA flags.
    let client = env.container("client");
    let url = format!("https://api.{DOMAIN}:{port}/");
    let (code, out) = exec(
        &client,
        &["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", &url],
    );
    assert_eq!((code, out.as_str()), (0, "200"), "curl {url}");
    let script = format!(
        "import urllib.request; print(urllib.request.urlopen('https://{DOMAIN}:{port}/').status)"
    );
    let (code, out) = exec(&client, &["python3", "-c", &script]);
    assert_eq!((code, out.trim()), (0, "200"), "python urllib");
    let (_, env_out) = exec(&client, &["env"]);
    for var in [
        "SSL_CERT_FILE",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "GIT_SSL_CAINFO",
    ] {
        assert!(
            env_out.contains(&format!("{var}=/etc/turtle/trust/ca-bundle.pem")),
            "{var} missing:\n{env_out}"
        );
    }
    // The bundle keeps the system CAs: it holds more than Turtle's root.
    let (_, count) = exec(
        &client,
        &[
            "grep",
            "-c",
            "BEGIN CERTIFICATE",
            "/etc/turtle/trust/ca-bundle.pem",
        ],
    );
    assert!(count.trim().parse::<u32>().unwrap() > 1, "bundle: {count}");

    // The service that opted out resolves the name but does not trust the CA:
    // what makes the client work is what Turtle injects.
    let outsider = env.container("outsider");
    let (code, out) = exec(&outsider, &["curl", "-sS", "-o", "/dev/null", &url]);
    assert_eq!(code, 60, "curl should fail certificate verification: {out}");
    let (_, mounts) = exec(&outsider, &["ls", "/etc/turtle"]);
    assert!(!mounts.contains("trust"), "{mounts}");
    // Only the TLS service gets a key.
    let (code, _) = exec(&client, &["test", "-e", "/etc/turtle/tls/key.pem"]);
    assert_ne!(code, 0, "the key must be mounted into the TLS service only");
}

#[test]
fn a_renewed_leaf_reaches_the_running_service() {
    let mut env = Env::new("renew");
    env.config(&format!(
        "{}ca: {{leaf_lifetime: 15s}}\n",
        turtle_e2e::DEFAULT_CONFIG
    ));
    let port = free_port();
    env.compose(&stack(port));
    env.start_daemon();
    env.ok(&["up"]);
    let root = root_pem(&env);
    let name = format!("api.{DOMAIN}");
    wait_serving(port, &name, &root);
    let first = handshake(addr(port), &name, &root)
        .unwrap()
        .leaf_fingerprint;

    // Renewal at two thirds of 15 s: the daemon issues a new leaf and
    // restarts the service, which then serves it.
    let mut now_served = String::new();
    wait_until(
        "a renewed leaf to be served",
        Duration::from_secs(60),
        || match handshake(addr(port), &name, &root) {
            Ok(s) => {
                now_served = s.leaf_fingerprint;
                now_served != first
            }
            Err(_) => false,
        },
    );
    let leaf = web_leaf(&env);
    assert_ne!(leaf["fingerprint"].as_str().unwrap(), first);
    let events = env.ok(&["events"]);
    assert!(events.contains("certificate-reload"), "{events}");
    // A restart never changes the CA.
    env.kill_daemon();
    env.start_daemon();
    assert_eq!(root_pem(&env), root);
}

#[test]
fn the_ca_command_exports_shows_and_issues() {
    let env = Env::new("ca");
    let root = root_pem(&env);
    assert!(root.starts_with("-----BEGIN CERTIFICATE-----"), "{root}");
    assert_eq!(root_pem(&env), root, "the CA is created once");
    let status = ca_status(&env);
    assert_eq!(status["domain"], DOMAIN);
    assert_eq!(status["root"]["state"], "valid");

    let dir = env.box_ok(&["ca", "issue", "extra", "--ip", "10.1.2.3"]);
    let dir = std::path::Path::new(dir.trim());
    for f in ["cert.pem", "chain.pem", "key.pem"] {
        assert!(dir.join(f).is_file(), "{} missing", dir.join(f).display());
    }
    // The issued leaf verifies against the root for its name and address.
    let text = docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/c:ro", dir.display()),
        debian_image(),
        "openssl",
        "x509",
        "-in",
        "/c/cert.pem",
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(
        text.contains(&format!("DNS:extra.{DOMAIN}")) && text.contains("IP Address:10.1.2.3"),
        "{text}"
    );

    let out = env
        .command(&["ca", "issue", "www.example.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("outside the stack's domain"), "{err}");

    let table = env.box_ok(&["ca", "status"]);
    assert!(table.contains(&format!("extra.{DOMAIN}")), "{table}");
}

/// An operator's CA made with OpenSSL (EC P-256, PKCS#8 key) in `dir`.
fn operator_ca(dir: &std::path::Path, cn: &str) -> (String, String) {
    let cert = dir.join(format!("{cn}.pem")).display().to_string();
    let key = dir.join(format!("{cn}.key")).display().to_string();
    host(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "365",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &key,
            "-out",
            &cert,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    (cert, key)
}

#[test]
fn an_operators_ca_is_brought_in_and_turtle_issues_under_it() {
    let env = Env::new("byoca");
    let dir = env.dir.path();
    let (cert, key) = operator_ca(dir, "corp-root");
    env.box_ok(&["ca", "import", "--cert", &cert, "--key", &key]);

    // The operator's certificate is the root now.
    let theirs = host(
        "openssl",
        &["x509", "-in", &cert, "-noout", "-fingerprint", "-sha256"],
    );
    let status = ca_status(&env);
    assert_eq!(status["imported"], true);
    assert!(
        theirs
            .trim()
            .ends_with(status["root"]["fingerprint"].as_str().unwrap()),
        "{theirs} vs {status:#}"
    );
    // A second CA is refused: the box's CA never changes under its leaves.
    let (other, other_key) = operator_ca(dir, "other-root");
    let out = env
        .command(&["ca", "import", "--cert", &other, "--key", &other_key])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a second import must fail");

    // Leaves chain to it through Turtle's constrained intermediate: OpenSSL
    // trusting only the operator's root verifies them.
    let leaf = env.box_ok(&["ca", "issue", "api"]);
    let leaf = std::path::Path::new(leaf.trim());
    let chain = leaf.join("chain.pem").display().to_string();
    let verified = host(
        "openssl",
        &[
            "verify",
            "-CAfile",
            &cert,
            "-untrusted",
            &chain,
            "-verify_hostname",
            &format!("api.{DOMAIN}"),
            &leaf.join("cert.pem").display().to_string(),
        ],
    );
    assert!(verified.contains(": OK"), "{verified}");
}
