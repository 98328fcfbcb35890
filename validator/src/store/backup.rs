//! Online backups of a data directory (`gleaner-validator backup`), safe next to a running server.
//!
//! A backup is a directory laid out as a data directory, so restoring one is serving from it (or
//! moving it into place while no server runs):
//! * `validator.db`: a snapshot of the database, taken by SQLite's online backup in one step, so
//!   under one read transaction: every commit before it and none after, whatever the server
//!   writes meanwhile (WAL lets the copy read beside the writer). The copy is left in rollback
//!   journal mode, one file with no `-wal` beside it; the server turns WAL back on when it opens
//!   it.
//! * `validator.db-bodies/`: each body segment the snapshot names, cut at the length the snapshot
//!   says is committed. Committed bytes are never rewritten (see `bodies`), so the segments,
//!   copied after the snapshot, hold every body it points at; what the server appended since is
//!   left out.
//! * the other files the caller names (the validator's key and its config file), where present,
//!   with their permissions.
//! * `datasets/`: the exported datasets, when the caller names their directory. An export writes a
//!   dataset whole into a hidden staging directory and renames it into place, and nothing changes
//!   a dataset after, so each is copied as it stood; one replaced while it was copied (a new
//!   export under its name) is copied again.
//!
//! The copy is checked before it is reported: SQLite's `quick_check` on the snapshot and every
//! segment at its committed length. Any failure removes what the backup wrote.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite::backup::{Backup, StepResult};
use serde::Serialize;

use super::bodies::{self, io_error};
use super::{DB_FILE, Op, Store, StoreError, check, migrate, open_reading};

/// How many times a snapshot is tried while the source is locked (another process in the middle
/// of a checkpoint or a migration), [`SNAPSHOT_RETRY_PAUSE`] apart, before the backup gives up.
const SNAPSHOT_TRIES: u32 = 100;
const SNAPSHOT_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What a backup copied, as `gleaner-validator backup` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupReport {
    /// The backup's directory.
    pub path: PathBuf,
    /// The snapshot's schema version.
    pub schema_version: i64,
    /// Bytes of the database snapshot.
    pub database_bytes: u64,
    /// Records in the snapshot (accepted or not).
    pub records: u64,
    /// Body segments copied.
    pub segments: u64,
    /// Bytes of bodies copied (the segments' committed lengths).
    pub body_bytes: u64,
    /// The other files copied beside them, by name.
    pub files: Vec<String>,
    /// The datasets copied into `datasets/`, by name (none when not asked for).
    pub datasets: Vec<String>,
    /// Bytes of the datasets' files.
    pub dataset_bytes: u64,
    /// The `datasets_dir` the copied `validator.toml` set, taken out of the copy (the
    /// datasets are in its `datasets/`, where a server started on the copy looks by default);
    /// absent when the file set none or the datasets were left out. Set by the caller that
    /// knows the config ([`crate::config::reset_datasets_dir`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datasets_dir_reset: Option<String>,
}

impl Store {
    /// Backs up the data directory `data_dir` into `dest`, a directory that must not exist yet
    /// or be empty (made with mode 0700: the copy holds the validator's key). `beside` names the
    /// other files of `data_dir` to copy where present (the key, the config file); `datasets`,
    /// the exported datasets' directory to copy into `dest/datasets` (where present). Safe while
    /// a server serves `data_dir`; see the module's documentation for what the copy holds.
    ///
    /// Errors: `not_found` when `data_dir` has no database, `invalid_request` when `dest` holds
    /// anything, `store_schema_version` for a database newer than this build, `store_corrupt`
    /// when a segment is shorter than the database says or the snapshot fails its check,
    /// `store_io` for the files (and a dataset replaced at every try). Nothing is left in
    /// `dest` after an error.
    pub fn backup(
        data_dir: &Path,
        dest: &Path,
        beside: &[&str],
        datasets: Option<&Path>,
    ) -> Result<BackupReport, StoreError> {
        let source = data_dir.join(DB_FILE);
        if !source.is_file() {
            return Err(StoreError::NotFound {
                what: format!("database {}", source.display()),
            });
        }
        let created = prepare_destination(dest)?;
        let copied = copy_data_dir(data_dir, &source, dest, beside, datasets).map_err(|e| {
            match check::corruption(&e) {
                Some(why) => StoreError::Corrupt {
                    what: "database snapshot",
                    why,
                },
                None => e,
            }
        });
        if copied.is_err() {
            remove_written(dest, created);
        }
        copied
    }
}

