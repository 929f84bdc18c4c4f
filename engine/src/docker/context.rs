//! A build context as a tar stream: the context directory less what
//! `.dockerignore` excludes, plus files from outside it (an outside
//! Dockerfile, the running `turtle` executable) and a Dockerfile given as
//! text (`dockerfile_inline:`, added as [`INLINE_DOCKERFILE`]).
//!
//! [`BuildContext::new`] checks what can be checked before the engine is
//! called (the directory, `.dockerignore`, names added twice);
//! [`stream`] then tars it on a blocking thread into a bounded channel, the
//! body of the engine's `/build` request, so a context is never held whole
//! in memory (at most [`CHUNKS`] chunks of [`CHUNK`] bytes are in flight).
//! A file that cannot be read half-way ends the body with an error, which
//! aborts the request (the engine never builds a truncated context), and the
//! tar's own error, naming the file, is the build's.
//!
//! Regular files are written with the size they had when opened and exactly
//! that many bytes: one that shrinks while it is read is an error, one that
//! grows is cut at its old size, so the archive always stays well-formed.
//! Sparse files are written whole (no GNU sparse entries).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::sync::mpsc;

/// Size of a chunk of the tar sent to the engine.
pub const CHUNK: usize = 64 * 1024;

/// Chunks buffered between the tar thread and the request.
pub const CHUNKS: usize = 4;

/// The name in the tar of a Dockerfile given as text.
pub const INLINE_DOCKERFILE: &str = ".turtle.inline.Dockerfile";

/// Why a build context cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{0} is a socket, which a build context cannot hold: list it in .dockerignore")]
    Socket(PathBuf),
    #[error("{name} is in the build context and also to be added from {host}")]
    Twice { name: String, host: PathBuf },
    #[error(
        "{0} is in the build context, where the inline Dockerfile is to be added: rename or .dockerignore it"
    )]
    InlineTwice(PathBuf),
    #[error("sending the build context to the engine failed: {0}")]
    Send(io::Error),
}

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

/// A build context checked and ready to be tarred.
#[derive(Debug)]
pub struct BuildContext {
    dir: PathBuf,
    rules: Vec<IgnoreRule>,
    /// The Dockerfile's name in the tar, as the engine is to be told.
    dockerfile: String,
    /// A Dockerfile outside the context, added as `.turtle.Dockerfile`.
    outside_dockerfile: Option<PathBuf>,
    /// A Dockerfile given as text, added as [`INLINE_DOCKERFILE`].
    inline_dockerfile: Option<String>,
    files: Vec<(String, PathBuf)>,
}

impl BuildContext {
    /// Reads `context`'s `.dockerignore` (see the module documentation for
    /// the patterns supported) and checks the files to add from outside:
    /// a name already in the context is refused, so a context never silently
    /// differs from its directory. The Dockerfile and `.dockerignore` are
    /// always included, as the docker CLI does; a Dockerfile outside the
    /// context is added as `.turtle.Dockerfile`.
    pub fn new(
        context: &Path,
        dockerfile: &str,
        files: &[(String, PathBuf)],
    ) -> Result<BuildContext, ContextError> {
        if !context.is_dir() {
            return Err(ContextError::NotADirectory(context.to_path_buf()));
        }
        let rules = read_dockerignore(context).map_err(|source| ContextError::Read {
            path: context.join(".dockerignore"),
            source,
        })?;
        let df_path = context.join(dockerfile);
        let (df_rel, outside_dockerfile) = match df_path.strip_prefix(context) {
            Ok(rel) if !dockerfile.split('/').any(|s| s == "..") => {
                (rel.to_string_lossy().replace('\\', "/"), None)
            }
            _ => (".turtle.Dockerfile".to_string(), Some(df_path.clone())),
        };
        for (name, host) in files {
            if context.join(name).exists() {
                return Err(ContextError::Twice {
                    name: name.clone(),
                    host: host.clone(),
                });
            }
        }
        Ok(BuildContext {
            dir: context.to_path_buf(),
            rules,
            dockerfile: df_rel,
            outside_dockerfile,
            inline_dockerfile: None,
            files: files.to_vec(),
        })
    }

    /// Builds from `text` instead of a Dockerfile file: it is added to the
    /// tar as [`INLINE_DOCKERFILE`], which must not be in the context (a
    /// context never silently differs from its directory) unless
    /// `.dockerignore` leaves it out.
    pub fn with_inline_dockerfile(mut self, text: String) -> Result<BuildContext, ContextError> {
        let there = self.dir.join(INLINE_DOCKERFILE);
        if there.exists() && !is_ignored(&self.rules, INLINE_DOCKERFILE) {
            return Err(ContextError::InlineTwice(there));
        }
        self.dockerfile = INLINE_DOCKERFILE.to_string();
        self.outside_dockerfile = None;
        self.inline_dockerfile = Some(text);
        Ok(self)
    }

