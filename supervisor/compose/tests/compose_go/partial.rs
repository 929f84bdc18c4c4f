//! A partial comparison: the expected value states only the fields a Go test
//! asserts; the project's serialized form may hold more.
//!
//! - a map: each expected key is compared, other keys of the project are
//!   ignored;
//! - a list: the same length, then item by item;
//! - `false`, `null`, `""`, `[]` and `{}` also match a field the project leaves
//!   out (the model skips defaults when it serializes);
//! - `"<absent>"`: the field must not be there (a service that is not
//!   enabled, a variable that is dropped);
//! - `{"<any-of>": [a, b]}`: one of them (`"<absent>"` allowed);
//! - any other value: equal (numbers by value).

use serde_json::Value;

pub const ABSENT: &str = "<absent>";
const ANY_OF: &str = "<any-of>";

/// One difference: where, what was expected, what the project has.
pub struct Diff {
    pub path: String,
    pub expected: String,
    pub got: String,
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  {}: expected {}, got {}",
            self.path, self.expected, self.got
        )
    }
}

/// Every place where `got` does not have what `expected` states.
pub fn compare(expected: &Value, got: Option<&Value>, path: &str, diffs: &mut Vec<Diff>) {
    let mut diff = |expected: &Value, got: Option<&Value>| {
        diffs.push(Diff {
            path: if path.is_empty() {
                "(root)".into()
            } else {
                path.to_string()
            },
            expected: show(Some(expected)),
            got: show(got),
        })
    };
    if let Value::Object(map) = expected
        && let Some(Value::Array(alternatives)) = map.get(ANY_OF)
    {
        let any = alternatives.iter().any(|alt| {
            let mut scratch = Vec::new();
            compare(alt, got, path, &mut scratch);
            scratch.is_empty()
        });
        if !any {
            diff(expected, got);
        }
        return;
    }
    if expected.as_str() == Some(ABSENT) {
        if !matches!(got, None | Some(Value::Null)) {
            diff(expected, got);
        }
        return;
    }
    let got = match got {
        Some(v) => v,
        None if is_default(expected) => return,
        None => return diff(expected, None),
    };
    match (expected, got) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, want) in want {
                compare(want, have.get(key), &join(path, key), diffs);
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return diff(expected, Some(got));
            }
            for (i, (want, have)) in want.iter().zip(have).enumerate() {
                compare(want, Some(have), &join(path, &i.to_string()), diffs);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a == b => {}
        (Value::Null, _) if is_default(got) => {}
        _ => diff(expected, Some(got)),
    }
}

fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "(not set)".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.len() > 300 {
                format!("{}...", &s[..300])
            } else {
                s
            }
        }
    }
}

/// Replaces `${FIXTURE_DIR}` (and `${HOME}`) in every string of `v`.
pub fn substitute(v: &mut Value, vars: &[(&str, &str)]) {
    match v {
        Value::String(s) => {
            for (name, value) in vars {
                *s = s.replace(&format!("${{{name}}}"), value);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|v| substitute(v, vars)),
        Value::Object(o) => o.values_mut().for_each(|v| substitute(v, vars)),
        _ => {}
    }
}

#[test]
fn partial_comparison_rules() {
    use serde_json::json;
    let got = json!({"a": {"b": [1, 2], "c": "x"}, "d": true});
    let check = |want: Value| {
        let mut diffs = Vec::new();
        compare(&want, Some(&got), "", &mut diffs);
        diffs.len()
    };
    assert_eq!(check(json!({"a": {"c": "x"}})), 0);
    assert_eq!(check(json!({"a": {"b": [1]}})), 1, "list lengths differ");
    assert_eq!(check(json!({"e": false, "f": [], "g": null})), 0);
    assert_eq!(check(json!({"e": true})), 1);
    assert_eq!(check(json!({"e": "<absent>"})), 0);
    assert_eq!(check(json!({"d": "<absent>"})), 1);
    assert_eq!(check(json!({"d": {"<any-of>": [false, true]}})), 0);
    assert_eq!(check(json!({"a": {"c": "y"}})), 1);
}
