//! [`Control`] in this process: the supervisor itself. The daemon serves
//! this on its socket; the CLI uses it directly when no daemon answers.

use futures_util::StreamExt;
use turtle_engine::{Engine, EngineError};
use turtle_reconcile::plan::Mode;
use turtle_runtime::device::DeviceError;
use turtle_runtime::engine_trust::EngineTrustError;
use turtle_runtime::secrets::SecretError;
use turtle_runtime::store::StoreError;
use turtle_runtime::supervisor::{Error, Supervisor};
use turtle_runtime::trust::TrustError;

use crate::wire::{
    DeviceReport, DownReport, EventRecord, EventsQuery, ExecRequest, ExecResult, LogsQuery,
    MdnsStatus, Ping, Plan, Project, ProjectName, ProjectStatus, PushOptions, Release, Report,
    ServiceAction, ServiceName, UpOptions,
};
use crate::{BoxFuture, BoxStream, Control, ControlError, Progress, Result};

/// Every error variant gets its kind here, explicitly (no wildcard arm).
impl From<Error> for ControlError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::Engine(EngineError::Unreachable { .. }) => Self::EngineUnreachable(message),
            Error::Engine(EngineError::NotFound { .. }) => Self::NotFound(message),
            Error::Engine(EngineError::Conflict { .. }) => Self::Conflict(message),
            Error::Engine(EngineError::Api { .. } | EngineError::Other { .. }) => {
                Self::Engine(message)
            }
            Error::Engine(EngineError::Build { .. } | EngineError::TooOld { .. }) => {
                Self::Invalid(message)
            }
            Error::Plan(_) => Self::Invalid(message),
            Error::Apply(_) => Self::Failed(message),
            Error::Store(
                StoreError::Dir { .. } | StoreError::Sql { .. } | StoreError::Corrupt { .. },
            ) => Self::Failed(message),
            Error::UnknownProject(_) | Error::UnknownService { .. } => Self::NotFound(message),
            Error::Incomplete(_) => Self::Failed(message),
            Error::Trust(
                TrustError::OutsideDomain { .. }
                | TrustError::BadName { .. }
                | TrustError::Reserved { .. },
            ) => Self::Invalid(message),
            Error::Trust(TrustError::Certs(_) | TrustError::Io { .. }) => Self::Failed(message),
            Error::Device(DeviceError::Priority { .. }) => Self::Invalid(message),
            Error::Device(
                DeviceError::Profile(_) | DeviceError::Detect(_) | DeviceError::System(_),
            ) => Self::Failed(message),
            Error::Secret(SecretError::BadName { .. } | SecretError::InvalidName(_)) => {
                Self::Invalid(message)
            }
            // A directory that is not Turtle's: the request cannot be
            // carried out as it is (the message says what to move away).
            Error::Secret(SecretError::Dir(_)) => Self::Invalid(message),
            Error::Secret(
                SecretError::Write { .. }
                | SecretError::Read { .. }
                | SecretError::Unknown { .. }
                | SecretError::Signer { .. },
            ) => Self::Failed(message),
            Error::EngineTrust(
                EngineTrustError::Names(_)
                | EngineTrustError::NoPort { .. }
                | EngineTrustError::NotOurs { .. },
            ) => Self::Invalid(message),
            Error::EngineTrust(EngineTrustError::Io { .. }) => Self::Failed(message),
        }
    }
}

