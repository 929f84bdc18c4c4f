//! The Debian base every image of the stack builds `FROM`:
//! `turtle-debian:<suite>`, the same system as `debian:<suite>-slim`.
//!
//! # Design
//!
//! Before a build whose Dockerfile starts `FROM turtle-debian:<suite>`, the
//! base is made if the engine lacks it, in the first way that works, and
//! the build's output says which:
//!
//! 1. a bundle (`images.base_bundle` in the config file, a `docker save`
//!    archive carried to an air-gapped site) is loaded;
//! 2. `debian:<suite>-slim` is pulled and tagged;
//! 3. it is bootstrapped from Debian packages: `debootstrap --variant=minbase`
//!    from `images.debian_mirror` (a site's own mirror works), trimmed as
//!    the slim image is (no package lists, caches, docs or man pages), with
//!    that mirror in its `sources.list` so builds on it install from it too,
//!    then imported into the engine.
//!
//! One base is made at a time (the stack builds four images at once, all
//! on the same base). `turtle base` does the same by hand.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use turtle_engine::{Engine, EngineError};

/// The repository of the base images Turtle can make.
pub const BASE_REPO: &str = "turtle-debian";
/// The default mirror for bootstrapping.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// How to make a base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Debian mirror for debootstrap.
    pub mirror: String,
    /// A `docker save` archive holding the base, tried first.
    pub bundle: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mirror: DEFAULT_MIRROR.into(),
            bundle: None,
        }
    }
}

/// How the base came to be there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Present,
    Loaded(PathBuf),
    Pulled(String),
    Bootstrapped(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Present => write!(f, "present, kept"),
            Self::Loaded(p) => write!(f, "loaded from the bundle {}", p.display()),
            Self::Pulled(r) => write!(f, "pulled {r}"),
            Self::Bootstrapped(m) => write!(f, "bootstrapped with debootstrap from {m}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("{0}: not a base Turtle makes (use {BASE_REPO}:<suite>, e.g. {BASE_REPO}:bookworm)")]
    NotOurs(String),
    #[error(
        "cannot make {reference}: debian:{suite}-slim cannot be pulled and debootstrap is not installed: install it (apt-get install debootstrap), or load a base with `turtle base --load FILE`"
    )]
    NoDebootstrap { reference: String, suite: String },
    #[error(
        "cannot make {reference}: debootstrap from {mirror} failed: {detail} (set images.debian_mirror in the config file to a reachable mirror, e.g. the site's own)"
    )]
    Debootstrap {
        reference: String,
        mirror: String,
        detail: String,
    },
    #[error("cannot make {reference}: {what}: {source}")]
    Io {
        reference: String,
        what: String,
        source: std::io::Error,
    },
    #[error("cannot make {reference}: {source}")]
    Engine {
        reference: String,
        source: EngineError,
    },
}

/// The suite of a base reference: `turtle-debian:bookworm` -> `bookworm`.
pub fn suite_of(reference: &str) -> Option<&str> {
    let suite = reference.strip_prefix(BASE_REPO)?.strip_prefix(':')?;
    (!suite.is_empty() && suite.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
        .then_some(suite)
}

/// The base references a Dockerfile builds FROM.
pub fn bases_in(dockerfile: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let image = words.find(|w| !w.starts_with("--"));
        if let Some(image) = image
            && suite_of(image).is_some()
            && !out.iter().any(|o| o == image)
        {
            out.push(image.to_string());
        }
    }
    out
}

