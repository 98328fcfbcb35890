//! Record bodies (schema version 9): the JSON of every stored record, as the node sent it, in
//! append-only segment files beside the database (`validator.db-bodies/000001.seg`, …). A row of
//! `records` names its body by segment, offset and length.
//!
//! Until version 8 each body (~7 KB for 5 KB of text) was a column of its `records` row. SQLite
//! wrote its pages twice, once into the write-ahead log at the commit and once back into the
//! database at the checkpoint, a few KB per system call. That was about half of the store
//! transaction's CPU time (~60 → ~30 µs per record when the bodies were left out; figures in the
//! validator README, "Record bodies in segment files"). A batch's bodies now go at the end of a
//! segment (the batches of one write transaction together, in one write just before its fsync; a
//! direct write since version 12, see below), and a record's row is ~0.4 KB (its 224-byte
//! MinHash and 154 bytes of quality scores are the largest part of it).
//!
//! Invariants:
//! * **The database says what is committed.** `body_segments` holds each segment's committed
//!   length, updated in the transaction (savepoint) that stores the rows pointing into it. Where
//!   the next batch goes is read from there, inside the write transaction, so a rolled-back batch
//!   or an uncommitted transaction leaves only bytes past the committed length, which the next
//!   append overwrites.
//! * **Bodies are durable before the rows that point at them.** The group commit fsyncs every
//!   segment it wrote (and the directory, when it made a file) before it commits.
//! * **Committed bytes are never rewritten.** Appends start at the committed length; only the one
//!   ingesting process appends (see [`super::Store::lock_for_serving`]).
//! * **Batches start on block boundaries.** Each batch's bodies start at a multiple of [`BLOCK`]
//!   and its write is padded with zeros to one, so that it can bypass the page cache
//!   (`O_DIRECT`): the bodies are written once and read only by exports, and copying them into
//!   the page cache was most of the store's kernel time (validator README, "Bodies around the
//!   page cache"). Where a file system refuses direct I/O the same bytes are written through the
//!   page cache.
//! * **Readers trust nothing.** A body read back must be as long as its row says and parse to a
//!   record whose id and text digest match ([`check`]); anything else is `store_corrupt`.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use gleaner_protocol::{Digest, Record};
use rusqlite::{Connection, OptionalExtension};

use super::{Cached, Op, StoreError};

/// Alignment of each batch's start and of its write's end within a segment, and of the memory
/// the write comes from: what direct I/O needs on the file systems a validator runs on (4 KiB
/// blocks, or 512-byte sectors, which 4 KiB multiples also are).
pub(crate) const BLOCK: usize = 4096;

/// A batch's bodies, one after another, in memory that starts on a [`BLOCK`] boundary, so that
/// one direct write can take them to their segment.
#[derive(Debug)]
pub(crate) struct Bodies {
    buf: Vec<u8>,
    /// Where the bodies start in `buf`: the first block boundary of its allocation.
    start: usize,
}

impl Bodies {
    /// Room for `bytes` of bodies without moving (a move could lose the alignment).
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        let mut buf: Vec<u8> = Vec::with_capacity(bytes.next_multiple_of(BLOCK) + BLOCK);
        let start = buf.as_ptr().align_offset(BLOCK).min(BLOCK);
        buf.resize(start, 0);
        Bodies { buf, start }
    }

    /// Bytes of bodies so far: where the next one starts, relative to the batch's start.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn push(&mut self, body: &[u8]) {
        if self.buf.capacity() - self.buf.len() < body.len() {
            // Growing in place could move the bytes off a block boundary: move them to a
            // bigger, aligned allocation instead.
            let len = self.len();
            let mut grown = Bodies::with_capacity((len + body.len()).max(2 * len));
            grown.buf.extend_from_slice(self.bytes());
            debug_assert_eq!(grown.len(), len);
            *self = grown;
        }
        self.buf.extend_from_slice(body);
    }

    /// The bodies so far.
    fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }

    /// Drops the bodies past the first `len` bytes.
    fn truncate(&mut self, len: usize) {
        self.buf.truncate(self.start + len);
    }

    /// The bodies padded with zeros to a whole number of blocks, and whether that memory starts
    /// on a block boundary (it always should; checked before a direct write all the same).
    fn blocks(&mut self) -> (&[u8], bool) {
        let padded = self.start + self.len().next_multiple_of(BLOCK);
        self.buf.resize(padded, 0);
        let blocks = self.buf.get(self.start..).unwrap_or_default();
        let aligned = blocks.as_ptr().align_offset(BLOCK) == 0;
        (blocks, aligned)
    }
}

/// A segment is closed once the next batch would take it past this many bytes.
pub(crate) const SEGMENT_LIMIT: u64 = 1 << 30;

/// The largest body a row may name: a whole decompressed batch at the protocol's default limit
/// (`DecodeLimits::max_decompressed_bytes`); one record's text is at most 4 MiB.
const MAX_BODY_BYTES: i64 = 64 << 20;

/// The segment directory of the database at `db`: its file name with `-bodies` appended, as
/// SQLite names the `-wal` and `-shm` files beside it.
pub(crate) fn dir_for(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push("-bodies");
    db.with_file_name(name)
}

pub(super) fn segment_path(dir: &Path, segment: i64) -> PathBuf {
    dir.join(format!("{segment:06}.seg"))
}

