//! The build context: the request body, unpacked and written to a temp file
//! before the engine sees it, bounded by its real size.
//!
//! Spooling first means a context that is too large is refused with a real
//! 413 before the response starts, and a client that stops half-way never
//! reaches the engine. The request has its build slot before it gets here
//! (see [`crate::slots`]), so at most `--max-builds` contexts are on disk.
//!
//! **The limit counts the tar the engine unpacks**, not the bytes on the wire:
//! a gzip'd body is decompressed as it arrives, and the spool file holds the
//! plain tar, which is what the engine gets. So a gzip bomb (a small body that
//! inflates to far more) is refused once its output passes `--max-context`,
//! and nothing beyond the limit is ever written; the bytes received count
//! against the same limit. The engine decompresses what it is sent again, and
//! would do so for bzip2, xz and zstd too, so a body or an unpacked stream
//! that starts like one of those (Docker's own detection, by magic bytes) is
//! refused with 415: only a plain tar, or one gzip'd once, is accepted.
//!
//! The file is unnamed (`O_TMPFILE` or unlinked at once) under the spool
//! directory (`--spool-dir`, default `TMPDIR`), so the kernel frees it when the
//! build is done or the process dies. Decompression and writing run on a
//! blocking thread fed through a small bounded channel; memory stays a few
//! hundred KiB per upload.

use std::io::{self, BufWriter, Read, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use turtle_units::ByteSize;

/// Size of the chunks read back for the engine, and of the unpacking buffer.
const CHUNK: usize = 64 * 1024;

/// Body chunks buffered between the request and the unpacking thread.
const CHANNEL: usize = 8;

/// Bytes enough to recognise every compression the engine detects.
const MAGIC_LEN: usize = 6;

/// Where contexts are spooled, how large they may be, and how many there are.
#[derive(Debug, Clone)]
pub struct Spooler {
    dir: PathBuf,
    limit: ByteSize,
    gauge: Arc<Gauge>,
}

/// Spool files now and at most, for the logs and the tests.
#[derive(Debug, Default)]
struct Gauge {
    live: AtomicUsize,
    peak: AtomicUsize,
    peak_bytes: AtomicU64,
}

/// A view of a [`Spooler`]'s counters.
#[derive(Debug, Clone)]
pub struct SpoolStats(Arc<Gauge>);

impl SpoolStats {
    /// Contexts on disk now.
    pub fn live(&self) -> usize {
        self.0.live.load(Ordering::SeqCst)
    }

    /// The most contexts that were on disk at once.
    pub fn peak(&self) -> usize {
        self.0.peak.load(Ordering::SeqCst)
    }

    /// The most bytes one spool file held (refused ones included).
    pub fn peak_bytes(&self) -> u64 {
        self.0.peak_bytes.load(Ordering::SeqCst)
    }
}

/// One spool file counted as live until dropped.
#[derive(Debug)]
struct Live(Arc<Gauge>);

impl Live {
    fn new(gauge: &Arc<Gauge>) -> Live {
        let now = gauge.live.fetch_add(1, Ordering::SeqCst) + 1;
        gauge.peak.fetch_max(now, Ordering::SeqCst);
        Live(gauge.clone())
    }

    fn wrote(&self, len: u64) {
        self.0.peak_bytes.fetch_max(len, Ordering::SeqCst);
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A received build context: a plain tar.
#[derive(Debug)]
pub struct Context {
    file: tokio::fs::File,
    len: u64,
    received: u64,
    _live: Live,
}

/// Why a context is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "the build context is larger than the builder's limit of {limit} (counted as the tar \
         the engine unpacks, uncompressed): leave out what the build does not need (a \
         .dockerignore helps), or raise the builder's --max-context"
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
        "the build context is compressed with {format}: send it as a plain tar, or gzip'd \
         (Content-Type: application/x-tar)"
    )]
    Compressed { format: &'static str },
    #[error(
        "the build context is compressed twice (gzip around {format}): send a tar gzip'd once \
         at most"
    )]
    CompressedTwice { format: &'static str },
    #[error("the build context is not valid gzip: {0}: send a plain tar, or one gzip'd whole")]
    Gzip(String),
    #[error(
        "cannot store the build context in {dir}: {source}: free disk space there, \
         or point the builder's --spool-dir at a larger disk"
    )]
    Write { dir: PathBuf, source: io::Error },
}

