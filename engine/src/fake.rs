//! An in-memory, recording [`Engine`] for unit tests of planning and applying.
//!
//! It keeps containers, networks, volumes and images in a map and records every
//! call by name, so tests can assert "a second up makes no mutating call". It
//! models just enough behaviour for the planner: create -> created, start ->
//! running (and healthy at once when the container has a healthcheck, unless
//! told otherwise). It never replaces the real-engine tests.

use std::collections::HashMap;
use std::sync::Mutex;

use bollard_stubs::models::{NetworkCreateRequest, VolumeCreateRequest};
use futures_util::stream;

use crate::{
    BoxStream, BuildSpec, ContainerDetails, ContainerSpec, ContainerSummary, Engine, EngineError,
    EngineEvent, ExecOutcome, ExecSpec, FileUpload, Health, HealthTest, LogChunk, NetworkSummary,
    Progress, Result, State, VolumeSummary,
};

/// The service label the fake reads to tell replicas of a service apart
/// (compose's, as `turtle-reconcile`'s names set it).
const SERVICE_LABEL: &str = "com.docker.compose.service";

/// Calls that change engine state.
pub const MUTATING: &[&str] = &[
    "create_container",
    "start_container",
    "stop_container",
    "restart_container",
    "remove_container",
    "rename_container",
    "create_network",
    "remove_network",
    "create_volume",
    "remove_volume",
    "pull_image",
    "build_image",
    "tag_image",
    "upload_files",
    "exec",
];

#[derive(Debug, Clone)]
pub struct FakeContainer {
    pub summary: ContainerSummary,
    pub spec: ContainerSpec,
    pub exit_code: Option<i64>,
    pub restart_count: i64,
}

#[derive(Default)]
struct Inner {
    containers: Vec<FakeContainer>,
    networks: HashMap<String, NetworkSummary>,
    volumes: HashMap<String, VolumeSummary>,
    images: HashMap<String, String>,
    /// The config (`docker save`'s `<id>.json`) of each image ID: the ID is
    /// its SHA-256, as on the engine.
    configs: HashMap<String, Vec<u8>>,
    /// Layer contents by diff ID (`sha256:` + the SHA-256 of the bytes).
    layers: HashMap<String, Vec<u8>>,
    calls: Vec<String>,
    next_id: u64,
    /// Exit code a container of this service gets when started (one-shots).
    exits: HashMap<String, i64>,
    /// Services whose healthcheck never passes (health stays `starting`).
    never_healthy: std::collections::HashSet<String>,
    /// The layers (diff IDs, bottom first) of an image ID, when a test set
    /// them apart from its config; else its config's diff IDs.
    set_layers: HashMap<String, Vec<String>>,
    /// When each image was last pulled, built or tagged.
    refreshed: HashMap<String, std::time::SystemTime>,
    /// Files written into containers, by container ID.
    uploads: Vec<(String, FileUpload)>,
    /// Execs run, by container ID.
    execs: Vec<(String, ExecSpec)>,
    /// Exit code and output of an exec whose command line contains the key.
    exec_results: Vec<(String, ExecOutcome)>,
}