impl<E: Engine> Control for Supervisor<E> {
    fn ping(&self) -> BoxFuture<'_, Result<Ping>> {
        Box::pin(async move {
            Ok(Ping {
                version: env!("CARGO_PKG_VERSION").to_string(),
                build_id: turtle_runtime::images::build_id(),
                resyncs: self.resyncs(),
            })
        })
    }

    fn projects(&self) -> BoxFuture<'_, Result<Vec<ProjectStatus>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for name in self.project_names().await? {
                match self.status(&name).await {
                    Ok(s) => out.push(s),
                    // Removed meanwhile.
                    Err(Error::UnknownProject(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(out)
        })
    }

    fn status<'a>(&'a self, project: &'a ProjectName) -> BoxFuture<'a, Result<ProjectStatus>> {
        Box::pin(async move { Ok(Supervisor::status(self, project).await?) })
    }

    fn plan<'a>(&'a self, project: &'a Project) -> BoxFuture<'a, Result<Plan>> {
        Box::pin(async move { Ok(Supervisor::plan(self, project, Mode::Up).await?) })
    }

    fn up<'a>(
        &'a self,
        project: &'a Project,
        opts: &'a UpOptions,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Report>> {
        Box::pin(async move { Ok(Supervisor::up(self, project, opts, progress).await?) })
    }

    fn push<'a>(
        &'a self,
        project: &'a Project,
        opts: &'a PushOptions,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Release>> {
        Box::pin(async move { Ok(Supervisor::push(self, project, opts, progress).await?) })
    }

    fn rollback<'a>(
        &'a self,
        project: &'a ProjectName,
        to: Option<&'a str>,
        opts: &'a PushOptions,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Release>> {
        Box::pin(async move { Ok(Supervisor::rollback(self, project, to, opts, progress).await?) })
    }

    fn releases<'a>(&'a self, project: &'a ProjectName) -> BoxFuture<'a, Result<Vec<Release>>> {
        Box::pin(async move { Ok(Supervisor::releases(self, project)?) })
    }

    fn down<'a>(
        &'a self,
        project: &'a ProjectName,
        volumes: bool,
    ) -> BoxFuture<'a, Result<DownReport>> {
        Box::pin(async move { Ok(Supervisor::down(self, project, volumes).await?) })
    }

    fn service_action<'a>(
        &'a self,
        project: &'a ProjectName,
        service: &'a ServiceName,
        action: ServiceAction,
    ) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(
            async move { Ok(Supervisor::service_action(self, project, service, action).await?) },
        )
    }

    fn exec<'a>(
        &'a self,
        project: &'a ProjectName,
        service: &'a ServiceName,
        request: &'a ExecRequest,
    ) -> BoxFuture<'a, Result<ExecResult>> {
        Box::pin(async move { Ok(Supervisor::exec(self, project, service, request).await?) })
    }

    fn logs<'a>(
        &'a self,
        project: &'a ProjectName,
        query: &'a LogsQuery,
    ) -> BoxFuture<'a, Result<BoxStream<Result<String>>>> {
        Box::pin(async move {
            let lines = self
                .log_lines(project, &query.services, query.follow, query.tail)
                .await?;
            let lines: BoxStream<Result<String>> =
                Box::pin(lines.map(|l| l.map_err(|e| Error::from(e).into())));
            Ok(lines)
        })
    }

    fn events<'a>(
        &'a self,
        query: &'a EventsQuery,
    ) -> BoxFuture<'a, Result<BoxStream<Result<EventRecord>>>> {
        Box::pin(async move {
            // Subscribe before reading the past, so nothing falls between.
            let live = query.follow.then(|| self.subscribe());
            let limit = query.limit.unwrap_or(100);
            let past = match query.after {
                Some(after) => self.store().events_after(after, limit),
                None => self.store().recent_events(limit),
            }
            .map_err(Error::from)?;
            let last = past
                .last()
                .map(|e| e.id)
                .unwrap_or(query.after.unwrap_or(0));
            let head = futures_util::stream::iter(past.into_iter().map(Ok));
            let events: BoxStream<Result<EventRecord>> = match live {
                None => Box::pin(head),
                Some(rx) => {
                    let tail = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(
                        move |e| async move {
                            match e {
                                Ok(e) if e.id > last => Some(Ok(e)),
                                // Lagged: the store still has them.
                                _ => None,
                            }
                        },
                    );
                    Box::pin(head.chain(tail))
                }
            };
            Ok(events)
        })
    }

    fn names(&self) -> BoxFuture<'_, Result<MdnsStatus>> {
        Box::pin(async move { Ok(self.announcer().status()) })
    }

    fn device(&self) -> BoxFuture<'_, Result<DeviceReport>> {
        Box::pin(async move {
            match self.shedder() {
                Some(s) => Ok(s.report()),
                None => Err(ControlError::NotFound(
                    "this supervisor has no device profile".into(),
                )),
            }
        })
    }
}
