//! `turtle fleet ...` and `turtle devices`: the backend's fleets and
//! devices, for the admin on the box that runs the backend stack. Every
//! call goes to the stack's api over its TLS, trusting this box's root,
//! with the admin token the supervisor made for the stack (`turtle secret
//! admin-token`). (`turtle device`, singular, is this box's own profile.)

use std::path::PathBuf;

use clap::{Args, Subcommand};
use turtle_compose::ProjectName;
use turtle_control::Control as _;
use turtle_fleet_api::{Client, Credentials, Fleet, NewFleet, NewProvisioningConfig, SetTarget};
use turtle_runtime::secrets::{SecretName, Secrets};
use turtle_runtime::store::Store;
use turtle_runtime::trust::Trust;

use super::context::{self, Failure};
use super::{GlobalArgs, ProjectArgs};

/// The backend stack on this box, as its admin.
pub struct Backend {
    pub client: Client,
    /// This box's root (PEM), the only one trusted.
    pub root_pem: String,
    /// `https://api.<domain>[:port]`.
    pub api: String,
    /// The box's domain.
    pub domain: String,
}

/// The stack `stack` on this box: its api's URL as this box reaches it
/// and a client with its admin token.
pub async fn backend(g: &GlobalArgs, stack: &ProjectName) -> Result<Backend, Failure> {
    let config = context::supervisor_config(g)?;
    let trust =
        Trust::open(&g.state_dir, &config, std::time::SystemTime::now()).map_err(Failure::op)?;
    let domain = trust.domain().to_string();
    let store = Store::open(&g.state_dir).map_err(Failure::op)?;
    let project = store.project(stack).map_err(Failure::op)?.ok_or_else(|| {
        Failure::input(format!(
            "no backend stack {stack} on this box: `turtle up -f stack/docker-compose.yml` first (or --stack PROJECT)"
        ))
    })?;
    let api = turtle_runtime::announce::api_url(std::slice::from_ref(&project), &domain);
    let name: SecretName = "admin-token".parse().map_err(Failure::op)?;
    let token = Secrets::new(&g.state_dir)
        .read(stack, &name)
        .map_err(Failure::op)?;
    let client = Client::builder(api.clone())
        .root_ca_pem(trust.authority().root_pem().to_string())
        .credentials(Credentials::Admin(token.trim().to_string()))
        .build()
        .map_err(Failure::op)?;
    Ok(Backend {
        client,
        root_pem: trust.authority().root_pem().to_string(),
        api,
        domain,
    })
}

impl Backend {
    fn failed(&self, e: turtle_fleet_api::Error) -> Failure {
        Failure::op(format!("{}: {e}", self.api))
    }

    /// The fleet named `name`.
    pub async fn fleet(&self, name: &str) -> Result<Fleet, Failure> {
        let fleets = self.client.fleets().await.map_err(|e| self.failed(e))?;
        let names: Vec<&str> = fleets.iter().map(|f| f.name.as_str()).collect();
        let list = names.join(", ");
        fleets
            .iter()
            .find(|f| f.name.as_str() == name)
            .cloned()
            .ok_or_else(|| {
                Failure::input(format!(
                    "no fleet {name} in the backend at {} (it has: {})",
                    self.api,
                    if list.is_empty() { "none" } else { &list }
                ))
            })
    }
}

/// Which stack the fleet commands talk to.
#[derive(Debug, Args)]
pub struct StackArg {
    /// The backend stack's project on this box.
    #[arg(long, global = true, default_value = "turtle")]
    pub stack: ProjectName,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
    #[command(flatten)]
    pub stack: StackArg,
}