impl Inner {
    /// The diff IDs of an image's config.
    fn diff_ids(&self, id: &str) -> Vec<String> {
        self.configs
            .get(id)
            .and_then(|c| serde_json::from_slice::<serde_json::Value>(c).ok())
            .and_then(|v| {
                v["rootfs"]["diff_ids"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(String::from))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Every layer chain of the images present: what the engine's layer
    /// store holds.
    fn chains(&self) -> std::collections::HashSet<String> {
        let ids: std::collections::HashSet<&String> = self.images.values().collect();
        ids.into_iter()
            .flat_map(|id| chain_ids(&self.diff_ids(id)))
            .collect()
    }

    /// The ID of an image by reference or by ID, as the engine resolves it.
    fn image_by(&self, reference: &str) -> Option<String> {
        self.images
            .get(reference)
            .cloned()
            .or_else(|| self.images.values().find(|id| *id == reference).cloned())
    }

    /// The image ID `id` as `inspect_image` shows it.
    fn info(&self, id: &str) -> crate::ImageInfo {
        let mut repo_tags: Vec<String> = self
            .images
            .iter()
            .filter(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .collect();
        repo_tags.sort();
        crate::ImageInfo {
            layers: self
                .set_layers
                .get(id)
                .cloned()
                .unwrap_or_else(|| self.diff_ids(id)),
            size: self.configs.get(id).map_or(0, |c| c.len() as u64),
            id: id.to_string(),
            repo_tags,
            repo_digests: Vec::new(),
        }
    }
}

#[derive(Default)]
pub struct FakeEngine {
    inner: Mutex<Inner>,
}

impl FakeEngine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `reference` present with a made-up ID and one layer of its own.
    pub fn add_image(&self, reference: &str) {
        self.add_image_with_layers(reference, &[format!("layer of {reference}").as_bytes()]);
    }

    /// Makes `reference` present with these layers (bottom first): images
    /// given the same first layers share them, as on the engine.
    pub fn add_image_with_layers(&self, reference: &str, layers: &[&[u8]]) {
        use sha2::Digest;
        let mut i = self.inner.lock().unwrap();
        let diff_ids: Vec<String> = layers
            .iter()
            .map(|l| format!("sha256:{}", hex(&sha2::Sha256::digest(l))))
            .collect();
        for (d, l) in diff_ids.iter().zip(layers) {
            i.layers.insert(d.clone(), l.to_vec());
        }
        // As before configs: the number of references (+1), so adding a
        // reference the fake has again (a pull, a rebuild) keeps its ID.
        let serial = i.images.len() + 1;
        let config = format!(
            r#"{{"architecture":"{}","os":"linux","config":{{"Labels":{{"fake.reference":{reference:?},"fake.serial":"{}"}}}},"rootfs":{{"type":"layers","diff_ids":{}}}}}"#,
            docker_arch(),
            serial,
            serde_json::to_string(&diff_ids).expect("strings serialize")
        )
        .into_bytes();
        let id = format!("sha256:{}", hex(&sha2::Sha256::digest(&config)));
        i.configs.insert(id.clone(), config);
        i.images.insert(reference.to_string(), id);
        i.refreshed
            .insert(reference.to_string(), std::time::SystemTime::now());
    }

    /// Gives the image `reference` these layers (diff IDs, bottom first).
    pub fn set_image_layers(&self, reference: &str, layers: &[&str]) {
        let mut i = self.inner.lock().unwrap();
        let id = i
            .image_by(reference)
            .unwrap_or_else(|| panic!("the fake has no image {reference}"));
        i.set_layers
            .insert(id, layers.iter().map(|l| l.to_string()).collect());
    }

    /// Says the image was last pulled, built or tagged at `at`.
    pub fn set_image_refreshed(&self, reference: &str, at: std::time::SystemTime) {
        self.inner
            .lock()
            .unwrap()
            .refreshed
            .insert(reference.to_string(), at);
    }

    /// An exec whose command line (words joined by spaces) contains `key`
    /// ends with this outcome; others exit 0.
    pub fn exec_result(&self, key: &str, outcome: ExecOutcome) {
        self.inner
            .lock()
            .unwrap()
            .exec_results
            .push((key.to_string(), outcome));
    }

    /// Files written into containers: (container ID, file).
    pub fn uploads(&self) -> Vec<(String, FileUpload)> {
        self.inner.lock().unwrap().uploads.clone()
    }

    /// Execs run: (container ID, what).
    pub fn execs(&self) -> Vec<(String, ExecSpec)> {
        self.inner.lock().unwrap().execs.clone()
    }

    /// Containers of `service` exit with `code` as soon as they start.
    pub fn exit_on_start(&self, service: &str, code: i64) {
        self.inner
            .lock()
            .unwrap()
            .exits
            .insert(service.to_string(), code);
    }

    /// Containers of `service` start but never turn healthy, and every exec
    /// in them (a probe of their healthcheck) fails unless scripted with
    /// [`Self::exec_result`].
    pub fn never_healthy(&self, service: &str) {
        self.inner
            .lock()
            .unwrap()
            .never_healthy
            .insert(service.to_string());
    }

    /// Every call so far, as `name arg`.
    pub fn calls(&self) -> Vec<String> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Only the calls that change engine state.
    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| MUTATING.iter().any(|m| c.split(' ').next() == Some(m)))
            .collect()
    }

    pub fn clear_calls(&self) {
        self.inner.lock().unwrap().calls.clear();
    }

    pub fn containers(&self) -> Vec<FakeContainer> {
        self.inner.lock().unwrap().containers.clone()
    }

    /// Sets a container's state by name, as if it crashed or turned unhealthy.
    pub fn set_state(&self, name: &str, state: State, health: Option<Health>) {
        let mut i = self.inner.lock().unwrap();
        if let Some(c) = i.containers.iter_mut().find(|c| c.summary.name == name) {
            c.summary.state = state;
            c.summary.health = health;
        }
    }

    /// Removes a container behind the supervisor's back.
    pub fn vanish(&self, name: &str) {
        self.inner
            .lock()
            .unwrap()
            .containers
            .retain(|c| c.summary.name != name);
    }

    fn record(&self, call: String) {
        self.inner.lock().unwrap().calls.push(call);
    }

    /// Runs `f` on the container with this id; not found like the engine.
    fn with_container<T>(&self, id: &str, f: impl FnOnce(&mut FakeContainer) -> T) -> Result<T> {
        let mut i = self.inner.lock().unwrap();
        let c = i
            .containers
            .iter_mut()
            .find(|c| c.summary.id == id)
            .ok_or_else(|| not_found(format!("container {id}")))?;
        Ok(f(c))
    }

    fn set_state_by_id(&self, id: &str, state: State) -> Result<()> {
        self.with_container(id, |c| c.summary.state = state)
    }
}

fn matches(labels: &HashMap<String, String>, filters: &[String]) -> bool {
    filters.iter().all(|f| match f.split_once('=') {
        Some((k, v)) => labels.get(k).map(String::as_str) == Some(v),
        None => labels.contains_key(f.as_str()),
    })
}

fn not_found(what: impl Into<String>) -> EngineError {
    EngineError::NotFound { what: what.into() }
}

impl Engine for FakeEngine {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn list_containers(&self, labels: &[String]) -> Result<Vec<ContainerSummary>> {
        self.record("list_containers".into());
        let i = self.inner.lock().unwrap();
        Ok(i.containers
            .iter()
            .filter(|c| matches(&c.summary.labels, labels))
            .map(|c| c.summary.clone())
            .collect())
    }

