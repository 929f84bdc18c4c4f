//! The `scope` of a registry token request, parsed by Distribution's grammar
//! (`docs/spec/auth/scope.md`), so that what a token grants names exactly the
//! repository the registry will read, and nothing that could be read another
//! way (`fleet-a/../fleet-b/db`, `fleet-a/x:fleet-b/db`):
//!
//! ```text
//! scope          := resourcescope [ ' ' resourcescope ]*
//! resourcescope  := resourcetype ":" resourcename ":" action [ ',' action ]*
//! resourcetype   := typevalue [ '(' typevalue ')' ]
//! typevalue      := [a-z0-9]+
//! resourcename   := component [ '/' component ]*      (at most 255 bytes)
//! component      := [a-z0-9]+ [ separator [a-z0-9]+ ]*
//! separator      := [_.] | __ | [-]*
//! action         := [a-z]+ | '*'
//! ```
//!
//! The grammar's optional `hostname/` prefix of a name is not taken: this
//! stack's registry has no other host's repositories, and a host part is what
//! would let `fleet-a/x:5000/...` look like a path. At most
//! [`MAX_SCOPES`] scopes are taken in one request.
//!
//! This module is pure (no IO, no allocation beyond its answer) so a fuzz
//! target can drive [`parse`] directly.

use std::fmt;

/// The most scopes one token request may ask for.
pub const MAX_SCOPES: usize = 64;
/// The longest repository name (Distribution's `NameTotalLengthMax`).
pub const NAME_MAX: usize = 255;

/// One resource scope: `repository:prod/web:pull,push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `repository`, `registry`, ...
    pub kind: String,
    /// The `(plugin)` of `repository(plugin)`.
    pub class: Option<String>,
    pub name: ResourceName,
    /// As asked, in order (`*` included); never empty.
    pub actions: Vec<String>,
}

impl Scope {
    /// Whether the resource is a repository (of any class).
    pub fn is_repository(&self) -> bool {
        self.kind == "repository"
    }

    /// The resource type as written: `repository` or `repository(plugin)`.
    pub fn kind_text(&self) -> String {
        match &self.class {
            Some(class) => format!("{}({class})", self.kind),
            None => self.kind.clone(),
        }
    }
}

/// A resource name: path components of the repository-name grammar joined by
/// `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceName(String);

impl ResourceName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its path components (at least one).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for ResourceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a scope is refused; the message quotes the scope and names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope {0:?} is not <type>:<name>:<actions>, such as repository:prod/web:pull,push")]
    Shape(String),
    #[error(
        "scope {scope:?}: the resource type {kind:?} is not [a-z0-9]+ with an optional (class)"
    )]
    Type { scope: String, kind: String },
    #[error(
        "scope {scope:?}: {name:?} is not a repository name: give path components of \
         lowercase letters and digits, separated inside by '.', '_', '__' or dashes, joined \
         by '/' (such as prod/web), at most {NAME_MAX} bytes, without a host"
    )]
    Name { scope: String, name: String },
    #[error("scope {scope:?}: the action {action:?} is not [a-z]+ or *")]
    Action { scope: String, action: String },
    #[error("more than {MAX_SCOPES} scopes in one request: ask for fewer")]
    TooMany,
}

/// Parses one `scope` parameter: resource scopes separated by spaces (runs of
/// spaces, and leading or trailing ones, are taken as one separator).
pub fn parse(text: &str) -> Result<Vec<Scope>, ScopeError> {
    let mut scopes = Vec::new();
    for item in text.split(' ').filter(|s| !s.is_empty()) {
        if scopes.len() == MAX_SCOPES {
            return Err(ScopeError::TooMany);
        }
        scopes.push(parse_one(item)?);
    }
    Ok(scopes)
}

/// Parses one resource scope (no spaces).
pub fn parse_one(item: &str) -> Result<Scope, ScopeError> {
    let shape = || ScopeError::Shape(item.to_string());
    // The type has no ':', and neither do names without a host or actions: so
    // exactly two colons.
    let mut parts = item.split(':');
    let (Some(kind), Some(name), Some(actions), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(match item.matches(':').count() {
            n if n > 2 => ScopeError::Name {
                scope: item.to_string(),
                name: item
                    .split_once(':')
                    .and_then(|(_, rest)| rest.rsplit_once(':'))
                    .map_or(item, |(name, _)| name)
                    .to_string(),
            },
            _ => shape(),
        });
    };
    if kind.is_empty() || name.is_empty() || actions.is_empty() {
        return Err(shape());
    }
    let (kind, class) = parse_type(kind).ok_or_else(|| ScopeError::Type {
        scope: item.to_string(),
        kind: kind.to_string(),
    })?;
    if !is_name(name) {
        return Err(ScopeError::Name {
            scope: item.to_string(),
            name: name.to_string(),
        });
    }
    let mut parsed = Vec::new();
    for action in actions.split(',') {
        let ok =
            action == "*" || (!action.is_empty() && action.bytes().all(|b| b.is_ascii_lowercase()));
        if !ok {
            return Err(ScopeError::Action {
                scope: item.to_string(),
                action: action.to_string(),
            });
        }
        parsed.push(action.to_string());
    }
    Ok(Scope {
        kind: kind.to_string(),
        class: class.map(str::to_string),
        name: ResourceName(name.to_string()),
        actions: parsed,
    })
}

