//! The build context: the request body, written to a temp file before the
//! engine sees it.
//!
//! Spooling first means a context that is too large is refused with a real
//! 413 before the response starts, a client that stops half-way never reaches
//! the engine, and a build waiting for a slot does not hold the client's
//! upload open. The file is unnamed (`O_TMPFILE` or unlinked at once, under
//! `TMPDIR`), so the kernel frees it when the build is done or the process
//! dies. The bytes go to the engine as they came: a plain or compressed tar
//! (the engine detects gzip, bzip2 and xz itself).

use std::io::{self, SeekFrom};
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use turtle_units::ByteSize;

/// Size of the chunks read back for the engine.
const CHUNK: usize = 64 * 1024;

/// A received build context.
#[derive(Debug)]
pub struct Context {
    file: tokio::fs::File,
    len: u64,
}

/// Why a context is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "the build context is larger than the builder's limit of {limit}: leave out what the \
         build does not need (a .dockerignore helps), or raise the builder's --max-context"
    )]
    TooLarge { limit: ByteSize },
    #[error(
        "the request body is empty: send the build context as a tar \
         (Content-Type: application/x-tar; gzip'd is fine)"
    )]
    Empty,
    #[error("reading the build context from the request failed: {0}: send it again")]
    Read(String),
    #[error(
        "cannot store the build context in {dir}: {source}: free disk space there, \
         or point the builder's TMPDIR at a larger disk"
    )]
    Write { dir: PathBuf, source: io::Error },
}

/// Refuses a body whose declared length is over `limit` before reading it.
pub fn check_declared(content_length: Option<u64>, limit: ByteSize) -> Result<(), SpoolError> {
    match content_length {
        Some(n) if n > limit.0 => Err(SpoolError::TooLarge { limit }),
        _ => Ok(()),
    }
}

/// Writes `body` to a temp file, refusing more than `limit` bytes.
pub async fn spool<S, E>(body: S, limit: ByteSize) -> Result<Context, SpoolError>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let dir = std::env::temp_dir();
    let write_err = |source| SpoolError::Write {
        dir: dir.clone(),
        source,
    };
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| write_err(io::Error::other(e)))?
        .map_err(write_err)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut len: u64 = 0;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| SpoolError::Read(e.to_string()))?;
        len += chunk.len() as u64;
        if len > limit.0 {
            return Err(SpoolError::TooLarge { limit });
        }
        file.write_all(&chunk).await.map_err(write_err)?;
    }
    if len == 0 {
        return Err(SpoolError::Empty);
    }
    file.flush().await.map_err(write_err)?;
    file.seek(SeekFrom::Start(0)).await.map_err(write_err)?;
    Ok(Context { file, len })
}

impl Context {
    /// The context's size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true: an empty body is refused.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, read back in chunks.
    pub fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures_util::stream::try_unfold(self.file, |mut f| async move {
            let mut buf = BytesMut::with_capacity(CHUNK);
            let n = f.read_buf(&mut buf).await?;
            Ok::<_, io::Error>((n > 0).then(|| (buf.freeze(), f)))
        })
        .into_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, io::Error>> {
        futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
    }

    async fn read_back(c: Context) -> Vec<u8> {
        c.into_stream()
            .try_fold(Vec::new(), |mut v, b| async move {
                v.extend_from_slice(&b);
                Ok(v)
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_body_up_to_the_limit_is_kept_whole() {
        let c = spool(body(&[b"abc", b"", b"defg"]), ByteSize(7))
            .await
            .unwrap();
        assert_eq!(c.len(), 7);
        assert_eq!(read_back(c).await, b"abcdefg");
    }

    #[tokio::test]
    async fn a_large_body_reads_back_in_several_chunks() {
        let big: &'static [u8] = Box::leak(vec![7u8; 3 * CHUNK + 5].into_boxed_slice());
        let c = spool(body(&[big]), ByteSize(1 << 20)).await.unwrap();
        let chunks: Vec<Bytes> = c.into_stream().try_collect().await.unwrap();
        assert!(chunks.len() >= 4);
        assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), big.len());
    }

    #[tokio::test]
    async fn one_byte_over_the_limit_is_refused() {
        let e = spool(body(&[b"abc", b"defgh"]), ByteSize(7))
            .await
            .unwrap_err();
        assert!(matches!(e, SpoolError::TooLarge { limit: ByteSize(7) }));
        assert!(e.to_string().contains("--max-context"));
        assert!(matches!(
            check_declared(Some(8), ByteSize(7)),
            Err(SpoolError::TooLarge { .. })
        ));
        assert!(check_declared(Some(7), ByteSize(7)).is_ok());
        assert!(check_declared(None, ByteSize(7)).is_ok());
    }

    #[tokio::test]
    async fn an_empty_body_and_a_broken_upload_are_refused() {
        let e = spool(body(&[]), ByteSize(7)).await.unwrap_err();
        assert!(matches!(e, SpoolError::Empty));
        let broken = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(io::Error::other("connection reset")),
        ]);
        let e = spool(broken, ByteSize(7)).await.unwrap_err();
        assert!(matches!(e, SpoolError::Read(ref m) if m.contains("connection reset")));
    }
}
