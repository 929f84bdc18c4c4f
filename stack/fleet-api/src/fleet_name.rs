//! A fleet's name, validated once: it becomes the first path component of the
//! fleet's image repositories (`registry.<domain>/<fleet>/<image>`), and a
//! device may pull exactly the repositories under it, so it must be a valid
//! component of Distribution's repository-name grammar, and nothing that could
//! read as a path (`..`, `-`, `a/b`).
//!
//! The grammar is the intersection of Distribution's path component
//! (`[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`) and the names the api has always
//! taken (`a-z`, `0-9`, `-`, at most 63): `[a-z0-9]+(?:-+[a-z0-9]+)*`, 1 to 63
//! bytes. It starts and ends with a letter or a digit, so it is a DNS label too.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest fleet name.
pub const FLEET_NAME_MAX: usize = 63;

/// A valid fleet name (see the module's grammar). Deserializing checks it, so a
/// body or an answer with an invalid name does not parse.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FleetName(String);

/// Why a text is not a fleet name; the message names the text and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "fleet name {0:?} is not valid: use 1 to {FLEET_NAME_MAX} lowercase letters, digits and \
     '-', starting and ending with a letter or a digit, such as prod-eu-1 (it becomes the \
     first part of the fleet's image repositories, <fleet>/<image>)"
)]
pub struct FleetNameError(pub String);

impl FleetName {
    /// Checks `text` against the grammar.
    pub fn parse(text: &str) -> Result<FleetName, FleetNameError> {
        if is_valid(text) {
            Ok(FleetName(text.to_string()))
        } else {
            Err(FleetNameError(text.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `[a-z0-9]+(?:-+[a-z0-9]+)*`, 1 to 63 bytes.
fn is_valid(text: &str) -> bool {
    let bytes = text.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    (1..=FLEET_NAME_MAX).contains(&bytes.len())
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

impl FromStr for FleetName {
    type Err = FleetNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FleetName::parse(s)
    }
}

impl TryFrom<String> for FleetName {
    type Error = FleetNameError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        if is_valid(&text) {
            Ok(FleetName(text))
        } else {
            Err(FleetNameError(text))
        }
    }
}

impl From<FleetName> for String {
    fn from(name: FleetName) -> String {
        name.0
    }
}

impl AsRef<str> for FleetName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FleetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for FleetName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for FleetName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_repository_component_grammar() {
        let max = "x".repeat(63);
        for good in ["a", "0", "prod", "prod-eu-1", "a--b", "a-b-c", max.as_str()] {
            assert_eq!(FleetName::parse(good).unwrap().as_str(), good);
        }
        let long = "x".repeat(64);
        for bad in [
            "",
            "-",
            "--x--",
            "-a",
            "a-",
            "Prod",
            "a_b",
            "a.b",
            "a/b",
            "..",
            "a b",
            "a\0",
            "é",
            long.as_str(),
        ] {
            let e = FleetName::parse(bad).unwrap_err();
            assert!(e.to_string().contains("is not valid"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn deserializing_checks_the_name() {
        let name: FleetName = serde_json::from_str("\"prod\"").unwrap();
        assert_eq!(name, "prod");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"prod\"");
        let e = serde_json::from_str::<FleetName>("\"--x--\"").unwrap_err();
        assert!(e.to_string().contains("\"--x--\" is not valid"), "{e}");
    }
}
