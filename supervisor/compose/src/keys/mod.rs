//! The keys Turtle reads, the type of each, and the check that runs on each
//! file's YAML value right after interpolation.
//!
//! The check does what compose-go's schema validation and its
//! "cast after interpolation" do, in one walk, before anything is typed:
//!
//! - a value written as a string where the key wants a boolean or a number
//!   (`init: ${INIT:-true}`, `retries: "3"`) is converted, and a value that
//!   cannot be is reported against its key path;
//! - unknown keys, and keys Turtle refuses, are reported (all of them, not
//!   just the first) and removed from the value;
//! - keys with no meaning on a single engine (swarm placement, BuildKit-only
//!   build options) are removed with a warning.
//!
//! Keys starting with `x-` are extensions and always allowed. Every value may
//! be null (an unset key). The caller turns issues into errors or warnings
//! (`context::Ctx::file_value`) and finds their lines (`locate`).

mod schema;

use serde_norway::{Mapping, Value};

pub use schema::{SERVICE, TOP};

/// What may appear under a key.
pub enum Schema {
    /// A string, number or boolean, kept as written (sizes, durations, modes).
    Scalar,
    /// A string; a number or boolean is written as a string.
    Str,
    /// A boolean; the strings `true`/`false` (any case, and YAML 1.1's
    /// `yes`/`no`/`on`/`off`, with a warning) are converted.
    Bool,
    /// A whole number; a string holding one is converted.
    Int,
    /// A number; a string holding one is converted.
    Float,
    /// A string, or a list of them (`command`, `dns`, `tmpfs`).
    StrOrList,
    /// A mapping of names to scalars (or null), or a list of `KEY=VALUE`
    /// strings (`environment`, `labels`, `sysctls`, `driver_opts`).
    KeyValues,
    /// A list, each item checked against the inner schema. A single scalar
    /// where a list of strings is wanted means a one-item list.
    List(&'static Schema),
    /// A mapping with these keys.
    Keys(&'static [(&'static str, Schema)]),
    /// A mapping with arbitrary keys (names), each value checked against the
    /// inner schema.
    Dict(&'static Schema),
    /// One of several forms, told apart by shape (scalar, list, mapping): the
    /// first whose shape fits is used.
    Or(&'static [Schema]),
    /// A key compose knows but Turtle refuses; the text says what to do.
    Unsupported(&'static str),
    /// A key with no meaning on a single engine: removed with a warning; the
    /// text says why.
    Ignored(&'static str),
}

use Schema::*;

/// What is wrong at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueKind {
    /// Not a compose key (or not one Turtle knows).
    Unknown,
    /// Known, refused: what to do instead.
    Unsupported(&'static str),
    /// Known, meaningless here: why it is ignored.
    Ignored(&'static str),
    /// The value has the wrong type, or a string that cannot be converted.
    Type(String),
    /// A YAML 1.1 boolean (`yes`, `off`, ...) converted: a warning.
    Yaml11Bool(String),
}

/// One issue, at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIssue {
    /// Key path segments; sequence items are `[N]`.
    pub path: Vec<String>,
    pub kind: IssueKind,
}

impl KeyIssue {
    /// Whether this issue stops the load (`allow_unknown`: unknown and
    /// unsupported keys are only warnings).
    pub fn is_error(&self, allow_unknown: bool) -> bool {
        match self.kind {
            IssueKind::Unknown | IssueKind::Unsupported(_) => !allow_unknown,
            IssueKind::Type(_) => true,
            IssueKind::Ignored(_) | IssueKind::Yaml11Bool(_) => false,
        }
    }

    /// The message, as an error or as a warning.
    pub fn message(&self, allow_unknown: bool) -> String {
        match (&self.kind, self.is_error(allow_unknown)) {
            (IssueKind::Unknown, true) => UNKNOWN.to_string(),
            (IssueKind::Unknown, false) => "unknown key, ignored".to_string(),
            (IssueKind::Unsupported(why), true) => {
                format!("not supported: {why} (or run with --allow-unknown-keys to ignore it)")
            }
            (IssueKind::Unsupported(why), false) => format!("not supported, ignored: {why}"),
            (IssueKind::Ignored(why), _) => format!("ignored: {why}"),
            (IssueKind::Type(m), _) => m.clone(),
            (IssueKind::Yaml11Bool(s), _) => format!(
                "{s:?} read as a boolean (YAML 1.1); YAML 1.2 has only true and false: write {}",
                yaml11_bool(s).unwrap_or_default()
            ),
        }
    }
}

const UNKNOWN: &str = "unknown key (Turtle does not support it; remove it or run with --allow-unknown-keys to ignore it)";

/// A mapping key as a string (numbers and booleans as written).
pub fn key_string(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_string(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// `services.web.ports[0].x`.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if !out.is_empty() && !seg.starts_with('[') {
            out.push('.');
        }
        out.push_str(seg);
    }
    out
}

/// Checks `value` against `schema`: converts what must be converted, removes
/// every refused or ignored key, and returns every issue found.
pub fn check(value: &mut Value, schema: &Schema) -> Vec<KeyIssue> {
    let mut issues = Vec::new();
    walk(value, schema, &mut Vec::new(), &mut issues);
    issues
}

fn yaml11_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "y" | "yes" | "on" => Some(true),
        "n" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// The shape of a value, for error messages and for [`Or`].
fn shape(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

fn expected(schema: &Schema) -> String {
    match schema {
        Scalar => "a single value".into(),
        Str => "a string".into(),
        Bool => "a boolean (true or false)".into(),
        Int => "a whole number".into(),
        Float => "a number".into(),
        StrOrList => "a string or a list of strings".into(),
        KeyValues => "a mapping of names to values, or a list of NAME=VALUE".into(),
        List(_) => "a list".into(),
        Keys(_) | Dict(_) => "a mapping".into(),
        Or(alts) => alts.iter().map(expected).collect::<Vec<_>>().join(" or "),
        Unsupported(_) | Ignored(_) => "nothing".into(),
    }
}

/// Whether `schema` takes a value of this shape (used to pick an [`Or`] arm).
fn fits(schema: &Schema, v: &Value) -> bool {
    let scalar = matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
    match schema {
        Scalar | Str | Bool | Int | Float => scalar,
        StrOrList => scalar || v.is_sequence(),
        KeyValues => v.is_mapping() || v.is_sequence(),
        List(inner) => v.is_sequence() || (scalar && matches!(inner, Str)),
        Keys(_) | Dict(_) => v.is_mapping(),
        Or(alts) => alts.iter().any(|a| fits(a, v)),
        Unsupported(_) | Ignored(_) => false,
    }
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn walk(value: &mut Value, schema: &Schema, path: &mut Vec<String>, issues: &mut Vec<KeyIssue>) {
    if let Value::Tagged(t) = value {
        // `!reset` and `!override` (merge directives): check what they hold.
        return walk(&mut t.value, schema, path, issues);
    }
    if value.is_null() {
        return;
    }
    match schema {
        Scalar | Str | Bool | Int | Float | StrOrList | KeyValues | List(_) | Keys(_) | Dict(_)
            if !fits(schema, value) =>
        {
            issues.push(type_issue(path, value, schema));
        }
        Scalar => {}
        Str => {
            if let Some(s) = scalar_string(value) {
                *value = Value::String(s);
            }
        }
        Bool => {
            if let Value::String(s) = value {
                let converted = match s.to_ascii_lowercase().as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => yaml11_bool(s).inspect(|_| {
                        issues.push(KeyIssue {
                            path: path.clone(),
                            kind: IssueKind::Yaml11Bool(s.clone()),
                        })
                    }),
                };
                match converted {
                    Some(b) => *value = Value::Bool(b),
                    None => issues.push(type_issue(path, value, schema)),
                }
            } else if !value.is_bool() {
                issues.push(type_issue(path, value, schema));
            }
        }
        Int => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => {}
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(n) => *value = Value::Number(n.into()),
                Err(_) => issues.push(type_issue(path, value, schema)),
            },
            _ => issues.push(type_issue(path, value, schema)),
        },
        Float => match value {
            Value::Number(_) => {}
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => *value = Value::Number(n.into()),
                _ => issues.push(type_issue(path, value, schema)),
            },
            _ => issues.push(type_issue(path, value, schema)),
        },
        StrOrList => strings(value, path, issues),
        KeyValues => match value {
            Value::Mapping(m) => {
                for (k, v) in m.iter_mut() {
                    if v.is_null() {
                        continue;
                    }
                    match scalar_string(v) {
                        Some(s) => *v = Value::String(s),
                        None => {
                            path.push(key_string(k));
                            issues.push(KeyIssue {
                                path: path.clone(),
                                kind: IssueKind::Type(format!(
                                    "expected a single value, got {}",
                                    describe(v)
                                )),
                            });
                            path.pop();
                        }
                    }
                }
            }
            _ => strings(value, path, issues),
        },
        List(inner) => {
            if !value.is_sequence() {
                *value = Value::Sequence(vec![value.clone()]);
            }
            if let Value::Sequence(items) = value {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(format!("[{i}]"));
                    walk(item, inner, path, issues);
                    path.pop();
                }
            }
        }
        Keys(keys) => {
            if let Value::Mapping(map) = value {
                walk_keys(map, keys, path, issues);
            }
        }
        Dict(inner) => {
            if let Value::Mapping(map) = value {
                for (k, v) in map.iter_mut() {
                    path.push(key_string(k));
                    walk(v, inner, path, issues);
                    path.pop();
                }
            }
        }
        Or(alts) => match alts.iter().find(|a| fits(a, value)) {
            Some(alt) => walk(value, alt, path, issues),
            None => issues.push(type_issue(path, value, schema)),
        },
        Unsupported(_) | Ignored(_) => {}
    }
}