/// Makes `dest` (mode 0700) or accepts it as it is when it is an empty directory. Returns
/// whether it was made.
fn prepare_destination(dest: &Path) -> Result<bool, StoreError> {
    let invalid = |why: String| StoreError::Invalid {
        field: "backup destination",
        why,
    };
    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(invalid(format!(
                    "{} is not empty: a backup goes into a new or empty directory",
                    dest.display()
                )));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder.create(dest).map_err(|e| io_error(dest, e))?;
            Ok(true)
        }
        Err(e) if dest.exists() && !dest.is_dir() => Err(invalid(format!(
            "{} is not a directory ({e})",
            dest.display()
        ))),
        Err(e) => Err(io_error(dest, e)),
    }
}

/// After a failed backup: removes what it wrote (all of `dest` when it made it). Best effort:
/// the error being reported matters more than one about the clean-up.
fn remove_written(dest: &Path, created: bool) {
    if created {
        let _ = std::fs::remove_dir_all(dest);
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dest) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

fn copy_data_dir(
    data_dir: &Path,
    source: &Path,
    dest: &Path,
    beside: &[&str],
    datasets: Option<&Path>,
) -> Result<BackupReport, StoreError> {
    let copy = dest.join(DB_FILE);
    snapshot(source, &copy)?;
    let conn = open_reading(&copy)?;
    let schema_version = migrate::user_version(&conn)?;
    if schema_version > migrate::SCHEMA_VERSION {
        return Err(StoreError::SchemaVersion {
            found: schema_version,
            supported: migrate::SCHEMA_VERSION,
        });
    }
    let failures = check::quick_check_failures(&conn)?;
    if !failures.is_empty() {
        return Err(StoreError::Corrupt {
            what: "database snapshot",
            why: format!("quick_check: {}", failures.join("; ")),
        });
    }
    let records: i64 = conn
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .op("backup")?;
    let segments = bodies::committed_segments(&conn)?;
    drop(conn);

    let body_bytes = copy_segments(&bodies::dir_for(source), &bodies::dir_for(&copy), &segments)?;
    let mut files = Vec::new();
    for name in beside {
        let from = data_dir.join(name);
        if !from.is_file() {
            continue;
        }
        let to = dest.join(name);
        std::fs::copy(&from, &to).map_err(|e| io_error(&from, e))?;
        File::open(&to)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(&to, e))?;
        files.push((*name).to_string());
    }
    let (datasets, dataset_bytes) = match datasets {
        Some(from) => copy_datasets(from, &dest.join(DATASETS_DIR))?,
        None => (Vec::new(), 0),
    };
    sync_dir(dest)?;
    let database_bytes = std::fs::metadata(&copy)
        .map_err(|e| io_error(&copy, e))?
        .len();
    Ok(BackupReport {
        path: dest.to_path_buf(),
        schema_version,
        database_bytes,
        records: u64::try_from(records).unwrap_or(0),
        segments: segments.len() as u64,
        body_bytes,
        files,
        datasets,
        dataset_bytes,
        datasets_dir_reset: None,
    })
}

/// The backup's directory of datasets, as in a data directory.
const DATASETS_DIR: &str = "datasets";

/// How many times a dataset replaced while it was copied is copied again.
const DATASET_TRIES: u32 = 3;

/// Copies each dataset directory under `from` (where it exists) into `to`; returns their names,
/// sorted, and their files' bytes. Names starting with a dot (an export's staging directory, or
/// the dataset it is replacing) are left out, and so is anything but a directory at the top.
fn copy_datasets(from: &Path, to: &Path) -> Result<(Vec<String>, u64), StoreError> {
    let names = dataset_dirs(from)?;
    if names.is_empty() {
        return Ok((Vec::new(), 0));
    }
    std::fs::create_dir_all(to).map_err(|e| io_error(to, e))?;
    let mut total = 0;
    let mut copied = Vec::new();
    for name in names {
        // A dataset removed before its copy began is not in the backup.
        if let Some(bytes) = copy_dataset(&from.join(&name), &to.join(&name), &mut copy_tree)? {
            total += bytes;
            copied.push(name);
        }
    }
    sync_dir(to)?;
    Ok((copied, total))
}