/// Each body segment the database names, with its committed length, in order. None before the
/// segments existed (schema version 9), when bodies were columns of their rows.
pub(super) fn committed_segments(conn: &Connection) -> Result<Vec<(i64, u64)>, StoreError> {
    let has_table = conn
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'body_segments'",
            [],
            |_| Ok(()),
        )
        .optional()
        .op("body_segments")?
        .is_some();
    if !has_table {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare("SELECT segment, bytes FROM body_segments ORDER BY segment")
        .op("body_segments")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .op("body_segments")?
        .collect::<Result<Vec<_>, _>>()
        .op("body_segments")?;
    rows.into_iter()
        .map(|(segment, bytes)| {
            u64::try_from(bytes)
                .map(|bytes| (segment, bytes))
                .map_err(|_| StoreError::Corrupt {
                    what: "body segment",
                    why: format!("segment {segment} has a committed length of {bytes}"),
                })
        })
        .collect()
}

pub(super) fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where a record's body is: `len` bytes at `offset` in segment `segment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyAt {
    pub segment: i64,
    pub offset: i64,
    pub len: i64,
}

/// Most bytes of bodies an [`Appender`] holds before writing them (a group of the server's
/// writer is up to 256 batches; a 100-record batch of ~5 KB texts is ~0.7 MiB).
const PENDING_LIMIT: usize = 8 << 20;

/// Bodies written in a transaction and not yet handed to their segment.
#[derive(Debug)]
struct Pending {
    segment: i64,
    /// Where `bodies` start in the segment (a block boundary).
    offset: u64,
    bodies: Bodies,
}

impl Pending {
    /// Where in `bodies` the `len` bytes for `offset` of `segment` go, if they continue this
    /// stretch (or replace its end, after a rollback) and keep it within [`PENDING_LIMIT`].
    fn room_at(&self, segment: i64, offset: u64, len: usize) -> Option<usize> {
        let at = usize::try_from(offset.checked_sub(self.offset)?).ok()?;
        (segment == self.segment && at <= self.bodies.len() && at + len <= PENDING_LIMIT)
            .then_some(at)
    }
}

/// The body writer of one write transaction (a [`super::Group`]). It holds open files and the
/// bodies it has not written yet; positions come from the database each time.
#[derive(Debug)]
pub(crate) struct Appender {
    dir: PathBuf,
    limit: u64,
    /// Open segments, and whether each was opened for direct I/O.
    files: HashMap<i64, (File, bool)>,
    /// Try direct I/O for segments opened from now on (cleared once a file system refuses it).
    direct: bool,
    /// Bodies of this transaction not yet handed to their segment: one stretch of one segment,
    /// written with one system call when another segment is written, when it reaches
    /// [`PENDING_LIMIT`], or at [`Appender::sync`].
    pending: Option<Pending>,
    /// Segments written in this transaction, to fsync before it commits.
    written: BTreeSet<i64>,
    /// A segment file was created in this transaction: its directory entry needs an fsync too.
    created: bool,
    /// The segment directory itself was created: so does its entry in the data directory.
    created_dir: bool,
}

impl Appender {
    pub(crate) fn new(dir: PathBuf, limit: u64) -> Self {
        Appender {
            dir,
            limit,
            files: HashMap::new(),
            direct: true,
            pending: None,
            written: BTreeSet::new(),
            created: false,
            created_dir: false,
        }
    }

    /// Every segment opened from now on is written through the page cache.
    #[cfg(test)]
    pub(crate) fn without_direct_io(mut self) -> Self {
        self.direct = false;
        self
    }