/// The bases the project's builds start FROM, in service order, each once:
/// each build's Dockerfile (or inline Dockerfile) read now; one that cannot
/// be read names none.
pub fn project_bases(project: &turtle_compose::Project) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in project.services.values() {
        let Some(build) = &s.build else { continue };
        let text = match &build.dockerfile_inline {
            Some(text) => Some(text.clone()),
            None => std::fs::read_to_string(
                build
                    .context
                    .join(build.dockerfile.as_deref().unwrap_or("Dockerfile")),
            )
            .ok(),
        };
        for base in text.as_deref().map(bases_in).unwrap_or_default() {
            if !out.contains(&base) {
                out.push(base);
            }
        }
    }
    out
}

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Makes the base `reference` if the engine lacks it: see the module docs.
/// `log` hears each step.
pub async fn ensure<E: Engine>(
    engine: &E,
    reference: &str,
    settings: &Settings,
    rebuild: bool,
    log: &(dyn Fn(String) + Send + Sync),
) -> Result<Outcome, BaseError> {
    let suite = suite_of(reference)
        .ok_or_else(|| BaseError::NotOurs(reference.to_string()))?
        .to_string();
    let engine_err = |source| BaseError::Engine {
        reference: reference.to_string(),
        source,
    };
    let _one = ONE_AT_A_TIME.lock().await;
    if !rebuild
        && engine
            .image_id(reference)
            .await
            .map_err(engine_err)?
            .is_some()
    {
        return Ok(Outcome::Present);
    }
    if let Some(missing) = settings.bundle.as_ref().filter(|b| !b.exists()) {
        log(format!(
            "{reference}: the bundle {} does not exist (images.base_bundle in the config file); trying the other ways",
            missing.display()
        ));
    }
    if let Some(bundle) = settings.bundle.as_ref().filter(|b| b.exists()) {
        log(format!("{reference}: loading {}", bundle.display()));
        engine.load_images(bundle).await.map_err(engine_err)?;
        if engine
            .image_id(reference)
            .await
            .map_err(engine_err)?
            .is_some()
        {
            return Ok(Outcome::Loaded(bundle.clone()));
        }
        log(format!(
            "{reference}: the bundle {} does not hold it",
            bundle.display()
        ));
    }
    let slim = format!("debian:{suite}-slim");
    log(format!("{reference}: pulling {slim}"));
    let mut pulled = true;
    let mut s = engine.pull_image(&slim);
    while let Some(p) = futures_util::StreamExt::next(&mut s).await {
        if let Err(e) = p {
            log(format!("{reference}: {slim} cannot be pulled ({e})"));
            pulled = false;
            break;
        }
    }
    drop(s);
    if pulled && engine.image_id(&slim).await.map_err(engine_err)?.is_some() {
        engine
            .tag_image(&slim, reference)
            .await
            .map_err(engine_err)?;
        return Ok(Outcome::Pulled(slim));
    }
    let Some(debootstrap) = find_debootstrap() else {
        return Err(BaseError::NoDebootstrap {
            reference: reference.to_string(),
            suite,
        });
    };
    log(format!(
        "{reference}: bootstrapping {suite} from {} (a minute or two)",
        settings.mirror
    ));
    // /var/tmp: on disk where /tmp is a tmpfs (a root filesystem in RAM
    // would cost a small board a quarter of its memory).
    let scratch = Path::new("/var/tmp");
    let work = tempfile::Builder::new()
        .prefix("turtle-base-")
        .tempdir_in(if scratch.is_dir() {
            scratch.to_path_buf()
        } else {
            std::env::temp_dir()
        })
        .map_err(|source| BaseError::Io {
            reference: reference.to_string(),
            what: "a temporary directory".into(),
            source,
        })?;
    let root = work.path().join("root");
    bootstrap(&debootstrap, &suite, &root, &settings.mirror)
        .await
        .map_err(|detail| BaseError::Debootstrap {
            reference: reference.to_string(),
            mirror: settings.mirror.clone(),
            detail,
        })?;
    let io = |what: &str| {
        let what = what.to_string();
        let reference = reference.to_string();
        move |source| BaseError::Io {
            reference,
            what,
            source,
        }
    };
    trim(&root, &suite, &settings.mirror).map_err(io("trimming the bootstrapped system"))?;
    let tarball = work.path().join("rootfs.tar");
    let status = tokio::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .await
        .map_err(io("running tar"))?;
    if !status.success() {
        return Err(io("packing the root filesystem")(std::io::Error::other(
            format!("tar exited with {status}"),
        )));
    }
    log(format!("{reference}: importing into the engine"));
    engine
        .import_rootfs(
            &tarball,
            reference,
            &["CMD [\"bash\"]".to_string(), "ENV LANG=C.UTF-8".to_string()],
        )
        .await
        .map_err(engine_err)?;
    Ok(Outcome::Bootstrapped(settings.mirror.clone()))
}