    async fn inspect_container(&self, id: &str) -> Result<ContainerDetails> {
        self.record(format!("inspect_container {id}"));
        let i = self.inner.lock().unwrap();
        let c = i
            .containers
            .iter()
            .find(|c| c.summary.id == id || c.summary.name == id)
            .ok_or_else(|| not_found(format!("container {id}")))?;
        Ok(ContainerDetails {
            id: c.summary.id.clone(),
            name: c.summary.name.clone(),
            labels: c.summary.labels.clone(),
            image_id: c.summary.image_id.clone(),
            state: c.summary.state,
            health: c.summary.health,
            exit_code: c.exit_code,
            started_at: None,
            finished_at: None,
            restart_count: c.restart_count,
            pid: None,
            oom_killed: false,
            volumes: vec![],
            healthcheck: c.spec.body.healthcheck.as_ref().and_then(HealthTest::of),
            addresses: vec![],
        })
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        self.record(format!("create_container {}", spec.name));
        let mut i = self.inner.lock().unwrap();
        if i.containers.iter().any(|c| c.summary.name == spec.name) {
            return Err(EngineError::Conflict {
                what: format!("container {}", spec.name),
                message: "name in use".into(),
            });
        }
        let image = spec.body.image.clone().unwrap_or_default();
        let image_id = i
            .image_by(&image)
            .ok_or_else(|| not_found(format!("image {image}")))?;
        i.next_id += 1;
        let id = format!("{:064x}", i.next_id);
        let summary = ContainerSummary {
            id: id.clone(),
            name: spec.name.clone(),
            labels: spec.body.labels.clone().unwrap_or_default(),
            image,
            image_id,
            state: State::Created,
            health: None,
        };
        i.containers.push(FakeContainer {
            summary,
            spec: spec.clone(),
            exit_code: None,
            restart_count: 0,
        });
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.record(format!("start_container {id}"));
        let mut i = self.inner.lock().unwrap();
        let exits = i.exits.clone();
        let starting = i.never_healthy.clone();
        let c = i
            .containers
            .iter_mut()
            .find(|c| c.summary.id == id)
            .ok_or_else(|| not_found(format!("container {id}")))?;
        let service = c
            .summary
            .labels
            .get(SERVICE_LABEL)
            .cloned()
            .unwrap_or_default();
        if let Some(code) = exits.get(&service) {
            c.summary.state = State::Exited;
            c.exit_code = Some(*code);
            return Ok(());
        }
        c.summary.state = State::Running;
        let has_health = c
            .spec
            .body
            .healthcheck
            .as_ref()
            .and_then(|h| h.test.as_ref())
            .is_some_and(|t| t.first().map(String::as_str) != Some("NONE"));
        c.summary.health = has_health.then_some(if starting.contains(&service) {
            Health::Starting
        } else {
            Health::Healthy
        });
        Ok(())
    }

