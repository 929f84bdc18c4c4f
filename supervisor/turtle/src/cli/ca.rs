//! `turtle ca`: the box's certificate authority.
//!
//! Works on the state directory directly (with or without a daemon): the CA
//! is created on first use and never changes afterwards.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;
use turtle_compose::{ProjectName, ServiceName};

use clap::{Args, Subcommand};

use super::GlobalArgs;
use super::context::{Failure, supervisor_config};
use turtle_runtime::trust::{self, Trust};

#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Print the root certificate (PEM): install it on the machines that
    /// talk to this box.
    Export,
    /// Show the root, the intermediate and every leaf: subjects, names,
    /// fingerprints, expiry and renewal dates.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Issue a leaf certificate for extra names (full names, or bare labels
    /// taken under the domain) and print the directory holding it.
    Issue {
        /// DNS names: `api` means api.<domain>, `@` the domain itself.
        #[arg(required = true)]
        names: Vec<String>,
        /// IP addresses to include (repeatable).
        #[arg(long = "ip")]
        ips: Vec<IpAddr>,
    },
    /// Bring your own CA: its certificate and key take the place of Turtle's
    /// root (only before Turtle created one); Turtle issues its intermediate
    /// under it.
    Import {
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
    /// Bring your own leaf: a ready-made certificate chain and key for a TLS
    /// service, served instead of one Turtle issues (never renewed by Turtle).
    ImportLeaf {
        /// Project name.
        #[arg(long)]
        project: ProjectName,
        /// Service name.
        #[arg(long)]
        service: ServiceName,
        /// The certificate followed by its intermediates (PEM).
        #[arg(long)]
        chain: PathBuf,
        #[arg(long)]
        key: PathBuf,
    },
}

pub fn run(g: &GlobalArgs, a: CaArgs) -> Result<(), Failure> {
    let config = supervisor_config(g)?;
    let now = SystemTime::now();
    let open = || Trust::open(&g.state_dir, &config, now).map_err(Failure::op);
    match a.command {
        CaCommand::Export => print!("{}", open()?.authority().root_pem()),
        CaCommand::Status { json } => {
            let status = open()?.authority().status(now);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&status).map_err(Failure::op)?
                );
            } else {
                print!("{}", render(&status));
            }
        }
        CaCommand::Issue { names, ips } => {
            let trust = open()?;
            let mut svc = turtle_compose::Service::default();
            svc.labels.insert(trust::TLS_LABEL.into(), names.join(","));
            let full =
                trust::tls_names("ca issue", &svc, trust.domain()).map_err(Failure::input)?;
            let id: turtle_certs::LeafId = format!("extra.{}", full[0])
                .parse()
                .map_err(Failure::input)?;
            let ca = trust.authority();
            let (leaf, _) = ca.ensure_leaf(&id, &full, &ips, now).map_err(Failure::op)?;
            eprintln!(
                "issued {} for {} (valid until {})",
                leaf.serial,
                leaf.names.join(", "),
                turtle_certs::rfc3339(leaf.not_after)
            );
            println!("{}", ca.leaf_dir(&id).display());
        }
        CaCommand::Import { cert, key } => {
            let (cert, key) = (read(&cert)?, read(&key)?);
            let trust =
                Trust::import(&g.state_dir, &config, &cert, &key, now).map_err(Failure::op)?;
            let ca = trust.authority();
            println!(
                "imported CA {}; fingerprint {}",
                ca.status(now).root.subject,
                ca.fingerprint()
            );
        }
        CaCommand::ImportLeaf {
            project,
            service,
            chain,
            key,
        } => {
            let (chain, key) = (read(&chain)?, read(&key)?);
            let trust = open()?;
            let id = trust::leaf_id(&project, &service);
            let ca = trust.authority();
            let leaf = ca.import_leaf(&id, &chain, &key).map_err(Failure::op)?;
            println!(
                "stored for service {service} of {project}: {} ({}); restart it to serve it: turtle restart -p {project} {service}",
                leaf.names.join(", "),
                ca.leaf_dir(&id).display()
            );
        }
    }
    Ok(())
}

fn read(path: &PathBuf) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

/// `turtle ca status` as text: the CA certificates, then one block per leaf.
fn render(s: &turtle_certs::Status) -> String {
    use std::fmt::Write;
    let t = turtle_certs::rfc3339;
    let mut out = String::new();
    let ranges: Vec<String> = s.permitted_ips.iter().map(ToString::to_string).collect();
    let _ = writeln!(out, "domain        {}", s.domain);
    let _ = writeln!(out, "ip ranges     {}", ranges.join(", "));
    let root_kind = if s.imported {
        "root (imported)"
    } else {
        "root"
    };
    for (kind, c) in [(root_kind, &s.root), ("intermediate", &s.intermediate)] {
        let _ = writeln!(out, "\n{kind}: {}", c.subject);
        let _ = writeln!(out, "  fingerprint {}", c.fingerprint);
        let _ = writeln!(
            out,
            "  valid       {} .. {} ({:?})",
            t(c.not_before),
            t(c.not_after),
            c.state
        );
    }
    for l in &s.leaves {
        let i = &l.info;
        let who = if i.provided { " (provided)" } else { "" };
        let _ = writeln!(out, "\nleaf {}{who}: {}", i.id, i.subject);
        let mut names = i.names.clone();
        names.extend(i.ips.iter().map(ToString::to_string));
        let _ = writeln!(out, "  names       {}", names.join(", "));
        let _ = writeln!(out, "  fingerprint {}", i.fingerprint);
        let _ = writeln!(
            out,
            "  valid       {} .. {} ({:?})",
            t(i.not_before),
            t(i.not_after),
            l.state
        );
        if !i.provided {
            let _ = writeln!(out, "  renews at   {}", t(i.renew_at));
        }
    }
    for u in &s.unreadable {
        let _ = writeln!(out, "\nleaf {}: unreadable: {}", u.id, u.error);
    }
    out
}
