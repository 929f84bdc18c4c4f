//! The flags of `turtle backend builder`, and what they resolve to.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::ArgAction;

use crate::auth::Tokens;
use crate::build::Builder;
use crate::engine::Engine;
use crate::reference::Registry;
use crate::server::Server;
use crate::slots::Slots;
use crate::spool::Spooler;
use turtle_units::{ByteSize, Duration};

/// Command-line arguments of `turtle backend builder`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on, plain HTTP (the stack's proxy terminates TLS for builder.<domain>).
    #[arg(long, env = "TURTLE_BUILDER_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// File holding the builder token. Clients send it as `Authorization: Bearer <token>`, and
    /// the engine pushes with it as the password of --push-user.
    #[arg(
        long,
        env = "TURTLE_BUILDER_TOKEN_FILE",
        default_value = "/run/turtle/secrets/builder-token"
    )]
    pub token_file: PathBuf,

    /// File holding the admin token, also accepted as a bearer token (pushes still use the
    /// builder token). Without it only the builder token is accepted.
    #[arg(long, env = "TURTLE_BUILDER_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Registry the images are pushed to, host[:port] as the engine reaches it (e.g.
    /// registry.turtle.local:8443). Default: registry.$TURTLE_DOMAIN, plus
    /// :$TURTLE_HTTPS_PORT when that is not 443.
    #[arg(long, env = "TURTLE_BUILDER_REGISTRY")]
    pub registry: Option<String>,

    /// The Docker engine's socket, bind-mounted from the host. Whoever holds it is root on the
    /// box, which is why every build needs the builder or admin token.
    #[arg(
        long,
        env = "TURTLE_BUILDER_DOCKER_SOCKET",
        default_value = "/var/run/docker.sock"
    )]
    pub docker_socket: String,

    /// User name the engine presents to the registry (its password is the builder token).
    #[arg(long, env = "TURTLE_BUILDER_PUSH_USER", default_value = "builder")]
    pub push_user: String,

    /// Largest build context accepted, counted as the tar the engine unpacks: a gzip'd body
    /// is measured by what it unpacks to (and by what is received); beyond it a build is
    /// refused with 413, and nothing past the limit is written. Bytes, or with a suffix:
    /// 512MiB, 2GiB. Each running build spools its context (unpacked) to --spool-dir, so
    /// --max-builds times this much disk must be free there.
    #[arg(long, env = "TURTLE_BUILDER_MAX_CONTEXT", default_value = "2GiB")]
    pub max_context: ByteSize,

    /// Directory the contexts are spooled to (unnamed files, gone with the build). Default:
    /// $TMPDIR, else /tmp.
    #[arg(long, env = "TURTLE_BUILDER_SPOOL_DIR")]
    pub spool_dir: Option<PathBuf>,

    /// Builds that may run at once. A request takes its slot before its context is read, so
    /// this also bounds the contexts on disk.
    #[arg(
        long,
        env = "TURTLE_BUILDER_MAX_BUILDS",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=64)
    )]
    pub max_builds: u32,

    /// Requests that may wait for a build slot (their uploads unread); further ones get 503
    /// with Retry-After at once.
    #[arg(
        long,
        env = "TURTLE_BUILDER_MAX_QUEUED",
        default_value_t = 4,
        value_parser = clap::value_parser!(u32).range(0..=256)
    )]
    pub max_queued: u32,

    /// How long a request waits for a build slot before it gets 503 with Retry-After: 30s,
    /// 10m. Keep it below the proxy's timeouts.
    #[arg(long, env = "TURTLE_BUILDER_QUEUE_TIMEOUT", default_value = "10m")]
    pub queue_timeout: Duration,

    /// Keep the built image's local tags after the push (true: the box can run what it built
    /// without pulling it; false: remove them, and the image with them unless something else
    /// uses it).
    #[arg(
        long,
        env = "TURTLE_BUILDER_KEEP_LOCAL",
        default_value_t = true,
        action = ArgAction::Set
    )]
    pub keep_local: bool,
}

impl Args {
    /// The registry: --registry, or derived from TURTLE_DOMAIN and TURTLE_HTTPS_PORT.
    pub fn registry(&self) -> anyhow::Result<Registry> {
        let value = match &self.registry {
            Some(r) => r.clone(),
            None => {
                let domain = std::env::var("TURTLE_DOMAIN")
                    .ok()
                    .filter(|d| !d.trim().is_empty());
                let Some(domain) = domain else {
                    anyhow::bail!(
                        "no registry to push to: pass --registry (or TURTLE_BUILDER_REGISTRY), \
                         or set TURTLE_DOMAIN (and TURTLE_HTTPS_PORT when not 443)"
                    );
                };
                let port = std::env::var("TURTLE_HTTPS_PORT").unwrap_or_default();
                match port.trim() {
                    "" | "443" => format!("registry.{}", domain.trim()),
                    p => format!("registry.{}:{p}", domain.trim()),
                }
            }
        };
        Registry::parse(&value).context("--registry")
    }

