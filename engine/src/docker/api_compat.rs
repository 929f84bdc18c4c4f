//! Requests adapted to the engine's API version.
//!
//! The spec builds bodies in the newest vocabulary (bollard's 1.53 models);
//! an older engine ignores fields it does not know, which would silently
//! lose a setting. So, before a create:
//!
//! - a field with an older form is rewritten or dropped when the engine
//!   works without it: healthcheck `StartInterval` (1.44) is dropped (the
//!   check keeps its interval), and every endpoint but the one
//!   `HostConfig.NetworkMode` names is moved out of the create body, to be
//!   connected after create (several endpoints at create need 1.44);
//! - a field that would change what the container is, with no older form,
//!   is refused ([`TooOld`]): annotations (1.43), an endpoint's MAC address
//!   (1.44: older engines take only `Config.MacAddress`, which bollard's
//!   models no longer have), a volume's `subpath` (1.45), image mounts and
//!   `enable_ipv4: false` (1.47), `gw_priority` (1.48), `interface_name`
//!   (1.49).

use bollard::models::{
    ContainerCreateBody, EndpointSettings, MountType, NetworkCreateRequest, NetworkingConfig,
};

use crate::EngineError;

/// The endpoint driver option compose sets for `interface_name:`.
const IFNAME_OPT: &str = "com.docker.network.endpoint.ifname";

/// A setting the engine is too old for; [`TooOld::at`] names the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TooOld {
    pub feature: String,
    pub needs: (u64, u64),
    pub api: (u64, u64),
}

impl TooOld {
    pub fn at(self, what: &str) -> EngineError {
        let v = |(a, b): (u64, u64)| format!("{a}.{b}");
        EngineError::TooOld {
            what: what.to_string(),
            feature: self.feature,
            needs: v(self.needs),
            api: v(self.api),
        }
    }
}

fn require(
    api: (u64, u64),
    needs: (u64, u64),
    feature: impl FnOnce() -> String,
) -> Result<(), TooOld> {
    if api >= needs {
        Ok(())
    } else {
        Err(TooOld {
            feature: feature(),
            needs,
            api,
        })
    }
}

/// Adapts a create body to API `api` (see the module documentation).
/// Returns the endpoints taken out, to connect after create.
pub(super) fn adapt_create_body(
    body: &mut ContainerCreateBody,
    api: (u64, u64),
) -> Result<Vec<(String, EndpointSettings)>, TooOld> {
    if let Some(hc) = &body.host_config {
        if let Some(key) = hc.annotations.as_ref().and_then(|a| {
            let mut keys: Vec<&String> = a.keys().collect();
            keys.sort();
            keys.first().map(|k| k.to_string())
        }) {
            require(api, (1, 43), || format!("annotations ({key})"))?;
        }
        for m in hc.mounts.iter().flatten() {
            let target = m.target.as_deref().unwrap_or_default();
            if let Some(sub) = m.volume_options.as_ref().and_then(|v| v.subpath.as_ref()) {
                require(api, (1, 45), || {
                    format!("the volume subpath {sub:?} of the mount at {target}")
                })?;
            }
            if m.typ == Some(MountType::IMAGE) {
                require(api, (1, 47), || format!("the image mount at {target}"))?;
            }
        }
    }
    let mut eps: Vec<(String, EndpointSettings)> = body
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.clone())
        .map(|e| e.into_iter().collect())
        .unwrap_or_default();
    eps.sort_by(|a, b| a.0.cmp(&b.0));
    check_endpoints(&eps, api)?;

    let mut moved = Vec::new();
    if api < (1, 44) {
        if let Some(hc) = body.healthcheck.as_mut() {
            hc.start_interval = None;
        }
        if let Some(NetworkingConfig {
            endpoints_config: Some(eps),
        }) = body.networking_config.as_mut()
            && eps.len() > 1
        {
            // Keep the one HostConfig.NetworkMode names, else any.
            let primary = body
                .host_config
                .as_ref()
                .and_then(|h| h.network_mode.clone())
                .filter(|m| eps.contains_key(m))
                .or_else(|| {
                    let mut keys: Vec<&String> = eps.keys().collect();
                    keys.sort();
                    keys.first().map(|k| k.to_string())
                });
            let mut names: Vec<String> = eps.keys().cloned().collect();
            names.sort();
            for n in names {
                if Some(&n) != primary.as_ref()
                    && let Some(ep) = eps.remove(&n)
                {
                    moved.push((n, ep));
                }
            }
        }
    }
    Ok(moved)
}

/// Refuses endpoint settings API `api` would ignore.
pub(super) fn check_endpoints(
    endpoints: &[(String, EndpointSettings)],
    api: (u64, u64),
) -> Result<(), TooOld> {
    for (network, ep) in endpoints {
        if let Some(mac) = &ep.mac_address {
            require(api, (1, 44), || {
                format!("mac_address {mac} (network {network})")
            })?;
        }
        if let Some(p) = ep.gw_priority {
            require(api, (1, 48), || {
                format!("gw_priority {p} (network {network})")
            })?;
        }
        if let Some(name) = ep.driver_opts.as_ref().and_then(|o| o.get(IFNAME_OPT)) {
            require(api, (1, 49), || {
                format!("interface_name {name} (network {network})")
            })?;
        }
    }
    Ok(())
}