impl Spooler {
    /// Spools to `dir`, refusing contexts over `limit`.
    pub fn new(dir: PathBuf, limit: ByteSize) -> Spooler {
        Spooler {
            dir,
            limit,
            gauge: Arc::default(),
        }
    }

    /// The largest context accepted (the uncompressed tar).
    pub fn limit(&self) -> ByteSize {
        self.limit
    }

    /// Where contexts are spooled.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The counters: contexts on disk now and at most.
    pub fn stats(&self) -> SpoolStats {
        SpoolStats(self.gauge.clone())
    }

    /// Refuses a body whose declared length is over the limit before reading it.
    pub fn check_declared(&self, content_length: Option<u64>) -> Result<(), SpoolError> {
        match content_length {
            Some(n) if n > self.limit.0 => Err(SpoolError::TooLarge { limit: self.limit }),
            _ => Ok(()),
        }
    }

    /// Unpacks `body` to a temp file: at most the limit, received or unpacked.
    /// A refused body is left where reading it stopped.
    pub async fn spool<S, E>(&self, body: &mut S) -> Result<Context, SpoolError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let write_err = |source| SpoolError::Write {
            dir: self.dir.clone(),
            source,
        };
        let dir = self.dir.clone();
        let file = tokio::task::spawn_blocking(move || tempfile::tempfile_in(dir))
            .await
            .map_err(|e| write_err(io::Error::other(e)))?
            .map_err(write_err)?;
        let live = Live::new(&self.gauge);
        let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL);
        let unpacking = tokio::task::spawn_blocking({
            let (limit, dir, live) = (self.limit, self.dir.clone(), live);
            move || {
                let out = unpack(ChannelReader::new(rx), file, limit, &dir, &live);
                (out, live)
            }
        });
        let mut received: u64 = 0;
        let mut refused = None;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    refused = Some(SpoolError::Read(e.to_string()));
                    break;
                }
            };
            received += chunk.len() as u64;
            if received > self.limit.0 {
                refused = Some(SpoolError::TooLarge { limit: self.limit });
                break;
            }
            if tx.send(chunk).await.is_err() {
                // The unpacking stopped; its error says why.
                break;
            }
        }
        drop(tx);
        let (unpacked, live) = unpacking
            .await
            .map_err(|e| write_err(io::Error::other(e)))?;
        if let Some(e) = refused {
            return Err(e);
        }
        let (file, len) = unpacked?;
        if len == 0 {
            return Err(SpoolError::Empty);
        }
        let mut file = tokio::fs::File::from_std(file);
        file.seek(SeekFrom::Start(0)).await.map_err(write_err)?;
        Ok(Context {
            file,
            len,
            received,
            _live: live,
        })
    }
}

/// Sniffs `input` (gzip or plain), unpacks it into `file`, refusing output
/// over `limit` before writing it and output that is still compressed.
fn unpack(
    mut input: ChannelReader,
    file: std::fs::File,
    limit: ByteSize,
    dir: &Path,
    live: &Live,
) -> Result<(std::fs::File, u64), SpoolError> {
    let write_err = |source| SpoolError::Write {
        dir: dir.to_path_buf(),
        source,
    };
    let head = input.peek(MAGIC_LEN);
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let mut source: Box<dyn Read + Send> = if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let mut out = BufWriter::with_capacity(CHUNK, file);
    let mut buf = vec![0u8; CHUNK];
    let mut first = Vec::with_capacity(MAGIC_LEN);
    let mut len: u64 = 0;
    loop {
        let n = match source.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The channel never fails: a read error is the decoder's.
            Err(e) => return Err(SpoolError::Gzip(e.to_string())),
        };
        if n == 0 {
            break;
        }
        if len + n as u64 > limit.0 {
            return Err(SpoolError::TooLarge { limit });
        }
        if first.len() < MAGIC_LEN {
            let take = n.min(MAGIC_LEN - first.len());
            first.extend_from_slice(&buf[..take]);
            if first.len() == MAGIC_LEN {
                refuse_compressed(&first, gzip)?;
            }
        }
        out.write_all(&buf[..n]).map_err(write_err)?;
        len += n as u64;
        live.wrote(len);
    }
    refuse_compressed(&first, gzip)?;
    let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
    Ok((file, len))
}

