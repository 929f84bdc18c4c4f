//! What a service's container may use: memory, CPU and pids from
//! `deploy.resources` and the legacy keys (`mem_limit`, `cpus`, ...; they win
//! when both are set, as in compose), the `cpu_*` tuning, `blkio_config`,
//! `ulimits:`, and the devices it asks for (`gpus:` and
//! `deploy.resources.reservations.devices`).

use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use super::values::{get, int, scalar, size, string, string_map, strings, sub};
use crate::error::LoadError;
use crate::model::{Blkio, DeviceRequest, Resources, ThrottleDevice, Ulimit, WeightDevice};

/// Resources: `deploy.resources`, then the legacy keys over them.
pub(super) fn resources(name: &str, svc: &Mapping) -> Result<Resources, LoadError> {
    let res = sub(svc, "deploy").and_then(|d| sub(d, "resources"));
    let limits = res.and_then(|r| sub(r, "limits"));
    let reservations = res.and_then(|r| sub(r, "reservations"));
    let memory_limit = size(name, "mem_limit", string(svc, "mem_limit"))?.or(size(
        name,
        "deploy.resources.limits.memory",
        limits.and_then(|l| string(l, "memory")),
    )?);
    let memory_reservation =
        size(name, "mem_reservation", string(svc, "mem_reservation"))?.or(size(
            name,
            "deploy.resources.reservations.memory",
            reservations.and_then(|l| string(l, "memory")),
        )?);
    let cpus = string(svc, "cpus").or_else(|| limits.and_then(|l| string(l, "cpus")));
    if let Some(c) = &cpus
        && c.parse::<f64>().map_or(true, |f| f < 0.0)
    {
        return Err(LoadError::service(
            name,
            format!("cpus: {c:?} is not a number of CPUs, e.g. 0.5"),
        ));
    }
    let micros = |key: &str| -> Result<Option<i64>, LoadError> {
        // A number of microseconds, or a duration (`cpu_rt_period: 1400us`).
        match get(svc, key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_i64()),
            Some(v) => {
                let s = scalar(v).unwrap_or_default();
                s.parse::<i64>()
                    .or_else(|_| {
                        s.parse::<crate::model::Duration>()
                            .map(|d| d.as_nanos() / 1000)
                    })
                    .map(Some)
                    .map_err(|_| {
                        LoadError::service(
                            name,
                            format!("{key}: {s:?} is neither microseconds nor a duration"),
                        )
                    })
            }
        }
    };
    Ok(Resources {
        memory_limit,
        memory_reservation,
        memswap_limit: size(name, "memswap_limit", string(svc, "memswap_limit"))?,
        cpus,
        cpu_shares: int(svc, "cpu_shares"),
        cpuset: string(svc, "cpuset"),
        pids_limit: int(svc, "pids_limit").or_else(|| limits.and_then(|l| int(l, "pids"))),
        cpu_count: int(svc, "cpu_count"),
        cpu_percent: int(svc, "cpu_percent"),
        cpu_period: int(svc, "cpu_period"),
        cpu_quota: int(svc, "cpu_quota"),
        cpu_rt_period: micros("cpu_rt_period")?,
        cpu_rt_runtime: micros("cpu_rt_runtime")?,
        mem_swappiness: int(svc, "mem_swappiness"),
        blkio: sub(svc, "blkio_config")
            .map(|b| blkio(name, b))
            .transpose()?,
    })
}

fn blkio(name: &str, b: &Mapping) -> Result<Blkio, LoadError> {
    let weight = |v: Option<i64>, key: &str| -> Result<Option<u16>, LoadError> {
        v.map(|w| {
            u16::try_from(w)
                .ok()
                .filter(|w| (10..=1000).contains(w) || *w == 0)
                .ok_or_else(|| {
                    LoadError::service(name, format!("blkio_config.{key}: {w} is not 10-1000"))
                })
        })
        .transpose()
    };
    let entries = |key: &str| -> Vec<&Mapping> {
        match get(b, key) {
            Some(Value::Sequence(items)) => items.iter().filter_map(Value::as_mapping).collect(),
            _ => Vec::new(),
        }
    };
    let throttle = |key: &str, bytes: bool| -> Result<Vec<ThrottleDevice>, LoadError> {
        entries(key)
            .into_iter()
            .map(|e| {
                let path = string(e, "path").unwrap_or_default();
                let raw = string(e, "rate").unwrap_or_default();
                let rate = if bytes {
                    raw.parse::<crate::model::ByteSize>().map(|s| s.0).ok()
                } else {
                    raw.parse::<u64>().ok()
                };
                rate.map(|rate| ThrottleDevice { path, rate })
                    .ok_or_else(|| {
                        LoadError::service(
                            name,
                            format!("blkio_config.{key}: invalid rate {raw:?}"),
                        )
                    })
            })
            .collect()
    };
    Ok(Blkio {
        weight: weight(int(b, "weight"), "weight")?,
        weight_device: entries("weight_device")
            .into_iter()
            .map(|e| {
                Ok(WeightDevice {
                    path: string(e, "path").unwrap_or_default(),
                    weight: weight(int(e, "weight"), "weight_device.weight")?.unwrap_or_default(),
                })
            })
            .collect::<Result<_, LoadError>>()?,
        device_read_bps: throttle("device_read_bps", true)?,
        device_read_iops: throttle("device_read_iops", false)?,
        device_write_bps: throttle("device_write_bps", true)?,
        device_write_iops: throttle("device_write_iops", false)?,
    })
}