    /// Where the next `len` bytes go: the first block boundary at or after the end of the last
    /// segment, or the start of a new one when they would take a non-empty segment past the
    /// limit (the new segment's row is added in the caller's transaction).
    pub(crate) fn place(&self, conn: &Connection, len: u64) -> Result<(i64, u64), StoreError> {
        let last: Option<(i64, i64)> = conn
            .query_row_cached(
                "SELECT segment, bytes FROM body_segments ORDER BY segment DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .op("body_segments")?;
        let (segment, end) = match last {
            Some((segment, bytes)) => {
                let end = u64::try_from(bytes)
                    .map_err(|_| StoreError::Corrupt {
                        what: "body segment length",
                        why: format!("segment {segment} has {bytes} bytes"),
                    })?
                    // Segments written before version 12 may end anywhere.
                    .next_multiple_of(BLOCK as u64);
                // The write fills whole blocks, so the segment grows by the padded length.
                let padded = len.next_multiple_of(BLOCK as u64);
                if end > 0 && end.saturating_add(padded) > self.limit {
                    (segment + 1, None)
                } else {
                    (segment, Some(end))
                }
            }
            None => (1, None),
        };
        match end {
            Some(end) => Ok((segment, end)),
            None => {
                conn.exec_cached(
                    "INSERT INTO body_segments(segment, bytes) VALUES (?1, 0)",
                    [segment],
                )
                .op("body_segments")?;
                Ok((segment, 0))
            }
        }
    }

    /// Writes `bodies` at `offset` of `segment` (as [`Appender::place`] gave), padded to a whole
    /// number of blocks, and records the segment's new length in the caller's transaction.
    ///
    /// The bytes reach the file by [`Appender::sync`] at the latest: the batches of a group go
    /// out together, one system call for all of them instead of a (direct, so synchronous)
    /// write each. A batch written where an earlier one of this transaction was rolled back
    /// replaces its bytes, as it would on disk.
    pub(crate) fn write(
        &mut self,
        conn: &Connection,
        segment: i64,
        offset: u64,
        bodies: &mut Bodies,
    ) -> Result<(), StoreError> {
        // Opened now, so that a segment that cannot be made refuses this batch alone.
        self.open(segment)?;
        self.written.insert(segment);
        let len = bodies.blocks().0.len();
        let end = offset.saturating_add(len as u64);
        if let Some(p) = self.pending.as_mut()
            && let Some(at) = p.room_at(segment, offset, len)
        {
            p.bodies.truncate(at);
            p.bodies.push(bodies.blocks().0);
        } else {
            self.flush()?;
            if len <= PENDING_LIMIT {
                self.pending = Some(Pending {
                    segment,
                    offset,
                    bodies: std::mem::replace(bodies, Bodies::with_capacity(0)),
                });
            } else {
                self.put(segment, offset, bodies)?;
            }
        }
        conn.exec_cached(
            "UPDATE body_segments SET bytes = ?2 WHERE segment = ?1",
            rusqlite::params![segment, i64::try_from(end).unwrap_or(i64::MAX)],
        )
        .op("body_segments")?;
        Ok(())
    }

    /// Opens `segment` for appending if it is not open yet (creating it and its directory).
    fn open(&mut self, segment: i64) -> Result<(), StoreError> {
        if self.files.contains_key(&segment) {
            return Ok(());
        }
        if !self.dir.is_dir() {
            std::fs::create_dir_all(&self.dir).map_err(|s| io_error(&self.dir, s))?;
            self.created_dir = true;
        }
        let path = segment_path(&self.dir, segment);
        let existed = path.exists();
        let opened =
            open_segment(&path, &appending(), &mut self.direct).map_err(|s| io_error(&path, s))?;
        self.created |= !existed;
        self.files.insert(segment, opened);
        Ok(())
    }

    /// Hands the pending bodies to their segment.
    fn flush(&mut self) -> Result<(), StoreError> {
        match self.pending.take() {
            Some(mut p) => self.put(p.segment, p.offset, &mut p.bodies),
            None => Ok(()),
        }
    }

    /// Writes `bodies`, padded to whole blocks, at `offset` of the open `segment`: directly if
    /// the segment was opened so, else (or if the file system refuses after all) through the
    /// page cache.
    fn put(&mut self, segment: i64, offset: u64, bodies: &mut Bodies) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, segment);
        let (bytes, aligned) = bodies.blocks();
        let mut written = false;
        let mut reopen = false;
        if let Some((file, true)) = self.files.get(&segment) {
            if aligned && offset.is_multiple_of(BLOCK as u64) {
                match file.write_all_at(bytes, offset) {
                    Ok(()) => written = true,
                    // This file system takes no direct writes after all.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        tracing::debug!(path = %path.display(), "direct write refused");
                        self.direct = false;
                    }
                    Err(e) => return Err(io_error(&path, e)),
                }
            }
            reopen = !written;
        }
        if reopen {
            // The same bytes through the page cache; this segment stays so.
            let file = appending().open(&path).map_err(|s| io_error(&path, s))?;
            self.files.insert(segment, (file, false));
        }
        if !written {
            let (file, _) = self
                .files
                .get(&segment)
                .ok_or_else(|| io_error(&path, std::io::ErrorKind::NotFound.into()))?;
            file.write_all_at(bytes, offset)
                .map_err(|s| io_error(&path, s))?;
        }
        Ok(())
    }

    /// Makes everything written so far durable: each written segment, then the directory if a
    /// segment was created (and the data directory if the segment directory was). Called before
    /// the transaction commits.
    pub(crate) fn sync(&mut self) -> Result<(), StoreError> {
        self.flush()?;
        for segment in std::mem::take(&mut self.written) {
            if let Some((file, _)) = self.files.get(&segment) {
                file.sync_data()
                    .map_err(|s| io_error(&segment_path(&self.dir, segment), s))?;
            }
        }
        let sync_dir = |dir: &Path| {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|s| io_error(dir, s))
        };
        if std::mem::take(&mut self.created) {
            sync_dir(&self.dir)?;
        }
        if std::mem::take(&mut self.created_dir)
            && let Some(parent) = self.dir.parent()
        {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

/// How a segment is opened for appending (created if new, never truncated).
fn appending() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true);
    options
}