/// `typevalue [ '(' typevalue ')' ]`.
fn parse_type(text: &str) -> Option<(&str, Option<&str>)> {
    let value = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match text.split_once('(') {
        None => value(text).then_some((text, None)),
        Some((kind, rest)) => {
            let class = rest.strip_suffix(')')?;
            (value(kind) && value(class)).then_some((kind, Some(class)))
        }
    }
}

/// `component [ '/' component ]*`, at most [`NAME_MAX`] bytes.
fn is_name(text: &str) -> bool {
    text.len() <= NAME_MAX && text.split('/').all(is_component)
}

/// `[a-z0-9]+ ( ([._] | __ | -*) [a-z0-9]+ )*`.
pub fn is_component(text: &str) -> bool {
    let bytes = text.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let mut expect_alnum = true;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| alnum(**b)).count();
        if run > 0 {
            i += run;
            expect_alnum = false;
            continue;
        }
        if expect_alnum {
            return false;
        }
        // A separator: one '.' or '_', two '_', or any number of '-'.
        let sep = match bytes[i] {
            b'.' => 1,
            b'_' if bytes.get(i + 1) == Some(&b'_') => 2,
            b'_' => 1,
            b'-' => bytes[i..].iter().take_while(|b| **b == b'-').count(),
            _ => return false,
        };
        i += sep;
        expect_alnum = true;
    }
    !expect_alnum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_alone_and_space_separated() {
        let scopes = parse("repository:f/web:pull,push  registry:catalog:*").unwrap();
        assert_eq!(scopes.len(), 2);
        assert_eq!(
            scopes[0],
            Scope {
                kind: "repository".into(),
                class: None,
                name: ResourceName("f/web".into()),
                actions: vec!["pull".into(), "push".into()],
            }
        );
        assert_eq!(scopes[1].kind, "registry");
        assert_eq!(scopes[1].name.as_str(), "catalog");
        assert_eq!(scopes[1].actions, ["*"]);
        let plugin = parse_one("repository(plugin):f/x:pull").unwrap();
        assert_eq!(plugin.class.as_deref(), Some("plugin"));
        assert_eq!(plugin.kind_text(), "repository(plugin)");
        assert!(plugin.is_repository());
        assert!(parse("").unwrap().is_empty());
        assert!(parse("   ").unwrap().is_empty());
        for good in [
            "repository:a.b/c_d/e__f/g-h/i---j/0:pull",
            "repository:prod/web:delete",
        ] {
            assert!(parse_one(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn names_that_could_be_read_another_way_are_refused() {
        for (bad, why) in [
            (
                "repository:fleet-a/../fleet-b/db:pull",
                "not a repository name",
            ),
            (
                "repository:fleet-a/x:fleet-b/db:pull",
                "not a repository name",
            ),
            (
                "repository:localhost:5000/fleet/db:pull",
                "not a repository name",
            ),
            ("repository:fleet-a/./db:pull", "not a repository name"),
            ("repository:fleet-a//db:pull", "not a repository name"),
            ("repository:/fleet/db:pull", "not a repository name"),
            ("repository:fleet/db/:pull", "not a repository name"),
            ("repository:Fleet/db:pull", "not a repository name"),
            ("repository:fleet/-db:pull", "not a repository name"),
            ("repository:fleet/db-:pull", "not a repository name"),
            ("repository:fleet/a___b:pull", "not a repository name"),
            ("repository:fleet/a._b:pull", "not a repository name"),
            ("repository:fleet/db%2f:pull", "not a repository name"),
            ("repository:fleet/d\0b:pull", "not a repository name"),
            ("repository", "not <type>:<name>:<actions>"),
            ("repository:f/web", "not <type>:<name>:<actions>"),
            (":f/web:pull", "not <type>:<name>:<actions>"),
            ("repository::pull", "not <type>:<name>:<actions>"),
            ("repository:f/web:", "not <type>:<name>:<actions>"),
            ("Repository:f/web:pull", "resource type"),
            ("repository(:f/web:pull", "resource type"),
            ("repository()x:f/web:pull", "resource type"),
            ("repository:f/web:pull,", "action"),
            ("repository:f/web:PULL", "action"),
            ("repository:f/web:pu*", "action"),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let long = format!("repository:f/{}:pull", "a".repeat(254));
        assert!(parse(&long).is_err(), "longer than 255 bytes");
        let max = format!("repository:f/{}:pull", "a".repeat(253));
        assert!(parse(&max).is_ok());
        let many = vec!["repository:f/web:pull"; MAX_SCOPES + 1].join(" ");
        assert_eq!(parse(&many).unwrap_err(), ScopeError::TooMany);
    }

    #[test]
    fn components() {
        for good in [
            "a", "a1", "a.b", "a_b", "a__b", "a-b", "a--b", "a.b-c_d", "0",
        ] {
            assert!(is_component(good), "{good}");
        }
        // One separator between two runs of letters and digits.
        for bad in [
            "", ".", "..", "-", "_a", "a_", "a___b", "a.-b", "a-.b", "A", "a b", "é",
        ] {
            assert!(!is_component(bad), "{bad}");
        }
    }
}