#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// Create a fleet.
    Create { name: String },
    /// List the fleets, each with its target.
    Ls,
    /// Remove a fleet, its releases and provisioning keys (refused while it
    /// has devices: remove them first).
    Rm { name: String },
    /// Write a provisioning config: the one file a device joins the fleet
    /// with (`agent.provisioning` in its turtle.yaml). It holds a new
    /// provisioning key: keep it like a password until it is used.
    Provision {
        name: String,
        /// Where to write it [default: standard output].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The device profile the devices get (raspberrypi3, nuc, ...).
        #[arg(long)]
        profile: Option<String>,
        /// How many devices the key registers.
        #[arg(long, default_value_t = 1)]
        max_uses: i32,
        /// How long the key is valid, in seconds (at most 30 days).
        #[arg(long, default_value_t = 3600)]
        expires_in: i64,
    },
    /// Push a release to the fleet: every service's image built by the
    /// backend's builder (from its build context, or `FROM` its image) and
    /// pushed to the backend's registry, pinned by digest; the compose file
    /// and those digests become the fleet's next release, and the fleet's
    /// devices go to it (unless the fleet is pinned).
    Push {
        name: String,
        /// The project's directory [default: the working directory]; -f
        /// takes the compose file instead.
        dir: Option<PathBuf>,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// List the fleet's provisioning keys (never the keys themselves): uses
    /// left, expiry.
    Keys { name: String },
    /// Revoke a provisioning key by its id (`turtle fleet keys`): it
    /// registers nothing more; the devices it registered stay.
    RevokeKey { name: String, id: i64 },
    /// List the fleet's releases, newest first; * marks the target.
    Releases { name: String },
    /// Pin the fleet to release VERSION: its devices go to it and stay.
    Pin { name: String, version: i32 },
    /// Unpin the fleet: its devices follow its newest release again.
    Unpin { name: String },
    /// Pin the fleet to the release before its current target.
    Rollback { name: String },
}

