//! The port forwarder of a hand-over service: a small TCP proxy that holds
//! the service's published ports while its containers come and go.
//!
//! Two containers cannot publish the same host port, so a hand-over service
//! (see [`crate::handover`]) does not publish its ports itself: a companion
//! container does, running this forwarder (`turtle backend forward`), and
//! forwards each connection to the service by its name on their network.
//! The companion is an ordinary service of the deployed project (restart
//! `always`), so it keeps serving while the supervisor is down, and the
//! engine's DNS tells it where the service's containers are, per
//! connection.
//!
//! Routes come from [`ENV_ROUTES`] (`80=web:80,443=web:443`: listen port =
//! host:port). With [`ENV_DIR`] set (the service's run directory, mounted at
//! `/run/turtle`), a hand-over steers it through two files there:
//!
//! - [`BACKENDS_FILE`], written by Turtle: `generation N`, then the
//!   addresses the forwarder may connect to (the containers that serve).
//!   The new container is left out until it has taken over; then the old
//!   one is. Absent: every address the name resolves to. When none of the
//!   resolved addresses is listed (a file left over), all are used.
//! - [`CONNECTIONS_FILE`], written by the forwarder: the generation it has
//!   loaded and its open connections per backend address, so that Turtle
//!   stops the old container once nothing runs through it any more.
//!
//! A backend that refuses a connection (a container stopping, or not yet
//! listening) is skipped for the next address; a client connection is only
//! dropped when no address accepts.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

/// The routes: `LISTEN=HOST:PORT`, comma-separated.
pub const ENV_ROUTES: &str = "TURTLE_FORWARD";
/// The directory of [`BACKENDS_FILE`] and [`CONNECTIONS_FILE`].
pub const ENV_DIR: &str = "TURTLE_FORWARD_DIR";
/// The addresses the forwarder may use (written by Turtle).
pub const BACKENDS_FILE: &str = "forward-backends";
/// The forwarder's open connections per backend (written by it).
pub const CONNECTIONS_FILE: &str = "forward-connections";

/// How long one connection attempt to a backend may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the backends file is read.
const WATCH_EVERY: Duration = Duration::from_millis(50);
/// Client connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 4096;

/// One forwarded port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub listen: u16,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}:{}", self.listen, self.host, self.port)
    }
}

/// `80=web:80,443=web:443`.
pub fn parse_routes(s: &str) -> Result<Vec<Route>, String> {
    let bad = |r: &str| format!("{ENV_ROUTES}: {r:?} is not LISTEN_PORT=HOST:PORT");
    let routes = s
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            let (listen, to) = r.split_once('=').ok_or_else(|| bad(r))?;
            let (host, port) = to.rsplit_once(':').ok_or_else(|| bad(r))?;
            Ok(Route {
                listen: listen.trim().parse().map_err(|_| bad(r))?,
                host: host.trim().to_string(),
                port: port.trim().parse().map_err(|_| bad(r))?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if routes.is_empty() || routes.iter().any(|r| r.host.is_empty()) {
        return Err(bad(s));
    }
    Ok(routes)
}

/// Renders routes as [`parse_routes`] reads them.
pub fn format_routes(routes: &[Route]) -> String {
    routes
        .iter()
        .map(Route::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The backends file: which addresses may be used, from which generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backends {
    pub generation: u64,
    pub addresses: Vec<IpAddr>,
}

impl Backends {
    pub fn render(&self) -> String {
        let mut s = format!(
            "# Written by turtle during a hand-over: the forwarder connects to these addresses only.\ngeneration {}\n",
            self.generation
        );
        for a in &self.addresses {
            s.push_str(&format!("{a}\n"));
        }
        s
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut out = Self::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(g) = line.strip_prefix("generation ") {
                out.generation = g.trim().parse().ok()?;
            } else {
                out.addresses.push(line.parse().ok()?);
            }
        }
        Some(out)
    }
}

/// The connections file: the generation of the backends file the forwarder
/// has loaded (0: none), and its open connections per backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connections {
    pub generation: u64,
    pub open: HashMap<IpAddr, usize>,
}

impl Connections {
    pub fn render(&self) -> String {
        let mut s = format!("generation {}\n", self.generation);
        let mut open: Vec<_> = self.open.iter().filter(|(_, n)| **n > 0).collect();
        open.sort();
        for (a, n) in open {
            s.push_str(&format!("{a} {n}\n"));
        }
        s
    }

    pub fn parse(text: &str) -> Option<Self> {
        let mut out = Self::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(g) = line.strip_prefix("generation ") {
                out.generation = g.trim().parse().ok()?;
            } else {
                let (a, n) = line.split_once(' ')?;
                out.open.insert(a.parse().ok()?, n.trim().parse().ok()?);
            }
        }
        Some(out)
    }

    /// Reads the file in `dir`; `None` when it is missing or garbled.
    pub fn read(dir: &Path) -> Option<Self> {
        Self::parse(&std::fs::read_to_string(dir.join(CONNECTIONS_FILE)).ok()?)
    }
}

/// Writes `text` to `dir/name` so that a reader sees the old or the new
/// content, never a part.
pub fn write_atomic(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(name))
}

