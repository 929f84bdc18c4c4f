//! The image builder of Turtle's backend stack: build contexts in, pushed digests out.
//!
//! Runs as `turtle backend builder`: every image of the stack carries the one
//! `turtle` executable. It listens on plain HTTP behind the stack's proxy,
//! which terminates TLS for `builder.<domain>`.
//!
//! # Routes
//!
//! - `GET /v1/health`: `200 {"status":"ok","engine":"ok"}` when the engine
//!   answers a ping, `503 {"status":"unhealthy","engine":"<why>"}` otherwise.
//! - `POST /v1/builds?tag=<path>[:tag]&tag=...&dockerfile=<path>`, with
//!   `Authorization: Bearer <builder-token or admin-token>` and the build
//!   context as the body (a tar, gzip'd or not). Refusals before the build
//!   starts are ordinary statuses with `{"error": "..."}`: 401 (token), 400
//!   (tag, query, empty body, broken gzip), 413 (context over
//!   `--max-context`, counted uncompressed), 415 (bzip2, xz, zstd, or gzip
//!   twice), 503 with `Retry-After` (every build slot busy and the queue full,
//!   or no slot within `--queue-timeout`). Otherwise the answer is
//!   `200 application/x-ndjson`, streamed while the engine builds and pushes:
//!   `{"log": "..."}` lines, then exactly one final line,
//!   `{"digest":"sha256:...","images":["<registry>/<path>@sha256:..."]}` or
//!   `{"error":"..."}`. **The status is 200 before the build has even started,
//!   so a client must read to the last line to know the outcome** (and treat a
//!   stream that ends without a final line as a failure).
//!
//! # Limits
//!
//! What one box gives the builder is bounded whatever the clients do:
//!
//! - **Disk**: at most `--max-builds` contexts are spooled at once, each at
//!   most `--max-context` (the tar as the engine unpacks it: a gzip'd body is
//!   measured, and stored, unpacked, so a gzip bomb stops at the limit). A
//!   request takes its build slot *before* its body is read ([`slots`]).
//! - **Waiting**: at most `--max-queued` requests wait for a slot, each for at
//!   most `--queue-timeout`, their uploads unread (a client that sends
//!   `Expect: 100-continue` and waits for it sends nothing until its build can
//!   start; curl sends it for bodies over 1 MiB, waiting one second unless
//!   given `--expect100-timeout`). A waiting request cannot be told it is queued,
//!   since its response has not started; past the bounds it gets 503 with
//!   `Retry-After: 60`. The proxy's timeouts must exceed `--queue-timeout`.
//! - **Memory**: bodies stream through small bounded buffers to the spool
//!   file and from it to the engine; nothing is held whole.
//!
//! # Design
//!
//! A request flows through one module per step: [`auth`] (constant-time token
//! check) -> [`server`] (query -> [`reference`]s, validated tags under the
//! builder's registry) -> [`slots`] (a build slot, or 503) -> [`spool`] (body
//! unpacked to an unnamed temp file, size limited) -> [`build`] (engine
//! build, tag, push, digest, cleanup) -> [`ndjson`] lines back to the client. [`engine`] holds the bollard client
//! and turns its errors into messages that name the socket. The engine's
//! classic builder does the work (Docker 20.10, API 1.41, no BuildKit); the
//! context reaches it as a plain tar, the bytes the limit counted.
//!
//! # Trust boundary
//!
//! The builder holds the Docker engine's socket, bind-mounted from the host.
//! Whoever can talk to that socket is root on the box: they can start a
//! privileged container, mount `/` from the host, read every secret under
//! `/run/turtle/secrets`, and replace the supervisor. A build itself already
//! runs arbitrary code (`RUN`) on the engine; the classic builder keeps it in
//! an unprivileged container, but a bug in the builder service that passed
//! caller input through to other engine calls would hand out the box.
//! So the builder is exactly as trusted as the box's root account, and so is
//! every holder of a token it accepts.
//!
//! Why that is acceptable here: the only way in is `builder.<domain>` through
//! the stack's proxy, over TLS with Turtle's CA; every build needs the
//! builder token or the admin token, which only an admin reads on the box
//! (`turtle secret <name>`) or hands to a CI job they trust as much as
//! themselves. The service makes a fixed set of engine calls (build, tag,
//! push, remove tag, ping) with validated references; callers never choose an
//! engine endpoint, a container option or a volume. The builder's port is not
//! published; only the proxy reaches it on the stack's network.
//!
//! What would narrow it: rootless BuildKit (`buildkitd` as an unprivileged
//! user, in its own container, with user namespaces) speaking its own API, so
//! the builder never holds the engine socket; or a separate, dedicated engine
//! (a Docker-in-Docker or rootless dockerd just for builds) whose compromise
//! does not reach the box's containers. Both cost memory and setup the small
//! target boxes do not have to spare today, and BuildKit is not on them.
//!
//! # Limitations
//!
//! - One engine-global namespace of tags: see [`build`] for the race when
//!   `--max-builds` is above 1.
//! - No per-repository authorization: a holder of the builder token may
//!   push any repository (as the api's token service allows the builder).
//! - Build arguments, targets and secrets are not supported yet; the
//!   Dockerfile's defaults apply.
//! - `--max-context` bounds the context, not what the build writes: a `RUN`
//!   step, or a sparse entry in the tar (which the engine unpacks at its full
//!   size), can still fill the engine's disk. A token holder is root on the
//!   box anyway (see the trust boundary); the limits keep honest clients and
//!   accidents (a forgotten `.dockerignore`, parallel CI jobs) from doing it.

mod args;
mod auth;
pub mod build;
mod engine;
pub mod ndjson;
pub mod reference;
pub mod server;
pub mod slots;
pub mod spool;

pub use args::Args;
pub use auth::{AuthError, Principal, TokenError, Tokens};
pub use build::Builder;
pub use engine::{ConnectError, Engine};
pub use ndjson::Line;
pub use reference::{ImageRef, Registry};
pub use server::{Server, serve};
pub use slots::Slots;
pub use spool::{SpoolStats, Spooler};
pub use turtle_units::ByteSize;

/// Runs the service until SIGTERM or SIGINT, then lets running builds'
/// responses finish.
pub async fn run(args: Args) -> anyhow::Result<()> {
    use anyhow::Context as _;

    let server = args.server()?;
    if let Err(e) = server.builder.engine().ready().await {
        tracing::warn!("{e}; builds fail until the engine answers");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}: is another process using it? pass another --listen",
                args.listen
            )
        })?;
    tracing::info!(
        listen = %args.listen,
        registry = %server.builder.registry(),
        max_builds = args.max_builds,
        max_queued = args.max_queued,
        queue_timeout = %args.queue_timeout,
        max_context = %args.max_context,
        spool_dir = %server.spooler.dir().display(),
        keep_local = args.keep_local,
        "builder listening"
    );
    serve(listener, server, turtle_stack_common::on_shutdown()?)
        .await
        .context("serving HTTP")?;
    tracing::info!("builder stopped");
    Ok(())
}