/// Each item of a list (or the one scalar) written as a string.
fn strings(value: &mut Value, path: &mut [String], issues: &mut Vec<KeyIssue>) {
    match value {
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                match scalar_string(item) {
                    Some(s) => *item = Value::String(s),
                    None => {
                        let mut at = path.to_vec();
                        at.push(format!("[{i}]"));
                        issues.push(KeyIssue {
                            path: at,
                            kind: IssueKind::Type(format!(
                                "expected a string, got {}",
                                describe(item)
                            )),
                        });
                    }
                }
            }
        }
        other => {
            if let Some(s) = scalar_string(other) {
                *other = Value::String(s);
            }
        }
    }
}

fn walk_keys(
    map: &mut Mapping,
    keys: &[(&'static str, Schema)],
    path: &mut Vec<String>,
    issues: &mut Vec<KeyIssue>,
) {
    let mut removed = Vec::new();
    for (k, v) in map.iter_mut() {
        let name = key_string(k);
        if name.starts_with("x-") {
            continue;
        }
        path.push(name.clone());
        let kind = match keys.iter().find(|(n, _)| *n == name) {
            Some((_, Unsupported(why))) => Some(IssueKind::Unsupported(why)),
            Some((_, Ignored(why))) => Some(IssueKind::Ignored(why)),
            Some((_, inner)) => {
                walk(v, inner, path, issues);
                None
            }
            None => Some(IssueKind::Unknown),
        };
        if let Some(kind) = kind {
            issues.push(KeyIssue {
                path: path.clone(),
                kind,
            });
            removed.push(k.clone());
        }
        path.pop();
    }
    for k in removed {
        map.remove(&k);
    }
}

fn type_issue(path: &[String], value: &Value, schema: &Schema) -> KeyIssue {
    KeyIssue {
        path: path.to_vec(),
        kind: IssueKind::Type(format!(
            "expected {}, got {}",
            expected(schema),
            describe(value)
        )),
    }
}

/// A value in an error message: scalars as written, else their shape.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => shape(other).to_string(),
    }
}

#[cfg(test)]
mod tests;