pub async fn run(g: &GlobalArgs, a: FleetArgs) -> Result<(), Failure> {
    let b = backend(g, &a.stack.stack).await?;
    match a.command {
        FleetCommand::Create { name } => {
            let name = name.parse().map_err(Failure::input)?;
            let f = b
                .client
                .create_fleet(&NewFleet { name })
                .await
                .map_err(|e| b.failed(e))?;
            eprintln!("turtle: fleet {} created (id {})", f.name, f.id);
        }
        FleetCommand::Ls => {
            let fleets = b.client.fleets().await.map_err(|e| b.failed(e))?;
            println!("{:<24} {:>6} {:<10}", "NAME", "ID", "TARGET");
            for f in fleets {
                let target = match f.target_release_id {
                    Some(id) => format!("pinned to release id {id}"),
                    None => "newest".into(),
                };
                println!("{:<24} {:>6} {target}", f.name.as_str(), f.id);
            }
        }
        FleetCommand::Rm { name } => {
            let f = b.fleet(&name).await?;
            b.client.delete_fleet(f.id).await.map_err(|e| b.failed(e))?;
            eprintln!("turtle: fleet {name} removed");
        }
        FleetCommand::Provision {
            name,
            output,
            profile,
            max_uses,
            expires_in,
        } => {
            let f = b.fleet(&name).await?;
            let config = b
                .client
                .provisioning_config(
                    f.id,
                    &NewProvisioningConfig {
                        key: turtle_fleet_api::NewProvisioningKey {
                            description: Some(format!("turtle fleet provision {name}")),
                            expires_in_secs: Some(expires_in),
                            max_uses: Some(max_uses),
                        },
                        device_profile: profile,
                    },
                )
                .await
                .map_err(|e| b.failed(e))?;
            let text = serde_json::to_string_pretty(&config).map_err(Failure::op)?;
            match output {
                Some(path) => {
                    write_private(&path, &text)?;
                    eprintln!(
                        "turtle: {} written: fleet {name}, key {} for {max_uses} device(s) until {}; root pin {}",
                        path.display(),
                        config.provisioning_key_id,
                        config.expires_at,
                        config.root_sha256
                    );
                }
                None => println!("{text}"),
            }
        }
        FleetCommand::Push { name, dir, project } => {
            push(&b, &name, dir.as_deref(), project).await?;
        }
        FleetCommand::Keys { name } => {
            let f = b.fleet(&name).await?;
            let keys = b
                .client
                .provisioning_keys(f.id)
                .await
                .map_err(|e| b.failed(e))?;
            println!("{:>6} {:>5} {:<22} DESCRIPTION", "ID", "USES", "EXPIRES");
            for k in keys {
                println!(
                    "{:>6} {:>5} {:<22} {}",
                    k.id,
                    format!("{}/{}", k.uses, k.max_uses),
                    k.expires_at,
                    k.description
                );
            }
        }
        FleetCommand::RevokeKey { name, id } => {
            let f = b.fleet(&name).await?;
            b.client
                .delete_provisioning_key(f.id, id)
                .await
                .map_err(|e| b.failed(e))?;
            eprintln!("turtle: provisioning key {id} of fleet {name} revoked");
        }
        FleetCommand::Releases { name } => {
            let f = b.fleet(&name).await?;
            let mut releases = b.client.releases(f.id).await.map_err(|e| b.failed(e))?;
            releases.sort_by_key(|r| std::cmp::Reverse(r.version));
            let target = f
                .target_release_id
                .or_else(|| releases.first().map(|r| r.id));
            println!("  {:>7} {:>6} {:<22} IMAGES", "VERSION", "ID", "CREATED");
            for r in releases {
                let mark = if Some(r.id) == target { "*" } else { " " };
                println!(
                    "{mark} {:>7} {:>6} {:<22} {}",
                    r.version,
                    r.id,
                    r.created_at,
                    r.images.len()
                );
            }
        }
        FleetCommand::Pin { name, version } => {
            let f = b.fleet(&name).await?;
            let releases = b.client.releases(f.id).await.map_err(|e| b.failed(e))?;
            let r = releases
                .iter()
                .find(|r| r.version == version)
                .ok_or_else(|| {
                    Failure::input(format!(
                        "fleet {name} has no release {version} (`turtle fleet releases {name}`)"
                    ))
                })?;
            set_target(&b, f.id, Some(r.id)).await?;
            eprintln!("turtle: fleet {name} pinned to release {version}");
        }
        FleetCommand::Unpin { name } => {
            let f = b.fleet(&name).await?;
            set_target(&b, f.id, None).await?;
            eprintln!("turtle: fleet {name} follows its newest release");
        }
        FleetCommand::Rollback { name } => {
            let f = b.fleet(&name).await?;
            let mut releases = b.client.releases(f.id).await.map_err(|e| b.failed(e))?;
            releases.sort_by_key(|r| std::cmp::Reverse(r.version));
            let current = f
                .target_release_id
                .and_then(|id| releases.iter().find(|r| r.id == id))
                .or(releases.first())
                .ok_or_else(|| Failure::input(format!("fleet {name} has no release")))?;
            let before = releases
                .iter()
                .find(|r| r.version < current.version)
                .ok_or_else(|| {
                    Failure::input(format!(
                        "fleet {name}'s target is its first release ({}): nothing before it",
                        current.version
                    ))
                })?;
            set_target(&b, f.id, Some(before.id)).await?;
            eprintln!(
                "turtle: fleet {name} pinned to release {} (was {}); `turtle fleet unpin {name}` follows the newest again",
                before.version, current.version
            );
        }
    }
    Ok(())
}

async fn set_target(b: &Backend, fleet: i64, release: Option<i64>) -> Result<(), Failure> {
    b.client
        .set_target(
            fleet,
            &SetTarget {
                release_id: release,
            },
        )
        .await
        .map(|_| ())
        .map_err(|e| b.failed(e))
}

