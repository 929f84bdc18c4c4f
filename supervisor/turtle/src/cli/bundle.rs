//! `turtle bundle`: signed offline bundles. `keygen` makes a signing key,
//! `create` writes the project and its images into one file, `verify`
//! checks a file completely, `apply` verifies, loads the images and brings
//! the project up as `up` does.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use turtle_bundle::{PublicKey, SecretKey, Signer, Trust, VerifiedFile};
use turtle_control::client::Client;
use turtle_control::wire::UpOptions;
use turtle_engine::Engine;
use turtle_engine::docker::Docker;

use super::context::{self, Failure};
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
    /// from this engine. Build or pull the images first (`turtle up
    /// --build`). Without --key the bundle is unsigned, and boxes that
    /// trust keys refuse it.
    Create(CreateArgs),
    /// Check a bundle completely: header, manifest, signature, trusted key,
    /// every part's length and SHA-256, nothing after the end. Trusted keys
    /// come from --key and from bundles.trusted_keys in turtle.yaml. Exit
    /// 1, naming the check that failed, when it is refused.
    Verify(VerifyArgs),
    /// Verify a bundle completely, then load its images into the engine and
    /// bring its project up (through the daemon when one runs, else in the
    /// foreground as `up` does, or a daemon with --detach). Nothing is
    /// loaded when any check fails.
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
    /// Without a running daemon, start one in the background instead of
    /// supervising in the foreground.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Return only once every service is running, and healthy where it has
    /// a healthcheck.
    #[arg(long)]
    pub wait: bool,
    /// Seconds --wait waits before it fails.
    #[arg(long, default_value_t = 300, requires = "wait")]
    pub wait_timeout: u64,
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
        BundleCommand::Apply(a) => apply(g, a).await,
    }
}

fn keygen(out: &std::path::Path) -> Result<(), Failure> {
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
    let created = turtle_bundle::create(&engine, &project, key.as_ref(), &a.output)
        .await
        .map_err(Failure::op)?;
    let m = &created.manifest;
    eprintln!(
        "turtle: bundle {} written: project {}, {} image(s), {} part(s), {} bytes, {}",
        created.path.display(),
        m.project.name,
        m.images.len(),
        m.parts.len(),
        created.size,
        match &created.signed_by {
            Some(id) => format!("signed by key {id}"),
            None => "unsigned".to_string(),
        }
    );
    Ok(())
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
        "turtle: {} image(s) loaded; bringing project {} up",
        applied.manifest.images.len(),
        applied.project.name
    );
    let daemon = Client::connect(&g.socket_path()).await;
    let opts = UpOptions {
        build: false,
        wait: a.wait.then(|| Duration::from_secs(a.wait_timeout)),
    };
    super::up::up_project(g, &applied.project, daemon, a.detach, &opts).await
}

/// The keys of --key and of turtle.yaml.
fn trust(g: &GlobalArgs, a: &TrustArgs) -> Result<Trust, Failure> {
    let mut keys = Vec::new();
    for p in &a.keys {
        keys.push(PublicKey::read_file(p).map_err(Failure::input)?);
    }
    let config = context::supervisor_config(g)?;
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
    eprintln!(
        "turtle: bundle {} verified: {who}; project {}, {} image(s) for {}, {} part(s), {} bytes",
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
