//! Remote push, both sides: `turtle push --to https://BOX` (the pushing
//! side: a bundle of the local project streamed to the box), `turtle remote
//! token` (the box's token), and the daemon's listener when turtle.yaml
//! sets `remote.listen` (see `turtle_control::remote`).

use std::path::Path;
use std::sync::Arc;

use clap::{Args, Subcommand};
use turtle_bundle::SecretKey;
use turtle_control::remote::client::{BundleBody, RemoteClient};
use turtle_control::remote::server::{self, Listening};
use turtle_control::remote::token::TokenFile;
use turtle_control::remote::{PushQuery, RemoteInfo};
use turtle_engine::Engine;
use turtle_engine::docker::Docker;
use turtle_runtime::config::Config;
use turtle_runtime::supervisor::Supervisor;

use super::GlobalArgs;
use super::context::{self, Failure};
use super::output::Printer;
use super::push::PushArgs;

#[derive(Debug, Args)]
pub struct RemoteArgs {
    #[command(subcommand)]
    pub command: RemoteCommand,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Print the token a remote push must present to this box (`turtle
    /// push --to ... --token`), made on first use (32 random bytes as hex,
    /// kept in STATE_DIR/remote/token, mode 0600, or remote.token_file).
    Token {
        /// Replace the token with a new one: the old one stops working at
        /// once, also for a running daemon.
        #[arg(long)]
        rotate: bool,
    },
}

pub fn run(g: &GlobalArgs, a: RemoteArgs) -> Result<(), Failure> {
    match a.command {
        RemoteCommand::Token { rotate } => {
            let config = context::supervisor_config(g)?;
            let file = TokenFile::new(&g.state_dir, config.remote.token_file.as_deref());
            let token = if rotate { file.rotate() } else { file.ensure() }.map_err(Failure::op)?;
            if config.remote.listen.is_none() {
                eprintln!(
                    "turtle: note: remote push is off on this box: set remote.listen in its turtle.yaml (e.g. remote: {{listen: \"0.0.0.0:{}\"}})",
                    turtle_control::remote::DEFAULT_PORT
                );
            }
            println!("{token}");
            Ok(())
        }
    }
}

/// The daemon's remote listener when `remote.listen` is set, bound and
/// ready to run; `None` when remote push is off.
pub fn listener(
    g: &GlobalArgs,
    config: &Config,
    sup: &Arc<Supervisor<Docker>>,
) -> Result<Option<Listening<Docker>>, Failure> {
    let settings = server::settings(config, &g.state_dir, sup.device().map(|d| &**d))
        .map_err(|e| Failure::input(format!("supervisor config: {e}")))?;
    let Some(settings) = settings else {
        return Ok(None);
    };
    if settings.trust.is_empty() && !settings.allow_untrusted {
        tracing::warn!(
            "remote push is on, and bundles.trusted_keys is empty: every push will be refused until a key is added (or remote.allow_untrusted is set)"
        );
    }
    let listening = server::start(sup.clone(), settings).map_err(Failure::op)?;
    let addr = listening.local_addr().map_err(Failure::op)?;
    tracing::info!(
        %addr,
        names = %listening.names().join(", "),
        "remote push listening (TLS; the token: `turtle remote token`)"
    );
    Ok(Some(listening))
}

/// `turtle push --to URL`: a bundle of the local project, from the local
/// engine's images, streamed to the box, which verifies and pushes it.
pub async fn push(g: &GlobalArgs, a: &PushArgs, url: &str) -> Result<(), Failure> {
    let token = a.token.as_deref().ok_or_else(|| {
        Failure::input(
            "--token (or TURTLE_REMOTE_TOKEN) is needed: `turtle remote token` on the box prints it",
        )
    })?;
    let ca = a.ca.as_deref().ok_or_else(|| {
        Failure::input(
            "--ca (or TURTLE_REMOTE_CA) is needed: the box's root certificate, as `turtle ca export` on the box prints it",
        )
    })?;
    let root = std::fs::read_to_string(ca)
        .map_err(|e| Failure::input(format!("--ca {}: {e}", ca.display())))?;
    let client = RemoteClient::new(url, &root, token).map_err(Failure::input)?;
    let info = client.info().await.map_err(Failure::op)?;
    let body = match &a.bundle {
        Some(file) => bundle_file(file, &info, a.key.is_some())?,
        None => {
            let key = match &a.key {
                Some(p) => Some(SecretKey::read_file(p).map_err(Failure::input)?),
                None => None,
            };
            accepts(&info, key.as_ref(), client.url())?;
            bundle_of_project(g, a, &client, &info, key).await?
        }
    };
    if body.len > info.max_bundle {
        return Err(Failure::op(format!(
            "the bundle is {} bytes, and {} accepts at most {} (remote.max_bundle in its turtle.yaml)",
            body.len,
            client.url(),
            info.max_bundle
        )));
    }
    let query = PushQuery {
        version: a.version.clone(),
        notes: a.notes.clone(),
        settle_ms: a.settle.map(|d| d.as_millis() as u64),
        force: a.force,
    };
    let printer = Printer::new();
    let release = client
        .push(body, &query, &|e| printer.event(e))
        .await
        .map_err(Failure::op)?;
    super::push::decided(&release)
}

/// A bundle of the local project, made from this engine's images as it is
/// sent.
async fn bundle_of_project(
    g: &GlobalArgs,
    a: &PushArgs,
    client: &RemoteClient,
    info: &RemoteInfo,
    key: Option<SecretKey>,
) -> Result<BundleBody, Failure> {
    let project = context::load_project(&a.project_args())?;
    // The box's current release and its images' layers: what the delta
    // bundle leaves out. The box checks it has every one before it loads
    // anything (a layer removed meanwhile refuses the push, naming it).
    let since = match client
        .current_release(&project.name)
        .await
        .map_err(Failure::op)?
    {
        Some(current) => {
            let mut set = turtle_bundle::BaseSet::new(format!(
                "release {} (version {}) on {}",
                current.release.id,
                current.release.version,
                client.url()
            ));
            for (image, layers) in &current.layers {
                set.add_image(image, layers);
            }
            Some(set)
        }
        None => {
            eprintln!(
                "turtle: {} has no release of {} yet; sending a complete bundle",
                client.url(),
                project.name
            );
            None
        }
    };
    let engine = Docker::connect(g.docker_socket.as_deref()).map_err(Failure::op)?;
    engine.ping().await.map_err(Failure::op)?;
    // The images are saved into an unnamed file in TMPDIR; the bundle
    // itself is only ever streamed. The Debian base the services build
    // FROM travels too, as `bundle create` carries it (only its config
    // when the box has its layers).
    let spool = std::env::temp_dir();
    let opts = turtle_bundle::CreateOptions {
        key: key.as_ref(),
        bases: turtle_runtime::base::project_bases(&project),
        since: since.as_ref(),
        release: None,
    };
    let prepared = turtle_bundle::prepare_with(&engine, &project, &opts, &spool)
        .await
        .map_err(Failure::op)?;
    let m = prepared.manifest();
    if m.architecture != info.architecture {
        return Err(Failure::op(format!(
            "the project's images are for {}, and {} is {}: build them for that box's architecture",
            m.architecture,
            client.url(),
            info.architecture
        )));
    }
    let len = prepared.len();
    let kind = match (&m.delta, &since) {
        (Some(d), _) => format!(
            "a delta against {}: {} layer(s) ({} bytes) left out",
            d.since,
            d.omitted.len(),
            prepared.left_out_bytes()
        ),
        (None, Some(_)) => "complete: nothing in common with the box's release".to_string(),
        (None, None) => "complete".to_string(),
    };
    eprintln!(
        "turtle: bundle of {}: {} image(s), {} part(s), {len} bytes, {kind}, {}",
        m.project.name,
        m.images.len(),
        m.parts.len(),
        match prepared.signed_by() {
            Some(id) => format!("signed by key {id}"),
            None => "unsigned".into(),
        }
    );
    Ok(BundleBody {
        len,
        write: Box::new(move |w| prepared.write(w).map_err(|e| e.to_string())),
    })
}

/// A bundle file sent as it is: the box verifies it, this side does not.
fn bundle_file(file: &Path, info: &RemoteInfo, key: bool) -> Result<BundleBody, Failure> {
    if info.trusted_keys.is_empty() && !info.allow_untrusted {
        return Err(Failure::op(
            "the box trusts no bundle key and refuses remote pushes: add the signer's public key to bundles.trusted_keys in its turtle.yaml",
        ));
    }
    if key {
        eprintln!(
            "turtle: warning: --key is not used with --bundle: the file is sent as it was signed"
        );
    }
    let f = std::fs::File::open(file)
        .map_err(|e| Failure::input(format!("--bundle {}: {e}", file.display())))?;
    let len = f
        .metadata()
        .map_err(|e| Failure::input(format!("--bundle {}: {e}", file.display())))?
        .len();
    eprintln!(
        "turtle: sending bundle file {} ({len} bytes) as it is",
        file.display()
    );
    Ok(BundleBody {
        len,
        write: Box::new(move |w| {
            let mut f = f;
            let copied = std::io::copy(&mut f, w).map_err(|e| e.to_string())?;
            // A file that grew or shrank since its length was sent.
            if copied != len {
                return Err(format!(
                    "the file changed while it was sent ({copied} bytes read, {len} announced)"
                ));
            }
            Ok(())
        }),
    })
}

/// Refuses early what the box would refuse after the upload: no key where
/// it trusts keys, a key it does not trust, a box that trusts none.
fn accepts(info: &RemoteInfo, key: Option<&SecretKey>, url: &str) -> Result<(), Failure> {
    let trusted = info.trusted_keys.join(", ");
    match key {
        _ if info.trusted_keys.is_empty() && !info.allow_untrusted => Err(Failure::op(format!(
            "{url} trusts no bundle key and refuses remote pushes: add your public key (the .pub of --key) to bundles.trusted_keys in its turtle.yaml"
        ))),
        None if !info.trusted_keys.is_empty() => Err(Failure::input(format!(
            "{url} accepts only bundles signed by key(s) {trusted}: pass --key with the secret key (`turtle bundle keygen`)"
        ))),
        Some(k)
            if !info.trusted_keys.is_empty() && !info.trusted_keys.contains(&k.public().id()) =>
        {
            Err(Failure::op(format!(
                "{url} does not trust key {} (it trusts {trusted}): add {} to bundles.trusted_keys in its turtle.yaml, or sign with a key it trusts",
                k.public().id(),
                k.public()
            )))
        }
        _ => Ok(()),
    }
}