    async fn stop_container(&self, id: &str, _timeout: Option<i64>) -> Result<()> {
        self.record(format!("stop_container {id}"));
        let mut i = self.inner.lock().unwrap();
        if let Some(c) = i.containers.iter_mut().find(|c| c.summary.id == id) {
            c.summary.state = State::Exited;
            c.exit_code = Some(137);
        }
        Ok(())
    }

    async fn restart_container(&self, id: &str, _timeout: Option<i64>) -> Result<()> {
        self.record(format!("restart_container {id}"));
        self.with_container(id, |c| {
            c.summary.state = State::Running;
            if c.summary.health.is_some() {
                c.summary.health = Some(Health::Healthy);
            }
        })
    }

    async fn update_cpus(&self, id: &str, nano_cpus: i64) -> Result<()> {
        self.record(format!("update_cpus {id} {nano_cpus}"));
        Ok(())
    }

    async fn pause_container(&self, id: &str) -> Result<()> {
        self.record(format!("pause_container {id}"));
        self.set_state_by_id(id, State::Paused)
    }

    async fn unpause_container(&self, id: &str) -> Result<()> {
        self.record(format!("unpause_container {id}"));
        self.set_state_by_id(id, State::Running)
    }

    async fn kill_container(&self, id: &str, signal: &str) -> Result<()> {
        self.record(format!("kill_container {id} {signal}"));
        Ok(())
    }

    async fn rename_container(&self, id: &str, name: &str) -> Result<()> {
        self.record(format!("rename_container {id} {name}"));
        let mut i = self.inner.lock().unwrap();
        if i.containers.iter().any(|c| c.summary.name == name) {
            return Err(EngineError::Conflict {
                what: format!("container {name}"),
                message: "name in use".into(),
            });
        }
        let c = i
            .containers
            .iter_mut()
            .find(|c| c.summary.id == id || c.summary.name == id)
            .ok_or_else(|| not_found(format!("container {id}")))?;
        c.summary.name = name.to_string();
        Ok(())
    }

    async fn remove_container(&self, id: &str, _volumes: bool) -> Result<()> {
        self.record(format!("remove_container {id}"));
        self.inner
            .lock()
            .unwrap()
            .containers
            .retain(|c| c.summary.id != id);
        Ok(())
    }

