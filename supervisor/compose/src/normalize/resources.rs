//! What a service's container may use: memory, CPU and pids from
//! `deploy.resources` and the legacy keys (`mem_limit`, `cpus`, ...; they win
//! when both are set, as in compose), and `ulimits:`.

use docker_compose_types as dct;
use indexmap::IndexMap;
use serde_norway::Mapping;

use super::values::{raw_int, raw_size, raw_string, size};
use crate::error::LoadError;
use crate::model::{Resources, Ulimit};
use crate::typed::DEPLOY_PIDS;

/// Resources: `deploy.resources`, then the legacy keys over them (`raw`:
/// the keys the typed parse lifted out).
pub(super) fn resources(
    name: &str,
    s: &dct::Service,
    raw: &Mapping,
) -> Result<Resources, LoadError> {
    let limits = s
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let reservations = s
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    let memory_limit = size(name, "mem_limit", s.mem_limit.clone())?.or(size(
        name,
        "deploy.resources.limits.memory",
        limits.and_then(|l| l.memory.clone()),
    )?);
    let memory_reservation = size(name, "mem_reservation", s.mem_reservation.clone())?.or(size(
        name,
        "deploy.resources.reservations.memory",
        reservations.and_then(|l| l.memory.clone()),
    )?);
    let memswap_limit = raw_size(name, "memswap_limit", raw.get("memswap_limit"))?;
    let cpus = raw
        .get("cpus")
        .and_then(raw_string)
        .or_else(|| limits.and_then(|l| l.cpus.clone()));
    if let Some(c) = &cpus
        && c.parse::<f64>().map_or(true, |f| f < 0.0)
    {
        return Err(LoadError::service(
            name,
            format!("cpus: {c:?} is not a number of CPUs, e.g. 0.5"),
        ));
    }
    let cpu_shares = raw_int(name, "cpu_shares", raw.get("cpu_shares"))?;
    let cpuset = raw.get("cpuset").and_then(raw_string);
    let pids_limit = match raw_int(name, "pids_limit", raw.get("pids_limit"))? {
        Some(p) => Some(p),
        None => raw_int(name, DEPLOY_PIDS, raw.get(DEPLOY_PIDS))?,
    };
    Ok(Resources {
        memory_limit,
        memory_reservation,
        memswap_limit,
        cpus,
        cpu_shares,
        cpuset,
        pids_limit,
        ..Default::default()
    })
}

/// `ulimits:`: a number (soft = hard) or `{soft, hard}` per limit.
pub(super) fn ulimits(
    name: &str,
    ulimits: &dct::Ulimits,
) -> Result<IndexMap<String, Ulimit>, LoadError> {
    let mut out = IndexMap::new();
    for (k, u) in &ulimits.0 {
        let num = |v: &dct::StringOrUnsigned| -> Result<i64, LoadError> {
            match v {
                dct::StringOrUnsigned::Unsigned(n) => Ok(*n),
                dct::StringOrUnsigned::String(s) => s.parse().map_err(|_| {
                    LoadError::service(name, format!("ulimits.{k}: {s:?} is not a number"))
                }),
            }
        };
        let ul = match u {
            dct::Ulimit::Single(n) => {
                let n = num(n)?;
                Ulimit { soft: n, hard: n }
            }
            dct::Ulimit::SoftHard { soft, hard } => Ulimit {
                soft: num(soft)?,
                hard: num(hard)?,
            },
        };
        out.insert(k.clone(), ul);
    }
    Ok(out)
}