    /// The Dockerfile's path in the tar, to pass to the engine.
    pub fn dockerfile(&self) -> &str {
        &self.dockerfile
    }

    /// Writes the tar to `out`, returning it.
    pub fn write_to<W: Write>(&self, out: W) -> Result<W, ContextError> {
        let mut builder = tar::Builder::new(Tracked {
            inner: out,
            failed: false,
        });
        builder.follow_symlinks(false);
        builder.sparse(false);
        let has_exceptions = self.rules.iter().any(|r| r.exception);
        let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
        while let Some(dir) = stack.pop() {
            let host_dir = self.dir.join(&dir);
            let read_err = |source| ContextError::Read {
                path: host_dir.clone(),
                source,
            };
            let mut entries: Vec<_> = std::fs::read_dir(&host_dir)
                .and_then(|d| d.collect::<io::Result<Vec<_>>>())
                .map_err(read_err)?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let rel = dir.join(entry.file_name());
                let rel_str = rel.to_string_lossy().replace('\\', "/");
                if self.inline_dockerfile.is_some() && rel_str == INLINE_DOCKERFILE {
                    // Ignored (checked in `with_inline_dockerfile`): the text replaces it.
                    continue;
                }
                let always = rel_str == self.dockerfile || rel_str == ".dockerignore";
                let ignored = !always && is_ignored(&self.rules, &rel_str);
                let host = entry.path();
                let ft = entry.file_type().map_err(|source| ContextError::Read {
                    path: host.clone(),
                    source,
                })?;
                if ft.is_dir() {
                    if !ignored {
                        builder
                            .append_dir(&rel, &host)
                            .map_err(|e| entry_error(&builder, &host, e))?;
                    }
                    // Exceptions may re-include something under an ignored directory.
                    if !ignored || has_exceptions {
                        stack.push(rel);
                    }
                } else if ignored {
                } else if ft.is_file() {
                    append_file(&mut builder, &rel, &host, Meta::Complete)?;
                } else if std::os::unix::fs::FileTypeExt::is_socket(&ft) {
                    return Err(ContextError::Socket(host));
                } else {
                    // Symbolic links (as links), FIFOs, devices.
                    builder
                        .append_path_with_name(&host, &rel)
                        .map_err(|e| entry_error(&builder, &host, e))?;
                }
            }
        }
        if let Some(path) = &self.outside_dockerfile {
            append_file(
                &mut builder,
                Path::new(&self.dockerfile),
                path,
                Meta::Mode(0o644),
            )?;
        }
        if let Some(text) = &self.inline_dockerfile {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(text.len() as u64);
            builder
                .append_data(&mut header, INLINE_DOCKERFILE, text.as_bytes())
                .map_err(ContextError::Send)?;
        }
        // Files from outside (the turtle executable), with a plain header: the
        // mode and modification time of the file, owned by root.
        for (name, host) in &self.files {
            append_file(&mut builder, Path::new(name), host, Meta::Plain)?;
        }
        let mut tracked = builder.into_inner().map_err(ContextError::Send)?;
        tracked.flush().map_err(ContextError::Send)?;
        Ok(tracked.inner)
    }
}

/// Tars `context` on a blocking thread: the bytes as a body for the engine,
/// and the tar's outcome. A failed tar ends the body with an error, so the
/// request is aborted rather than finished short; when the body is dropped
/// (the engine answered early, the caller left) the thread stops with
/// [`ContextError::Send`].
pub fn stream(
    context: BuildContext,
) -> (
    impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    tokio::task::JoinHandle<Result<(), ContextError>>,
) {
    let (tx, rx) = mpsc::channel(CHUNKS);
    let task = tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter {
            tx: tx.clone(),
            buf: BytesMut::with_capacity(CHUNK),
        };
        let outcome = context.write_to(writer).map(drop);
        if let Err(e) = &outcome {
            let _ = tx.blocking_send(Err(io::Error::other(format!(
                "the build context is incomplete: {e}"
            ))));
        }
        outcome
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), task)
}

/// A writer that remembers whether writing to it failed, to tell an entry
/// that cannot be read from a sink that stopped taking bytes.
struct Tracked<W> {
    inner: W,
    failed: bool,
}

impl<W: Write> Write for Tracked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|_| self.failed = true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// The error of appending the entry at `host`: the sink's, or the entry's.
fn entry_error<W: Write>(
    builder: &tar::Builder<Tracked<W>>,
    host: &Path,
    e: io::Error,
) -> ContextError {
    if builder.get_ref().failed {
        ContextError::Send(e)
    } else {
        ContextError::Read {
            path: host.to_path_buf(),
            source: e,
        }
    }
}

