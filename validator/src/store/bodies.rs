//! Record bodies (schema version 9): the JSON of every stored record, as the node sent it, in
//! append-only segment files beside the database (`validator.db-bodies/000001.seg`, …). A row of
//! `records` names its body by segment, offset and length.
//!
//! Until version 8 each body (~7 KB for 5 KB of text) was a column of its `records` row. SQLite
//! wrote its pages twice, once into the write-ahead log at the commit and once back into the
//! database at the checkpoint, a few KB per system call. That was about half of the store
//! transaction's CPU time (~60 → ~30 µs per record when the bodies were left out; figures in the
//! validator README, "Record bodies in segment files"). A batch's bodies are now one write at the
//! end of a segment, and a record's row is ~1 KB (its MinHash and quality scores are most of it).
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
//! * **Readers trust nothing.** A body read back must be as long as its row says and parse to a
//!   record whose id and text digest match ([`check`]); anything else is `store_corrupt`.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use gleaner_protocol::{Digest, Record};
use rusqlite::{Connection, OptionalExtension};

use super::{Cached, Op, StoreError};

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

fn segment_path(dir: &Path, segment: i64) -> PathBuf {
    dir.join(format!("{segment:06}.seg"))
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
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

/// The body writer of one write transaction (a [`super::Group`]). It holds open files only;
/// positions come from the database each time.
#[derive(Debug)]
pub(crate) struct Appender {
    dir: PathBuf,
    limit: u64,
    files: HashMap<i64, File>,
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
            written: BTreeSet::new(),
            created: false,
            created_dir: false,
        }
    }

    /// Where the next `len` bytes go: the end of the last segment, or the start of a new one
    /// when they would take a non-empty segment past the limit (the new segment's row is added
    /// in the caller's transaction).
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
                let end = u64::try_from(bytes).map_err(|_| StoreError::Corrupt {
                    what: "body segment length",
                    why: format!("segment {segment} has {bytes} bytes"),
                })?;
                if end > 0 && end.saturating_add(len) > self.limit {
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

    /// Writes `bytes` at `offset` of `segment` (as [`Appender::place`] gave) and records the
    /// segment's new length in the caller's transaction.
    pub(crate) fn write(
        &mut self,
        conn: &Connection,
        segment: i64,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, segment);
        let file = match self.files.entry(segment) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                if !self.dir.is_dir() {
                    std::fs::create_dir_all(&self.dir).map_err(|s| io_error(&self.dir, s))?;
                    self.created_dir = true;
                }
                let existed = path.exists();
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|s| io_error(&path, s))?;
                self.created |= !existed;
                e.insert(file)
            }
        };
        self.written.insert(segment);
        file.write_all_at(bytes, offset)
            .map_err(|s| io_error(&path, s))?;
        let end = offset.saturating_add(bytes.len() as u64);
        conn.exec_cached(
            "UPDATE body_segments SET bytes = ?2 WHERE segment = ?1",
            rusqlite::params![segment, i64::try_from(end).unwrap_or(i64::MAX)],
        )
        .op("body_segments")?;
        Ok(())
    }

    /// Makes everything written so far durable: each written segment, then the directory if a
    /// segment was created (and the data directory if the segment directory was). Called before
    /// the transaction commits.
    pub(crate) fn sync(&mut self) -> Result<(), StoreError> {
        for segment in std::mem::take(&mut self.written) {
            if let Some(file) = self.files.get(&segment) {
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

/// Reads bodies back, keeping each segment it opened open.
#[derive(Debug)]
pub(crate) struct Reader<'d> {
    dir: &'d Path,
    files: HashMap<i64, File>,
}

impl<'d> Reader<'d> {
    pub(crate) fn new(dir: &'d Path) -> Self {
        Reader {
            dir,
            files: HashMap::new(),
        }
    }

    /// The bytes at `at`, exactly `at.len` of them.
    pub(crate) fn read(&mut self, at: BodyAt) -> Result<Vec<u8>, StoreError> {
        let corrupt = |why: String| StoreError::Corrupt {
            what: "record body",
            why,
        };
        let (Ok(offset), Ok(len)) = (u64::try_from(at.offset), usize::try_from(at.len)) else {
            return Err(corrupt(format!("{at:?} is out of range")));
        };
        if at.segment < 1 || at.len > MAX_BODY_BYTES {
            return Err(corrupt(format!("{at:?} is out of range")));
        }
        let path = segment_path(self.dir, at.segment);
        let file = match self.files.entry(at.segment) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => match File::open(&path) {
                Ok(f) => e.insert(f),
                Err(s) if s.kind() == std::io::ErrorKind::NotFound => {
                    return Err(corrupt(format!("{} is missing", path.display())));
                }
                Err(s) => return Err(io_error(&path, s)),
            },
        };
        let mut buf = vec![0u8; len];
        match file.read_exact_at(&mut buf, offset) {
            Ok(()) => Ok(buf),
            Err(s) if s.kind() == std::io::ErrorKind::UnexpectedEof => Err(corrupt(format!(
                "{} ends before byte {} ({at:?})",
                path.display(),
                offset.saturating_add(len as u64)
            ))),
            Err(s) => Err(io_error(&path, s)),
        }
    }
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
                assert!(len <= 40_000, "segment {s} is past the limit");
                len
            })
            .sum();
        assert_eq!(
            on_disk as i64, bodies,
            "the segments hold the bodies and nothing else"
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
        let cut = &good[..good.len() - 10];
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

    /// Appends go at the committed end, a full segment gives way to the next, and bytes of a
    /// batch that was rolled back are overwritten by the next one.
    #[test]
    fn appends_follow_the_committed_length_and_roll_over_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut conn = store.writer().unwrap();
        let bodies = dir.path().join("validator.db-bodies");
        let mut app = Appender::new(bodies.clone(), 10);

        let tx = conn.transaction().unwrap();
        assert_eq!(app.place(&tx, 4).unwrap(), (1, 0));
        app.write(&tx, 1, 0, b"abcd").unwrap();
        assert_eq!(app.place(&tx, 6).unwrap(), (1, 4), "fits exactly");
        app.write(&tx, 1, 4, b"efghij").unwrap();
        // A batch that fails after writing: its savepoint is rolled back.
        tx.execute_batch("SAVEPOINT op").unwrap();
        assert_eq!(
            app.place(&tx, 3).unwrap(),
            (2, 0),
            "a full segment rolls over"
        );
        app.write(&tx, 2, 0, b"XYZ").unwrap();
        tx.execute_batch("ROLLBACK TO op; RELEASE op").unwrap();
        assert_eq!(app.place(&tx, 2).unwrap(), (2, 0), "the rolled-back bytes");
        app.write(&tx, 2, 0, b"kl").unwrap();
        app.sync().unwrap();
        tx.commit().unwrap();
        assert_eq!(committed(&conn), [(1, 10), (2, 2)]);

        let mut reader = Reader::new(&bodies);
        let at = |segment, offset, len| BodyAt {
            segment,
            offset,
            len,
        };
        assert_eq!(reader.read(at(1, 0, 4)).unwrap(), b"abcd");
        assert_eq!(reader.read(at(1, 4, 6)).unwrap(), b"efghij");
        assert_eq!(reader.read(at(2, 0, 2)).unwrap(), b"kl");
        // The rolled-back third byte is still in the file, past the committed length.
        assert_eq!(std::fs::read(bodies.join("000002.seg")).unwrap(), b"klZ");

        // A transaction that is not committed changes no committed length.
        let tx = conn.transaction().unwrap();
        assert_eq!(app.place(&tx, 1).unwrap(), (2, 2));
        app.write(&tx, 2, 2, b"m").unwrap();
        drop(tx);
        assert_eq!(committed(&conn), [(1, 10), (2, 2)]);
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
