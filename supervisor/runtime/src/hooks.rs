//! Lifecycle hooks: `post_start` commands run in a container once it has
//! started, `pre_stop` commands before it is stopped (compose's
//! `ServiceHook`s, through the engine's exec).
//!
//! As in docker compose: hooks run in order, each waited for; a failing
//! `post_start` hook fails the operation that started the container (`up`,
//! a restart) and leaves the container running. Unlike compose, a failing
//! `pre_stop` hook never blocks the stop: it is reported and the stop goes
//! on (a box's `down` or recreate must not be held up by a broken hook).
//! A container that is not running (or gone) is skipped quietly, as compose
//! does. Hooks run where Turtle starts or stops a container: apply (create,
//! recreate, start, restart, scale-down), `down`, `turtle
//! start/stop/restart` and the keep-alive's heals. Restarts done by the
//! engine's own restart policy (after a crash) run no hooks.

use turtle_compose::{Hook, Service};
use turtle_engine::{Engine, EngineError, ExecSpec};

/// Which hook list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PostStart,
    PreStop,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PostStart => "post_start",
            Self::PreStop => "pre_stop",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {command:?} of {container} exited with status {code}{}", tail(.output))]
    Exited {
        kind: Kind,
        container: String,
        command: String,
        code: i64,
        output: String,
    },
    #[error("{kind} hook {command:?} of {container}: {source}")]
    Engine {
        kind: Kind,
        container: String,
        command: String,
        #[source]
        source: EngineError,
    },
}

fn tail(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// Runs the service's `post_start` hooks in `container` (an ID or name);
/// the first failure stops there and is returned.
pub async fn post_start<E: Engine>(
    engine: &E,
    service: &Service,
    container: &str,
) -> Result<(), HookError> {
    for hook in &service.post_start {
        match run(engine, Kind::PostStart, hook, container).await {
            Err(HookError::Engine { source, .. })
                if source.is_not_found() || matches!(source, EngineError::Conflict { .. }) =>
            {
                // Stopped or gone since: nothing to run the hook in.
                return Ok(());
            }
            r => r?,
        }
    }
    Ok(())
}

/// Runs the service's `pre_stop` hooks in `container`, every one of them;
/// returns the failures, for the caller to report before it stops the
/// container anyway.
pub async fn pre_stop<E: Engine>(engine: &E, service: &Service, container: &str) -> Vec<HookError> {
    let mut failures = Vec::new();
    for hook in &service.pre_stop {
        match run(engine, Kind::PreStop, hook, container).await {
            Ok(()) => {}
            Err(HookError::Engine { source, .. })
                if source.is_not_found() || matches!(source, EngineError::Conflict { .. }) =>
            {
                break;
            }
            Err(e) => {
                tracing::warn!("{e}; stopping it anyway");
                failures.push(e);
            }
        }
    }
    failures
}

async fn run<E: Engine>(
    engine: &E,
    kind: Kind,
    hook: &Hook,
    container: &str,
) -> Result<(), HookError> {
    let spec = ExecSpec {
        command: hook.command.clone(),
        user: hook.user.clone(),
        privileged: hook.privileged,
        working_dir: hook.working_dir.clone(),
        env: hook
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        capture: 0,
    };
    let command = hook.command.join(" ");
    let outcome = engine
        .exec(container, &spec)
        .await
        .map_err(|source| HookError::Engine {
            kind,
            container: container.to_string(),
            command: command.clone(),
            source,
        })?;
    if outcome.exit_code != 0 {
        return Err(HookError::Exited {
            kind,
            container: container.to_string(),
            command,
            code: outcome.exit_code,
            output: outcome.output_tail,
        });
    }
    Ok(())
}
