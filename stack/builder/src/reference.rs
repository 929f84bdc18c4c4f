//! Image references: the registry the builder pushes to, and the
//! `<path>[:tag]` a client asks for, validated once at the edge.
//!
//! A client names only the repository path (`fleet/app:1.0`); the builder puts
//! its own registry in front (`registry.turtle.local:8443/fleet/app:1.0`). A
//! path whose first component looks like a host is refused rather than
//! silently nested under the registry or, worse, pushed somewhere else: Docker
//! reads a first component holding `.` or `:`, or `localhost`, as a registry
//! host.
//!
//! The grammar is Distribution's (`distribution/reference`): path components
//! of lowercase letters and digits joined by single separators (`.`, `_`,
//! `__`, or a run of `-`), tags `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, and at
//! most 255 characters for the whole repository name, host included.

use std::fmt;

/// The tag used when a client gives none.
pub const DEFAULT_TAG: &str = "latest";

/// Longest repository name (host and path) Docker accepts.
const MAX_NAME_LEN: usize = 255;

/// Longest tag Docker accepts.
const MAX_TAG_LEN: usize = 128;

/// A registry address, `host[:port]`, that Docker reads as a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry(String);

/// Why a `--registry` value is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error(
        "registry {0:?} has a scheme: give host[:port] only, such as registry.turtle.local:8443"
    )]
    Scheme(String),
    #[error("registry {0:?} has a path: give host[:port] only, such as registry.turtle.local:8443")]
    Path(String),
    #[error(
        "registry {0:?} is not a host name: use letters, digits, '-' and '.', such as registry.turtle.local"
    )]
    Host(String),
    #[error("registry {0:?} has a bad port: give a number from 1 to 65535")]
    Port(String),
    #[error(
        "registry {0:?} would be read by Docker as a Docker Hub namespace, not a host: \
         give a name with a dot or a port, such as registry.turtle.local or registry:5000"
    )]
    NotAHost(String),
}

impl Registry {
    /// Parses `host[:port]`.
    pub fn parse(s: &str) -> Result<Registry, RegistryError> {
        let s = s.trim();
        if s.contains("://") {
            return Err(RegistryError::Scheme(s.to_string()));
        }
        if s.contains('/') {
            return Err(RegistryError::Path(s.to_string()));
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(RegistryError::Host(s.to_string()));
        }
        if let Some(p) = port
            && !matches!(p.parse::<u16>(), Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(RegistryError::Port(s.to_string()));
        }
        if port.is_none() && !host.contains('.') && host != "localhost" {
            return Err(RegistryError::NotAHost(s.to_string()));
        }
        Ok(Registry(s.to_string()))
    }

    /// `host[:port]` as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a requested tag is refused (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagError {
    #[error("tag is empty: give <name>[:tag], such as fleet/app:1.0")]
    Empty,
    #[error(
        "tag {0:?} holds a digest: give <name>[:tag]; the builder reports the digest it pushed"
    )]
    Digest(String),
    #[error(
        "tag {tag:?} names a registry host ({host}): give the repository path only, such as \
         fleet/app:1.0; the builder pushes to its own registry ({registry})"
    )]
    Host {
        tag: String,
        host: String,
        registry: String,
    },
    #[error(
        "tag {tag:?}: path component {component:?} is not valid: use lowercase letters and \
         digits, joined by single '.', '_', '__' or '-' runs, such as fleet/my-app"
    )]
    Component { tag: String, component: String },
    #[error(
        "tag {tag:?}: {part:?} is not a valid tag: use up to 128 letters, digits, '_', '.' \
         and '-', not starting with '.' or '-'"
    )]
    Tag { tag: String, part: String },
    #[error(
        "tag {tag:?}: the repository name {name} is {len} characters, more than Docker's 255: \
         use a shorter path"
    )]
    TooLong {
        tag: String,
        name: String,
        len: usize,
    },
}

/// A validated image reference in the builder's registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    registry: Registry,
    path: String,
    tag: String,
}