#[derive(Default)]
struct State {
    backends: Option<Backends>,
    open: HashMap<IpAddr, usize>,
}

struct Shared {
    dir: Option<PathBuf>,
    state: Mutex<State>,
    changed: Notify,
    next: AtomicUsize,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("the forwarder's state is never poisoned")
    }

    /// Picks a backend among `addrs` not yet `tried` and counts a
    /// connection to it, in one step: once Turtle reads a generation and no
    /// connection to an address, none will be opened to it.
    fn reserve(&self, addrs: &[SocketAddr], tried: &[SocketAddr]) -> Option<SocketAddr> {
        let mut state = self.state();
        let allowed = |a: &SocketAddr| match &state.backends {
            None => true,
            Some(b) => b.addresses.contains(&a.ip()),
        };
        let fresh: Vec<SocketAddr> = addrs
            .iter()
            .filter(|a| !tried.contains(a))
            .copied()
            .collect();
        let preferred: Vec<SocketAddr> = fresh.iter().filter(|a| allowed(a)).copied().collect();
        // Addresses the backends file leaves out come last: better than
        // dropping the client when every listed one failed.
        let pool = if preferred.is_empty() {
            fresh
        } else {
            preferred
        };
        if pool.is_empty() {
            return None;
        }
        let pick = pool[self.next.fetch_add(1, Ordering::Relaxed) % pool.len()];
        *state.open.entry(pick.ip()).or_default() += 1;
        drop(state);
        self.changed.notify_one();
        Some(pick)
    }

    fn release(&self, addr: SocketAddr) {
        let mut state = self.state();
        if let Some(n) = state.open.get_mut(&addr.ip()) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                state.open.remove(&addr.ip());
            }
        }
        drop(state);
        self.changed.notify_one();
    }
}

/// Serves `routes` until the process is told to stop (SIGTERM, SIGINT).
pub async fn serve(routes: Vec<Route>, dir: Option<PathBuf>) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        dir,
        state: Mutex::new(State::default()),
        changed: Notify::new(),
        next: AtomicUsize::new(0),
    });
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut tasks = tokio::task::JoinSet::new();
    let mut listening = std::collections::HashSet::new();
    for route in routes {
        if !listening.insert(route.listen) {
            continue;
        }
        let listener = TcpListener::bind(("0.0.0.0", route.listen))
            .await
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("listen on port {}: {e}", route.listen))
            })?;
        tracing::info!(
            "forwarding port {} to {}:{}",
            route.listen,
            route.host,
            route.port
        );
        tasks.spawn(accept_loop(
            listener,
            route,
            Arc::clone(&shared),
            Arc::clone(&limit),
        ));
    }
    if shared.dir.is_some() {
        tasks.spawn(watch_backends(Arc::clone(&shared)));
        tasks.spawn(write_connections(Arc::clone(&shared)));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        Some(Err(e)) = tasks.join_next() => {
            return Err(std::io::Error::other(format!("forwarder task failed: {e}")));
        }
    }
    Ok(())
}

