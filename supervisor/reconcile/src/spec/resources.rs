//! The resource side of `HostConfig` that compose keeps beside `cpus` and
//! memory: device requests (GPUs), block I/O weights and limits, and the
//! cgroup and isolation modes, checked against what the engine accepts.

use bollard_stubs::models::{
    DeviceRequest as EngineDeviceRequest, HostConfigCgroupnsModeEnum, HostConfigIsolationEnum,
    ResourcesBlkioWeightDevice, ThrottleDevice as EngineThrottle,
};
use turtle_compose::{Blkio, DeviceRequest, ThrottleDevice};

/// `HostConfig.DeviceRequests`. A request with neither a count nor device
/// ids asks for every device (count -1), as compose does.
pub(super) fn device_requests(requests: &[DeviceRequest]) -> Vec<EngineDeviceRequest> {
    requests
        .iter()
        .map(|r| EngineDeviceRequest {
            driver: r.driver.clone(),
            count: r.count.or(r.device_ids.is_empty().then_some(-1)),
            device_ids: (!r.device_ids.is_empty()).then(|| r.device_ids.clone()),
            // One AND-list of capabilities, as compose sends them.
            capabilities: (!r.capabilities.is_empty()).then(|| vec![r.capabilities.clone()]),
            options: (!r.options.is_empty()).then(|| {
                r.options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
        })
        .collect()
}

/// `blkio_config:` as the engine's fields.
#[derive(Debug, Default)]
pub(super) struct BlkioFields {
    pub weight: Option<u16>,
    pub weight_device: Option<Vec<ResourcesBlkioWeightDevice>>,
    pub read_bps: Option<Vec<EngineThrottle>>,
    pub read_iops: Option<Vec<EngineThrottle>>,
    pub write_bps: Option<Vec<EngineThrottle>>,
    pub write_iops: Option<Vec<EngineThrottle>>,
}

pub(super) fn blkio(b: Option<&Blkio>) -> Result<BlkioFields, String> {
    let Some(b) = b else {
        return Ok(BlkioFields::default());
    };
    // The engine's range; 0 means "unset" to it.
    let check = |w: u16, what: &str| {
        if (10..=1000).contains(&w) {
            Ok(w)
        } else {
            Err(format!(
                "invalid blkio_config {what} {w}: expected 10 to 1000"
            ))
        }
    };
    let throttle = |list: &[ThrottleDevice], what: &str| -> Result<_, String> {
        if list.is_empty() {
            return Ok(None);
        }
        list.iter()
            .map(|t| {
                Ok(EngineThrottle {
                    path: Some(t.path.clone()),
                    rate: Some(i64::try_from(t.rate).map_err(|_| {
                        format!(
                            "blkio_config {what} {}: rate {} is too large",
                            t.path, t.rate
                        )
                    })?),
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map(Some)
    };
    Ok(BlkioFields {
        weight: b.weight.map(|w| check(w, "weight")).transpose()?,
        weight_device: if b.weight_device.is_empty() {
            None
        } else {
            Some(
                b.weight_device
                    .iter()
                    .map(|d| {
                        Ok(ResourcesBlkioWeightDevice {
                            path: Some(d.path.clone()),
                            weight: Some(usize::from(check(d.weight, "weight_device")?)),
                        })
                    })
                    .collect::<Result<_, String>>()?,
            )
        },
        read_bps: throttle(&b.device_read_bps, "device_read_bps")?,
        read_iops: throttle(&b.device_read_iops, "device_read_iops")?,
        write_bps: throttle(&b.device_write_bps, "device_write_bps")?,
        write_iops: throttle(&b.device_write_iops, "device_write_iops")?,
    })
}

/// `cgroup:` (`host` or `private`) as `HostConfig.CgroupnsMode`.
pub(super) fn cgroupns(mode: &str) -> Result<HostConfigCgroupnsModeEnum, String> {
    match mode {
        "host" => Ok(HostConfigCgroupnsModeEnum::HOST),
        "private" => Ok(HostConfigCgroupnsModeEnum::PRIVATE),
        _ => Err(format!("invalid cgroup {mode:?}: expected host or private")),
    }
}

/// `isolation:` as `HostConfig.Isolation`.
pub(super) fn isolation(mode: &str) -> Result<HostConfigIsolationEnum, String> {
    match mode {
        "default" => Ok(HostConfigIsolationEnum::DEFAULT),
        "process" => Ok(HostConfigIsolationEnum::PROCESS),
        "hyperv" => Ok(HostConfigIsolationEnum::HYPERV),
        _ => Err(format!(
            "invalid isolation {mode:?}: expected default, process or hyperv"
        )),
    }
}