/// The datasets under `root` (none when it does not exist): its directories, sorted by name,
/// but those whose name starts with a dot (an export's staging directory, or the dataset it is
/// replacing).
pub(super) fn dataset_dirs(root: &Path) -> Result<Vec<String>, StoreError> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(root, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(root, e))?;
        let kind = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if kind.is_dir() && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Copies one dataset directory `src` to `dst` with `copy` ([`read_standing`]: again while it
/// was replaced during the copy); `None` when `src` is gone.
fn copy_dataset(
    src: &Path,
    dst: &Path,
    copy: &mut dyn FnMut(&Path, &Path) -> Result<u64, StoreError>,
) -> Result<Option<u64>, StoreError> {
    // What a copy made of a dataset replaced meanwhile may mix two datasets.
    read_standing(
        src,
        &mut || copy(src, dst),
        &mut || match std::fs::remove_dir_all(dst) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(dst, e)),
        },
    )
}

/// Runs `read` over the dataset directory `dir` until `dir` is the same directory before and
/// after it, at most [`DATASET_TRIES`] times: an export replaces a dataset by renaming a new
/// directory into its place, so an unchanged directory was read as it stood. After a read the
/// directory was replaced during, `undo` clears what that read left. `None` once `dir` is gone.
/// A read's error stands only when the directory stood still (a replacement may have caused
/// it, a file taken from under it); replaced at every try is an error.
pub(super) fn read_standing<T>(
    dir: &Path,
    read: &mut dyn FnMut() -> Result<T, StoreError>,
    undo: &mut dyn FnMut() -> Result<(), StoreError>,
) -> Result<Option<T>, StoreError> {
    for _ in 0..DATASET_TRIES {
        let Some(before) = dir_identity(dir)? else {
            return Ok(None);
        };
        let result = read();
        if dir_identity(dir)? == Some(before) {
            return result.map(Some);
        }
        undo()?;
    }
    Err(io_error(
        dir,
        std::io::Error::other(format!(
            "the dataset was replaced during each of {DATASET_TRIES} reads"
        )),
    ))
}

/// The directory's device, inode and change time, or `None` once it is gone. A directory
/// renamed into place has its change time set, so even an inode used again (a dataset replaced
/// twice during one copy) does not look the same.
fn dir_identity(dir: &Path) -> Result<Option<(u64, u64, i64, i64)>, StoreError> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(dir) {
        Ok(m) => Ok(Some((m.dev(), m.ino(), m.ctime(), m.ctime_nsec()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(dir, e)),
    }
}

/// Copies the directory tree `from` into a new directory `to`, files synced; symbolic links
/// and other special files are left out (an export writes none). Returns the files' bytes.
fn copy_tree(from: &Path, to: &Path) -> Result<u64, StoreError> {
    std::fs::create_dir(to).map_err(|e| io_error(to, e))?;
    let mut total = 0;
    for entry in std::fs::read_dir(from).map_err(|e| io_error(from, e))? {
        let entry = entry.map_err(|e| io_error(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(|e| io_error(&src, e))?;
        if kind.is_dir() {
            total += copy_tree(&src, &dst)?;
        } else if kind.is_file() {
            total += std::fs::copy(&src, &dst).map_err(|e| io_error(&src, e))?;
            File::open(&dst)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_error(&dst, e))?;
        }
    }
    sync_dir(to)?;
    Ok(total)
}

/// Copies the database at `source` to a new file `copy` in one backup step, so under one read
/// transaction, then leaves the copy in rollback journal mode, synced.
fn snapshot(source: &Path, copy: &Path) -> Result<(), StoreError> {
    let from = open_reading(source)?;
    let mut to = Connection::open(copy).map_err(|source| StoreError::Open {
        path: copy.to_path_buf(),
        source,
    })?;
    {
        let backup = Backup::new(&from, &mut to).op("backup")?;
        let mut tries = 0;
        loop {
            // -1: every page in this one step.
            match backup.step(-1).op("backup")? {
                StepResult::Done => break,
                StepResult::Busy | StepResult::Locked if tries + 1 < SNAPSHOT_TRIES => {
                    tries += 1;
                    std::thread::sleep(SNAPSHOT_RETRY_PAUSE);
                }
                other => {
                    return Err(StoreError::Sqlite {
                        op: "backup",
                        source: rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some(format!(
                                "the database stayed locked ({other:?}) through {tries} tries"
                            )),
                        ),
                    });
                }
            }
        }
    }
    let mode: String = to
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .op("backup")?;
    tracing::debug!(copy = %copy.display(), journal_mode = %mode, "database snapshot taken");
    to.close().map_err(|(_, source)| StoreError::Sqlite {
        op: "backup",
        source,
    })?;
    File::open(copy)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(copy, e))
}

