//! Project and service names: parsed once, where they enter (the compose
//! file, `-p`, the daemon's API, the store), then trusted.
//!
//! Both become parts of paths (`STATE_DIR/secrets/<project>`, a TLS leaf's
//! directory `<project>.<service>`) and of engine names
//! (`<project>-<service>-1`), so a value of these types is always a safe
//! path component: never empty, `.` or `..`, never holding `/` or NUL, at
//! most 255 bytes (NAME_MAX).
//!
//! - [`ProjectName`]: compose v2's rule, `[a-z0-9][a-z0-9_-]*`. `-p` and
//!   `COMPOSE_PROJECT_NAME` must already follow it (compose refuses them
//!   otherwise); the top-level `name:` and the directory name are first
//!   normalized as compose normalizes them ([`ProjectName::normalize`]).
//! - [`ServiceName`]: the compose specification's `[a-zA-Z0-9._-]+`, less
//!   `.` and `..`, which compose accepts but which are not names of
//!   anything a path may hold.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest name: a path component's limit on Linux (NAME_MAX).
pub const NAME_MAX: usize = 255;

/// Why a string is not a name, with the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "invalid project name {0:?}: it must consist only of lowercase letters, digits, '-' and '_', start with a letter or digit, and be at most 255 characters"
    )]
    Project(String),
    #[error(
        "invalid service name {0:?}: it must consist only of letters, digits, '.', '-' and '_', be neither . nor .., and be at most 255 characters"
    )]
    Service(String),
}

/// Implements what both names share: the string's traits, and serde and
/// parsing through `$check`.
macro_rules! name_type {
    ($t:ident, $check:ident, $variant:ident) => {
        impl $t {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $t {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                if $check(s) {
                    Ok(Self(s.to_string()))
                } else {
                    Err(NameError::$variant(s.to_string()))
                }
            }
        }

        impl TryFrom<String> for $t {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                if $check(&s) {
                    Ok(Self(s))
                } else {
                    Err(NameError::$variant(s))
                }
            }
        }

        impl From<$t> for String {
            fn from(n: $t) -> String {
                n.0
            }
        }

        impl From<&$t> for String {
            fn from(n: &$t) -> String {
                n.0.clone()
            }
        }

        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<std::path::Path> for $t {
            fn as_ref(&self) -> &std::path::Path {
                std::path::Path::new(&self.0)
            }
        }

        /// Looks a name up by `&str` in a map keyed by names (the hash of
        /// the name is the hash of its string).
        impl Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        /// As the string: `{name:?}` in a message reads `"web"`.
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $t {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$t> for str {
            fn eq(&self, other: &$t) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$t> for &str {
            fn eq(&self, other: &$t) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$t> for String {
            fn eq(&self, other: &$t) -> bool {
                *self == other.0
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A compose project's name: `[a-z0-9][a-z0-9_-]*`, at most 255 bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectName(String);

fn project_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= NAME_MAX
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

name_type!(ProjectName, project_ok, Project);

impl ProjectName {
    /// `s` as compose normalizes a project name that was not given
    /// explicitly (the file's `name:`, a directory's name): lowercase, only
    /// `[a-z0-9_-]` kept, leading `_` and `-` dropped. `None` when nothing
    /// is left (or more than 255 bytes are).
    pub fn normalize(s: &str) -> Option<Self> {
        let kept: String = s
            .to_lowercase()
            .chars()
            .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
            .collect();
        kept.trim_start_matches(['_', '-']).parse().ok()
    }
}

/// A compose service's name: `[a-zA-Z0-9._-]+` but not `.` or `..`, at most
/// 255 bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(String);

fn service_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= NAME_MAX
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
}

name_type!(ServiceName, service_ok, Service);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_follow_compose() {
        for ok in ["a", "0", "my-app", "my_app", "app2", "9lives", "a-", "a_"] {
            assert_eq!(ok.parse::<ProjectName>().unwrap().as_str(), ok);
        }
        let long = "a".repeat(NAME_MAX);
        assert!(long.parse::<ProjectName>().is_ok());
        for bad in [
            "",
            ".",
            "..",
            "../../../tmp/victim",
            "a/b",
            "/abs",
            "a\0b",
            "MyApp",
            "_app",
            "-app",
            "my.app",
            "my app",
            "app\n# BEGIN",
            "é",
            &"a".repeat(NAME_MAX + 1),
        ] {
            let e = bad.parse::<ProjectName>().unwrap_err().to_string();
            assert!(
                e.contains("invalid project name") && e.contains("lowercase letters, digits"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn service_names_follow_the_compose_spec_but_never_walk_a_path() {
        for ok in ["web", "Web", "web.1", "a-b_c", "...", ".hidden", "-x", "0"] {
            assert_eq!(ok.parse::<ServiceName>().unwrap().as_str(), ok);
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "a/b",
            "a\0",
            "a b",
            "a:b",
            "é",
            &"s".repeat(NAME_MAX + 1),
        ] {
            let e = bad.parse::<ServiceName>().unwrap_err().to_string();
            assert!(
                e.contains("invalid service name") && e.contains("neither . nor .."),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn normalizing_keeps_what_compose_keeps() {
        let n = |s: &str| ProjectName::normalize(s).map(String::from);
        assert_eq!(n("My App.v2").as_deref(), Some("myappv2"));
        assert_eq!(n("_Cli-1").as_deref(), Some("cli-1"));
        assert_eq!(n("../../tmp/victim").as_deref(), Some("tmpvictim"));
        assert_eq!(n("!!!"), None);
        assert_eq!(n("__"), None);
        assert_eq!(n(""), None);
    }

    #[test]
    fn names_are_checked_when_read_back() {
        let p: ProjectName = serde_json::from_str("\"app\"").unwrap();
        assert_eq!(p, "app");
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"app\"");
        let e = serde_json::from_str::<ProjectName>("\"../x\"").unwrap_err();
        assert!(e.to_string().contains("invalid project name"), "{e}");
        let e = serde_json::from_str::<ServiceName>("\"..\"").unwrap_err();
        assert!(e.to_string().contains("invalid service name"), "{e}");
        // A map keyed by names is looked up by &str.
        let m: indexmap::IndexMap<ServiceName, u8> = serde_json::from_str(r#"{"web": 1}"#).unwrap();
        assert_eq!(m["web"], 1);
        assert!(
            serde_json::from_str::<indexmap::IndexMap<ServiceName, u8>>(r#"{"a/b": 1}"#).is_err()
        );
    }
}
