//! `.env` and `env_file:` syntax: `KEY=VALUE`, `export KEY=VALUE`, `# comments`,
//! blank lines, single quotes (no escapes; in `.env` the value is still
//! interpolated afterwards, as docker-compose v1 does, while compose v2 keeps
//! single-quoted values literal), double quotes (with `\n`, `\t`, `\"`
//! and `\\` escapes), inline ` # comments` after unquoted values. A line with a
//! bare `KEY` has no value (`None`): the caller looks it up in the environment.
//!
//! `env_file` entries with `format: raw` use [`parse_raw`] instead: no quotes,
//! escapes or inline comments, the value is everything after the first `=`.

/// One parse problem: 1-based line and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileError {
    pub line: usize,
    pub message: String,
}

/// Parses an env file into `(key, value)` pairs, in file order.
pub fn parse(text: &str) -> Result<Vec<(String, Option<String>)>, EnvFileError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("export ") {
            line = rest.trim_start();
        }
        let err = |message: String| EnvFileError {
            line: line_no,
            message,
        };
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (line, None),
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(err(format!("invalid line {raw:?}: expected KEY=VALUE")));
        }
        let value = match value {
            None => None,
            Some(v) => Some(parse_value(v.trim_start()).map_err(err)?),
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// Parses an env file in the `raw` format: blank lines and lines starting
/// with `#` are skipped, `KEY=VALUE` keeps VALUE exactly as written (quotes,
/// `#`, `$` and surrounding spaces included), a bare `KEY` has no value.
pub fn parse_raw(text: &str) -> Result<Vec<(String, Option<String>)>, EnvFileError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.to_string())),
            None => (line.trim(), None),
        };
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(EnvFileError {
                line: i + 1,
                message: format!("invalid line {line:?}: expected KEY=VALUE"),
            });
        }
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn parse_value(v: &str) -> Result<String, String> {
    if let Some(rest) = v.strip_prefix('\'') {
        return match rest.find('\'') {
            Some(end) => Ok(rest[..end].to_string()),
            None => Err("unterminated single quote: close the value with '".to_string()),
        };
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Ok(out),
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(other) => {
                        if other != '"' && other != '\\' && other != '$' {
                            out.push('\\');
                        }
                        out.push(other);
                    }
                    None => out.push('\\'),
                },
                _ => out.push(c),
            }
        }
        return Err("unterminated double quote: close the value with \"".to_string());
    }
    // Unquoted: an inline comment starts at " #".
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    Ok(v.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, Option<String>)> {
        parse(text).unwrap()
    }

    #[test]
    fn plain_export_comments_blank() {
        let got = kv("# comment\n\nA=1\nexport B=two\n  C = spaced  \nD=x # note\nE=\nF\n");
        let want: Vec<(String, Option<String>)> = vec![
            ("A".into(), Some("1".into())),
            ("B".into(), Some("two".into())),
            ("C".into(), Some("spaced".into())),
            ("D".into(), Some("x".into())),
            ("E".into(), Some("".into())),
            ("F".into(), None),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn quotes() {
        let got = kv("A='a # not comment $X'\nB=\"line\\nnext \\\"q\\\"\"\nC=\"with = sign\"\n");
        assert_eq!(got[0].1.as_deref(), Some("a # not comment $X"));
        assert_eq!(got[1].1.as_deref(), Some("line\nnext \"q\""));
        assert_eq!(got[2].1.as_deref(), Some("with = sign"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("A=1\nB='open\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("single quote"));
        assert_eq!(parse("A=1\nbad key=1\n").unwrap_err().line, 2);
    }

    #[test]
    fn raw_keeps_values_as_written() {
        let got = parse_raw("# c\n\nA='q' # not a comment\nB= spaced \\n $X\nC\n").unwrap();
        let want: Vec<(String, Option<String>)> = vec![
            ("A".into(), Some("'q' # not a comment".into())),
            ("B".into(), Some(" spaced \\n $X".into())),
            ("C".into(), None),
        ];
        assert_eq!(got, want);
        assert_eq!(parse_raw("A=1\nbad key=2\n").unwrap_err().line, 2);
    }
}