/// `ulimits:`: a number (soft = hard) or `{soft, hard}` per limit.
pub(super) fn ulimits(name: &str, svc: &Mapping) -> Result<IndexMap<String, Ulimit>, LoadError> {
    let mut out = IndexMap::new();
    let Some(m) = sub(svc, "ulimits") else {
        return Ok(out);
    };
    for (k, u) in m {
        let k = crate::keys::key_string(k);
        let ul = match u {
            Value::Number(n) => {
                let n = n.as_i64().unwrap_or_default();
                Ulimit { soft: n, hard: n }
            }
            Value::Mapping(sh) => match (int(sh, "soft"), int(sh, "hard")) {
                (Some(soft), Some(hard)) => Ulimit { soft, hard },
                _ => {
                    return Err(LoadError::service(
                        name,
                        format!("ulimits.{k}: set both soft: and hard:"),
                    ));
                }
            },
            _ => continue,
        };
        if ul.soft > ul.hard && ul.hard >= 0 {
            return Err(LoadError::service(
                name,
                format!("ulimits.{k}: soft {} is above hard {}", ul.soft, ul.hard),
            ));
        }
        out.insert(k, ul);
    }
    Ok(out)
}

/// `gpus:` (`all`, or a list of requests), then
/// `deploy.resources.reservations.devices`.
pub(super) fn device_requests(name: &str, svc: &Mapping) -> Result<Vec<DeviceRequest>, LoadError> {
    let mut out = Vec::new();
    match get(svc, "gpus") {
        Some(Value::String(s)) if s == "all" => out.push(DeviceRequest {
            count: Some(-1),
            capabilities: vec!["gpu".into()],
            ..Default::default()
        }),
        Some(Value::String(s)) => {
            return Err(LoadError::service(
                name,
                format!("gpus: {s:?}: write all, or a list of requests"),
            ));
        }
        Some(Value::Sequence(items)) => {
            for item in items.iter().filter_map(Value::as_mapping) {
                let mut r = request(name, "gpus", item)?;
                if r.capabilities.is_empty() {
                    r.capabilities = vec!["gpu".into()];
                }
                out.push(r);
            }
        }
        _ => {}
    }
    let reserved = sub(svc, "deploy")
        .and_then(|d| sub(d, "resources"))
        .and_then(|r| sub(r, "reservations"))
        .and_then(|r| get(r, "devices"));
    if let Some(Value::Sequence(items)) = reserved {
        for item in items.iter().filter_map(Value::as_mapping) {
            let r = request(name, "deploy.resources.reservations.devices", item)?;
            if r.capabilities.is_empty() {
                return Err(LoadError::service(
                    name,
                    "deploy.resources.reservations.devices: every entry needs capabilities:",
                ));
            }
            out.push(r);
        }
    }
    Ok(out)
}

fn request(name: &str, key: &str, m: &Mapping) -> Result<DeviceRequest, LoadError> {
    let device_ids = strings(m, "device_ids");
    let count = match get(m, "count") {
        None => None,
        Some(Value::String(s)) if s == "all" => Some(-1),
        Some(v) => {
            let s = scalar(v).unwrap_or_default();
            Some(s.parse::<i64>().map_err(|_| {
                LoadError::service(name, format!("{key}: count {s:?} must be a number or all"))
            })?)
        }
    };
    if count.is_some() && !device_ids.is_empty() {
        return Err(LoadError::service(
            name,
            format!("{key}: count and device_ids cannot be used together"),
        ));
    }
    Ok(DeviceRequest {
        driver: string(m, "driver"),
        // Neither count nor ids: all devices, as in compose.
        count: count.or((device_ids.is_empty()).then_some(-1)),
        device_ids,
        capabilities: strings(m, "capabilities"),
        options: string_map(m, "options"),
    })
}