    async fn upload_files(&self, id: &str, files: &[FileUpload]) -> Result<()> {
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        self.record(format!("upload_files {id} {}", paths.join(",")));
        self.with_container(id, |_| ())?;
        let mut i = self.inner.lock().unwrap();
        i.uploads
            .extend(files.iter().map(|f| (id.to_string(), f.clone())));
        Ok(())
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutcome> {
        let line = spec.command.join(" ");
        self.record(format!("exec {id} {line}"));
        let running = self.with_container(id, |c| c.summary.state == State::Running)?;
        if !running {
            return Err(EngineError::Conflict {
                what: format!("container {id}"),
                message: "is not running".into(),
            });
        }
        let service = self.with_container(id, |c| {
            c.summary
                .labels
                .get(SERVICE_LABEL)
                .cloned()
                .unwrap_or_default()
        })?;
        let mut i = self.inner.lock().unwrap();
        i.execs.push((id.to_string(), spec.clone()));
        // A never-healthy service's check fails when probed, too.
        let default = match i.never_healthy.contains(&service) {
            true => ExecOutcome {
                exit_code: 1,
                output_tail: "never healthy (fake)".into(),
                ..Default::default()
            },
            false => ExecOutcome::default(),
        };
        Ok(i.exec_results
            .iter()
            .find(|(k, _)| line.contains(k.as_str()))
            .map(|(_, o)| o.clone())
            .unwrap_or(default))
    }

    async fn list_networks(&self, labels: &[String]) -> Result<Vec<NetworkSummary>> {
        self.record("list_networks".into());
        let i = self.inner.lock().unwrap();
        Ok(i.networks
            .values()
            .filter(|n| matches(&n.labels, labels))
            .cloned()
            .collect())
    }

    async fn find_network(&self, name: &str) -> Result<Option<NetworkSummary>> {
        self.record(format!("find_network {name}"));
        Ok(self.inner.lock().unwrap().networks.get(name).cloned())
    }

    async fn create_network(&self, req: &NetworkCreateRequest) -> Result<()> {
        self.record(format!("create_network {}", req.name));
        let mut i = self.inner.lock().unwrap();
        let n = NetworkSummary {
            id: format!("net-{}", req.name),
            name: req.name.clone(),
            labels: req.labels.clone().unwrap_or_default(),
        };
        i.networks.insert(req.name.clone(), n);
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        self.record(format!("remove_network {name}"));
        self.inner.lock().unwrap().networks.remove(name);
        Ok(())
    }

    async fn list_volumes(&self, labels: &[String]) -> Result<Vec<VolumeSummary>> {
        self.record("list_volumes".into());
        let i = self.inner.lock().unwrap();
        Ok(i.volumes
            .values()
            .filter(|v| matches(&v.labels, labels))
            .cloned()
            .collect())
    }

    async fn find_volume(&self, name: &str) -> Result<Option<VolumeSummary>> {
        self.record(format!("find_volume {name}"));
        Ok(self.inner.lock().unwrap().volumes.get(name).cloned())
    }

    async fn create_volume(&self, req: &VolumeCreateRequest) -> Result<()> {
        let name = req.name.clone().unwrap_or_default();
        self.record(format!("create_volume {name}"));
        let v = VolumeSummary {
            name: name.clone(),
            labels: req.labels.clone().unwrap_or_default(),
        };
        self.inner.lock().unwrap().volumes.insert(name, v);
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.record(format!("remove_volume {name}"));
        self.inner.lock().unwrap().volumes.remove(name);
        Ok(())
    }

    async fn image_id(&self, reference: &str) -> Result<Option<String>> {
        self.record(format!("image_id {reference}"));
        Ok(self.inner.lock().unwrap().image_by(reference))
    }

    fn pull_image(&self, reference: &str) -> BoxStream<Result<Progress>> {
        self.record(format!("pull_image {reference}"));
        self.add_image(reference);
        Box::pin(stream::empty())
    }

    fn build_image(&self, spec: &BuildSpec) -> BoxStream<Result<Progress>> {
        self.record(format!("build_image {}", spec.tag));
        self.add_image(&spec.tag);
        Box::pin(stream::iter([Ok(Progress::Log("built".into()))]))
    }

    async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        self.record(format!("tag_image {source} {target}"));
        // As the engine: a reference by digest is not a tag.
        if target.contains('@') {
            return Err(crate::EngineError::Api {
                what: format!("tag {source} as {target}"),
                status: 500,
                message: "invalid tag format".into(),
            });
        }
        let mut i = self.inner.lock().unwrap();
        match i.images.get(source).cloned() {
            // A tag names the same image.
            Some(id) => {
                i.images.insert(target.to_string(), id);
                i.refreshed
                    .insert(target.to_string(), std::time::SystemTime::now());
            }
            None => {
                drop(i);
                self.add_image(target);
            }
        }
        Ok(())
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<crate::ImageInfo>> {
        self.record(format!("inspect_image {reference}"));
        let i = self.inner.lock().unwrap();
        let Some(id) = i.image_by(reference) else {
            return Ok(None);
        };
        Ok(Some(i.info(&id)))
    }

    async fn list_images(&self) -> Result<Vec<crate::ImageInfo>> {
        self.record("list_images".to_string());
        let i = self.inner.lock().unwrap();
        let ids: std::collections::BTreeSet<&String> = i.images.values().collect();
        Ok(ids.into_iter().map(|id| i.info(id)).collect())
    }

    async fn remove_image(&self, reference: &str) -> Result<()> {
        self.record(format!("remove_image {reference}"));
        let mut i = self.inner.lock().unwrap();
        let Some(id) = i.image_by(reference) else {
            return Err(EngineError::NotFound {
                what: format!("image {reference}"),
            });
        };
        if i.containers.iter().any(|c| c.summary.image_id == id) {
            return Err(EngineError::Conflict {
                what: format!("image {reference}"),
                message: "image is being used by a container".into(),
            });
        }
        i.images.retain(|_, v| *v != id);
        Ok(())
    }

    async fn data_root(&self) -> Result<std::path::PathBuf> {
        Ok(std::env::temp_dir())
    }

    async fn image_refreshed_at(&self, reference: &str) -> Result<Option<std::time::SystemTime>> {
        self.record(format!("image_refreshed_at {reference}"));
        let i = self.inner.lock().unwrap();
        Ok(i.images
            .contains_key(reference)
            .then(|| i.refreshed.get(reference).copied())
            .flatten())
    }

    async fn import_rootfs(
        &self,
        _tarball: &std::path::Path,
        reference: &str,
        _changes: &[String],
    ) -> Result<()> {
        self.record(format!("import_rootfs {reference}"));
        self.add_image(reference);
        Ok(())
    }

    async fn load_images(&self, archive: &std::path::Path) -> Result<()> {
        self.record(format!("load_images {}", archive.display()));
        Ok(())
    }

    /// Reads the whole stream first, as the engine unpacks the whole
    /// archive: a stream that fails loads nothing. The images of the
    /// archive's `manifest.json` are then present under their tags.
    async fn load_images_stream(
        &self,
        mut archive: BoxStream<std::io::Result<Vec<u8>>>,
    ) -> Result<()> {
        use futures_util::StreamExt;
        let fail = |message: String| EngineError::Other {
            what: "load of a docker save stream".into(),
            message,
        };
        let mut data = Vec::new();
        while let Some(chunk) = archive.next().await {
            data.extend(chunk.map_err(|e| fail(e.to_string()))?);
        }
        self.record(format!("load_images_stream {} bytes", data.len()));
        let mut i = self.inner.lock().unwrap();
        // As the engine: a layer file is read only when the layer store
        // lacks its chain, and then must hash to its diff ID.
        let loaded = read_save_archive(&data, &i.chains()).map_err(fail)?;
        for (id, config, tags, layers) in loaded {
            i.configs.insert(id.clone(), config);
            for (d, l) in layers {
                i.layers.insert(d, l);
            }
            for t in tags {
                i.images.insert(t.clone(), id.clone());
                i.refreshed.insert(t, std::time::SystemTime::now());
            }
        }
        Ok(())
    }

    /// A `docker save` archive of the references' configs and layers (each
    /// in a directory named by its chain ID, so a layer shared by images
    /// is in it once), with `manifest.json` and `repositories` last.
    fn save_images(&self, references: &[String]) -> BoxStream<Result<Vec<u8>>> {
        self.record(format!("save_images {}", references.join(",")));
        let i = self.inner.lock().unwrap();
        let mut images = Vec::new();
        for r in references {
            match i.images.get(r) {
                Some(id) => {
                    let layers = i
                        .diff_ids(id)
                        .into_iter()
                        .map(|d| {
                            let bytes = i.layers.get(&d).cloned().unwrap_or_default();
                            (d, bytes)
                        })
                        .collect();
                    images.push((r.clone(), id.clone(), i.configs[id].clone(), layers));
                }
                None => {
                    return Box::pin(stream::iter([Err(EngineError::NotFound {
                        what: format!("image {r}"),
                    })]));
                }
            }
        }
        drop(i);
        Box::pin(stream::iter([Ok(write_save_archive(&images))]))
    }

    fn events(&self, _labels: &[String]) -> BoxStream<Result<EngineEvent>> {
        Box::pin(stream::pending())
    }

    fn logs(&self, id: &str, _follow: bool, _tail: Option<u64>) -> BoxStream<Result<LogChunk>> {
        self.record(format!("logs {id}"));
        Box::pin(stream::empty())
    }
}

/// The engine's name of this machine's architecture (`amd64`, `arm64`).
fn docker_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The chain ID of each layer, as `turtle-bundle` and the OCI spec define it.
fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    use sha2::Digest;
    let mut out: Vec<String> = Vec::new();
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(below) => format!(
                "sha256:{}",
                hex(&sha2::Sha256::digest(format!("{below} {d}").as_bytes()))
            ),
        };
        out.push(next);
    }
    out
}

