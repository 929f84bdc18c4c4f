//! A build context as a tar: the context directory less what
//! `.dockerignore` excludes, plus files from outside it (an outside
//! Dockerfile, the running `turtle` executable).

use std::io;
use std::path::{Path, PathBuf};

/// One `.dockerignore` rule.
#[derive(Debug, Clone)]
struct IgnoreRule {
    /// Path segments of the pattern (`**` allowed as a whole segment).
    segments: Vec<String>,
    /// `!pattern`: re-includes what earlier rules excluded.
    exception: bool,
}

/// The rules of `<context>/.dockerignore` (none when the file is missing).
fn read_dockerignore(context: &Path) -> io::Result<Vec<IgnoreRule>> {
    let text = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    Ok(parse_dockerignore(&text))
}

fn parse_dockerignore(text: &str) -> Vec<IgnoreRule> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (exception, pat) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let segments: Vec<String> = pat
                .split('/')
                .filter(|s| !s.is_empty() && *s != ".")
                .map(str::to_string)
                .collect();
            (!segments.is_empty()).then_some(IgnoreRule {
                segments,
                exception,
            })
        })
        .collect()
}

/// Glob match of one path segment: `*` any run of characters, `?` one.
fn segment_match(pat: &[char], s: &[char]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| segment_match(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && segment_match(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && segment_match(rest, &s[1..]),
    }
}

/// Match of a whole pattern against whole path segments (`**` spans any number).
fn path_match(pat: &[String], path: &[&str]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => (0..=path.len()).any(|i| path_match(rest, &path[i..])),
        Some((p, rest)) => {
            !path.is_empty()
                && segment_match(
                    &p.chars().collect::<Vec<_>>(),
                    &path[0].chars().collect::<Vec<_>>(),
                )
                && path_match(rest, &path[1..])
        }
    }
}

/// Whether `.dockerignore` excludes `rel` (a `/`-separated path): the last
/// rule matching the path or one of its parent directories decides.
fn is_ignored(rules: &[IgnoreRule], rel: &str) -> bool {
    let segs: Vec<&str> = rel.split('/').collect();
    let mut ignored = false;
    for r in rules {
        if (1..=segs.len()).any(|n| path_match(&r.segments, &segs[..n])) {
            ignored = !r.exception;
        }
    }
    ignored
}

/// Tars `context` in memory, honouring its `.dockerignore` (see the module
/// documentation for the patterns supported). The Dockerfile and
/// `.dockerignore` are always included, as the docker CLI does. A Dockerfile
/// outside the context is added as `.turtle.Dockerfile`. Returns the archive
/// and the Dockerfile name to pass to the engine.
pub fn tar_context(
    context: &Path,
    dockerfile: &str,
    files: &[(String, PathBuf)],
) -> io::Result<(Vec<u8>, String)> {
    if !context.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", context.display()),
        ));
    }
    let rules = read_dockerignore(context)?;
    let df_path = context.join(dockerfile);
    let (df_rel, df_outside) = match df_path.strip_prefix(context) {
        Ok(rel) if !dockerfile.split('/').any(|s| s == "..") => {
            (rel.to_string_lossy().replace('\\', "/"), None)
        }
        _ => (".turtle.Dockerfile".to_string(), Some(df_path.clone())),
    };
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let has_exceptions = rules.iter().any(|r| r.exception);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> =
            std::fs::read_dir(context.join(&dir))?.collect::<io::Result<Vec<_>>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = dir.join(entry.file_name());
            let rel_str = rel.to_string_lossy().replace('\\', "/");
            let always = rel_str == df_rel || rel_str == ".dockerignore";
            let ignored = !always && is_ignored(&rules, &rel_str);
            let ft = entry.file_type()?;
            if ft.is_dir() {
                if !ignored {
                    builder.append_dir(&rel, entry.path())?;
                }
                // Exceptions may re-include something under an ignored directory.
                if !ignored || has_exceptions {
                    stack.push(rel);
                }
            } else if !ignored {
                builder.append_path_with_name(entry.path(), &rel)?;
            }
        }
    }
    if let Some(path) = df_outside {
        let data = std::fs::read(&path)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, &df_rel, data.as_slice())?;
    }
    // Files from outside (the turtle executable): a name already in the
    // context is refused, so a context never silently differs from its directory.
    for (name, host) in files {
        if context.join(name).exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{name} is in the build context and also to be added from {}",
                    host.display()
                ),
            ));
        }
        // A plain header: the tar crate writes a (possibly sparse) linker
        // output as a GNU sparse entry, which the engine cannot unpack.
        let mut add = || -> io::Result<()> {
            let file = std::fs::File::open(host)?;
            let meta = file.metadata()?;
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            header.set_mode(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777);
            header.set_mtime(
                meta.modified()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            );
            builder.append_data(&mut header, name, file)
        };
        add()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot add {}: {e}", host.display())))?;
    }
    Ok((builder.into_inner()?, df_rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns() {
        let rules = parse_dockerignore(
            "# comment\n*.log\n/target\n**/node_modules\n!keep.log\nsecret?\ndocs/*.md\n",
        );
        assert!(is_ignored(&rules, "a.log"));
        assert!(!is_ignored(&rules, "keep.log"));
        assert!(
            !is_ignored(&rules, "sub/a.log"),
            "*.log is anchored at the root"
        );
        assert!(is_ignored(&rules, "target"));
        assert!(is_ignored(&rules, "target/debug/x"));
        assert!(is_ignored(&rules, "node_modules/x.js"));
        assert!(is_ignored(&rules, "a/b/node_modules/x.js"));
        assert!(is_ignored(&rules, "secret1"));
        assert!(!is_ignored(&rules, "secret12"));
        assert!(is_ignored(&rules, "docs/a.md"));
        assert!(!is_ignored(&rules, "docs/sub/a.md"));
        assert!(!is_ignored(&rules, "src/main.rs"));
    }

    #[test]
    fn tar_honours_dockerignore_and_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(
            d.join(".dockerignore"),
            "*.tmp\nDockerfile\nbuild\n!build/keep\n",
        )
        .unwrap();
        std::fs::write(d.join("a.txt"), "a").unwrap();
        std::fs::write(d.join("b.tmp"), "b").unwrap();
        std::fs::create_dir_all(d.join("build/x")).unwrap();
        std::fs::write(d.join("build/x/junk"), "j").unwrap();
        std::fs::write(d.join("build/keep"), "k").unwrap();
        std::fs::create_dir_all(d.join("src")).unwrap();
        std::fs::write(d.join("src/lib.rs"), "").unwrap();
        let (tar, df) = tar_context(d, "Dockerfile", &[]).unwrap();
        assert_eq!(df, "Dockerfile");
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "a.txt",
                "build/keep",
                "src",
                "src/lib.rs"
            ]
        );
    }

    #[test]
    fn tar_adds_an_outside_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(dir.path().join("Other.Dockerfile"), "FROM scratch\n").unwrap();
        let (tar, df) = tar_context(&ctx, "../Other.Dockerfile", &[]).unwrap();
        assert_eq!(df, ".turtle.Dockerfile");
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, [".turtle.Dockerfile"]);
    }
}