/// [`serve`] with the routes and directory of the environment.
pub async fn serve_from_env() -> Result<(), String> {
    let routes = std::env::var(ENV_ROUTES)
        .map_err(|_| format!("{ENV_ROUTES} is not set: give the routes, e.g. 80=web:80"))?;
    let routes = parse_routes(&routes)?;
    let dir = std::env::var_os(ENV_DIR).map(PathBuf::from);
    serve(routes, dir).await.map_err(|e| e.to_string())
}

/// [`serve_from_env`] on a runtime of its own, for an executable whose
/// `main` is not async (the hand-over tests run their own binary as the
/// forwarder).
pub fn serve_from_env_blocking() -> Result<(), String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(serve_from_env())
}

async fn accept_loop(
    listener: TcpListener,
    route: Route,
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
) {
    let route = Arc::new(route);
    loop {
        let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
            return;
        };
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!("accept on port {}: {e}", route.listen);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (shared, route) = (Arc::clone(&shared), Arc::clone(&route));
        tokio::spawn(async move {
            forward(client, &route, &shared).await;
            drop(permit);
        });
    }
}

/// Connects the client to a backend and copies both ways until both ends
/// are done.
async fn forward(mut client: TcpStream, route: &Route, shared: &Shared) {
    let addrs: Vec<SocketAddr> =
        match tokio::net::lookup_host((route.host.as_str(), route.port)).await {
            Ok(a) => a.collect(),
            Err(e) => {
                tracing::warn!("{}: cannot resolve {}: {e}", route.listen, route.host);
                return;
            }
        };
    let mut tried = Vec::new();
    let (mut backend, addr) = loop {
        let Some(addr) = shared.reserve(&addrs, &tried) else {
            tracing::warn!(
                "{}: no backend of {}:{} accepts a connection",
                route.listen,
                route.host,
                route.port
            );
            return;
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => break (s, addr),
            _ => {
                shared.release(addr);
                tried.push(addr);
            }
        }
    };
    let _ = client.set_nodelay(true);
    let _ = backend.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    shared.release(addr);
}

