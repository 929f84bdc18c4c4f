//! The build request of a service's image: `build:` as the engine's
//! classic builder (API 1.41) takes it.
//!
//! Carried: context, dockerfile or `dockerfile_inline`, args, target,
//! labels (with the project's label), `cache_from`, `extra_hosts` (one:
//! see [`BuildSpec::extra_hosts`]), `network`, `shm_size`, `no_cache`,
//! `pull`, and `tags` (given to the result after the build). `isolation`
//! selects a Windows container isolation; on a Linux engine only `default`
//! means anything, so another value is refused rather than ignored. Files
//! from outside the context (the `turtle` executable) are the runtime's to
//! add.

use turtle_compose::{Build, Project};
use turtle_engine::BuildSpec;

use super::SpecError;
use crate::names;

/// The build of `service_name`'s image, tagged `image`.
pub fn build_spec(
    project: &Project,
    service_name: &str,
    build: &Build,
    image: &str,
) -> Result<BuildSpec, SpecError> {
    if let Some(i) = build.isolation.as_deref().filter(|i| *i != "default") {
        return Err(SpecError::Invalid {
            service: service_name.to_string(),
            message: format!(
                "build isolation {i:?} is a Windows engine's setting: remove it (a Linux engine builds with the default)"
            ),
        });
    }
    let mut labels: std::collections::HashMap<String, String> = build
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(names::PROJECT.to_string(), project.name.to_string());
    Ok(BuildSpec {
        tag: image.to_string(),
        context: build.context.clone(),
        dockerfile: build
            .dockerfile
            .clone()
            .unwrap_or_else(|| "Dockerfile".into()),
        args: build
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        target: build.target.clone(),
        labels,
        files: Vec::new(),
        dockerfile_inline: build.dockerfile_inline.clone(),
        extra_tags: build
            .tags
            .iter()
            .filter(|t| t.as_str() != image)
            .cloned()
            .collect(),
        cache_from: build.cache_from.clone(),
        extra_hosts: build.extra_hosts.clone(),
        network: build.network.clone(),
        shm_size: build.shm_size.map(|s| s.0),
        no_cache: build.no_cache,
        pull: build.pull,
    })
}
