//! Finds the line of a key path in a block-style YAML file, by indentation.
//!
//! serde_norway's `Value` keeps no positions, so error messages get their line
//! from this small walker instead. It understands block mappings, block
//! sequences (`- item`, also at the parent key's indentation), quoted keys and
//! comments; flow style (`{a: 1}`) and multi-document files are beyond it, and
//! it answers `None` rather than guess.

#[derive(Debug)]
struct Line<'a> {
    no: usize,
    indent: usize,
    /// A `- ` sequence item marker (its content is a separate, deeper line).
    dash: bool,
    text: &'a str,
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed == "---" {
            continue;
        }
        let mut indent = raw.len() - trimmed.len();
        let mut rest = trimmed;
        // `- - x` and `- key: v`: one dash marker per `-`, then the content.
        while rest == "-" || rest.starts_with("- ") {
            out.push(Line {
                no: i + 1,
                indent,
                dash: true,
                text: "",
            });
            let after = &rest[1..];
            let content = after.trim_start();
            indent += 1 + after.len() - content.len();
            rest = content;
        }
        if !rest.is_empty() {
            out.push(Line {
                no: i + 1,
                indent,
                dash: false,
                text: rest,
            });
        }
    }
    out
}

/// The key a line starts with, if it is a `key:` line.
fn line_key(text: &str) -> Option<&str> {
    for q in ['"', '\''] {
        if let Some(rest) = text.strip_prefix(q) {
            let end = rest.find(q)?;
            let after = rest[end + 1..].trim_start();
            return after.starts_with(':').then(|| &rest[..end]);
        }
    }
    let colon = text
        .match_indices(':')
        .find(|(i, _)| {
            let next = text[i + 1..].chars().next();
            next.is_none() || next == Some(' ') || next == Some('\t')
        })?
        .0;
    Some(text[..colon].trim_end())
}

/// 1-based line of `path` in `text`. Path segments are mapping keys, or
/// `[N]` for the N-th item of a sequence.
pub fn find_line(text: &str, path: &[String]) -> Option<usize> {
    let all = lines(text);
    find(&all, path)
}

/// The line of `path`, else of its longest prefix that is in the text (a key
/// merged in from an anchor is not written where it ends up), with whether
/// the line is the key's own.
pub fn find_nearest_line(text: &str, path: &[String]) -> Option<(usize, bool)> {
    let all = lines(text);
    (1..=path.len())
        .rev()
        .find_map(|n| find(&all, &path[..n]).map(|l| (l, n == path.len())))
}

fn find(lines: &[Line<'_>], path: &[String]) -> Option<usize> {
    let seg = path.first()?;
    let indent = lines.first()?.indent;
    let at = if let Some(n) = seg
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse::<usize>().ok())
    {
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.indent == indent && l.dash)
            .nth(n)?
            .0
    } else {
        lines
            .iter()
            .position(|l| l.indent == indent && !l.dash && line_key(l.text) == Some(seg.as_str()))?
    };
    if path.len() == 1 {
        return Some(lines[at].no);
    }
    let me = &lines[at];
    let block_end = lines[at + 1..]
        .iter()
        .position(|l| !(l.indent > me.indent || (!me.dash && l.dash && l.indent == me.indent)))
        .map_or(lines.len(), |p| at + 1 + p);
    find(&lines[at + 1..block_end], &path[1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# top comment
version: '3.8'
services:
  web:
    image: nginx
    ports:
      - \"8080:80\"
      - target: 443
        published: 8443
    restart_policy: x

  \"db\":
    image: postgres
    environment:
    - A=1
    - B=2
    deploy:
      resources:
        limits:
          pids: 10
volumes:
  data: {}
";

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_string).collect()
    }

    #[test]
    fn finds_keys_by_indentation() {
        assert_eq!(find_line(DOC, &p("version")), Some(2));
        assert_eq!(find_line(DOC, &p("services")), Some(3));
        assert_eq!(find_line(DOC, &p("services.web.restart_policy")), Some(10));
        assert_eq!(find_line(DOC, &p("services.db.image")), Some(13));
        assert_eq!(
            find_line(DOC, &p("services.db.deploy.resources.limits.pids")),
            Some(20)
        );
        assert_eq!(find_line(DOC, &p("volumes.data")), Some(22));
    }

    #[test]
    fn sequence_items() {
        assert_eq!(find_line(DOC, &p("services.web.ports.[0]")), Some(7));
        assert_eq!(
            find_line(DOC, &p("services.web.ports.[1].published")),
            Some(9)
        );
        assert_eq!(find_line(DOC, &p("services.web.ports.[1].target")), Some(8));
        // Sequence at the same indentation as its key.
        assert_eq!(find_line(DOC, &p("services.db.environment.[1]")), Some(16));
    }

    #[test]
    fn missing_is_none() {
        assert_eq!(find_line(DOC, &p("services.cache")), None);
        assert_eq!(find_line(DOC, &p("services.web.image.deeper")), None);
        assert_eq!(find_line(DOC, &p("services.web.ports.[5]")), None);
        // `image` under db is not `image` under web's block.
        assert_eq!(find_line(DOC, &p("services.web.environment")), None);
        assert_eq!(find_line("", &p("a")), None);
    }

    #[test]
    fn nearest_line_of_a_key_that_is_not_written_there() {
        assert_eq!(
            find_nearest_line(DOC, &p("services.web.ports.[1].target")),
            Some((8, true))
        );
        // Merged in from an anchor: the service's line.
        assert_eq!(
            find_nearest_line(DOC, &p("services.web.restart")),
            Some((4, false))
        );
        assert_eq!(find_nearest_line(DOC, &p("nowhere")), None);
    }

    #[test]
    fn keys_with_colons_in_values() {
        let doc = "a:\n  url: http://x:80\n  \"k:v\": 1\n";
        assert_eq!(find_line(doc, &p("a.url")), Some(2));
        assert_eq!(find_line(doc, &["a".into(), "k:v".into()]), Some(3));
    }
}