fn find_debootstrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("debootstrap"))
        .find(|p| p.is_file())
}

async fn bootstrap(
    debootstrap: &Path,
    suite: &str,
    root: &Path,
    mirror: &str,
) -> Result<(), String> {
    let out = tokio::process::Command::new(debootstrap)
        .arg("--variant=minbase")
        .arg(suite)
        .arg(root)
        .arg(mirror)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", debootstrap.display()))?;
    if out.status.success() {
        return Ok(());
    }
    // debootstrap says what went wrong at the end of its output.
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = text.lines().rev().take(3).collect();
    Err(tail.into_iter().rev().collect::<Vec<_>>().join(" / "))
}

/// Trims as `debian:*-slim` is trimmed, and points apt at the mirror.
fn trim(root: &Path, suite: &str, mirror: &str) -> std::io::Result<()> {
    for dir in [
        "var/lib/apt/lists",
        "var/cache/apt/archives",
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "tmp",
    ] {
        let d = root.join(dir);
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            // Keep apt's lock files and partial directories' parents.
            if e.file_name() == "partial" || e.file_name() == "lock" {
                continue;
            }
            if e.file_type()?.is_dir() {
                std::fs::remove_dir_all(&p)?;
            } else {
                std::fs::remove_file(&p)?;
            }
        }
    }
    for bin in ["pkgcache.bin", "srcpkgcache.bin"] {
        let _ = std::fs::remove_file(root.join("var/cache/apt").join(bin));
    }
    std::fs::write(
        root.join("etc/apt/sources.list"),
        format!("deb {mirror} {suite} main\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use turtle_engine::fake::FakeEngine;

    #[test]
    fn bases_are_found_in_from_lines() {
        let df = "# comment\nFROM --platform=linux/amd64 turtle-debian:bookworm AS build\nRUN x\nfrom turtle-debian:bookworm\nFROM debian:bookworm-slim\nFROM turtle-debian:trixie\n";
        assert_eq!(
            bases_in(df),
            ["turtle-debian:bookworm", "turtle-debian:trixie"]
        );
        assert_eq!(suite_of("turtle-debian:bookworm"), Some("bookworm"));
        assert_eq!(suite_of("turtle-debian"), None);
        assert_eq!(suite_of("turtle-debian:../x"), None);
        assert_eq!(suite_of("turtle-debianx:bookworm"), None);
    }

    #[test]
    fn a_project_names_the_bases_its_builds_start_from() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("web")).unwrap();
        std::fs::write(
            dir.path().join("web/Dockerfile"),
            "FROM turtle-debian:bookworm\nRUN true\n",
        )
        .unwrap();
        let project: turtle_compose::Project = serde_json::from_value(serde_json::json!({
            "name": "demo",
            "working_dir": dir.path(),
            "services": {
                "web": {"image": "web:1", "build": {"context": dir.path().join("web")}},
                "tool": {"image": "tool:1", "build": {"context": dir.path(), "dockerfile_inline": "FROM turtle-debian:trixie\n"}},
                "again": {"image": "web:2", "build": {"context": dir.path().join("web")}},
                "db": {"image": "postgres:16"},
            },
        }))
        .unwrap();
        let mut bases = project_bases(&project);
        bases.sort();
        assert_eq!(bases, ["turtle-debian:bookworm", "turtle-debian:trixie"]);
    }

    #[tokio::test]
    async fn a_present_base_is_kept_and_a_pullable_one_is_pulled_and_tagged() {
        let e = FakeEngine::default();
        let out = ensure(
            &e,
            "turtle-debian:bookworm",
            &Settings::default(),
            false,
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(out, Outcome::Pulled("debian:bookworm-slim".into()));
        assert!(
            e.calls()
                .contains(&"tag_image debian:bookworm-slim turtle-debian:bookworm".to_string())
        );
        let out = ensure(
            &e,
            "turtle-debian:bookworm",
            &Settings::default(),
            false,
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(out, Outcome::Present);
        let e = ensure(&e, "debian:bookworm", &Settings::default(), false, &|_| {})
            .await
            .unwrap_err();
        assert!(e.to_string().contains("turtle-debian:<suite>"), "{e}");
    }
}