    /// Reads the tokens, connects the engine client: everything the server needs.
    pub fn server(&self) -> anyhow::Result<Server> {
        let registry = self.registry()?;
        let tokens = Tokens::load(&self.token_file, self.admin_token_file.as_deref())?;
        let engine = Engine::connect(&self.docker_socket)?;
        let builder = Builder::new(
            engine,
            registry,
            self.push_user.clone(),
            tokens.builder_token().to_string(),
            Slots::new(
                self.max_builds as usize,
                self.max_queued as usize,
                self.queue_timeout.as_std(),
            ),
            self.keep_local,
        );
        let spool_dir = self.spool_dir.clone().unwrap_or_else(std::env::temp_dir);
        Ok(Server {
            tokens,
            builder,
            spooler: Spooler::new(spool_dir, self.max_context),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn defaults_follow_the_contract() {
        let a = Cli::try_parse_from(["builder"]).unwrap().args;
        assert_eq!(a.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(
            a.token_file,
            PathBuf::from("/run/turtle/secrets/builder-token")
        );
        assert_eq!(a.docker_socket, "/var/run/docker.sock");
        assert_eq!(a.push_user, "builder");
        assert_eq!(a.max_context, ByteSize(2 << 30));
        assert_eq!(a.max_builds, 1);
        assert_eq!(a.max_queued, 4);
        assert_eq!(a.queue_timeout, Duration::from_secs(600));
        assert_eq!(a.spool_dir, None);
        assert!(a.keep_local);
    }

    #[test]
    fn help_names_every_flag_and_its_env_var() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for (flag, env) in [
            ("--listen", "TURTLE_BUILDER_LISTEN"),
            ("--token-file", "TURTLE_BUILDER_TOKEN_FILE"),
            ("--admin-token-file", "TURTLE_BUILDER_ADMIN_TOKEN_FILE"),
            ("--registry", "TURTLE_BUILDER_REGISTRY"),
            ("--docker-socket", "TURTLE_BUILDER_DOCKER_SOCKET"),
            ("--push-user", "TURTLE_BUILDER_PUSH_USER"),
            ("--max-context", "TURTLE_BUILDER_MAX_CONTEXT"),
            ("--max-builds", "TURTLE_BUILDER_MAX_BUILDS"),
            ("--max-queued", "TURTLE_BUILDER_MAX_QUEUED"),
            ("--queue-timeout", "TURTLE_BUILDER_QUEUE_TIMEOUT"),
            ("--spool-dir", "TURTLE_BUILDER_SPOOL_DIR"),
            ("--keep-local", "TURTLE_BUILDER_KEEP_LOCAL"),
        ] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
            assert!(help.contains(env), "{env} missing from:\n{help}");
        }
    }

    #[test]
    fn flags_parse() {
        let a = Cli::try_parse_from([
            "builder",
            "--max-context",
            "512m",
            "--max-builds",
            "2",
            "--max-queued",
            "0",
            "--queue-timeout",
            "30s",
            "--spool-dir",
            "/var/spool/builds",
            "--keep-local",
            "false",
            "--registry",
            "registry.x:8443",
        ])
        .unwrap()
        .args;
        assert_eq!(a.max_context, ByteSize(512 << 20));
        assert_eq!(a.max_builds, 2);
        assert_eq!(a.max_queued, 0);
        assert_eq!(a.queue_timeout, Duration::from_secs(30));
        assert_eq!(a.spool_dir, Some(PathBuf::from("/var/spool/builds")));
        assert!(!a.keep_local);
        assert_eq!(a.registry().unwrap().as_str(), "registry.x:8443");
        assert!(Cli::try_parse_from(["builder", "--max-builds", "0"]).is_err());
        assert!(Cli::try_parse_from(["builder", "--max-context", "lots"]).is_err());
        let a = Cli::try_parse_from(["builder", "--registry", "registry"])
            .unwrap()
            .args;
        let e = format!("{:#}", a.registry().unwrap_err());
        assert!(e.contains("dot or a port"), "{e}");
    }
}