/// An image to save: reference, ID, config, and its layers (diff ID, bytes).
type ToSave = (String, String, Vec<u8>, Vec<(String, Vec<u8>)>);

/// A `docker save` archive of these images.
fn write_save_archive(images: &[ToSave]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut written = std::collections::HashSet::new();
    let mut add = |path: &str, data: &[u8]| {
        if !written.insert(path.to_string()) {
            return;
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, data).expect("tar in memory");
    };
    let mut manifest = Vec::new();
    for (reference, id, config, layers) in images {
        let hexid = id.trim_start_matches("sha256:");
        let diff_ids: Vec<String> = layers.iter().map(|(d, _)| d.clone()).collect();
        let mut paths = Vec::new();
        for (chain, (_, bytes)) in chain_ids(&diff_ids).iter().zip(layers) {
            let path = format!("{}/layer.tar", chain.trim_start_matches("sha256:"));
            add(&path, bytes);
            paths.push(path);
        }
        add(&format!("{hexid}.json"), config);
        manifest.push(serde_json::json!({
            "Config": format!("{hexid}.json"),
            "RepoTags": [reference],
            "Layers": paths,
        }));
    }
    add(
        "manifest.json",
        serde_json::to_string(&manifest).unwrap().as_bytes(),
    );
    add("repositories", b"{}");
    b.into_inner().expect("tar in memory")
}

