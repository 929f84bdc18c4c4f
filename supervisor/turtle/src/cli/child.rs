//! `turtle child create|ls|rm`: child devices on this box. A child is a
//! container with a Docker engine of its own and the same `turtle`,
//! provisioned against this box's backend: its own state, CA, names and
//! engine, as a device on the LAN would have. Each is the compose project
//! `child-NAME` (see `images/child`), kept alive by this box's daemon.
//!
//! What the nested engine needs (ARCHITECTURE.md, "The fleet agent and
//! child devices"): every capability but SYS_RESOURCE (which this
//! machine's bounding set lacks, so `privileged` fails), no seccomp or
//! AppArmor profile, every device (`a *:* rwm`), the host's cgroup tree
//! read-write (cgroup v1 here), a tmpfs at /run, /dev/fuse for
//! fuse-overlayfs, /dev/net/tun for the child's end of the VPN (its
//! agent's userspace WireGuard device), and a volume for /var/lib/docker.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use turtle_compose::ProjectName;
use turtle_control::client::Client;
use turtle_fleet_api::NewProvisioningConfig;

use super::context::{self, Failure};
use super::output::Printer;
use super::{GlobalArgs, ProjectArgs};

const DOCKERFILE: &str = include_str!("../../../../images/child/Dockerfile");
const ENTRYPOINT: &str = include_str!("../../../../images/child/entrypoint.sh");
/// The prefix of a child's project name.
const PREFIX: &str = "child-";

#[derive(Debug, Args)]
pub struct ChildArgs {
    #[command(subcommand)]
    pub command: ChildCommand,
}

#[derive(Debug, Subcommand)]
pub enum ChildCommand {
    /// Start a child device provisioned into FLEET of this box's backend:
    /// a container with its own Docker engine and turtle, whose fleet agent
    /// registers and follows the fleet's releases.
    Create {
        /// The child's name: its host name and device name
        /// (project child-NAME).
        name: String,
        /// The fleet it joins (by name).
        #[arg(long)]
        fleet: String,
        /// A device profile for the child (raspberrypi3, nuc, ...)
        /// [default: detected inside the child].
        #[arg(long)]
        profile: Option<String>,
        /// The backend stack's project on this box.
        #[arg(long, default_value = "turtle")]
        stack: ProjectName,
        /// How often the child asks for its fleet's target.
        #[arg(long, default_value = "30s")]
        poll_interval: String,
    },
    /// List this box's children and their state.
    Ls,
    /// Remove a child: its container and volumes (its engine and state).
    /// Its device in the backend stays until removed there (`DELETE
    /// /v1/devices/UUID`), so its logs and history are kept.
    Rm { name: String },
}

pub async fn run(g: &GlobalArgs, a: ChildArgs) -> Result<(), Failure> {
    match a.command {
        ChildCommand::Create {
            name,
            fleet,
            profile,
            stack,
            poll_interval,
        } => create(g, &name, &fleet, profile, &stack, &poll_interval).await,
        ChildCommand::Ls => ls(g).await,
        ChildCommand::Rm { name } => rm(g, &name).await,
    }
}

fn project_of(name: &str) -> Result<ProjectName, Failure> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !ok {
        return Err(Failure::input(format!(
            "child name {name:?}: use lowercase letters, digits and '-' (a host name), at most 63"
        )));
    }
    format!("{PREFIX}{name}").parse().map_err(Failure::input)
}

async fn daemon(g: &GlobalArgs) -> Result<Client, Failure> {
    Client::connect(&g.socket_path()).await.ok_or_else(|| {
        Failure::op(format!(
            "no daemon answers on {}: children are kept alive by it (`turtle daemon`, or `turtle up -d`)",
            g.socket_path().display()
        ))
    })
}