fn write_private(path: &std::path::Path, text: &str) -> Result<(), Failure> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::op(format!("{}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Failure::op(format!("{}: {e}", path.display())))
}

#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[command(subcommand)]
    pub command: Option<DevicesCommand>,
    /// Only this fleet's devices.
    #[arg(long)]
    pub fleet: Option<String>,
    /// `json`: the api's answer as it is.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub format: String,
    #[command(flatten)]
    pub stack: StackArg,
}

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// A device's service logs, as it shipped them (oldest first); with
    /// --vpn, read from the device's engine through the VPN instead.
    Logs {
        /// The device's name or uuid (or a unique start of it).
        device: String,
        /// Keep printing lines as they arrive.
        #[arg(short, long)]
        follow: bool,
        /// How many of the last lines (of each container, with --vpn).
        #[arg(short = 'n', long, default_value_t = 100)]
        tail: i64,
        /// Ask the device itself, through the VPN: every line its engine
        /// kept, also those it never shipped; the device must be online.
        #[arg(long)]
        vpn: bool,
        /// With --vpn: only these services.
        #[arg(long = "service", requires = "vpn")]
        services: Vec<String>,
    },
    /// A device's containers, asked of the device through the VPN.
    Ps {
        /// The device's name or uuid (or a unique start of it).
        device: String,
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        format: String,
    },
    /// Run a command in a service's container on a device, through the VPN
    /// (no terminal, no standard input); exits with the command's code.
    Exec {
        /// The device's name or uuid (or a unique start of it).
        device: String,
        #[command(flatten)]
        exec: super::exec::ExecCommand,
    },
    /// Remove a device: its key is refused everywhere at once (api,
    /// registry, VPN), its logs go; the device keeps running what it runs.
    Rm { device: String },
}

