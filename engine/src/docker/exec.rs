//! Inside a container: files written into it (the archive API, `docker cp`)
//! and commands run in it (`docker exec`).

use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::query_parameters::UploadToContainerOptionsBuilder;
use futures_util::StreamExt;

use super::Docker;
use crate::{EngineError, ExecOutcome, ExecSpec, FileUpload, Result};

/// How much of an exec's output is kept for its failure message.
const TAIL_BYTES: usize = 2048;

impl Docker {
    /// One tar of the files, extracted at `/`: each entry carries its mode
    /// and owner, which the engine applies (the `copyUIDGID` option would
    /// replace them with the container's user, so it is left off).
    pub(super) async fn upload(&self, id: &str, files: &[FileUpload]) -> Result<()> {
        let what = format!("container {id}");
        let tar = tar_of(files).map_err(|e| EngineError::Other {
            what: what.clone(),
            message: format!("cannot make the archive of its files: {e}"),
        })?;
        let opts = UploadToContainerOptionsBuilder::new().path("/").build();
        self.client
            .upload_to_container(id, Some(opts), bollard::body_full(tar.into()))
            .await
            .map_err(|e| self.err(what, e))
    }

    pub(super) async fn exec_in(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutcome> {
        let what = format!("exec in container {id}");
        let created = self
            .client
            .create_exec(
                id,
                CreateExecOptions {
                    cmd: Some(spec.command.clone()),
                    user: spec.user.clone(),
                    privileged: Some(spec.privileged),
                    working_dir: spec.working_dir.clone(),
                    env: Some(spec.env.clone()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.err(what.clone(), e))?;
        let (mut out, mut err) = (Tail::default(), Tail::default());
        let (mut stdout, mut stderr) = (Head::new(spec.capture), Head::new(spec.capture));
        match self
            .client
            .start_exec(&created.id, None)
            .await
            .map_err(|e| self.err(what.clone(), e))?
        {
            StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    match chunk.map_err(|e| self.err(what.clone(), e))? {
                        bollard::container::LogOutput::StdErr { message } => {
                            err.push(&message);
                            stderr.push(&message);
                        }
                        bollard::container::LogOutput::StdOut { message }
                        | bollard::container::LogOutput::Console { message } => {
                            out.push(&message);
                            stdout.push(&message);
                        }
                        bollard::container::LogOutput::StdIn { .. } => {}
                    }
                }
            }
            StartExecResults::Detached => {}
        }
        let inspected = self
            .client
            .inspect_exec(&created.id)
            .await
            .map_err(|e| self.err(what.clone(), e))?;
        let output_tail = match err.text() {
            e if e.is_empty() => out.text(),
            e => e,
        };
        Ok(ExecOutcome {
            exit_code: inspected.exit_code.unwrap_or(-1),
            output_tail,
            truncated: stdout.truncated || stderr.truncated,
            stdout: stdout.bytes,
            stderr: stderr.bytes,
        })
    }
}

/// The first `limit` bytes of a stream, and whether more came.
struct Head {
    bytes: Vec<u8>,
    limit: usize,
    truncated: bool,
}

impl Head {
    fn new(limit: usize) -> Self {
        Head {
            bytes: Vec::new(),
            limit,
            truncated: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = self.limit - self.bytes.len();
        if chunk.len() > room {
            self.truncated = self.limit > 0;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
}

/// The last [`TAIL_BYTES`] of a stream.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > TAIL_BYTES {
            self.0.drain(..self.0.len() - TAIL_BYTES);
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).trim().to_string()
    }
}

fn tar_of(files: &[FileUpload]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for f in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(f.content.len() as u64);
        h.set_mode(f.mode);
        h.set_uid(f.uid);
        h.set_gid(f.gid);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        b.append_data(&mut h, f.path.trim_start_matches('/'), f.content.as_slice())?;
    }
    b.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tar_carries_path_mode_and_owner() {
        let tar = tar_of(&[FileUpload {
            path: "/run/secrets/token".into(),
            content: b"s3cret".to_vec(),
            mode: 0o440,
            uid: 1000,
            gid: 1001,
        }])
        .unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let mut entries = a.entries().unwrap();
        let e = entries.next().unwrap().unwrap();
        let h = e.header();
        assert_eq!(e.path().unwrap().to_str(), Some("run/secrets/token"));
        assert_eq!(h.mode().unwrap(), 0o440);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (1000, 1001));
        assert_eq!(h.size().unwrap(), 6);
        assert!(entries.next().is_none());
    }

    #[test]
    fn the_head_keeps_the_start_and_says_what_it_dropped() {
        let mut h = Head::new(4);
        h.push(b"ab");
        assert!(!h.truncated);
        h.push(b"cdef");
        h.push(b"g");
        assert_eq!(h.bytes, b"abcd");
        assert!(h.truncated);
        // Nothing asked for: nothing kept, nothing said to be lost.
        let mut none = Head::new(0);
        none.push(b"abc");
        assert!(none.bytes.is_empty() && !none.truncated);
    }

    #[test]
    fn the_tail_keeps_the_end() {
        let mut t = Tail::default();
        t.push(&vec![b'a'; TAIL_BYTES]);
        t.push(b"the reason\n");
        assert!(t.text().ends_with("the reason"));
        assert_eq!(t.0.len(), TAIL_BYTES);
    }
}