impl ImageRef {
    /// Parses a client's `<path>[:tag]` and puts `registry` in front.
    pub fn parse(registry: &Registry, s: &str) -> Result<ImageRef, TagError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(TagError::Empty);
        }
        if s.contains('@') {
            return Err(TagError::Digest(s.to_string()));
        }
        // The tag separator is a ':' after the last '/'; a ':' before it can
        // only be a host's port, which the host check below refuses.
        let last_slash = s.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match s[last_slash..].rfind(':') {
            Some(i) => (&s[..last_slash + i], &s[last_slash + i + 1..]),
            None => (s, DEFAULT_TAG),
        };
        let components: Vec<&str> = path.split('/').collect();
        if let [first, _, ..] = components.as_slice()
            && (first.contains('.') || first.contains(':') || *first == "localhost")
        {
            return Err(TagError::Host {
                tag: s.to_string(),
                host: first.to_string(),
                registry: registry.to_string(),
            });
        }
        if let Some(bad) = components.iter().find(|c| !valid_component(c)) {
            return Err(TagError::Component {
                tag: s.to_string(),
                component: bad.to_string(),
            });
        }
        if !valid_tag(tag) {
            return Err(TagError::Tag {
                tag: s.to_string(),
                part: tag.to_string(),
            });
        }
        let r = ImageRef {
            registry: registry.clone(),
            path: path.to_string(),
            tag: tag.to_string(),
        };
        let name = r.repository();
        if name.len() > MAX_NAME_LEN {
            return Err(TagError::TooLong {
                tag: s.to_string(),
                len: name.len(),
                name,
            });
        }
        Ok(r)
    }

    /// The repository path the client gave (`fleet/app`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag (`1.0`, or `latest` when none was given).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// `registry/path`, what the engine pushes.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }

    /// `registry/path:tag`, the local tag of the built image.
    pub fn full(&self) -> String {
        format!("{}:{}", self.repository(), self.tag)
    }

    /// `registry/path@digest`, what a release pins.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}@{digest}", self.repository())
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full())
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    let (Some(&first), Some(&last)) = (b.first(), b.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Every run of separators between alphanumerics must be ".", "_", "__"
    // or any number of '-'.
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = t.chars();
    matches!(chars.next(), Some(c) if word(c))
        && t.len() <= MAX_TAG_LEN
        && chars.all(|c| word(c) || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registry {
        Registry::parse("registry.turtle.local:8443").unwrap()
    }

    #[test]
    fn a_path_with_a_tag_is_put_under_the_registry() {
        let r = ImageRef::parse(&reg(), "fleet/app:1.0").unwrap();
        assert_eq!(r.path(), "fleet/app");
        assert_eq!(r.tag(), "1.0");
        assert_eq!(r.full(), "registry.turtle.local:8443/fleet/app:1.0");
        assert_eq!(
            r.pinned("sha256:ab"),
            "registry.turtle.local:8443/fleet/app@sha256:ab"
        );
    }

    #[test]
    fn a_missing_tag_is_latest() {
        let r = ImageRef::parse(&reg(), "fleet/app").unwrap();
        assert_eq!(r.full(), "registry.turtle.local:8443/fleet/app:latest");
        let r = ImageRef::parse(&reg(), "app").unwrap();
        assert_eq!(r.full(), "registry.turtle.local:8443/app:latest");
    }

    #[test]
    fn separators_follow_the_distribution_grammar() {
        for ok in [
            "a/b",
            "a.b",
            "my-app",
            "my--app",
            "a_b",
            "a__b",
            "x/y/z9",
            "0/1",
            "single.dot",
        ] {
            ImageRef::parse(&reg(), ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "My/app",
            "fleet/App",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a._b",
            "a//b",
            "/a",
            "a/",
            "a b",
        ] {
            let e = ImageRef::parse(&reg(), bad).unwrap_err();
            assert!(matches!(e, TagError::Component { .. }), "{bad}: {e:?}");
        }
    }

    #[test]
    fn a_host_part_is_refused_naming_the_host_and_our_registry() {
        for (tag, host) in [
            ("docker.io/library/debian:12", "docker.io"),
            (
                "registry.turtle.local:8443/fleet/app:1",
                "registry.turtle.local:8443",
            ),
            ("localhost/app", "localhost"),
            ("evil:5000/app", "evil:5000"),
        ] {
            let e = ImageRef::parse(&reg(), tag).unwrap_err();
            assert_eq!(
                e,
                TagError::Host {
                    tag: tag.to_string(),
                    host: host.to_string(),
                    registry: "registry.turtle.local:8443".to_string(),
                }
            );
            let msg = e.to_string();
            assert!(
                msg.contains(host) && msg.contains("registry.turtle.local:8443"),
                "{msg}"
            );
        }
        // One component is a repository name even with a dot, as for Docker.
        assert!(ImageRef::parse(&reg(), "my.app:1").is_ok());
    }

    #[test]
    fn bad_tags_digests_and_empty_are_refused() {
        assert_eq!(ImageRef::parse(&reg(), " "), Err(TagError::Empty));
        assert!(matches!(
            ImageRef::parse(&reg(), "fleet/app@sha256:00"),
            Err(TagError::Digest(_))
        ));
        for bad in ["a:", "a:.x", "a:-x", "a:x y"] {
            let e = ImageRef::parse(&reg(), bad).unwrap_err();
            assert!(
                matches!(e, TagError::Tag { .. } | TagError::Component { .. }),
                "{bad}: {e:?}"
            );
        }
        let long = format!("a:{}", "x".repeat(129));
        assert!(matches!(
            ImageRef::parse(&reg(), &long),
            Err(TagError::Tag { .. })
        ));
        assert!(ImageRef::parse(&reg(), &format!("a:{}", "x".repeat(128))).is_ok());
        for ok in ["a:V1.0_rc-2", "a:_x", "a:1"] {
            ImageRef::parse(&reg(), ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn the_whole_name_is_at_most_255_characters() {
        // "registry.turtle.local:8443/" is 27 characters.
        let fits = "a".repeat(255 - 27);
        assert!(ImageRef::parse(&reg(), &fits).is_ok());
        let over = "a".repeat(256 - 27);
        assert!(matches!(
            ImageRef::parse(&reg(), &over),
            Err(TagError::TooLong { len: 256, .. })
        ));
    }

    #[test]
    fn registries_must_read_as_hosts() {
        for ok in [
            "registry.turtle.local",
            "registry.turtle.local:8443",
            "registry:5000",
            "localhost",
            "127.0.0.1:5000",
        ] {
            assert_eq!(Registry::parse(ok).unwrap().as_str(), ok);
        }
        assert!(matches!(
            Registry::parse("registry"),
            Err(RegistryError::NotAHost(_))
        ));
        assert!(matches!(
            Registry::parse("https://registry.x"),
            Err(RegistryError::Scheme(_))
        ));
        assert!(matches!(
            Registry::parse("registry.x/v2"),
            Err(RegistryError::Path(_))
        ));
        assert!(matches!(
            Registry::parse("registry.x:0"),
            Err(RegistryError::Port(_))
        ));
        assert!(matches!(
            Registry::parse("registry.x:+80"),
            Err(RegistryError::Port(_))
        ));
        assert!(matches!(
            Registry::parse("-bad.x"),
            Err(RegistryError::Host(_))
        ));
        assert!(matches!(Registry::parse(""), Err(RegistryError::Host(_))));
    }
}