/// Refuses a network request API `api` would not honour.
pub(super) fn check_network(req: &NetworkCreateRequest, api: (u64, u64)) -> Result<(), TooOld> {
    if req.enable_ipv4 == Some(false) {
        require(api, (1, 47), || "enable_ipv4: false".to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::{HealthConfig, HostConfig, Mount, MountVolumeOptions};

    use super::*;

    fn with_endpoints(eps: &[(&str, EndpointSettings)]) -> ContainerCreateBody {
        ContainerCreateBody {
            host_config: Some(HostConfig {
                network_mode: Some("p_b".into()),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(
                    eps.iter()
                        .map(|(n, e)| (n.to_string(), e.clone()))
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn old_api_strips_start_interval_and_moves_extra_endpoints() {
        let mut body = with_endpoints(&[
            ("p_a", EndpointSettings::default()),
            ("p_b", EndpointSettings::default()),
            ("p_c", EndpointSettings::default()),
        ]);
        body.healthcheck = Some(HealthConfig {
            start_interval: Some(5),
            ..Default::default()
        });
        let new_api = adapt_create_body(&mut body.clone(), (1, 44)).unwrap();
        assert!(new_api.is_empty());
        let moved = adapt_create_body(&mut body, (1, 41)).unwrap();
        assert_eq!(
            moved.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(),
            ["p_a", "p_c"]
        );
        let eps = body.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(eps.keys().collect::<Vec<_>>(), ["p_b"]);
        assert_eq!(body.healthcheck.unwrap().start_interval, None);
    }

    #[test]
    fn settings_without_an_older_form_are_refused_naming_both_versions() {
        let annotated = ContainerCreateBody {
            host_config: Some(HostConfig {
                annotations: Some(HashMap::from([
                    ("z.last".to_string(), "1".to_string()),
                    ("a.first".to_string(), "1".to_string()),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = adapt_create_body(&mut annotated.clone(), (1, 41)).unwrap_err();
        assert_eq!(err.feature, "annotations (a.first)");
        let msg = err.at("container p-web-1").to_string();
        assert!(msg.contains("1.43") && msg.contains("1.41"), "{msg}");
        assert!(msg.starts_with("container p-web-1: "), "{msg}");
        assert!(adapt_create_body(&mut annotated.clone(), (1, 43)).is_ok());

        let mount = |m: Mount| ContainerCreateBody {
            host_config: Some(HostConfig {
                mounts: Some(vec![m]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sub = mount(Mount {
            typ: Some(MountType::VOLUME),
            target: Some("/data".into()),
            volume_options: Some(MountVolumeOptions {
                subpath: Some("a/b".into()),
                ..Default::default()
            }),
            ..Default::default()
        });
        let err = adapt_create_body(&mut sub.clone(), (1, 44)).unwrap_err();
        assert_eq!(err.needs, (1, 45));
        assert!(err.feature.contains("/data"), "{err:?}");
        assert!(adapt_create_body(&mut sub.clone(), (1, 45)).is_ok());
        let image = mount(Mount {
            typ: Some(MountType::IMAGE),
            target: Some("/tools".into()),
            ..Default::default()
        });
        assert_eq!(
            adapt_create_body(&mut image.clone(), (1, 46))
                .unwrap_err()
                .needs,
            (1, 47)
        );
        assert!(adapt_create_body(&mut image.clone(), (1, 47)).is_ok());

        for (ep, needs) in [
            (
                EndpointSettings {
                    mac_address: Some("02:42:ac:11:00:99".into()),
                    ..Default::default()
                },
                (1, 44),
            ),
            (
                EndpointSettings {
                    gw_priority: Some(1),
                    ..Default::default()
                },
                (1, 48),
            ),
            (
                EndpointSettings {
                    driver_opts: Some(HashMap::from([(IFNAME_OPT.into(), "eth7".into())])),
                    ..Default::default()
                },
                (1, 49),
            ),
        ] {
            // In the body, or among the networks connected after create.
            let mut body = with_endpoints(&[("p_b", ep.clone())]);
            let err = adapt_create_body(&mut body, (1, 41)).unwrap_err();
            assert_eq!(err.needs, needs, "{err:?}");
            assert!(err.feature.contains("network p_b"), "{err:?}");
            let err = check_endpoints(&[("p_x".into(), ep.clone())], (1, 41)).unwrap_err();
            assert_eq!(err.needs, needs);
            assert!(check_endpoints(&[("p_x".into(), ep)], needs).is_ok());
        }
        // Other endpoint options are as old as the engine here.
        let plain = EndpointSettings {
            driver_opts: Some(HashMap::from([("x".into(), "y".into())])),
            links: Some(vec!["a:b".into()]),
            ..Default::default()
        };
        assert!(check_endpoints(&[("p_x".into(), plain)], (1, 41)).is_ok());
    }

    #[test]
    fn networks_without_ipv4_need_1_47() {
        let mut req = NetworkCreateRequest {
            name: "p_v6".into(),
            enable_ipv4: Some(false),
            ..Default::default()
        };
        let err = check_network(&req, (1, 41)).unwrap_err();
        assert_eq!(
            (err.needs, err.feature.as_str()),
            ((1, 47), "enable_ipv4: false")
        );
        assert!(check_network(&req, (1, 47)).is_ok());
        req.enable_ipv4 = None;
        assert!(check_network(&req, (1, 41)).is_ok());
    }
}
