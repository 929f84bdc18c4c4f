//! Pinning: the image each service of a release runs, by ID.

use std::collections::BTreeMap;

use turtle_compose::Project;
use turtle_engine::Engine;

use super::PinnedImage;
use crate::error::Error;

/// The image of every service of `project`, which the engine must have.
pub(crate) async fn pin<E: Engine>(
    engine: &E,
    project: &Project,
) -> Result<BTreeMap<String, PinnedImage>, Error> {
    let mut out = BTreeMap::new();
    for (name, service) in &project.services {
        let Some(reference) = service.image.clone() else {
            return Err(Error::Incomplete(format!("service {name} has no image")));
        };
        let Some(info) = engine.inspect_image(&reference).await? else {
            return Err(Error::Incomplete(format!(
                "service {name}: image {reference} is not on the engine after the download"
            )));
        };
        out.insert(
            name.to_string(),
            PinnedImage {
                repo_digest: repo_digest(&reference, &info.repo_digests),
                reference,
                id: info.id,
            },
        );
    }
    Ok(out)
}

/// The repo digest of the repository `reference` names, if the image came
/// from it.
fn repo_digest(reference: &str, digests: &[String]) -> Option<String> {
    let repo = reference.split('@').next().unwrap_or(reference);
    // `registry:5000/app:tag` -> `registry:5000/app`: the tag follows the
    // last `/`.
    let repo = match repo.rfind(':') {
        Some(i) if !repo[i..].contains('/') => &repo[..i],
        _ => repo,
    };
    let bare = |r: &str| {
        r.trim_start_matches("docker.io/")
            .trim_start_matches("library/")
            .to_string()
    };
    digests
        .iter()
        .find(|d| d.split('@').next().map(bare) == Some(bare(repo)))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::repo_digest;

    #[test]
    fn the_digest_of_the_named_repository_is_kept() {
        let d = vec![
            "other@sha256:1".to_string(),
            "registry:5000/app@sha256:2".to_string(),
            "busybox@sha256:3".to_string(),
        ];
        assert_eq!(
            repo_digest("registry:5000/app:v1", &d).as_deref(),
            Some("registry:5000/app@sha256:2")
        );
        assert_eq!(
            repo_digest("docker.io/library/busybox:1.36", &d).as_deref(),
            Some("busybox@sha256:3")
        );
        assert_eq!(repo_digest("local-build", &d), None);
    }
}
