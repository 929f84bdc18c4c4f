//! `${VAR}` substitution the way compose does it.
//!
//! Supported: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `${VAR+alt}`, `$$` for
//! a literal `$`, and nesting inside the default/alt/message
//! (`${A:-${B:-x}}`). Only string scalars in values are substituted, never keys.

use std::collections::{BTreeSet, HashMap};

use serde_norway::Value;

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${VAR:?msg}` / `${VAR?msg}` with VAR missing (or empty for `:?`).
    Required { var: String, message: String },
    /// Malformed `${...}`.
    Syntax(String),
}

impl InterpolateError {
    pub fn message(&self) -> String {
        match self {
            Self::Required { var, message } if message.is_empty() => {
                format!(
                    "required variable {var} is missing a value: set it in the environment or in .env"
                )
            }
            Self::Required { var, message } => {
                format!("required variable {var} is missing a value: {message}")
            }
            Self::Syntax(m) => m.clone(),
        }
    }
}

/// Variable lookup plus the names of unset variables met on the way (compose
/// warns about them and substitutes an empty string).
pub struct Env<'a> {
    pub vars: &'a HashMap<String, String>,
    pub unset: BTreeSet<String>,
}

impl<'a> Env<'a> {
    pub fn new(vars: &'a HashMap<String, String>) -> Self {
        Self {
            vars,
            unset: BTreeSet::new(),
        }
    }
}

/// Substitutes variables in one string.
pub fn interpolate_str(s: &str, env: &mut Env<'_>) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = matching_brace(r).ok_or_else(|| {
                InterpolateError::Syntax(format!(
                    "invalid interpolation format in {s:?}: missing closing }}"
                ))
            })?;
            out.push_str(&braced(&r[..end], s, env)?);
            rest = &r[end + 1..];
        } else {
            let len = name_len(after);
            if len == 0 || after.starts_with(|c: char| c.is_ascii_digit()) {
                // As docker compose: a `$` that starts no variable is an error.
                return Err(InterpolateError::Syntax(format!(
                    "invalid interpolation format in {s:?}: a lone $ (write $$ for a literal $)"
                )));
            } else {
                out.push_str(&lookup(&after[..len], env).unwrap_or_default());
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn name_len(s: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len())
}

/// Index of the `}` closing a `${` whose body starts at `s`, honouring nested
/// `${...}`.
fn matching_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn lookup(name: &str, env: &mut Env<'_>) -> Option<String> {
    let v = env.vars.get(name).cloned();
    if v.is_none() {
        env.unset.insert(name.to_string());
    }
    v
}

/// The body of `${...}`.
fn braced(body: &str, whole: &str, env: &mut Env<'_>) -> Result<String, InterpolateError> {
    let len = name_len(body);
    if len == 0 || body.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(InterpolateError::Syntax(format!(
            "invalid interpolation format in {whole:?}: ${{{body}}} does not start with a variable name"
        )));
    }
    let name = &body[..len];
    let op = &body[len..];
    let value = env.vars.get(name).cloned();
    let set = value.is_some();
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (kind, word) = if op.is_empty() {
        ("", "")
    } else if let Some(w) = op.strip_prefix(":-") {
        (":-", w)
    } else if let Some(w) = op.strip_prefix(":?") {
        (":?", w)
    } else if let Some(w) = op.strip_prefix(":+") {
        (":+", w)
    } else if let Some(w) = op.strip_prefix('-') {
        ("-", w)
    } else if let Some(w) = op.strip_prefix('?') {
        ("?", w)
    } else if let Some(w) = op.strip_prefix('+') {
        ("+", w)
    } else {
        return Err(InterpolateError::Syntax(format!(
            "invalid interpolation format in {whole:?}: unsupported operator in ${{{body}}} (use :-, -, :?, ?, :+ or +)"
        )));
    };
    match kind {
        "" => {
            if !set {
                env.unset.insert(name.to_string());
            }
            Ok(value.unwrap_or_default())
        }
        ":-" if non_empty => Ok(value.unwrap_or_default()),
        "-" if set => Ok(value.unwrap_or_default()),
        ":-" | "-" => interpolate_str(word, env),
        ":?" if non_empty => Ok(value.unwrap_or_default()),
        "?" if set => Ok(value.unwrap_or_default()),
        ":?" | "?" => Err(InterpolateError::Required {
            var: name.to_string(),
            message: interpolate_str(word, env)?,
        }),
        ":+" if non_empty => interpolate_str(word, env),
        "+" if set => interpolate_str(word, env),
        _ => Ok(String::new()),
    }
}

/// Interpolates every string scalar in `value` (keys untouched). On error,
/// returns the key path where it happened.
pub fn interpolate_value(
    value: &mut Value,
    path: &mut Vec<String>,
    env: &mut Env<'_>,
) -> Result<(), (Vec<String>, InterpolateError)> {
    match value {
        Value::String(s) if s.contains('$') => {
            *s = interpolate_str(s, env).map_err(|e| (path.clone(), e))?;
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                interpolate_value(item, path, env)?;
                path.pop();
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                path.push(crate::keys::key_string(k));
                interpolate_value(v, path, env)?;
                path.pop();
            }
        }
        Value::Tagged(t) => interpolate_value(&mut t.value, path, env)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str, vars: &[(&str, &str)]) -> Result<String, InterpolateError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut env = Env::new(&vars);
        interpolate_str(s, &mut env)
    }

    fn ok(s: &str, vars: &[(&str, &str)]) -> String {
        run(s, vars).unwrap()
    }

    #[test]
    fn plain_forms() {
        let v = [("A", "x"), ("EMPTY", "")];
        assert_eq!(ok("$A-${A}/$A", &v), "x-x/x");
        assert_eq!(ok("${MISSING}|$MISSING|", &v), "||");
        assert_eq!(ok("no vars", &v), "no vars");
        assert_eq!(ok("cost: $$5 and $$A", &v), "cost: $5 and $A");
        // As in docker compose, a `$` that starts no variable is refused.
        for bad in ["trailing $", "echo $ 1", "$1", "cost $(x)"] {
            let e = run(bad, &v).unwrap_err();
            assert!(e.message().contains("lone $"), "{bad}: {}", e.message());
        }
        assert_eq!(ok("literal $$ sign", &v), "literal $ sign");
        assert_eq!(ok("${A}_suffix $A_suffix", &v), "x_suffix ");
    }

    #[test]
    fn defaults_and_alternatives() {
        let v = [("A", "x"), ("EMPTY", "")];
        assert_eq!(ok("${A:-d}", &v), "x");
        assert_eq!(ok("${EMPTY:-d}", &v), "d");
        assert_eq!(ok("${UNSET:-d}", &v), "d");
        assert_eq!(ok("${EMPTY-d}", &v), "");
        assert_eq!(ok("${UNSET-d}", &v), "d");
        assert_eq!(ok("${A:+alt}", &v), "alt");
        assert_eq!(ok("${EMPTY:+alt}", &v), "");
        assert_eq!(ok("${EMPTY+alt}", &v), "alt");
        assert_eq!(ok("${UNSET+alt}", &v), "");
        assert_eq!(ok("${UNSET:-a b:c}", &v), "a b:c");
    }

    #[test]
    fn nested() {
        let v = [("B", "b")];
        assert_eq!(ok("${A:-${B:-x}}", &v), "b");
        assert_eq!(ok("${A:-${C:-x}}", &v), "x");
        assert_eq!(ok("${A:-pre-${B}-post}", &v), "pre-b-post");
        assert_eq!(ok("${B:+[${B}]}", &v), "[b]");
    }

    #[test]
    fn required() {
        let v = [("A", "x"), ("EMPTY", "")];
        assert_eq!(ok("${A:?need A}", &v), "x");
        assert_eq!(ok("${EMPTY?need}", &v), "");
        let e = run("${EMPTY:?set EMPTY please}", &v).unwrap_err();
        assert_eq!(
            e,
            InterpolateError::Required {
                var: "EMPTY".into(),
                message: "set EMPTY please".into()
            }
        );
        let e = run("${UNSET?}", &v).unwrap_err();
        assert!(e.message().contains("UNSET"), "{}", e.message());
    }

    #[test]
    fn syntax_errors() {
        assert!(matches!(run("${A", &[]), Err(InterpolateError::Syntax(_))));
        assert!(matches!(run("${}", &[]), Err(InterpolateError::Syntax(_))));
        assert!(matches!(
            run("${A*x}", &[]),
            Err(InterpolateError::Syntax(_))
        ));
    }

    #[test]
    fn unset_names_are_collected() {
        let vars = HashMap::new();
        let mut env = Env::new(&vars);
        interpolate_str("$X ${Y} ${Z:-d}", &mut env).unwrap();
        assert_eq!(
            env.unset.iter().cloned().collect::<Vec<_>>(),
            vec!["X", "Y"]
        );
    }

    #[test]
    fn values_not_keys() {
        let vars: HashMap<String, String> = [("V".to_string(), "1".to_string())].into();
        let mut env = Env::new(&vars);
        let mut v: Value = serde_norway::from_str("$V: $V\nlist: [a$V, 2]\n").unwrap();
        interpolate_value(&mut v, &mut vec![], &mut env).unwrap();
        assert_eq!(v["$V"], Value::String("1".into()));
        assert_eq!(v["list"][0], Value::String("a1".into()));
        let mut bad: Value = serde_norway::from_str("a:\n  b: ['${X:?no}']\n").unwrap();
        let (path, _) = interpolate_value(&mut bad, &mut vec![], &mut env).unwrap_err();
        assert_eq!(path, vec!["a", "b", "[0]"]);
    }
}