/// A device by name, uuid or unique start of its uuid.
async fn find_device(b: &Backend, key: &str) -> Result<turtle_fleet_api::Device, Failure> {
    let devices = b.client.devices().await.map_err(|e| b.failed(e))?;
    let found: Vec<_> = devices
        .into_iter()
        .filter(|d| d.name.as_deref() == Some(key) || d.uuid.starts_with(key))
        .collect();
    match <[_; 1]>::try_from(found) {
        Ok([d]) => Ok(d),
        Err(v) if v.is_empty() => Err(Failure::input(format!(
            "no device named {key} or with a uuid starting so (`turtle devices`)"
        ))),
        Err(v) => Err(Failure::input(format!(
            "{key} names {} devices ({}): give more of the uuid",
            v.len(),
            v.iter()
                .map(|d| d.uuid.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Device `key`'s daemon, through the VPN, and its fleet's project there.
async fn reached(
    g: &GlobalArgs,
    b: &Backend,
    stack: &ProjectName,
    key: &str,
) -> Result<(turtle_control::client::Client, ProjectName), Failure> {
    let d = find_device(b, key).await?;
    let project: ProjectName = d
        .fleet
        .name
        .as_str()
        .parse()
        .map_err(|e| Failure::op(format!("fleet {}: {e}", d.fleet.name)))?;
    // Answered a ping already.
    let daemon = super::reach::device_daemon(g, b, stack, &d).await?;
    Ok((daemon, project))
}

/// `turtle devices logs`.
async fn device_logs(b: &Backend, key: &str, follow: bool, tail: i64) -> Result<(), Failure> {
    let d = find_device(b, key).await?;
    let print = |lines: &[turtle_fleet_api::LogLine]| {
        for l in lines {
            println!(
                "{} {} | {}",
                l.timestamp,
                l.service.as_deref().unwrap_or("-"),
                l.message
            );
        }
    };
    let first = b
        .client
        .device_logs(
            &d.uuid,
            &turtle_fleet_api::LogQuery {
                limit: Some(tail.clamp(1, 10_000)),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| b.failed(e))?;
    print(&first);
    if !follow {
        return Ok(());
    }
    let mut after = first.last().map(|l| l.id);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        let lines = b
            .client
            .device_logs(
                &d.uuid,
                &turtle_fleet_api::LogQuery {
                    after: Some(after.unwrap_or(0)),
                    limit: Some(10_000),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| b.failed(e))?;
        print(&lines);
        if let Some(l) = lines.last() {
            after = Some(l.id);
        }
    }
}

/// `turtle devices`: every device of the backend (or of one fleet), with
/// what it last reported; `logs` and `rm` of one.
pub async fn devices(g: &GlobalArgs, a: DevicesArgs) -> Result<(), Failure> {
    let b = backend(g, &a.stack.stack).await?;
    match &a.command {
        Some(DevicesCommand::Logs {
            device,
            follow,
            tail,
            vpn: false,
            ..
        }) => return device_logs(&b, device, *follow, *tail).await,
        Some(DevicesCommand::Logs {
            device,
            follow,
            tail,
            vpn: true,
            services,
        }) => {
            let (daemon, project) = reached(g, &b, &a.stack.stack, device).await?;
            let query = turtle_control::wire::LogsQuery {
                follow: *follow,
                tail: u64::try_from(*tail).ok(),
                services: services.clone(),
            };
            let lines = daemon.logs(&project, &query).await?;
            return super::logs::print_lines(lines).await;
        }
        Some(DevicesCommand::Ps { device, format }) => {
            let (daemon, project) = reached(g, &b, &a.stack.stack, device).await?;
            let status = daemon.status(&project).await?;
            return super::ps::print(std::slice::from_ref(&status), format == "json", true);
        }
        Some(DevicesCommand::Exec { device, exec }) => {
            let request = exec.request()?;
            let (daemon, project) = reached(g, &b, &a.stack.stack, device).await?;
            let result = daemon.exec(&project, &exec.service, &request).await?;
            return super::exec::finish(&result);
        }
        Some(DevicesCommand::Rm { device }) => {
            let d = find_device(&b, device).await?;
            b.client
                .delete_device(&d.uuid)
                .await
                .map_err(|e| b.failed(e))?;
            eprintln!(
                "turtle: device {} ({}) removed: its key is refused from now on",
                d.name.as_deref().unwrap_or("-"),
                d.uuid
            );
            return Ok(());
        }
        None => {}
    }
    if let Some(f) = &a.fleet {
        b.fleet(f).await?;
    }
    let devices: Vec<_> = b
        .client
        .devices()
        .await
        .map_err(|e| b.failed(e))?
        .into_iter()
        .filter(|d| {
            a.fleet
                .as_deref()
                .is_none_or(|f| d.fleet.name.as_str() == f)
        })
        .collect();
    if a.format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&devices).map_err(Failure::op)?
        );
        return Ok(());
    }
    println!(
        "{:<16} {:<10} {:<12} {:<8} {:<24} {:<14} {:>6}  LAST SEEN",
        "NAME", "UUID", "FLEET", "RELEASE", "LAST UPDATE", "PROFILE", "TEMP"
    );
    for d in devices {
        let state = d.state.clone().unwrap_or_default();
        let release = state["current_release"]["version"]
            .as_str()
            .unwrap_or("-")
            .to_string();
        let last = &state["last_update"];
        let update = match last["outcome"].as_str() {
            Some(o) => format!("{} {o}", last["version"].as_str().unwrap_or("?")),
            None => "-".into(),
        };
        let profile = state["device"]["profile"].as_str().unwrap_or("-");
        let temp = state["device"]["thermal"]["hottest"]
            .as_i64()
            .map(|m| format!("{:.1}C", m as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<16} {:<10} {:<12} {:<8} {:<24} {:<14} {:>6}  {}",
            d.name.as_deref().unwrap_or("-"),
            &d.uuid[..8.min(d.uuid.len())],
            d.fleet.name.as_str(),
            release,
            update,
            profile,
            temp,
            d.last_seen.as_deref().unwrap_or("never")
        );
    }
    Ok(())
}

/// The largest build context `fleet push` sends (it is sent whole).
const MAX_CONTEXT: usize = 512 << 20;

/// `turtle fleet push`: see [`FleetCommand::Push`].
async fn push(
    b: &Backend,
    fleet_name: &str,
    dir: Option<&std::path::Path>,
    mut args: ProjectArgs,
) -> Result<(), Failure> {
    let fleet = b.fleet(fleet_name).await?;
    if args.files.is_empty() {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_dir().map_err(Failure::op)?,
        };
        args.files = super::push::compose_files_in(&dir);
    }
    let [file] = args.files.as_slice() else {
        return Err(Failure::input(
            "a fleet release carries one compose file: give one -f (merge several into one first)",
        ));
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
    let project = context::load_project(&args)?;
    // The device reads the text alone: a file that includes or extends
    // others would not load there.
    let alone = tempfile::tempdir().map_err(Failure::op)?;
    let name = std::path::PathBuf::from("docker-compose.yml");
    turtle_compose::load_in_memory(
        &turtle_compose::LoadOptions {
            files: vec![name.clone()],
            project_name: Some(project.name.clone()),
            cwd: alone.path().to_path_buf(),
            ..Default::default()
        },
        [(name, text.clone())],
    )
    .map_err(|e| {
        Failure::input(format!(
            "{} does not stand alone, as a device reads it ({e}): put what it includes or extends into it",
            file.display()
        ))
    })?;
    let releases = b.client.releases(fleet.id).await.map_err(|e| b.failed(e))?;
    let next = releases.iter().map(|r| r.version).max().unwrap_or(0) + 1;
    let builder_url = b.api.replacen("https://api.", "https://builder.", 1);
    let builder = Client::builder(builder_url.clone())
        .root_ca_pem(b.root_pem.clone())
        .credentials(b.client.credentials().clone())
        .timeout(std::time::Duration::from_secs(3600))
        .max_answer_bytes(64 << 20)
        .build()
        .map_err(Failure::op)?;
    let mut images = std::collections::BTreeMap::new();
    for (service, s) in &project.services {
        let tag = format!("{}/{service}:{next}", fleet.name);
        let empty = tempfile::tempdir().map_err(Failure::op)?;
        let ctx = match (&s.build, &s.image) {
            (Some(build), _) => {
                if !build.args.is_empty() {
                    eprintln!(
                        "turtle: warning: service {service}: build args are not sent to the builder; the Dockerfile's defaults apply"
                    );
                }
                let self_files = match s.labels.get(turtle_runtime::images::BUILD_SELF_LABEL) {
                    Some(n) => vec![(
                        n.clone(),
                        turtle_runtime::images::self_exe().map_err(Failure::op)?,
                    )],
                    None => Vec::new(),
                };
                let ctx = turtle_engine::docker::context::BuildContext::new(
                    &build.context,
                    build.dockerfile.as_deref().unwrap_or("Dockerfile"),
                    &self_files,
                )
                .map_err(|e| Failure::input(format!("service {service}: {e}")))?;
                match &build.dockerfile_inline {
                    Some(text) => ctx
                        .with_inline_dockerfile(text.clone())
                        .map_err(|e| Failure::input(format!("service {service}: {e}")))?,
                    None => ctx,
                }
            }
            (None, Some(image)) => {
                turtle_engine::docker::context::BuildContext::new(empty.path(), "Dockerfile", &[])
                    .and_then(|c| c.with_inline_dockerfile(format!("FROM {image}\n")))
                    .map_err(|e| Failure::op(format!("service {service}: {e}")))?
            }
            (None, None) => {
                return Err(Failure::input(format!(
                    "service {service} has neither build nor image"
                )));
            }
        };
        let tar = ctx
            .write_to(Vec::new())
            .map_err(|e| Failure::input(format!("service {service}: {e}")))?;
        if tar.len() > MAX_CONTEXT {
            return Err(Failure::input(format!(
                "service {service}: its build context is {} MiB; fleet push sends at most {} MiB (.dockerignore leaves files out)",
                tar.len() >> 20,
                MAX_CONTEXT >> 20
            )));
        }
        eprintln!(
            "turtle: service {service}: building {tag} on the backend ({} KiB of context)",
            tar.len() >> 10
        );
        let built = builder
            .build(std::slice::from_ref(&tag), ctx.dockerfile(), tar)
            .await
            .map_err(|e| Failure::op(format!("service {service}: {e}")))?;
        let pinned = built.images.into_iter().next().ok_or_else(|| {
            Failure::op(format!("service {service}: the builder pushed no image"))
        })?;
        images.insert(service.to_string(), pinned);
    }
    let release = b
        .client
        .create_release(
            fleet.id,
            &turtle_fleet_api::NewRelease {
                compose: text,
                images,
            },
        )
        .await
        .map_err(|e| b.failed(e))?;
    eprintln!(
        "turtle: release {} of fleet {fleet_name} (id {}): {} image(s); {}",
        release.version,
        release.id,
        release.images.len(),
        if fleet.target_release_id.is_some() {
            "the fleet is pinned: `turtle fleet unpin` sends its devices to it"
        } else {
            "the fleet's devices go to it"
        }
    );
    Ok(())
}