/// How the header of a regular file is filled.
#[derive(Debug, Clone, Copy)]
enum Meta {
    /// Mode, owner and mtime from the file (as the tar crate does).
    Complete,
    /// Mode and mtime from the file, owned by root.
    Plain,
    /// This mode, the file's mtime, owned by root.
    Mode(u32),
}

/// Appends the regular file at `host` as `name`, exactly the size it had
/// when opened (a plain header: the tar crate would write a sparse file,
/// such as a linker's output, as a GNU sparse entry).
fn append_file<W: Write>(
    builder: &mut tar::Builder<Tracked<W>>,
    name: &Path,
    host: &Path,
    meta_from: Meta,
) -> Result<(), ContextError> {
    let read_err = |source| ContextError::Read {
        path: host.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(host).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    let mut header = tar::Header::new_gnu();
    let mode = match meta_from {
        Meta::Complete => None,
        Meta::Plain => Some(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777),
        Meta::Mode(m) => Some(m),
    };
    match mode {
        None => header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete),
        Some(mode) => {
            header.set_mode(mode);
            header.set_mtime(
                meta.modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs()),
            );
        }
    }
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(meta.len());
    let data = Exact {
        inner: file.take(meta.len()),
        len: meta.len(),
        left: meta.len(),
    };
    builder
        .append_data(&mut header, name, data)
        .map_err(|e| entry_error(builder, host, e))
}

/// Reads exactly `len` bytes: fewer (the file shrank) is an error.
struct Exact<R> {
    inner: R,
    len: u64,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "it shrank from {} to {} bytes while it was read: build again once nothing \
                     writes to it",
                    self.len,
                    self.len - self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Sends what is written as chunks of about [`CHUNK`] bytes, waiting while
/// the channel is full.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole tar in memory, and the Dockerfile's name in it.
    fn tar_context(
        context: &Path,
        dockerfile: &str,
        files: &[(String, PathBuf)],
    ) -> Result<(Vec<u8>, String), ContextError> {
        let c = BuildContext::new(context, dockerfile, files)?;
        Ok((c.write_to(Vec::new())?, c.dockerfile().to_string()))
    }

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
    fn a_file_that_shrinks_while_read_is_an_error_and_one_that_grows_is_cut() {
        let mut shrank = Exact {
            inner: &b"abc"[..],
            len: 5,
            left: 5,
        };
        let e = io::copy(&mut shrank, &mut io::sink()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("shrank from 5 to 3 bytes"), "{e}");
        let mut grew = Exact {
            inner: (&b"abcdef"[..]).take(5),
            len: 5,
            left: 5,
        };
        let mut out = Vec::new();
        io::copy(&mut grew, &mut out).unwrap();
        assert_eq!(out, b"abcde");
    }

    #[test]
    fn a_file_added_twice_and_a_missing_directory_are_refused_before_tarring() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("turtle"), "in the context").unwrap();
        let e = BuildContext::new(
            dir.path(),
            "Dockerfile",
            &[("turtle".to_string(), PathBuf::from("/usr/bin/turtle"))],
        )
        .unwrap_err();
        assert!(matches!(e, ContextError::Twice { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("also to be added from /usr/bin/turtle"),
            "{e}"
        );
        let e = BuildContext::new(&dir.path().join("nope"), "Dockerfile", &[]).unwrap_err();
        assert!(matches!(e, ContextError::NotADirectory(_)), "{e}");
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

    #[test]
    fn tar_adds_an_inline_dockerfile_under_its_own_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM on-disk\n").unwrap();
        let text = "FROM scratch\nCOPY a.txt /\n".to_string();
        let c = BuildContext::new(dir.path(), "Dockerfile", &[])
            .unwrap()
            .with_inline_dockerfile(text.clone())
            .unwrap();
        assert_eq!(c.dockerfile(), INLINE_DOCKERFILE);
        let tar = c.write_to(Vec::new()).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut found = None;
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy() == INLINE_DOCKERFILE {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                found = Some(s);
            }
        }
        assert_eq!(found.as_deref(), Some(text.as_str()));

        // A file of that name in the context is refused, unless ignored.
        std::fs::write(dir.path().join(INLINE_DOCKERFILE), "mine").unwrap();
        let e = BuildContext::new(dir.path(), "Dockerfile", &[])
            .unwrap()
            .with_inline_dockerfile(text.clone())
            .unwrap_err();
        assert!(matches!(e, ContextError::InlineTwice(_)), "{e}");
        std::fs::write(dir.path().join(".dockerignore"), INLINE_DOCKERFILE).unwrap();
        let c = BuildContext::new(dir.path(), "Dockerfile", &[])
            .unwrap()
            .with_inline_dockerfile(text)
            .unwrap();
        let tar = c.write_to(Vec::new()).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let n = archive
            .entries()
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().unwrap().to_string_lossy() == INLINE_DOCKERFILE)
            .count();
        assert_eq!(n, 1, "the inline text only");
    }
}