/// Copies the committed bytes of each of `segments` from the segment directory `from` to `to`
/// (made if needed), each file synced, then the directory. Returns the bytes copied.
fn copy_segments(from: &Path, to: &Path, segments: &[(i64, u64)]) -> Result<u64, StoreError> {
    if segments.is_empty() {
        return Ok(0);
    }
    std::fs::create_dir_all(to).map_err(|e| io_error(to, e))?;
    let mut total = 0;
    for &(segment, bytes) in segments {
        let src_path = bodies::segment_path(from, segment);
        let dst_path = bodies::segment_path(to, segment);
        if bytes == 0 {
            // Nothing committed: the copy is empty whether or not the source file was made.
            File::create_new(&dst_path)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_error(&dst_path, e))?;
            continue;
        }
        let src = File::open(&src_path).map_err(|e| io_error(&src_path, e))?;
        let len = src.metadata().map_err(|e| io_error(&src_path, e))?.len();
        if len < bytes {
            return Err(StoreError::Corrupt {
                what: "body segment",
                why: format!(
                    "{} holds {len} bytes where the database says {bytes} are committed",
                    src_path.display()
                ),
            });
        }
        let mut dst = File::create_new(&dst_path).map_err(|e| io_error(&dst_path, e))?;
        let copied =
            std::io::copy(&mut src.take(bytes), &mut dst).map_err(|e| io_error(&dst_path, e))?;
        if copied != bytes {
            return Err(StoreError::Corrupt {
                what: "body segment",
                why: format!(
                    "{} gave {copied} of its {bytes} committed bytes",
                    src_path.display()
                ),
            });
        }
        dst.flush()
            .and_then(|()| dst.sync_all())
            .map_err(|e| io_error(&dst_path, e))?;
        total += bytes;
    }
    sync_dir(to)?;
    Ok(total)
}