async fn create(
    g: &GlobalArgs,
    name: &str,
    fleet: &str,
    profile: Option<String>,
    stack: &ProjectName,
    poll_interval: &str,
) -> Result<(), Failure> {
    let project = project_of(name)?;
    let daemon = daemon(g).await?;
    let backend = super::fleet::backend(g, stack).await?;
    let found = backend.fleet(fleet).await?;
    let (admin, api, domain) = (&backend.client, &backend.api, &backend.domain);
    let provisioning = admin
        .provisioning_config(
            found.id,
            &NewProvisioningConfig {
                key: turtle_fleet_api::NewProvisioningKey {
                    description: Some(format!("child {name} of this box")),
                    ..Default::default()
                },
                device_profile: profile.clone(),
            },
        )
        .await
        .map_err(|e| Failure::op(format!("{api}: {e}")))?;
    // The child's files, beside its compose file.
    let dir = children_dir(g).join(name);
    let image_dir = dir.join("image");
    std::fs::create_dir_all(&image_dir).map_err(|e| io(&image_dir, e))?;
    write(&image_dir.join("Dockerfile"), DOCKERFILE)?;
    write(&image_dir.join("entrypoint.sh"), ENTRYPOINT)?;
    set_mode(&image_dir.join("entrypoint.sh"), 0o755)?;
    let provisioning_file = dir.join("provisioning.json");
    write(
        &provisioning_file,
        &serde_json::to_string_pretty(&provisioning).map_err(Failure::op)?,
    )?;
    set_mode(&provisioning_file, 0o600)?;
    // A board's /proc and /sys for the profile: the child's sensors,
    // memory and identity read from it (and a test may heat it up).
    let device_root = dir.join("device-root");
    if let Some(p) = &profile {
        let found = turtle_device::builtin_profiles()
            .map_err(Failure::op)?
            .into_iter()
            .find(|b| &b.name == p)
            .ok_or_else(|| {
                Failure::input(format!(
                    "--profile {p}: no such device profile (`turtle device --help` names them)"
                ))
            })?;
        fake_device_tree(&device_root, &found).map_err(|e| io(&device_root, e))?;
    } else {
        std::fs::create_dir_all(&device_root).map_err(|e| io(&device_root, e))?;
    }
    let turtle_yaml = dir.join("turtle.yaml");
    write(
        &turtle_yaml,
        &child_config(name, profile.as_deref(), poll_interval),
    )?;
    let compose = dir.join("docker-compose.yml");
    write(
        &compose,
        &child_compose(
            &project,
            name,
            domain,
            &provisioning_file,
            &turtle_yaml,
            profile.is_some().then_some(device_root.as_path()),
        ),
    )?;
    let loaded = context::load_project_built_by(
        &ProjectArgs {
            files: vec![compose],
            project_name: Some(project.clone()),
            ..Default::default()
        },
        Some(daemon.build_id().to_string()),
    )?;
    let printer = Printer::new();
    let opts = turtle_control::wire::UpOptions {
        build: false,
        wait: Some(std::time::Duration::from_secs(600)),
    };
    use turtle_control::Control;
    daemon
        .up(&loaded, &opts, &|e| printer.event(e))
        .await
        .map_err(Failure::from)?;
    eprintln!(
        "turtle: child {name} runs (project {project}); it registers in fleet {fleet} with key {} and follows it: `turtle child ls`, and the backend's device list",
        provisioning.provisioning_key_id
    );
    Ok(())
}

fn children_dir(g: &GlobalArgs) -> PathBuf {
    g.state_dir.join("children")
}

fn io(path: &Path, e: std::io::Error) -> Failure {
    Failure::op(format!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(path, text).map_err(|e| io(path, e))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))
}

/// The child's turtle.yaml: a box of its own (its domain), which never
/// tunes the host's kernel (a child's swap and sysctls would be the
/// host's), publishes nothing on the LAN, and follows its fleet. It sheds
/// by its own sensors: on its own containers, in its own engine.
fn child_config(name: &str, profile: Option<&str>, poll_interval: &str) -> String {
    // With a profile, the board's /proc and /sys are the fake tree mounted
    // at /var/lib/turtle-device (the profile is named too: detection also
    // checks the real architecture, which a board of another kind lacks).
    let profile = profile
        .map(|p| format!(", profile: {p}, root: {DEVICE_ROOT}"))
        .unwrap_or_default();
    format!(
        "# Written by `turtle child create {name}` on the parent.\n\
         domain: {name}.local\n\
         mdns: {{enabled: false}}\n\
         device: {{tune: false, shed: true{profile}}}\n\
         agent:\n  provisioning: /var/lib/turtle/provisioning.json\n  poll_interval: {poll_interval}\n  name: {name}\n"
    )
}