/// Reloads the backends file when it changes.
async fn watch_backends(shared: Arc<Shared>) {
    let Some(path) = shared.dir.as_ref().map(|d| d.join(BACKENDS_FILE)) else {
        return;
    };
    loop {
        let now = match std::fs::read_to_string(&path) {
            Ok(text) => Backends::parse(&text),
            Err(_) => None,
        };
        let changed = {
            let mut state = shared.state();
            let changed = state.backends != now;
            state.backends = now;
            changed
        };
        if changed {
            shared.changed.notify_one();
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// Writes the connections file after every change (at most every 10 ms).
async fn write_connections(shared: Arc<Shared>) {
    let Some(dir) = shared.dir.clone() else {
        return;
    };
    let mut last = None;
    loop {
        let snapshot = {
            let state = shared.state();
            Connections {
                generation: state.backends.as_ref().map_or(0, |b| b.generation),
                open: state.open.clone(),
            }
            .render()
        };
        if last.as_ref() != Some(&snapshot) {
            if let Err(e) = write_atomic(&dir, CONNECTIONS_FILE, &snapshot) {
                tracing::warn!("cannot write {}: {e}", dir.join(CONNECTIONS_FILE).display());
            }
            last = Some(snapshot);
        }
        shared.changed.notified().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// On a service: its image is the forwarder's, made from the running
/// executable ([`make_image`]) instead of built.
pub const IMAGE_LABEL: &str = "io.turtle.build.forwarder";
/// Where the executable is in the forwarder's image.
pub const IMAGE_EXE: &str = "/turtle";

/// Makes the forwarder's image `reference` unless the engine has it: the
/// running executable at [`IMAGE_EXE`] and the shared libraries it has
/// loaded (its ELF interpreter at the path the executable names), nothing
/// else. No base image, registry or build is needed, and an image that
/// exists is kept as it is, so that its forwarders are not re-created by
/// every upgrade of Turtle (the companion's entrypoint, not the image,
/// says what to run).
pub async fn make_image<E: turtle_engine::Engine>(
    engine: &E,
    reference: &str,
) -> Result<(), turtle_engine::EngineError> {
    if engine.image_id(reference).await?.is_some() {
        return Ok(());
    }
    let other = |message: String| turtle_engine::EngineError::Other {
        what: format!("forwarder image {reference}"),
        message,
    };
    let tarball = tempfile::NamedTempFile::new().map_err(|e| other(e.to_string()))?;
    let path = tarball.path().to_path_buf();
    let dirs = tokio::task::spawn_blocking(move || write_rootfs(&path))
        .await
        .map_err(|e| other(e.to_string()))?
        .map_err(|e| {
            other(format!(
                "cannot gather the executable and its libraries: {e}"
            ))
        })?;
    let changes = vec![format!("ENV LD_LIBRARY_PATH={}", dirs.join(":"))];
    engine
        .import_rootfs(tarball.path(), reference, &changes)
        .await
}

/// Writes the forwarder's root file system as a tarball to `out`; returns
/// the directories of its libraries.
fn write_rootfs(out: &Path) -> std::io::Result<Vec<String>> {
    let exe = crate::images::self_exe()?;
    let interp = elf_interpreter(&exe)?;
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut libs: Vec<String> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/') && p.contains(".so"))
        .map(str::to_string)
        .collect();
    libs.sort();
    libs.dedup();
    let mut tar = tar::Builder::new(std::io::BufWriter::new(std::fs::File::create(out)?));
    tar.follow_symlinks(true);
    // The engine's import refuses GNU sparse entries.
    tar.sparse(false);
    tar.append_path_with_name(&exe, IMAGE_EXE.trim_start_matches('/'))?;
    let mut dirs = Vec::new();
    for lib in &libs {
        tar.append_path_with_name(lib, lib.trim_start_matches('/'))?;
        if let Some(d) = Path::new(lib).parent().map(|d| d.display().to_string())
            && !dirs.contains(&d)
        {
            dirs.push(d);
        }
    }
    if let Some(interp) = interp
        && !libs.contains(&interp)
    {
        // The interpreter is loaded under its real path (maps resolves
        // links); the executable asks for it by the path it names.
        let real = libs
            .iter()
            .find(|l| Path::new(l).file_name() == Path::new(&interp).file_name())
            .cloned()
            .unwrap_or_else(|| interp.clone());
        tar.append_path_with_name(real, interp.trim_start_matches('/'))?;
    }
    tar.into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    Ok(dirs)
}

/// The ELF interpreter (`PT_INTERP`) an executable names; `None` for a
/// static one.
fn elf_interpreter(exe: &Path) -> std::io::Result<Option<String>> {
    use std::os::unix::fs::FileExt;
    let bad = || std::io::Error::other(format!("{}: not an ELF executable", exe.display()));
    let f = std::fs::File::open(exe)?;
    let mut head = [0u8; 64];
    f.read_exact_at(&mut head, 0)?;
    if &head[..4] != b"\x7fELF" {
        return Err(bad());
    }
    let wide = match head[4] {
        1 => false,
        2 => true,
        _ => return Err(bad()),
    };
    let little = head[5] == 1;
    let num = |b: &[u8]| -> u64 {
        let mut v = 0u64;
        for (i, byte) in b.iter().enumerate() {
            let shift = if little { i } else { b.len() - 1 - i };
            v |= u64::from(*byte) << (8 * shift);
        }
        v
    };
    let (phoff, phentsize, phnum) = if wide {
        (
            num(&head[0x20..0x28]),
            num(&head[0x36..0x38]),
            num(&head[0x38..0x3a]),
        )
    } else {
        (
            num(&head[0x1c..0x20]),
            num(&head[0x2a..0x2c]),
            num(&head[0x2c..0x2e]),
        )
    };
    for i in 0..phnum {
        let mut ph = [0u8; 56];
        let len = (phentsize as usize).min(ph.len());
        f.read_exact_at(&mut ph[..len], phoff + i * phentsize)?;
        const PT_INTERP: u64 = 3;
        if num(&ph[0..4]) != PT_INTERP {
            continue;
        }
        let (offset, size) = if wide {
            (num(&ph[0x08..0x10]), num(&ph[0x20..0x28]))
        } else {
            (num(&ph[0x04..0x08]), num(&ph[0x10..0x14]))
        };
        if size > 4096 {
            return Err(bad());
        }
        let mut path = vec![0u8; size as usize];
        f.read_exact_at(&mut path, offset)?;
        let path = String::from_utf8(path).map_err(|_| bad())?;
        return Ok(Some(path.trim_end_matches('\0').to_string()));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_round_trip_and_refuse_garbage() {
        let r = parse_routes("80=web:80, 8443=web:443").unwrap();
        assert_eq!(
            r[1],
            Route {
                listen: 8443,
                host: "web".into(),
                port: 443
            }
        );
        assert_eq!(format_routes(&r), "80=web:80,8443=web:443");
        for bad in ["", "80", "80=web", "x=web:80", "80=:80", "80=web:x"] {
            assert!(parse_routes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_running_executable_names_its_interpreter() {
        let exe = crate::images::self_exe().unwrap();
        let interp = elf_interpreter(&exe)
            .unwrap()
            .expect("tests are linked dynamically");
        assert!(interp.starts_with('/') && interp.contains("ld"), "{interp}");
        assert!(elf_interpreter(Path::new("/proc/self/maps")).is_err());
    }

    #[test]
    fn files_round_trip() {
        let b = Backends {
            generation: 7,
            addresses: vec!["172.18.0.3".parse().unwrap(), "fd00::3".parse().unwrap()],
        };
        assert_eq!(Backends::parse(&b.render()), Some(b));
        let c = Connections {
            generation: 7,
            open: [("172.18.0.3".parse().unwrap(), 2)].into(),
        };
        assert_eq!(Connections::parse(&c.render()), Some(c));
        assert_eq!(Backends::parse("generation x"), None);
    }

    #[test]
    fn a_listed_backend_is_preferred_and_every_connection_counted() {
        let a: SocketAddr = "127.0.0.1:81".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:82".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let shared = Shared {
            dir: Some(dir.path().to_path_buf()),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            next: AtomicUsize::new(0),
        };
        // No backends file: both are used in turn.
        let addrs = [a, b];
        let first = shared.reserve(&addrs, &[]).unwrap();
        let second = shared.reserve(&addrs, &[]).unwrap();
        assert_ne!(first, second);
        assert_eq!(shared.state().open[&a.ip()], 2, "a and b share 127.0.0.1");
        shared.release(first);
        shared.release(second);
        assert!(shared.state().open.is_empty());
        // A listed address is preferred; a tried one is skipped.
        shared.state().backends = Some(Backends {
            generation: 1,
            addresses: vec!["127.0.0.2".parse().unwrap()],
        });
        let c: SocketAddr = "127.0.0.2:1".parse().unwrap();
        assert_eq!(shared.reserve(&[a, c], &[]), Some(c));
        assert_eq!(shared.reserve(&[a, c], &[c]), Some(a));
        assert_eq!(shared.reserve(&[c], &[c]), None);
    }
}
