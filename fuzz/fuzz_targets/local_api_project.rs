//! The local API's project body: `POST /v1/projects/{name}/plan` through the
//! daemon's own router (`turtle_control::server::router`) on an in-process
//! supervisor, as `turtle up --dry-run` builds it before a CA exists (an
//! in-memory store, the trust injection previewed, the secrets and a device
//! profile's budgets decorated), over the recording fake engine. That is the
//! body's whole path in the daemon up to the apply: axum's `Json<Project>`,
//! the URL's project name, the decorations, observing, planning.
//!
//! `PUT` (the apply) is left out on purpose: it writes secret files and
//! leaves containers in the engine, so one input would change what the next
//! one does (and the path-traversal attack it would guard against has its
//! own end-to-end test).
//!
//! Input: the project name (first line, any bytes, percent-encoded into the
//! URL), then the JSON body. Beyond "no panic": a failure is the caller's
//! (4xx), never the daemon's (500), since nothing here touches the disk.
#![no_main]

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use turtle_engine::fake::FakeEngine;
use turtle_runtime::config::Config;
use turtle_runtime::device::Device;
use turtle_runtime::secrets::Secrets;
use turtle_runtime::store::Store;
use turtle_runtime::supervisor::{self, BoxParts, Supervisor};
use turtle_runtime::trust::Trust;

struct Daemon {
    router: Router,
    engine: Arc<FakeEngine>,
    _state_dir: tempfile::TempDir,
}

static DAEMON: LazyLock<Daemon> = LazyLock::new(|| {
    let state_dir = tempfile::tempdir().expect("a temporary state directory");
    let mut config = Config {
        domain: Some("fuzz.test".into()),
        ..Default::default()
    };
    config.device.profile = Some("raspberrypi3".into());
    config.device.root = state_dir.path().join("root");
    let engine = Arc::new(FakeEngine::new());
    engine.add_image("busybox");
    let parts = BoxParts {
        injection: Some(Trust::preview(state_dir.path(), &config).expect("a trust preview")),
        device: Some(Arc::new(
            Device::open(state_dir.path(), &config).expect("the raspberrypi3 profile"),
        )),
        secrets: Some(Secrets::new(state_dir.path())),
        ..Default::default()
    };
    let sup = Supervisor::with_box(
        engine.clone(),
        Arc::new(Store::in_memory().expect("an in-memory store")),
        supervisor::Config::default(),
        parts,
    );
    Daemon {
        router: turtle_control::server::router(sup),
        engine,
        _state_dir: state_dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let daemon = &*DAEMON;
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (name, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let uri = format!("/v1/projects/{}/plan", turtle_fuzz::path_segment(name));
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a valid request");
    let (status, answer) = turtle_fuzz::call(&daemon.router, request);
    // The fake engine records every call: forget them, or memory grows.
    daemon.engine.clear_calls();
    assert!(
        !status.is_server_error(),
        "{status} for a project body: {}",
        String::from_utf8_lossy(&answer)
    );
});
