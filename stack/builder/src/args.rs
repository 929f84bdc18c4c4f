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
use turtle_units::ByteSize;

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

    /// Largest build context accepted, as received (compressed or not); beyond it a build is
    /// refused with 413. Bytes, or with a suffix: 512MiB, 2GiB. Contexts are spooled to
    /// $TMPDIR first, so that much disk must be free there.
    #[arg(long, env = "TURTLE_BUILDER_MAX_CONTEXT", default_value = "2GiB")]
    pub max_context: ByteSize,

    /// Builds that may run at once; further ones wait (their stream says they are queued).
    #[arg(
        long,
        env = "TURTLE_BUILDER_MAX_BUILDS",
        default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=64)
    )]
    pub max_builds: u32,

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
            self.max_builds as usize,
            self.keep_local,
        );
        Ok(Server {
            tokens,
            builder,
            max_context: self.max_context,
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
            "--keep-local",
            "false",
            "--registry",
            "registry.x:8443",
        ])
        .unwrap()
        .args;
        assert_eq!(a.max_context, ByteSize(512 << 20));
        assert_eq!(a.max_builds, 2);
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
