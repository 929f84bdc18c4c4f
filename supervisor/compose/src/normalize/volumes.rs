//! Volumes: short mount syntax ([`parse_volume`]).

use std::collections::HashMap;
use std::path::Path;

use crate::model::{Mount, MountKind};
use crate::paths::resolve_path;

/// Parses a short volume (`[SOURCE:]TARGET[:MODE]`). Sources starting with
/// `/`, `.` or `~` are bind mounts (made absolute against `dir`); others
/// name a volume.
pub fn parse_volume(
    spec: &str,
    dir: &Path,
    env: &HashMap<String, String>,
) -> Result<Mount, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, ""),
        [s, t] => (Some(*s), *t, ""),
        [s, t, m] => (Some(*s), *t, *m),
        _ => {
            return Err(format!(
                "invalid volume {spec:?}: expected [SOURCE:]TARGET[:MODE]"
            ));
        }
    };
    if !target.starts_with('/') {
        return Err(format!(
            "invalid volume {spec:?}: the container path {target:?} must be absolute"
        ));
    }
    let read_only = mode.split(',').any(|m| m == "ro");
    let (kind, source) = match source {
        None => (MountKind::Volume, None),
        Some(s) if s.starts_with('/') || s.starts_with('.') || s.starts_with('~') => (
            MountKind::Bind,
            Some(resolve_path(dir, s, env).display().to_string()),
        ),
        Some(s) => (MountKind::Volume, Some(s.to_string())),
    };
    Ok(Mount {
        kind,
        source,
        target: target.to_string(),
        read_only,
        tmpfs_size: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_volumes() {
        let env: HashMap<String, String> = [("HOME".to_string(), "/home/u".to_string())].into();
        let d = Path::new("/proj");
        let v = |s: &str| parse_volume(s, d, &env).unwrap();
        let m = v("data:/var/lib/data");
        assert_eq!(
            (m.kind, m.source.as_deref(), m.target.as_str(), m.read_only),
            (MountKind::Volume, Some("data"), "/var/lib/data", false)
        );
        let m = v("./conf:/etc/conf:ro");
        assert_eq!(
            (m.kind, m.source.as_deref(), m.read_only),
            (MountKind::Bind, Some("/proj/conf"), true)
        );
        let m = v("/abs:/x:ro,z");
        assert_eq!(
            (m.kind, m.source.as_deref(), m.read_only),
            (MountKind::Bind, Some("/abs"), true)
        );
        let m = v("~/cache:/cache");
        assert_eq!(m.source.as_deref(), Some("/home/u/cache"));
        let m = v("/anon");
        assert_eq!((m.kind, m.source), (MountKind::Volume, None));
        assert!(parse_volume("a:relative", d, &env).is_err());
        assert!(parse_volume("a:/b:ro:x", d, &env).is_err());
    }
}