/// Makes the directory's entries durable (a new file's name is in its directory).
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, e))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use gleaner_protocol::{EpochRoot, PublicKey, SecretKey};

    use super::*;
    use crate::identity::KEY_FILE;
    use crate::store::{AcceptedRecord, LedgerEntry};
    use crate::testkit::{
        FILL_T0, fill_store, ingest_batch, leased_jobs_on, record_for, sample_text,
        submit_sample_texts,
    };

    const BESIDE: [&str; 2] = [KEY_FILE, crate::config::DEFAULT_CONFIG_FILE];

    type Contents = (Vec<AcceptedRecord>, Vec<LedgerEntry>, Vec<EpochRoot>);

    /// What a reader sees of a store: every accepted record (each body read back and checked
    /// against its row), `node`'s ledger and the closed epochs.
    fn contents(store: &Store, node: &PublicKey) -> Contents {
        (
            store.accepted_records(None).unwrap(),
            store.ledger(node).unwrap(),
            store.epochs().unwrap(),
        )
    }

    fn record_count(store: &Store) -> u64 {
        let conn = store.conn.lock().unwrap();
        conn.query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
            .unwrap() as u64
    }

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_backup_reads_back_as_the_same_store_and_can_be_served_on() {
        let src = tempfile::tempdir().unwrap();
        let (_identity, accepted) = fill_store(src.path(), 40).unwrap();
        assert!(accepted >= 30, "{accepted}");
        std::fs::write(
            src.path().join("validator.toml"),
            "# the operator's settings\n",
        )
        .unwrap();
        let node = SecretKey::from_bytes(&[7; 32]);
        let source = Store::open(src.path()).unwrap();
        let before = contents(&source, &node.public());
        let source_records = record_count(&source);

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("nightly");
        let report = Store::backup(src.path(), &dest, &BESIDE, None).unwrap();
        assert_eq!(report.path, dest);
        assert_eq!(report.schema_version, migrate::SCHEMA_VERSION);
        assert_eq!(report.records, source_records);
        assert!(report.segments >= 1 && report.body_bytes > 0, "{report:?}");
        assert_eq!(report.files, ["validator.key", "validator.toml"]);
        assert_eq!(
            report.database_bytes,
            std::fs::metadata(dest.join(DB_FILE)).unwrap().len()
        );
        assert_eq!(mode(&dest), 0o700);
        // One file, no write-ahead log beside it.
        assert!(!dest.join("validator.db-wal").exists());
        for name in BESIDE {
            assert_eq!(
                std::fs::read(dest.join(name)).unwrap(),
                std::fs::read(src.path().join(name)).unwrap(),
                "{name}"
            );
        }
        assert_eq!(mode(&dest.join(KEY_FILE)), 0o600);

        let copy = Store::open_read_only(&dest).unwrap();
        assert_eq!(contents(&copy, &node.public()), before);
        drop(copy);

        // Restored: served from, it takes new batches, and the source does not see them.
        let restored = Store::open(&dest).unwrap();
        let validator = SecretKey::from_bytes(&[200; 32]);
        let jobs = leased_jobs_on(&restored, &node, "after", 3, FILL_T0 + 10_000).unwrap();
        let records = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| record_for(&node, job, sample_text(900 + i as u64, 2_000), FILL_T0))
            .collect();
        ingest_batch(&restored, &node, &validator, records, FILL_T0 + 11_000).unwrap();
        assert_eq!(record_count(&restored), source_records + 3);
        assert_eq!(record_count(&source), source_records);
        assert_eq!(contents(&source, &node.public()), before);
    }

    fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        crate::testkit::files_under(dir).unwrap()
    }

    /// The exported datasets come along, file for file, and the copy verifies against the
    /// validator's key; an export's hidden staging directory and stray files do not.
    #[test]
    fn exported_datasets_are_copied_whole_and_verify() {
        let src = tempfile::tempdir().unwrap();
        let (identity, accepted) = fill_store(src.path(), 30).unwrap();
        let root = crate::dataset::datasets_root(src.path());
        let store = Store::open(src.path()).unwrap();
        let first = crate::dataset::export_from_store(
            &store,
            identity.secret(),
            &root,
            None,
            Some("first"),
        )
        .unwrap();
        let second =
            crate::dataset::export_from_store(&store, identity.secret(), &root, Some(2), None)
                .unwrap();
        drop(store);
        std::fs::create_dir_all(root.join(".half.staging/data")).unwrap();
        std::fs::write(root.join(".half.staging/data/part.parquet"), b"half").unwrap();
        std::fs::write(root.join("notes.txt"), b"not a dataset").unwrap();

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("with-datasets");
        let report = Store::backup(src.path(), &dest, &BESIDE, Some(&root)).unwrap();
        let mut names = vec![first.manifest.name.clone(), second.manifest.name.clone()];
        names.sort();
        assert_eq!(report.datasets, names);
        let copied = dest.join("datasets");
        let mut bytes = 0;
        for name in &names {
            let (from, to) = (tree(&root.join(name)), tree(&copied.join(name)));
            assert!(from.len() >= 3, "{name}: {} files", from.len());
            assert!(from == to, "{name}: the copy differs");
            bytes += from.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
        }
        assert_eq!(report.dataset_bytes, bytes);
        let entries: Vec<_> = std::fs::read_dir(&copied)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(entries.len(), 2, "only the datasets: {entries:?}");
        let verified = gleaner_dataset::verify_dir(
            &copied.join("first"),
            &gleaner_dataset::VerifyOptions {
                trust: vec![identity.public()],
                ..Default::default()
            },
        );
        assert!(verified.is_ok(), "{:?}", verified.failures);
        assert_eq!(verified.rows_checked, accepted as u64);

        // Not asked for, or none exported yet: nothing copied, no directory made.
        let without = out.path().join("without");
        let report = Store::backup(src.path(), &without, &BESIDE, None).unwrap();
        assert!(report.datasets.is_empty() && report.dataset_bytes == 0);
        assert!(!without.join("datasets").exists());
        let none_yet = out.path().join("none-yet");
        let missing = src.path().join("no-datasets-here");
        let report = Store::backup(src.path(), &none_yet, &BESIDE, Some(&missing)).unwrap();
        assert!(report.datasets.is_empty(), "{report:?}");
    }

    /// A dataset replaced by a new export while it is copied is copied again, as it now
    /// stands; one replaced at every try is refused, and its half copy removed.
    #[test]
    fn a_dataset_replaced_while_copied_is_copied_again() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("ds"), tmp.path().join("copy"));
        let write = |dir: &Path, text: &str| {
            std::fs::create_dir_all(dir.join("data")).unwrap();
            std::fs::write(dir.join("manifest.json"), text).unwrap();
            std::fs::write(dir.join("data/part-0.parquet"), text.repeat(10)).unwrap();
        };
        write(&src, "old");
        // What an export does: the new dataset written aside, renamed into place.
        let replace = |text: &str| {
            let staging = tmp.path().join(".ds.staging");
            write(&staging, text);
            std::fs::remove_dir_all(&src).unwrap();
            std::fs::rename(&staging, &src).unwrap();
        };
        let mut calls = 0;
        let mut copy_once_replaced = |from: &Path, to: &Path| {
            calls += 1;
            let bytes = copy_tree(from, to);
            if calls == 1 {
                replace("new");
            }
            bytes
        };
        let bytes = copy_dataset(&src, &dst, &mut copy_once_replaced).unwrap();
        assert_eq!(calls, 2);
        assert_eq!(bytes, Some(3 + 30));
        assert_eq!(tree(&dst), tree(&src));
        assert_eq!(std::fs::read(dst.join("manifest.json")).unwrap(), b"new");

        std::fs::remove_dir_all(&dst).unwrap();
        let mut calls = 0;
        let mut copy_always_replaced = |from: &Path, to: &Path| {
            calls += 1;
            let bytes = copy_tree(from, to);
            replace(&format!("v{calls}"));
            bytes
        };
        let err = copy_dataset(&src, &dst, &mut copy_always_replaced).unwrap_err();
        assert_eq!(err.code(), "store_io");
        assert!(
            err.to_string().contains("replaced during each of 3"),
            "{err}"
        );
        assert_eq!(calls, DATASET_TRIES);
        assert!(!dst.exists(), "the half copy is removed");

        // Replaced while copied, the copy failing on a file taken from under it: copied again.
        std::fs::remove_dir_all(&dst).unwrap_or_default();
        let mut calls = 0;
        let mut copy_failing_once = |from: &Path, to: &Path| {
            calls += 1;
            if calls == 1 {
                std::fs::create_dir(to).unwrap();
                replace("newest");
                return Err(io_error(from, std::io::ErrorKind::NotFound.into()));
            }
            copy_tree(from, to)
        };
        let bytes = copy_dataset(&src, &dst, &mut copy_failing_once).unwrap();
        assert_eq!((calls, bytes), (2, Some(6 + 60)));
        assert_eq!(std::fs::read(dst.join("manifest.json")).unwrap(), b"newest");
        // A copy failing while the dataset stands still is the backup's failure.
        let mut broken = |from: &Path, _: &Path| -> Result<u64, StoreError> {
            Err(io_error(from, std::io::ErrorKind::PermissionDenied.into()))
        };
        let err = copy_dataset(&src, &tmp.path().join("other"), &mut broken).unwrap_err();
        assert_eq!(err.code(), "store_io");

        // Gone before its copy: not copied, not an error.
        std::fs::remove_dir_all(&src).unwrap();
        let mut never = |_: &Path, _: &Path| -> Result<u64, StoreError> { panic!("copied") };
        assert_eq!(copy_dataset(&src, &dst, &mut never).unwrap(), None);
    }

    /// Batches go in one after another while backups are taken: each backup holds a prefix of
    /// them, whole, with every body its rows name, and its segments end where it says.
    #[test]
    fn a_backup_taken_while_batches_go_in_is_a_consistent_snapshot() {
        let src = tempfile::tempdir().unwrap();
        // Small segments: the batches span several, and the last grows during the backups.
        let store = Store::open(src.path()).unwrap().with_segment_limit(30_000);
        let node = SecretKey::from_bytes(&[9; 32]);
        let validator = SecretKey::from_bytes(&[200; 32]);
        const BATCHES: usize = 30;
        const PER_BATCH: usize = 4;
        let jobs = leased_jobs_on(&store, &node, "live", BATCHES * PER_BATCH, FILL_T0).unwrap();
        let done = AtomicUsize::new(0);
        let writing = AtomicBool::new(true);
        let out = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        std::thread::scope(|s| {
            s.spawn(|| {
                let submitted = submit_sample_texts(
                    &store,
                    &node,
                    &validator,
                    &jobs,
                    PER_BATCH,
                    FILL_T0,
                    |_, _| {
                        done.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    },
                );
                // Whatever happened, the loop below stops.
                writing.store(false, Ordering::SeqCst);
                submitted.unwrap();
            });
            let mut k = 0;
            while writing.load(Ordering::SeqCst) {
                let before = done.load(Ordering::SeqCst);
                if before == 0 {
                    std::thread::yield_now();
                    continue;
                }
                let dest = out.path().join(format!("b{k}"));
                let report = Store::backup(src.path(), &dest, &BESIDE, None).unwrap();
                let after = done.load(Ordering::SeqCst);
                let batches = report.records as usize / PER_BATCH;
                assert_eq!(report.records as usize % PER_BATCH, 0, "{report:?}");
                assert!(
                    (before..=after).contains(&batches),
                    "{before} {batches} {after}"
                );
                seen.push((dest, batches));
                k += 1;
            }
        });
        assert!(!seen.is_empty(), "no backup was taken while ingesting");
        for (dest, batches) in &seen {
            let copy = Store::open_read_only(dest).unwrap();
            let (records, ledger, _) = contents(&copy, &node.public());
            // Every record of these texts is accepted, and each batch credited once.
            assert_eq!(records.len(), batches * PER_BATCH, "{}", dest.display());
            assert_eq!(ledger.len(), *batches, "{}", dest.display());
            let conn = copy.conn.lock().unwrap();
            for (segment, bytes) in bodies::committed_segments(&conn).unwrap() {
                let path = bodies::segment_path(&bodies::dir_for(&dest.join(DB_FILE)), segment);
                assert_eq!(
                    std::fs::metadata(&path).unwrap().len(),
                    bytes,
                    "{}",
                    path.display()
                );
            }
        }
        let last = out.path().join("last");
        let report = Store::backup(src.path(), &last, &BESIDE, None).unwrap();
        assert_eq!(report.records as usize, BATCHES * PER_BATCH);
        assert!(report.segments >= 3, "{report:?}");
    }

    #[test]
    fn a_backup_refuses_a_destination_in_use_and_a_directory_without_a_database() {
        let src = tempfile::tempdir().unwrap();
        fill_store(src.path(), 5).unwrap();
        let out = tempfile::tempdir().unwrap();

        let busy = out.path().join("busy");
        std::fs::create_dir(&busy).unwrap();
        std::fs::write(busy.join("notes.txt"), "keep me").unwrap();
        let err = Store::backup(src.path(), &busy, &BESIDE, None).unwrap_err();
        assert_eq!(err.code(), "invalid_request", "{err}");
        assert!(err.to_string().contains("not empty"), "{err}");
        let left: Vec<_> = std::fs::read_dir(&busy).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "only the file that was there");
        assert_eq!(
            std::fs::read_to_string(busy.join("notes.txt")).unwrap(),
            "keep me"
        );

        let file = out.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = Store::backup(src.path(), &file, &BESIDE, None).unwrap_err();
        assert_eq!(err.code(), "invalid_request", "{err}");

        let empty = tempfile::tempdir().unwrap();
        let dest = out.path().join("from-nothing");
        let err = Store::backup(empty.path(), &dest, &BESIDE, None).unwrap_err();
        assert_eq!(err.code(), "not_found", "{err}");
        assert!(!dest.exists());

        // The data directory itself holds files: never a destination.
        let err = Store::backup(src.path(), src.path(), &BESIDE, None).unwrap_err();
        assert_eq!(err.code(), "invalid_request", "{err}");
    }

    /// A damaged page of the source fails the snapshot's check: the backup stops (and leaves
    /// nothing), and `check` on the source names the damage. Whether SQLite's check lists the
    /// damage or stops at it depends on the page; pages at a quarter, half and three quarters of
    /// the file, each in its own store, are refused alike.
    #[test]
    fn a_damaged_database_is_not_backed_up() {
        for quarter in 1..=3 {
            damaged_page_is_refused(quarter);
        }
    }

    fn damaged_page_is_refused(quarter: usize) {
        let src = tempfile::tempdir().unwrap();
        let (identity, _) = fill_store(src.path(), 30).unwrap();
        let db = src.path().join(DB_FILE);
        // Through a checkpoint into the main file, then one of its pages overwritten.
        Connection::open(&db)
            .unwrap()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let mut bytes = std::fs::read(&db).unwrap();
        let page = 4096 * (bytes.len() / 4096 * quarter / 4);
        bytes[page..page + 4096].fill(0xa5);
        std::fs::write(&db, bytes).unwrap();

        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("b");
        let err = Store::backup(src.path(), &dest, &BESIDE, None).unwrap_err();
        assert_eq!(err.code(), "store_corrupt", "page at {quarter}/4: {err}");
        assert!(err.to_string().contains("database snapshot"), "{err}");
        assert!(!dest.exists());
        let report = Store::open_read_only(src.path())
            .unwrap()
            .check(&identity.public())
            .unwrap();
        assert!(
            report.listed.iter().any(|p| p.code == "database_corrupt"),
            "page at {quarter}/4: {report:#?}"
        );
    }

    /// A segment with nothing committed needs no file: it is backed up (empty) and checks.
    #[test]
    fn a_segment_with_nothing_committed_needs_no_file() {
        let src = tempfile::tempdir().unwrap();
        let (identity, _) = fill_store(src.path(), 5).unwrap();
        Connection::open(src.path().join(DB_FILE))
            .unwrap()
            .execute(
                "INSERT INTO body_segments(segment, bytes) VALUES (99, 0)",
                [],
            )
            .unwrap();
        let source = Store::open_read_only(src.path()).unwrap();
        assert!(source.check(&identity.public()).unwrap().ok());
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("b");
        let report = Store::backup(src.path(), &dest, &BESIDE, None).unwrap();
        assert_eq!(report.segments, 2);
        let empty = bodies::segment_path(&bodies::dir_for(&dest.join(DB_FILE)), 99);
        assert_eq!(std::fs::metadata(empty).unwrap().len(), 0);
        let copy = Store::open_read_only(&dest).unwrap();
        assert!(copy.check(&identity.public()).unwrap().ok());
    }

    #[test]
    fn a_segment_shorter_than_the_database_says_stops_the_backup_and_leaves_nothing() {
        let src = tempfile::tempdir().unwrap();
        fill_store(src.path(), 10).unwrap();
        let segment = bodies::segment_path(&bodies::dir_for(&src.path().join(DB_FILE)), 1);
        let len = std::fs::metadata(&segment).unwrap().len();
        File::options()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let out = tempfile::tempdir().unwrap();

        let dest = out.path().join("new");
        let err = Store::backup(src.path(), &dest, &BESIDE, None).unwrap_err();
        assert_eq!(err.code(), "store_corrupt", "{err}");
        assert!(err.to_string().contains("000001.seg"), "{err}");
        assert!(!dest.exists(), "the directory the backup made is gone");

        // A directory that was there, empty, stays, and empty.
        let empty = out.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let err = Store::backup(src.path(), &empty, &BESIDE, None).unwrap_err();
        assert_eq!(err.code(), "store_corrupt", "{err}");
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    }
}