/// Refuses a stream the engine would decompress (again): the magic bytes
/// Docker's `DetectCompression` looks for, and zstd's skippable frames.
fn refuse_compressed(head: &[u8], unpacked: bool) -> Result<(), SpoolError> {
    let format = if head.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if head.starts_with(b"BZh") {
        "bzip2"
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        "xz"
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18])
    {
        "zstd"
    } else {
        return Ok(());
    };
    Err(if unpacked {
        SpoolError::CompressedTwice { format }
    } else {
        SpoolError::Compressed { format }
    })
}

/// The body's chunks as a blocking reader; the end of the channel is the end
/// of the body.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Bytes>) -> ChannelReader {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }

    /// Up to `n` first bytes, without consuming them (fewer at the end).
    fn peek(&mut self, n: usize) -> Bytes {
        while self.cur.len() < n {
            let Some(next) = self.rx.blocking_recv() else {
                break;
            };
            let mut joined = BytesMut::from(&self.cur[..]);
            joined.extend_from_slice(&next);
            self.cur = joined.freeze();
        }
        self.cur.slice(..self.cur.len().min(n))
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => self.cur = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

impl Context {
    /// The context's size in bytes: the plain tar the engine gets.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Never true: an empty body is refused.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes received (less than [`Context::len`] when gzip'd).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The bytes, read back in chunks; the spool file is counted until the
    /// stream is dropped.
    pub fn into_stream(self) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        let Context { file, _live, .. } = self;
        futures_util::stream::try_unfold((file, _live), |(mut f, live)| async move {
            let mut buf = BytesMut::with_capacity(CHUNK);
            let n = f.read_buf(&mut buf).await?;
            Ok::<_, io::Error>((n > 0).then(|| (buf.freeze(), (f, live))))
        })
        .into_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: &[&[u8]]) -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin + use<> {
        futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        )
    }

    fn spooler(limit: u64) -> (tempfile::TempDir, Spooler) {
        let dir = tempfile::tempdir().unwrap();
        let s = Spooler::new(dir.path().to_path_buf(), ByteSize(limit));
        (dir, s)
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

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test]
    async fn a_body_up_to_the_limit_is_kept_whole() {
        let (_d, s) = spooler(7);
        let c = s.spool(&mut body(&[b"abc", b"", b"defg"])).await.unwrap();
        assert_eq!((c.len(), c.received()), (7, 7));
        assert_eq!(s.stats().live(), 1);
        assert_eq!(read_back(c).await, b"abcdefg");
        assert_eq!(s.stats().live(), 0);
    }

    #[tokio::test]
    async fn a_large_body_reads_back_in_several_chunks() {
        let (_d, s) = spooler(1 << 20);
        let big = vec![7u8; 3 * CHUNK + 5];
        let c = s.spool(&mut body(&[&big])).await.unwrap();
        let chunks: Vec<Bytes> = c.into_stream().try_collect().await.unwrap();
        assert!(chunks.len() >= 4);
        assert_eq!(chunks.iter().map(Bytes::len).sum::<usize>(), big.len());
    }

    #[tokio::test]
    async fn one_byte_over_the_limit_is_refused() {
        let (_d, s) = spooler(7);
        let e = s.spool(&mut body(&[b"abc", b"defgh"])).await.unwrap_err();
        assert!(matches!(e, SpoolError::TooLarge { limit: ByteSize(7) }));
        assert!(e.to_string().contains("--max-context"));
        assert!(matches!(
            s.check_declared(Some(8)),
            Err(SpoolError::TooLarge { .. })
        ));
        assert!(s.check_declared(Some(7)).is_ok());
        assert!(s.check_declared(None).is_ok());
        assert_eq!(s.stats().live(), 0, "a refused spool file is gone");
    }

    #[tokio::test]
    async fn an_empty_body_and_a_broken_upload_are_refused() {
        let (_d, s) = spooler(7);
        let e = s.spool(&mut body(&[])).await.unwrap_err();
        assert!(matches!(e, SpoolError::Empty));
        let broken = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(io::Error::other("connection reset")),
        ]);
        let e = s.spool(&mut broken.boxed()).await.unwrap_err();
        assert!(matches!(e, SpoolError::Read(ref m) if m.contains("connection reset")));
    }

    #[tokio::test]
    async fn gzip_is_unpacked_and_counted_by_what_it_unpacks_to() {
        let (_d, s) = spooler(4096);
        let tar = vec![b'x'; 4096];
        let packed = gzip(&tar);
        // In small pieces, so the magic bytes arrive split.
        let pieces: Vec<&[u8]> = packed.chunks(3).collect();
        let c = s.spool(&mut body(&pieces)).await.unwrap();
        assert_eq!((c.len(), c.received()), (4096, packed.len() as u64));
        assert_eq!(read_back(c).await, tar);
        // Two members are one stream, as the engine reads them.
        let two = [gzip(b"abc"), gzip(b"def")].concat();
        let c = s.spool(&mut body(&[&two])).await.unwrap();
        assert_eq!(read_back(c).await, b"abcdef");
    }

    #[tokio::test]
    async fn a_gzip_bomb_is_refused_without_writing_past_the_limit() {
        let (_d, s) = spooler(1 << 20);
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let e = s.spool(&mut body(&[&bomb])).await.unwrap_err();
        assert!(matches!(e, SpoolError::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("1 MiB"), "{e}");
        assert!(
            s.stats().peak_bytes() <= 1 << 20,
            "{}",
            s.stats().peak_bytes()
        );
        assert_eq!(s.stats().live(), 0);
    }

    #[tokio::test]
    async fn other_compressions_and_gzip_twice_are_415_material() {
        let (_d, s) = spooler(1 << 20);
        for (data, want) in [
            (b"BZh91AY&SY".to_vec(), "bzip2"),
            (vec![0xfd, b'7', b'z', b'X', b'Z', 0, 0], "xz"),
            (vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0], "zstd"),
            (vec![0x5e, 0x2a, 0x4d, 0x18, 0, 0], "zstd"),
        ] {
            let e = s.spool(&mut body(&[&data])).await.unwrap_err();
            assert!(
                matches!(&e, SpoolError::Compressed { format } if *format == want),
                "{want}: {e}"
            );
        }
        let e = s
            .spool(&mut body(&[&gzip(&gzip(b"tar"))]))
            .await
            .unwrap_err();
        assert!(
            matches!(e, SpoolError::CompressedTwice { format: "gzip" }),
            "{e}"
        );
        // Cut short, or not gzip after its magic bytes.
        let packed = gzip(&[b'x'; 1000]);
        let e = s
            .spool(&mut body(&[&packed[..packed.len() / 2]]))
            .await
            .unwrap_err();
        assert!(matches!(e, SpoolError::Gzip(_)), "{e}");
        let e = s
            .spool(&mut body(&[&[0x1f, 0x8b, 0, 0, 0]]))
            .await
            .unwrap_err();
        assert!(matches!(e, SpoolError::Gzip(_)), "{e}");
    }

    #[tokio::test]
    async fn the_gauge_counts_files_on_disk_at_once() {
        let (_d, s) = spooler(16);
        let a = s.spool(&mut body(&[b"a"])).await.unwrap();
        let b = s.spool(&mut body(&[b"b"])).await.unwrap();
        assert_eq!((s.stats().live(), s.stats().peak()), (2, 2));
        drop(a);
        drop(b);
        let _c = s.spool(&mut body(&[b"c"])).await.unwrap();
        assert_eq!((s.stats().live(), s.stats().peak()), (1, 2));
    }
}