/// An image of a `docker save` archive: its ID, config, tags, and the
/// layers read from the archive (diff ID, bytes).
type SavedImage = (String, Vec<u8>, Vec<String>, Vec<(String, Vec<u8>)>);

/// The images of a `docker save` archive, given the layer chains the
/// engine has: a layer whose chain is there is not read (its file may be
/// missing), as the engine's load does; one that is not must be in the
/// archive and hash to its diff ID.
fn read_save_archive(
    data: &[u8],
    chains: &std::collections::HashSet<String>,
) -> std::result::Result<Vec<SavedImage>, String> {
    use sha2::Digest;
    use std::io::Read;
    let mut files = HashMap::new();
    let mut links = HashMap::new();
    let mut archive = tar::Archive::new(data);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .display()
            .to_string();
        if entry.header().entry_type() == tar::EntryType::Symlink {
            let target = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            links.insert(path, target);
            continue;
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(|e| e.to_string())?;
        files.insert(path, content);
    }
    let manifest: Vec<serde_json::Value> = serde_json::from_slice(
        files
            .get("manifest.json")
            .ok_or("the archive has no manifest.json")?,
    )
    .map_err(|e| format!("manifest.json: {e}"))?;
    let mut out = Vec::new();
    for m in manifest {
        let config_path = m["Config"].as_str().ok_or("manifest.json: no Config")?;
        let config = files
            .get(config_path)
            .ok_or_else(|| format!("the archive has no {config_path}"))?;
        let id = format!("sha256:{}", config_path.trim_end_matches(".json"));
        let tags = m["RepoTags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let value: serde_json::Value =
            serde_json::from_slice(config).map_err(|e| format!("{config_path}: {e}"))?;
        let diff_ids: Vec<String> = value["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let paths: Vec<String> = m["Layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut layers = Vec::new();
        for ((diff_id, chain), path) in diff_ids.iter().zip(chain_ids(&diff_ids)).zip(&paths) {
            if chains.contains(&chain) {
                continue;
            }
            let real = match links.get(path) {
                Some(target) => {
                    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                    let joined = format!("{dir}/{target}");
                    let mut parts: Vec<&str> = Vec::new();
                    for c in joined.split('/') {
                        match c {
                            "" | "." => {}
                            ".." => {
                                parts.pop();
                            }
                            c => parts.push(c),
                        }
                    }
                    parts.join("/")
                }
                None => path.clone(),
            };
            let bytes = files
                .get(&real)
                .ok_or_else(|| format!("open {real}: no such file or directory"))?;
            let found = format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)));
            if found != *diff_id {
                return Err(format!(
                    "invalid diffID for layer {path}: expected {diff_id}, got {found}"
                ));
            }
            layers.push((diff_id.clone(), bytes.clone()));
        }
        out.push((id, config.clone(), tags, layers));
    }
    Ok(out)
}