/// The child's compose project (see the module docs for the privileges).
/// The parent's names resolve to the parent (host-gateway), whose published
/// ports serve its backend.
fn child_compose(
    project: &ProjectName,
    name: &str,
    domain: &str,
    provisioning: &Path,
    turtle_yaml: &Path,
    device_root: Option<&Path>,
) -> String {
    let device_root = device_root
        .map(|d| format!("\n      - {}:{DEVICE_ROOT}", d.display()))
        .unwrap_or_default();
    format!(
        r#"# Written by `turtle child create {name}`.
name: {project}
services:
  device:
    build: ./image
    image: turtle/child:${{TURTLE_BUILD_ID}}
    hostname: {name}
    restart: unless-stopped
    labels:
      io.turtle.build.self: turtle
      io.turtle.trust: "false"
      io.turtle.child: {name}
    cap_add: [ALL]
    cap_drop: [SYS_RESOURCE]
    security_opt: ["seccomp=unconfined", "apparmor=unconfined"]
    device_cgroup_rules: ["a *:* rwm"]
    cgroup: host
    devices: ["/dev/fuse:/dev/fuse", "/dev/net/tun:/dev/net/tun"]
    tmpfs: [/run]
    extra_hosts:
      - "{domain}:host-gateway"
      - "api.{domain}:host-gateway"
      - "registry.{domain}:host-gateway"
    volumes:
      - /sys/fs/cgroup:/sys/fs/cgroup:rw
      - engine:/var/lib/docker
      - state:/var/lib/turtle
      - {provisioning}:/etc/turtle/provisioning.json:ro
      - {turtle_yaml}:/etc/turtle/turtle.yaml:ro{device_root}
    healthcheck:
      test: ["CMD", "docker", "info", "--format", "{{{{.ID}}}}"]
      interval: 2s
      retries: 30
volumes:
  engine: {{}}
  state: {{}}
"#,
        provisioning = provisioning.display(),
        turtle_yaml = turtle_yaml.display(),
    )
}

/// Where a child sees its board's fake `/proc` and `/sys`.
const DEVICE_ROOT: &str = "/var/lib/turtle-device";

/// A board's `/proc` and `/sys` as the device layer reads them: the
/// profile's memory, its identity (device-tree model or DMI product name),
/// one thermal zone at 45 °C and no memory pressure. Rewriting
/// `sys/class/thermal/thermal_zone0/temp` heats the board up.
fn fake_device_tree(root: &Path, profile: &turtle_device::Profile) -> std::io::Result<()> {
    let kb = profile.memory.map_or(1 << 20, |m| m.bytes() / 1024);
    std::fs::create_dir_all(root.join("proc/pressure"))?;
    std::fs::write(
        root.join("proc/meminfo"),
        format!(
            "MemTotal:       {kb} kB\nMemFree:        {} kB\nMemAvailable:   {} kB\n",
            kb / 2,
            kb / 2
        ),
    )?;
    std::fs::write(
        root.join("proc/pressure/memory"),
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    )?;
    if let Some(model) = profile.matching.device_tree_model.first() {
        std::fs::create_dir_all(root.join("proc/device-tree"))?;
        std::fs::write(root.join("proc/device-tree/model"), format!("{model}\0"))?;
    }
    if let Some(product) = profile.matching.dmi_product_name.first() {
        std::fs::create_dir_all(root.join("sys/class/dmi/id"))?;
        std::fs::write(
            root.join("sys/class/dmi/id/product_name"),
            format!("{product}\n"),
        )?;
    }
    let zone = root.join("sys/class/thermal/thermal_zone0");
    std::fs::create_dir_all(&zone)?;
    std::fs::write(zone.join("type"), "cpu-thermal\n")?;
    std::fs::write(zone.join("temp"), "45000\n")
}