/// Opens a segment with `options`: for direct I/O while `direct`, which is cleared where the file
/// system refuses it (later segments are then opened through the page cache).
fn open_segment(
    path: &Path,
    options: &OpenOptions,
    direct: &mut bool,
) -> std::io::Result<(File, bool)> {
    if *direct {
        use std::os::unix::fs::OpenOptionsExt;
        match options.clone().custom_flags(libc::O_DIRECT).open(path) {
            Ok(file) => return Ok((file, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                tracing::info!(path = %path.display(), "no direct I/O here; bodies go through the page cache");
                *direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    Ok((options.open(path)?, false))
}

/// [`Reader::read_sorted`] reads bodies this close together in one go (the bytes between are
/// read and dropped: cheaper than another read).
const COALESCE_GAP: u64 = 64 << 10;
/// ... up to this many bytes at once.
const MAX_READ: u64 = 4 << 20;

/// A block-aligned stretch of one segment, as last read.
#[derive(Debug)]
struct Window {
    segment: i64,
    /// Where the stretch starts in the segment (a block boundary).
    offset: u64,
    buf: Vec<u8>,
    /// Where the stretch starts in `buf` (a block boundary in memory).
    start: usize,
    /// Bytes of the stretch read (fewer than asked at the end of the segment).
    filled: usize,
}

impl Window {
    /// The bytes `from..to` of the segment, if this window holds all of them.
    fn get(&self, segment: i64, from: u64, to: u64) -> Option<&[u8]> {
        if segment != self.segment || from < self.offset {
            return None;
        }
        let a = usize::try_from(from - self.offset).ok()?;
        let b = usize::try_from(to - self.offset).ok()?;
        if b > self.filled {
            return None;
        }
        self.buf.get(self.start + a..self.start + b)
    }
}

/// Reads bodies back, keeping each segment it opened open. Reads the blocks that hold what is
/// asked, bypassing the page cache where the file system allows it (as the bodies were written):
/// an export reads each body once, so caching them would only fill memory (and cost a first
/// touch of each page on a fresh machine; validator README).
#[derive(Debug)]
pub(crate) struct Reader<'d> {
    dir: &'d Path,
    /// Open segments, and whether each was opened for direct I/O.
    files: HashMap<i64, (File, bool)>,
    /// Try direct I/O for segments opened from now on (cleared once a file system refuses it).
    direct: bool,
    window: Option<Window>,
}

impl<'d> Reader<'d> {
    pub(crate) fn new(dir: &'d Path) -> Self {
        Reader {
            dir,
            files: HashMap::new(),
            direct: true,
            window: None,
        }
    }

    /// Every segment opened from now on is read through the page cache.
    #[cfg(test)]
    fn without_direct_io(mut self) -> Self {
        self.direct = false;
        self
    }

    /// The bytes at `at`, exactly `at.len` of them.
    pub(crate) fn read(&mut self, at: BodyAt) -> Result<Vec<u8>, StoreError> {
        let corrupt = |why: String| StoreError::Corrupt {
            what: "record body",
            why,
        };
        let (Ok(offset), Ok(len)) = (u64::try_from(at.offset), u64::try_from(at.len)) else {
            return Err(corrupt(format!("{at:?} is out of range")));
        };
        if at.segment < 1 || at.len > MAX_BODY_BYTES {
            return Err(corrupt(format!("{at:?} is out of range")));
        }
        let end = offset.saturating_add(len);
        if let Some(bytes) = self
            .window
            .as_ref()
            .and_then(|w| w.get(at.segment, offset, end))
        {
            return Ok(bytes.to_vec());
        }
        self.fill(at.segment, offset, end)?;
        match self
            .window
            .as_ref()
            .and_then(|w| w.get(at.segment, offset, end))
        {
            Some(bytes) => Ok(bytes.to_vec()),
            None => Err(corrupt(format!(
                "{} ends before byte {end} ({at:?})",
                segment_path(self.dir, at.segment).display()
            ))),
        }
    }

    /// The bodies at `ats`, in that order, which should be by segment and offset: bodies close
    /// together in a segment are read with one read.
    pub(crate) fn read_sorted(&mut self, ats: &[BodyAt]) -> Result<Vec<Vec<u8>>, StoreError> {
        let span = |at: &BodyAt| {
            let from = u64::try_from(at.offset).ok()?;
            Some((from, from.checked_add(u64::try_from(at.len).ok()?)?))
        };
        let mut out = Vec::with_capacity(ats.len());
        let mut i = 0;
        while let Some(first) = ats.get(i) {
            let mut j = i + 1;
            if let Some((from, mut to)) = span(first).filter(|_| first.len <= MAX_BODY_BYTES) {
                while let Some((a, b)) = ats
                    .get(j)
                    .filter(|next| next.segment == first.segment && next.len <= MAX_BODY_BYTES)
                    .and_then(span)
                {
                    if a < from || a > to.saturating_add(COALESCE_GAP) || b - from > MAX_READ {
                        break;
                    }
                    to = to.max(b);
                    j += 1;
                }
                if first.segment >= 1 {
                    self.fill(first.segment, from, to)?;
                }
            }
            for &at in ats.get(i..j).unwrap_or_default() {
                out.push(self.read(at)?);
            }
            i = j;
        }
        Ok(out)
    }

    /// Reads the blocks of `segment` that hold bytes `from..to` (up to the end of the segment).
    fn fill(&mut self, segment: i64, from: u64, to: u64) -> Result<(), StoreError> {
        let path = segment_path(self.dir, segment);
        let first = from - from % BLOCK as u64;
        let last = to.max(first + 1).next_multiple_of(BLOCK as u64);
        let size = usize::try_from(last - first).map_err(|_| StoreError::Corrupt {
            what: "record body",
            why: format!("{} bytes of {} at once", last - first, path.display()),
        })?;
        let mut window = match self.window.take() {
            Some(w) if w.buf.len() >= w.start + size && w.start < BLOCK => w,
            _ => {
                // Room for the largest coalesced read, so that an export makes (and first
                // touches) its buffer once.
                let room = size.max(MAX_READ as usize);
                let mut buf: Vec<u8> = Vec::with_capacity(room + BLOCK);
                let start = buf.as_ptr().align_offset(BLOCK).min(BLOCK);
                buf.resize(start + room, 0);
                Window {
                    segment,
                    offset: first,
                    buf,
                    start,
                    filled: 0,
                }
            }
        };
        (window.segment, window.offset, window.filled) = (segment, first, 0);
        loop {
            let (file, direct) = self.file(segment, &path)?;
            let want = window
                .buf
                .get_mut(window.start..window.start + size)
                .unwrap_or_default();
            let read = if direct && want.as_ptr().align_offset(BLOCK) != 0 {
                Err(std::io::Error::from_raw_os_error(libc::EINVAL))
            } else {
                read_into(file, want, first, direct)
            };
            match read {
                Ok(n) => {
                    window.filled = n;
                    break;
                }
                Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    // Direct reads refused after all: through the page cache from now on.
                    tracing::debug!(path = %path.display(), "direct read refused");
                    self.direct = false;
                    self.files.remove(&segment);
                }
                Err(e) => return Err(io_error(&path, e)),
            }
        }
        self.window = Some(window);
        Ok(())
    }

    /// The open segment `segment` and whether it was opened for direct I/O.
    fn file(&mut self, segment: i64, path: &Path) -> Result<(&File, bool), StoreError> {
        if !self.files.contains_key(&segment) {
            let mut reading = OpenOptions::new();
            reading.read(true);
            let opened = open_segment(path, &reading, &mut self.direct).map_err(|s| {
                if s.kind() == std::io::ErrorKind::NotFound {
                    StoreError::Corrupt {
                        what: "record body",
                        why: format!("{} is missing", path.display()),
                    }
                } else {
                    io_error(path, s)
                }
            })?;
            self.files.insert(segment, opened);
        }
        self.files
            .get(&segment)
            .map(|(f, d)| (f, *d))
            .ok_or_else(|| io_error(path, std::io::ErrorKind::NotFound.into()))
    }
}

/// Reads into `buf` from `offset` until it is full or the file ends; the bytes read. A direct
/// read (block-aligned `buf` and `offset`) that comes back short has reached the end.
fn read_into(file: &File, buf: &mut [u8], offset: u64, direct: bool) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let rest = buf.get_mut(got..).unwrap_or_default();
        let asked = rest.len();
        match file.read_at(rest, offset + got as u64) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if direct && n < asked {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Parses a stored body and checks that it is the record `record_id` names: the id of its signed
/// fields, and the digest of its text.
pub(crate) fn check(json: &[u8], record_id: &Digest) -> Result<Record, StoreError> {
    let record: Record = serde_json::from_slice(json).map_err(|e| StoreError::Corrupt {
        what: "record",
        why: e.to_string(),
    })?;
    let id = record.id();
    if id != *record_id {
        return Err(StoreError::Corrupt {
            what: "record",
            why: format!("the body stored for {record_id} is record {id}"),
        });
    }
    record
        .check_text_digest()
        .map_err(|e| StoreError::Corrupt {
            what: "record",
            why: format!("{record_id}: {e}"),
        })?;
    Ok(record)
}

/// Turns the database at `db` back into what version 8 would have stored: each record's body in
/// its row's `record_json`, no body columns or segment table, no segment files, and the covering
/// index `records_bands`.
#[cfg(test)]
pub(crate) fn back_to_version_8(db: &Path) {
    #![allow(clippy::unwrap_used)]
    let conn = Connection::open(db).unwrap();
    super::migrate::back_to_version_10(&conn);
    let rows: Vec<(Vec<u8>, i64, i64, i64)> = conn
        .prepare(
            "SELECT record_id, body_segment, body_offset, body_len FROM records
              WHERE body_segment IS NOT NULL",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let dir = dir_for(db);
    let mut reader = Reader::new(&dir);
    for (id, segment, offset, len) in rows {
        let at = BodyAt {
            segment,
            offset,
            len,
        };
        conn.execute(
            "UPDATE records SET record_json = ?2 WHERE record_id = ?1",
            rusqlite::params![id, reader.read(at).unwrap()],
        )
        .unwrap();
    }
    conn.execute_batch(
        "ALTER TABLE records DROP COLUMN body_segment;
         ALTER TABLE records DROP COLUMN body_offset;
         ALTER TABLE records DROP COLUMN body_len;
         DROP TABLE body_segments;
         CREATE INDEX records_bands ON records(received_at_ms, record_id, text_key, minhash)
             WHERE verdict = 'accepted' AND role = 'primary';
         PRAGMA user_version=8;",
    )
    .unwrap();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::testkit::{ingest_batch, leased_jobs, leased_jobs_on, record_for, sample_text};
    use gleaner_protocol::api::Job;
    use gleaner_protocol::{Batch, SecretKey, Verdict};

    const T0: i64 = 1_767_225_600_000;

    /// Leases `texts.len()` jobs and submits one record per text: see [`submit_jobs`].
    fn submit(store: &Store, texts: &[String], per_batch: usize) -> Vec<(Record, Verdict)> {
        let node = SecretKey::from_bytes(&[9; 32]);
        let jobs = leased_jobs(store, &node, texts.len(), T0).unwrap();
        submit_jobs(store, &jobs, texts, per_batch)
    }

    /// Submits one record per job with the matching text, `per_batch` to a batch, through the
    /// real checks and store. Returns each record with its verdict.
    fn submit_jobs(
        store: &Store,
        jobs: &[Job],
        texts: &[String],
        per_batch: usize,
    ) -> Vec<(Record, Verdict)> {
        let node = SecretKey::from_bytes(&[9; 32]);
        let validator = SecretKey::from_bytes(&[200; 32]);
        let mut out = Vec::new();
        for (n, chunk) in jobs.chunks(per_batch).enumerate() {
            let records: Vec<Record> = chunk
                .iter()
                .enumerate()
                .map(|(i, job)| record_for(&node, job, texts[n * per_batch + i].clone(), T0))
                .collect();
            let now = T0 + 1_000 + n as i64;
            let outcome = ingest_batch(store, &node, &validator, records.clone(), now).unwrap();
            let crate::store::IngestOutcome::Fresh { receipt, .. } = outcome else {
                panic!("batch {n} was not fresh");
            };
            out.extend(
                records
                    .into_iter()
                    .zip(receipt.verdicts.iter().map(|v| v.verdict)),
            );
        }
        out
    }

    fn committed(conn: &Connection) -> Vec<(i64, i64)> {
        let mut stmt = conn
            .prepare("SELECT segment, bytes FROM body_segments ORDER BY segment")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn exported(store: &Store) -> Result<Vec<Record>, StoreError> {
        Ok(store
            .accepted_records(None)?
            .into_iter()
            .map(|a| a.record)
            .collect())
    }

    /// Accepted, duplicate and rejected records, over several segments: the export reads every
    /// accepted record back as it was sent, and the rows hold no JSON of their own.
    #[test]
    fn bodies_go_to_segments_and_come_back_in_the_export() {
        let dir = tempfile::tempdir().unwrap();
        // ~3 KB of JSON per record: a few batches per segment.
        let store = Store::open(dir.path()).unwrap().with_segment_limit(40_000);
        let mut texts: Vec<String> = (0..40).map(|i| sample_text(i, 2_000)).collect();
        texts[7] = "too short".into();
        texts[23] = texts[3].clone();
        let submitted = submit(&store, &texts, 5);
        assert_eq!(submitted[7].1, Verdict::Rejected);
        assert_eq!(submitted[23].1, Verdict::Duplicate);

        let mut want: Vec<Record> = submitted
            .iter()
            .filter(|(_, v)| *v == Verdict::Accepted)
            .map(|(r, _)| r.clone())
            .collect();
        want.sort_by_key(Record::id);
        let mut got = exported(&store).unwrap();
        got.sort_by_key(Record::id);
        assert_eq!(got.len(), 38);
        assert_eq!(got, want);

        let conn = store.conn().unwrap();
        let (json_rows, kept, bodies): (i64, i64, i64) = conn
            .query_row(
                "SELECT COUNT(record_json), COUNT(body_segment), SUM(body_len) FROM records",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(json_rows, 0, "no row holds its JSON");
        assert_eq!(kept, 39, "every record but the rejected one has a body");
        let segments = committed(&conn);
        assert!(segments.len() >= 3, "{segments:?}");
        let on_disk: u64 = segments
            .iter()
            .map(|&(s, bytes)| {
                let len = std::fs::metadata(segment_path(&store.bodies_dir, s))
                    .unwrap()
                    .len();
                assert_eq!(len, bytes as u64, "segment {s}");
                assert_eq!(
                    len % BLOCK as u64,
                    0,
                    "segment {s} ends on a block boundary"
                );
                assert!(len <= 40_000, "segment {s} is past the limit");
                len
            })
            .sum();
        // The bodies and, after each batch's, zeros to the next block boundary.
        let batches: i64 = conn
            .query_row("SELECT COUNT(*) FROM batches", [], |r| r.get(0))
            .unwrap();
        let padding = on_disk as i64 - bodies;
        assert!(
            (0..batches * BLOCK as i64).contains(&padding),
            "{padding} bytes besides the bodies of {batches} batches"
        );
    }

    /// A body changed, cut short or lost on disk is reported (`store_corrupt`), never exported.
    #[test]
    fn a_damaged_body_is_reported_not_exported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let texts: Vec<String> = (0..6).map(|i| sample_text(i, 2_000)).collect();
        submit(&store, &texts, 3);
        let seg = segment_path(&store.bodies_dir, 1);
        let good = std::fs::read(&seg).unwrap();

        // One letter of a text changed: the body still parses, but its digest does not match.
        let at = good
            .windows(4)
            .position(|w| w == b"the ")
            .expect("a text has 'the '");
        let mut changed = good.clone();
        changed[at] = b'T';
        // (Its last block ends in zeros after the last body: cut into the body.)
        let cut = &good[..good.len() - BLOCK];
        for (what, bytes) in [("changed", &changed[..]), ("cut short", cut)] {
            std::fs::write(&seg, bytes).unwrap();
            let err = exported(&store).unwrap_err();
            assert_eq!(err.code(), "store_corrupt", "{what}: {err}");
        }
        std::fs::remove_file(&seg).unwrap();
        let err = exported(&store).unwrap_err();
        assert_eq!(err.code(), "store_corrupt", "lost: {err}");
        assert!(err.to_string().contains("000001.seg"), "{err}");

        std::fs::write(&seg, &good).unwrap();
        assert_eq!(exported(&store).unwrap().len(), 6);
    }

    /// Bodies that cannot be written refuse their batch with `store_io` (a 500, so the node
    /// submits again); nothing of it is stored, and once the disk is back the same batch goes in.
    #[test]
    fn a_body_that_cannot_be_written_refuses_its_batch_and_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let node = SecretKey::from_bytes(&[9; 32]);
        let validator = SecretKey::from_bytes(&[200; 32]);
        let jobs = leased_jobs(&store, &node, 3, T0).unwrap();
        let records: Vec<Record> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| record_for(&node, job, sample_text(i as u64, 2_000), T0))
            .collect();
        let now = T0 + 1_000;
        // Where the segment directory goes, a file: nothing can be created in it.
        std::fs::write(&store.bodies_dir, b"not a directory").unwrap();
        let err = ingest_batch(&store, &node, &validator, records.clone(), now).unwrap_err();
        assert_eq!(err.code(), "store_io", "{err}");
        assert_eq!(err.status(), 500);
        assert!(err.to_string().contains("validator.db-bodies"), "{err}");
        let stored = |what: &str| -> i64 {
            store
                .conn()
                .unwrap()
                .query_row(&format!("SELECT COUNT(*) FROM {what}"), [], |r| r.get(0))
                .unwrap()
        };
        for table in ["records", "batches", "ledger", "body_segments"] {
            assert_eq!(stored(table), 0, "{table}");
        }
        let id = Batch::new(&node, now, records.clone()).id();
        assert_eq!(store.receipt(&id).unwrap(), None);

        std::fs::remove_file(&store.bodies_dir).unwrap();
        ingest_batch(&store, &node, &validator, records, now).unwrap();
        assert!(store.receipt(&id).unwrap().is_some(), "the same batch");
        assert_eq!(stored("records"), 3);
        assert_eq!(exported(&store).unwrap().len(), 3);
    }

    /// A version 8 database (every body in its row) is migrated: its records are read from their
    /// rows, the ones stored after the migration from segments, side by side in one export.
    #[test]
    fn records_stored_before_version_9_are_read_from_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let texts: Vec<String> = (0..12).map(|i| sample_text(i, 2_000)).collect();
        let mut submitted = {
            let store = Store::open(dir.path()).unwrap();
            submit(&store, &texts[..8], 4)
        };
        let db = dir.path().join(super::super::DB_FILE);
        back_to_version_8(&db);
        assert!(!dir_for(&db).exists());

        let store = Store::open(dir.path()).unwrap();
        let node = SecretKey::from_bytes(&[9; 32]);
        let more = leased_jobs_on(&store, &node, "later", 4, T0).unwrap();
        submitted.extend(submit_jobs(&store, &more, &texts[8..], 4));
        {
            let conn = store.conn().unwrap();
            let (in_rows, in_segments): (i64, i64) = conn
                .query_row(
                    "SELECT COUNT(record_json), COUNT(body_segment) FROM records",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((in_rows, in_segments), (8, 4));
        }
        let mut got = exported(&store).unwrap();
        got.sort_by_key(Record::id);
        let mut want: Vec<Record> = submitted.into_iter().map(|(r, _)| r).collect();
        want.sort_by_key(Record::id);
        assert_eq!(got, want);
    }

    #[test]
    fn segments_are_named_after_the_database() {
        assert_eq!(
            dir_for(Path::new("/d/validator.db")),
            Path::new("/d/validator.db-bodies")
        );
        assert_eq!(
            segment_path(Path::new("/d/x-bodies"), 12),
            Path::new("/d/x-bodies/000012.seg")
        );
    }

    fn bodies(bytes: &[u8]) -> Bodies {
        let mut b = Bodies::with_capacity(bytes.len());
        b.push(bytes);
        b
    }

    /// Appends go at the first block boundary after the committed end, a full segment gives way
    /// to the next, and bytes of a batch that was rolled back are overwritten by the next one;
    /// the same with direct I/O and through the page cache.
    #[test]
    fn appends_follow_the_committed_length_and_roll_over_at_the_limit() {
        const B: i64 = BLOCK as i64;
        for direct in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let mut conn = store.writer().unwrap();
            let segments = dir.path().join("validator.db-bodies");
            let mut app = Appender::new(segments.clone(), 2 * BLOCK as u64);
            if !direct {
                app = app.without_direct_io();
            }

            let tx = conn.transaction().unwrap();
            assert_eq!(app.place(&tx, 4).unwrap(), (1, 0));
            app.write(&tx, 1, 0, &mut bodies(b"abcd")).unwrap();
            assert_eq!(
                app.place(&tx, 6).unwrap(),
                (1, BLOCK as u64),
                "the next block"
            );
            app.write(&tx, 1, BLOCK as u64, &mut bodies(b"efghij"))
                .unwrap();
            // Direct I/O where the file system takes it (not tmpfs before Linux 6.6).
            let (_, used) = app.files[&1];
            assert_eq!(used, direct && app.direct, "direct {direct}");
            // A batch that fails after writing: its savepoint is rolled back.
            tx.execute_batch("SAVEPOINT op").unwrap();
            assert_eq!(
                app.place(&tx, 3).unwrap(),
                (2, 0),
                "a full segment rolls over"
            );
            app.write(&tx, 2, 0, &mut bodies(b"XYZ")).unwrap();
            tx.execute_batch("ROLLBACK TO op; RELEASE op").unwrap();
            assert_eq!(app.place(&tx, 2).unwrap(), (2, 0), "the rolled-back bytes");
            app.write(&tx, 2, 0, &mut bodies(b"kl")).unwrap();
            app.sync().unwrap();
            tx.commit().unwrap();
            assert_eq!(committed(&conn), [(1, 2 * B), (2, B)]);

            let mut reader = Reader::new(&segments);
            let at = |segment, offset, len| BodyAt {
                segment,
                offset,
                len,
            };
            assert_eq!(reader.read(at(1, 0, 4)).unwrap(), b"abcd");
            assert_eq!(reader.read(at(1, B, 6)).unwrap(), b"efghij");
            assert_eq!(reader.read(at(2, 0, 2)).unwrap(), b"kl");
            // Each write fills whole blocks: the bodies, then zeros.
            let second = std::fs::read(segments.join("000002.seg")).unwrap();
            assert_eq!(second.len(), BLOCK);
            assert!(second.starts_with(b"kl\0") && second[2..].iter().all(|&b| b == 0));

            // A transaction that is not committed changes no committed length.
            let tx = conn.transaction().unwrap();
            assert_eq!(app.place(&tx, 1).unwrap(), (2, BLOCK as u64));
            app.write(&tx, 2, BLOCK as u64, &mut bodies(b"m")).unwrap();
            drop(tx);
            assert_eq!(committed(&conn), [(1, 2 * B), (2, B)]);

            // A segment written before version 12 may end anywhere: the next batch starts at
            // the next block boundary.
            conn.execute("UPDATE body_segments SET bytes = 5 WHERE segment = 2", [])
                .unwrap();
            assert_eq!(app.place(&conn, 1).unwrap(), (2, BLOCK as u64));
        }
    }

    /// The batches of one transaction reach their segment together at `sync` (one write, not
    /// one each): nothing is in the file before, everything committed is after, a batch rolled
    /// back is replaced by the next in memory, and a stretch past `PENDING_LIMIT` goes out early.
    #[test]
    fn a_transactions_bodies_are_written_together_before_the_commit() {
        for direct in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let mut conn = store.writer().unwrap();
            let segments = dir.path().join("validator.db-bodies");
            let mut app = Appender::new(segments.clone(), 1 << 30);
            if !direct {
                app = app.without_direct_io();
            }
            let file_len = || {
                std::fs::metadata(segments.join("000001.seg"))
                    .map(|m| m.len())
                    .unwrap_or(0)
            };
            let tx = conn.transaction().unwrap();
            let mut put = |tx: &Connection, body: &[u8]| {
                let (segment, offset) = app.place(tx, body.len() as u64).unwrap();
                app.write(tx, segment, offset, &mut bodies(body)).unwrap();
                offset
            };
            assert_eq!(put(&tx, b"first"), 0);
            tx.execute_batch("SAVEPOINT op").unwrap();
            assert_eq!(put(&tx, b"refused"), BLOCK as u64);
            tx.execute_batch("ROLLBACK TO op; RELEASE op").unwrap();
            assert_eq!(put(&tx, b"second"), BLOCK as u64);
            let big: Vec<u8> = (0..3 << 20).map(|i| (i % 241) as u8).collect();
            assert_eq!(put(&tx, &big), 2 * BLOCK as u64);
            assert_eq!(file_len(), 0, "nothing written before the sync");
            // Two more of those take the stretch past PENDING_LIMIT: it goes out first.
            put(&tx, &big);
            put(&tx, &big);
            let early = file_len();
            assert!(early >= (2 * BLOCK + (6 << 20)) as u64, "{early}");
            assert!(early < (2 * BLOCK + (9 << 20)) as u64, "{early}");
            app.sync().unwrap();
            tx.commit().unwrap();
            let end = 2 * BLOCK as u64 + 3 * (big.len() as u64).next_multiple_of(BLOCK as u64);
            assert_eq!(file_len(), end);
            assert_eq!(committed(&conn), [(1, end as i64)]);
            let mut reader = Reader::new(&segments);
            let at = |offset: usize, len: usize| BodyAt {
                segment: 1,
                offset: offset as i64,
                len: len as i64,
            };
            assert_eq!(reader.read(at(0, 5)).unwrap(), b"first");
            assert_eq!(reader.read(at(BLOCK, 7)).unwrap(), b"second\0");
            for k in 0..3 {
                let offset = 2 * BLOCK + k * big.len().next_multiple_of(BLOCK);
                assert_eq!(reader.read(at(offset, big.len())).unwrap(), big, "{k}");
            }
        }
    }

    /// Bodies outgrowing the room asked for move in memory, to another block boundary: the
    /// same bytes are written.
    #[test]
    fn bodies_off_a_block_boundary_are_written_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let conn = store.writer().unwrap();
        let segments = dir.path().join("validator.db-bodies");
        let mut app = Appender::new(segments.clone(), 1 << 20);
        let mut b = Bodies::with_capacity(1);
        let body: Vec<u8> = (0..3 * BLOCK + 7).map(|i| (i % 251) as u8).collect();
        for chunk in body.chunks(1000) {
            b.push(chunk);
        }
        assert_eq!(b.len(), body.len());
        let (segment, offset) = app.place(&conn, body.len() as u64).unwrap();
        app.write(&conn, segment, offset, &mut b).unwrap();
        app.sync().unwrap();
        let at = BodyAt {
            segment,
            offset: 0,
            len: body.len() as i64,
        };
        assert_eq!(Reader::new(&segments).read(at).unwrap(), body);
        assert_eq!(committed(&conn), [(1, 4 * BLOCK as i64)]);
    }

    /// Any stretch of a segment comes back exactly, in any order, however it lies against the
    /// reader's windows and blocks, read directly or through the page cache.
    #[test]
    fn reads_return_exactly_the_bytes_asked_for_wherever_they_lie() {
        let dir = tempfile::tempdir().unwrap();
        let window = MAX_READ as i64 / 4;
        let data: Vec<u8> = (0..3 * window + 1_234)
            .map(|i| (i * 7 % 253) as u8)
            .collect();
        std::fs::write(dir.path().join("000001.seg"), &data).unwrap();
        let total = data.len() as i64;
        let stretches = [
            (0, 10),
            (10, 6_000),
            (window - 3, 7),
            (window, 1),
            (5, 2 * window + 11),
            (total - 100, 100),
            (BLOCK as i64 * 3 + 1, 1),
            (0, total),
            (total, 0),
        ];
        for direct in [true, false] {
            let mut reader = Reader::new(dir.path());
            if !direct {
                reader = reader.without_direct_io();
            }
            for &(offset, len) in stretches.iter().chain(stretches.iter().rev()) {
                let at = BodyAt {
                    segment: 1,
                    offset,
                    len,
                };
                let got = reader.read(at).unwrap();
                assert!(
                    got == data[offset as usize..(offset + len) as usize],
                    "{at:?} direct {direct}"
                );
            }
            // The same stretches sorted by offset, read together where they are close.
            let mut sorted: Vec<BodyAt> = stretches
                .iter()
                .map(|&(offset, len)| BodyAt {
                    segment: 1,
                    offset,
                    len,
                })
                .collect();
            sorted.sort_by_key(|at| (at.offset, at.len));
            let together = reader.read_sorted(&sorted).unwrap();
            for (at, got) in sorted.iter().zip(&together) {
                assert!(
                    *got == data[at.offset as usize..(at.offset + at.len) as usize],
                    "{at:?} sorted, direct {direct}"
                );
            }
            let past = BodyAt {
                segment: 1,
                offset: total - 5,
                len: 6,
            };
            let err = reader.read_sorted(&[sorted[0], past]).unwrap_err();
            assert!(err.to_string().contains("ends before byte"), "{err}");
            let err = reader.read(past).unwrap_err();
            assert!(err.to_string().contains("ends before byte"), "{err}");
        }
    }

    #[test]
    fn reading_past_a_segment_or_a_missing_one_is_corrupt_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("000001.seg"), b"0123456789").unwrap();
        let mut reader = Reader::new(dir.path());
        let bad = [
            BodyAt {
                segment: 1,
                offset: 8,
                len: 5,
            },
            BodyAt {
                segment: 2,
                offset: 0,
                len: 1,
            },
            BodyAt {
                segment: 1,
                offset: -1,
                len: 1,
            },
            BodyAt {
                segment: 0,
                offset: 0,
                len: 1,
            },
            BodyAt {
                segment: 1,
                offset: 0,
                len: i64::MAX,
            },
        ];
        for at in bad {
            let err = reader.read(at).unwrap_err();
            assert_eq!(err.code(), "store_corrupt", "{at:?}: {err}");
        }
        assert_eq!(
            reader
                .read(BodyAt {
                    segment: 1,
                    offset: 2,
                    len: 3
                })
                .unwrap(),
            b"234"
        );
    }
}
