//! `turtle bundle`: signed offline bundles. `keygen` makes a signing key,
//! `create` writes the project and its images into one file (a delta with
//! `--since`: only the layers the target lacks), `verify` checks a file
//! completely, `manifest` prints what a verified bundle carries, `apply`
//! verifies, loads the images and hands the project to the daemon as a
//! release (`Control::push`, origin `bundle`), through the health gate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use turtle_bundle::manifest::ReleaseInfo;
use turtle_bundle::{
    BaseSet, CreateOptions, Manifest, PublicKey, SecretKey, Signer, Trust, VerifiedFile,
};
use turtle_control::client::Client;
use turtle_control::wire::PushOptions;
use turtle_engine::Engine;
use turtle_engine::docker::Docker;
use turtle_runtime::release::Origin;

use super::context::{self, Failure, Target};
use super::output::Printer;
use super::push::parse_duration;
use super::{GlobalArgs, ProjectArgs};

#[derive(Debug, Args)]
pub struct BundleArgs {
    #[command(subcommand)]
    pub command: BundleCommand,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Make a signing key: OUT holds the secret key (mode 0600, keep it off
    /// the boxes), OUT.pub the public key, which is also printed. Add the
    /// public key to `bundles.trusted_keys` in each box's turtle.yaml.
    Keygen {
        /// Where to write the secret key (OUT.pub gets the public key);
        /// existing files are never replaced.
        out: PathBuf,
    },
    /// Write one file holding the project (as `turtle config` shows it,
    /// without build sections) and every image its services run, saved
    /// from this engine, with the Debian base its services build FROM. Build
    /// or pull the images first (`turtle up --build`). With --since, a delta:
    /// only the layers the target does not already have. Without --key the
    /// bundle is unsigned, and boxes that trust keys refuse it.
    Create(CreateArgs),
    /// Check a bundle completely: header, manifest, signature, trusted key,
    /// every part's length and SHA-256, nothing after the end. Trusted keys
    /// come from --key and from bundles.trusted_keys in turtle.yaml. Exit
    /// 1, naming the check that failed, when it is refused.
    Verify(VerifyArgs),
    /// Verify a bundle completely, then print its manifest as JSON: the
    /// project, the images with their layers, the parts, and for a delta
    /// the layers it needs the box to have. The JSON is a valid --since.
    Manifest(VerifyArgs),
    /// Verify a bundle completely, then load its images into the engine and
    /// push its project as a release (recorded by the daemon, `turtle
    /// releases` lists it), through the health gate: committed, or rolled
    /// back to the previous release. Nothing is loaded when any check fails,
    /// or when the box lacks a layer a delta bundle leaves out.
    Apply(ApplyArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Secret key file (from `turtle bundle keygen`) to sign with; without
    /// it the bundle is unsigned.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The bundle file to write (replaced when it exists).
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Make a delta bundle against what the target box already has: an
    /// earlier bundle file, a manifest printed by `turtle bundle manifest`,
    /// or the ID (or unique prefix) of a release of this project on this
    /// box (`turtle releases`). Only the layers the target lacks are
    /// carried; applying it to a box that lacks one of the others is
    /// refused before anything changes.
    #[arg(long, value_name = "RELEASE_OR_MANIFEST")]
    pub since: Option<String>,
    /// Leave out the Debian base (turtle-debian:<suite>) the services build
    /// FROM. By default it is carried, so the box can build on it without
    /// a mirror; its layers are those of the services' images, so it adds
    /// next to nothing.
    #[arg(long)]
    pub no_base: bool,
    /// The release's version, kept in the bundle (apply uses it).
    #[arg(long = "release-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Notes kept with the release.
    #[arg(long)]
    pub notes: Option<String>,
}

#[derive(Debug, Args)]
pub struct TrustArgs {
    /// A public key file (`.pub`) to trust, besides bundles.trusted_keys in
    /// turtle.yaml (repeatable).
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle file.
    pub file: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The bundle file.
    pub file: PathBuf,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Apply although no trusted key is configured: the bundle is still
    /// checked for damage, but anyone could have made it.
    #[arg(long)]
    pub allow_untrusted: bool,
    /// Without a running daemon, start one in the background and push
    /// through it (else this process pushes, and nothing supervises the
    /// project once it returns).
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Only verify and load the images: no release, nothing started or
    /// stopped (stage a bundle, apply it later).
    #[arg(long)]
    pub load_only: bool,
    /// The release's version [default: the bundle's, else its number on
    /// this box].
    #[arg(long = "release-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Notes kept with the release [default: the bundle's].
    #[arg(long)]
    pub notes: Option<String>,
    /// How long every service must run healthy before the release is
    /// committed (`30s`, `2m`) [default: the project's io.turtle.settle
    /// label, else releases.settle in turtle.yaml, else 30s].
    #[arg(long, value_parser = parse_duration)]
    pub settle: Option<Duration>,
    /// Go past update locks held by services.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(g: &GlobalArgs, a: BundleArgs) -> Result<(), Failure> {
    match a.command {
        BundleCommand::Keygen { out } => keygen(&out),
        BundleCommand::Create(a) => create(g, a).await,
        BundleCommand::Verify(a) => {
            let trust = trust(g, &a.trust)?;
            let verified = turtle_bundle::verify(&a.file, &trust)
                .await
                .map_err(Failure::op)?;
            report(&verified, &trust);
            Ok(())
        }
        BundleCommand::Manifest(a) => {
            let trust = trust(g, &a.trust)?;
            let verified = turtle_bundle::verify(&a.file, &trust)
                .await
                .map_err(Failure::op)?;
            report(&verified, &trust);
            println!(
                "{}",
                serde_json::to_string_pretty(verified.manifest()).expect("a manifest serializes")
            );
            Ok(())
        }
        BundleCommand::Apply(a) => apply(g, a).await,
    }
}

fn keygen(out: &Path) -> Result<(), Failure> {
    let key = SecretKey::generate().map_err(Failure::op)?;
    let public_path = key.write_files(out).map_err(Failure::input)?;
    eprintln!(
        "turtle: secret key {} written to {} (keep it secret), public key to {}",
        key.public().id(),
        out.display(),
        public_path.display()
    );
    println!("{}", key.public());
    Ok(())
}

async fn create(g: &GlobalArgs, a: CreateArgs) -> Result<(), Failure> {
    let key = match &a.key {
        Some(p) => Some(SecretKey::read_file(p).map_err(Failure::input)?),
        None => {
            eprintln!(
                "turtle: warning: no --key: the bundle is unsigned, and a box with trusted keys refuses it"
            );
            None
        }
    };
    let project = context::load_project(&a.project)?;
    let engine = engine(g).await?;
    let since = match &a.since {
        Some(s) => Some(base_set(g, &engine, &project.name, s).await?),
        None => None,
    };
    let bases = if a.no_base {
        Vec::new()
    } else {
        turtle_runtime::base::project_bases(&project)
    };
    let release = (a.version.is_some() || a.notes.is_some()).then(|| ReleaseInfo {
        version: a.version.clone(),
        notes: a.notes.clone(),
    });
    let opts = CreateOptions {
        key: key.as_ref(),
        bases,
        since: since.as_ref(),
        release,
    };
    let created = turtle_bundle::create_with(&engine, &project, &opts, &a.output)
        .await
        .map_err(Failure::op)?;
    let m = &created.manifest;
    let kind = match (&m.delta, &since) {
        (Some(d), _) => format!(
            "delta against {}: {} layer(s), {} bytes left out, {} layer(s) required on the box",
            d.since,
            d.omitted.len(),
            created.left_out_bytes,
            d.requires.len()
        ),
        (None, Some(s)) => format!(
            "complete: nothing in common with {} ({} layer chain(s))",
            s.since(),
            s.len()
        ),
        (None, None) => "complete".to_string(),
    };
    eprintln!(
        "turtle: bundle {} written: project {}, {} image(s){}, {} part(s), {} bytes, {kind}, {}",
        created.path.display(),
        m.project.name,
        m.images.len(),
        if m.bases.is_empty() {
            String::new()
        } else {
            format!(" (with the base {})", m.bases.join(", "))
        },
        m.parts.len(),
        created.size,
        match &created.signed_by {
            Some(id) => format!("signed by key {id}"),
            None => "unsigned".to_string(),
        }
    );
    Ok(())
}

/// What the target has, from `--since`: a bundle file, a manifest's JSON,
/// or a release of the project on this box.
async fn base_set(
    g: &GlobalArgs,
    engine: &Docker,
    project: &turtle_compose::ProjectName,
    since: &str,
) -> Result<BaseSet, Failure> {
    let path = Path::new(since);
    if path.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| since.to_string());
        let manifest = manifest_of(path)?;
        return BaseSet::from_manifest(&manifest, name).map_err(Failure::input);
    }
    let target = context::target(g).await?;
    let releases = target.control().releases(project).await?;
    let found: Vec<_> = releases
        .iter()
        .filter(|r| r.id.starts_with(since))
        .collect();
    let release = match found.as_slice() {
        [one] if !since.is_empty() => *one,
        [] | [_] => {
            return Err(Failure::input(format!(
                "--since {since}: neither a file nor a release of project {project} on this box (`turtle releases -p {project}` lists them; a bundle file or `turtle bundle manifest` output works too)"
            )));
        }
        more => {
            return Err(Failure::input(format!(
                "--since {since}: several releases of {project} start with it ({}): give more of the ID",
                more.iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let ids: Vec<String> = release.image_ids().into_iter().collect();
    BaseSet::from_images(
        engine,
        &ids,
        format!("release {} (version {})", release.id, release.version),
    )
    .await
    .map_err(Failure::op)
}

/// The manifest of a bundle file (its seal checked, its parts not read),
/// or of a JSON file as `turtle bundle manifest` prints it.
fn manifest_of(path: &Path) -> Result<Manifest, Failure> {
    use std::io::Read;
    let mut magic = [0u8; 8];
    let read = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut magic))
        .map_err(|e| Failure::input(format!("--since {}: {e}", path.display())))?;
    if read == magic.len() && magic == turtle_bundle::format::MAGIC {
        // The maker's own earlier bundle: its seal is checked against the
        // key in it; which keys a box trusts is the box's business.
        let (m, _) = turtle_bundle::read_manifest(path, &Trust::default())
            .map_err(|e| Failure::input(format!("--since {}: {e}", path.display())))?;
        return Ok(m);
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::input(format!("--since {}: {e}", path.display())))?;
    Manifest::parse(&bytes).map_err(|e| {
        Failure::input(format!(
            "--since {}: neither a bundle nor a manifest as `turtle bundle manifest` prints it: {e}",
            path.display()
        ))
    })
}

async fn apply(g: &GlobalArgs, a: ApplyArgs) -> Result<(), Failure> {
    let trust = trust(g, &a.trust)?;
    if trust.is_empty() && !a.allow_untrusted {
        return Err(Failure::input(
            "no trusted keys: add the signer's public key to bundles.trusted_keys in turtle.yaml or pass --key PUB (or --allow-untrusted to apply a bundle anyone could have made)",
        ));
    }
    let verified = turtle_bundle::verify(&a.file, &trust)
        .await
        .map_err(Failure::op)?;
    report(&verified, &trust);
    let engine = engine(g).await?;
    let applied = turtle_bundle::load(&engine, verified)
        .await
        .map_err(Failure::op)?;
    eprintln!(
        "turtle: {} image(s) of project {} loaded",
        applied.manifest.images.len(),
        applied.project.name
    );
    if a.load_only {
        return Ok(());
    }
    let file = std::fs::canonicalize(&a.file).unwrap_or(a.file.clone());
    let mut opts = push_options(&applied.manifest, &file);
    opts.version = a.version.clone().or(opts.version);
    opts.notes = a.notes.clone().or(opts.notes);
    opts.settle = a.settle;
    opts.force = a.force;
    let target = match Client::connect(&g.socket_path()).await {
        Some(c) => Target::Daemon(c),
        None if a.detach => Target::Daemon(super::up::start_daemon(g, &g.socket_path()).await?),
        None => Target::Local(context::local(g, Default::default()).await?),
    };
    eprintln!(
        "turtle: pushing project {} as a release (origin: bundle {})",
        applied.project.name,
        file.display()
    );
    let printer = Printer::new();
    let release = target
        .control()
        .push(&applied.project, &opts, &|e| printer.event(e))
        .await?;
    super::push::decided(&release)
}

/// The push of a loaded bundle: its version and notes, and where it came
/// from. The project has no build sections and its images are loaded, so
/// the push only pins them.
pub(super) fn push_options(manifest: &Manifest, file: &Path) -> PushOptions {
    let release = manifest.release.clone().unwrap_or_default();
    PushOptions {
        version: release.version,
        notes: release.notes,
        origin: Some(Origin::Bundle {
            file: file.display().to_string(),
        }),
        ..Default::default()
    }
}

/// The keys of --key and of turtle.yaml.
fn trust(g: &GlobalArgs, a: &TrustArgs) -> Result<Trust, Failure> {
    let config = context::supervisor_config(g)?;
    trust_from(&config, &a.keys)
}

/// The keys of these public key files and of the config's
/// bundles.trusted_keys.
pub(super) fn trust_from(
    config: &turtle_runtime::config::Config,
    files: &[PathBuf],
) -> Result<Trust, Failure> {
    let mut keys = Vec::new();
    for p in files {
        keys.push(PublicKey::read_file(p).map_err(Failure::input)?);
    }
    for (i, text) in config.bundles.trusted_keys.iter().enumerate() {
        let key = text.parse::<PublicKey>().map_err(|e| {
            Failure::input(format!("supervisor config: bundles.trusted_keys[{i}]: {e}"))
        })?;
        keys.push(key);
    }
    Ok(Trust::new(keys))
}

fn report(v: &VerifiedFile, trust: &Trust) {
    let m = v.manifest();
    let who = match v.signer() {
        Signer::Unsigned => "unsigned".to_string(),
        Signer::Key(k) if trust.is_empty() => format!(
            "signed by key {} (not checked against trusted keys: none configured)",
            k.id()
        ),
        Signer::Key(k) => format!("signed by trusted key {}", k.id()),
    };
    let kind = match &m.delta {
        Some(d) => format!(
            ", a delta against {} ({} layer(s) required on the box)",
            d.since,
            d.requires.len()
        ),
        None => String::new(),
    };
    eprintln!(
        "turtle: bundle {} verified: {who}; project {}, {} image(s) for {}, {} part(s), {} bytes{kind}",
        v.path().display(),
        m.project.name,
        m.images.len(),
        m.architecture,
        m.parts.len(),
        v.len()
    );
    for i in &m.images {
        eprintln!("turtle:   {} {}", i.id, i.repo_tags.join(" "));
    }
    if trust.is_empty() {
        eprintln!(
            "turtle: warning: no trusted keys configured: the bundle is intact, but anyone could have made it"
        );
    }
}

async fn engine(g: &GlobalArgs) -> Result<Docker, Failure> {
    let engine = Docker::connect(g.docker_socket.as_deref()).map_err(Failure::op)?;
    engine.ping().await.map_err(Failure::op)?;
    Ok(engine)
}