async fn ls(g: &GlobalArgs) -> Result<(), Failure> {
    use turtle_control::Control;
    let daemon = daemon(g).await?;
    let projects = daemon.projects().await?;
    println!("{:<20} {:<10} {:<10}", "NAME", "STATE", "HEALTH");
    for p in projects.iter().filter(|p| p.name.starts_with(PREFIX)) {
        let name = &p.name[PREFIX.len()..];
        let (state, health) = match p.containers.first() {
            Some(c) => (
                format!("{:?}", c.state).to_lowercase(),
                c.health
                    .map(|h| format!("{h:?}").to_lowercase())
                    .unwrap_or_else(|| "-".into()),
            ),
            None => ("gone".into(), "-".into()),
        };
        println!("{name:<20} {state:<10} {health:<10}");
    }
    Ok(())
}

async fn rm(g: &GlobalArgs, name: &str) -> Result<(), Failure> {
    use turtle_control::Control;
    let project = project_of(name)?;
    let daemon = daemon(g).await?;
    let report = daemon.down(&project, true).await?;
    let dir = children_dir(g).join(name);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        return Err(io(&dir, e));
    }
    eprintln!("turtle: child {name} removed ({report:?})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_project_loads_with_the_nested_engine_privileges() {
        let dir = tempfile::tempdir().unwrap();
        let project = project_of("c1").unwrap();
        let compose = dir.path().join("docker-compose.yml");
        std::fs::write(
            &compose,
            child_compose(
                &project,
                "c1",
                "parent.local",
                Path::new("/s/provisioning.json"),
                Path::new("/s/turtle.yaml"),
                Some(Path::new("/s/device-root")),
            ),
        )
        .unwrap();
        let p = context::load_project_built_by(
            &ProjectArgs {
                files: vec![compose],
                ..Default::default()
            },
            Some("b1".into()),
        )
        .unwrap();
        assert_eq!(p.name.as_str(), "child-c1");
        let s = &p.services["device"];
        assert_eq!(s.image.as_deref(), Some("turtle/child:b1"));
        assert!(s.cap_drop.iter().any(|c| c == "SYS_RESOURCE"));
        assert_eq!(s.extra_hosts.len(), 3);
        assert!(
            s.volumes.iter().any(|v| v.target.as_str() == DEVICE_ROOT),
            "{:?}",
            s.volumes
        );
        assert!(project_of("Bad_Name").is_err());
        assert!(project_of("-x").is_err());
    }

    #[test]
    fn a_child_never_tunes_the_host() {
        let text = child_config("c1", Some("raspberrypi3"), "5s");
        let c: turtle_runtime::config::Config = serde_norway::from_str(&text).unwrap();
        assert!(!c.device.tune, "a child's tuning would be the host's");
        assert!(c.device.shed, "a child sheds its own containers");
        assert!(!c.mdns.enabled);
        assert_eq!(c.device.profile.as_deref(), Some("raspberrypi3"));
        assert_eq!(c.device.root, Path::new(DEVICE_ROOT));
        assert_eq!(
            c.agent.provisioning.as_deref(),
            Some(Path::new("/var/lib/turtle/provisioning.json"))
        );
    }
}

#[cfg(test)]
mod tree_tests {
    use super::*;

    /// The device layer reads the fake tree as it reads a board: the
    /// profile's memory, its DMI name, one zone at 45 °C.
    #[test]
    fn the_fake_tree_reads_as_the_board() {
        let dir = tempfile::tempdir().unwrap();
        let nuc = turtle_device::builtin_profiles()
            .unwrap()
            .into_iter()
            .find(|p| p.name == "intel-nuc")
            .unwrap();
        fake_device_tree(dir.path(), &nuc).unwrap();
        let meminfo = std::fs::read_to_string(dir.path().join("proc/meminfo")).unwrap();
        assert!(
            meminfo.starts_with("MemTotal:       16777216 kB"),
            "{meminfo}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sys/class/dmi/id/product_name")).unwrap(),
            "NUC\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sys/class/thermal/thermal_zone0/temp"))
                .unwrap(),
            "45000\n"
        );
    }
}
