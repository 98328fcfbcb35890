//! The dedup index of accepted primary records, kept in memory: their LSH bands (schema version
//! 7) and their exact text keys (version 8).
//!
//! Near-duplicate detection asks, for each of a record's 14 band keys, whether an accepted
//! primary record already has it. Until version 6 that was a SQLite table keyed by (band, key).
//! Band keys are hashes, so every insert landed on a random page of that table: once the table
//! outgrew a batch, each accepted record dirtied 14 pages, each written to the log at commit and
//! again into the database at the checkpoint. That was the largest write cost of ingest, and it
//! grew with the store (see the validator README, "Where the store's writes went, and the band
//! index in memory").
//!
//! The index is now a hash map in the writer's memory, rebuilt from the records themselves when a
//! writer first needs it: every accepted primary record's stored MinHash gives its bands, read in
//! one pass over the records table in rowid (arrival) order. Nothing about bands is written at
//! ingest beyond the record's row. (Versions 7 and 8 read a covering index, `records_bands`,
//! which only ever grew at its end; version 9 drops it: it was one more copy of each MinHash
//! written per record, ~6 µs of the store's CPU, against a rebuild ~25 % slower.)
//!
//! The map follows the database's transaction: changes are applied at once and logged; a
//! savepoint rolled back or a transaction not committed undoes them ([`BandIndex::undo_to`]), so
//! the map always equals what a rebuild from the committed records would give. Only one process
//! may ingest into a data directory (the server; nothing else writes records).
//!
//! Semantics are those of the table it replaces: a key belongs to the first accepted record that
//! had it, a record sharing a key with an accepted one is a near duplicate (and adds no keys), and
//! a revoked record's keys leave the index.
//!
//! Exact duplicates (the same normalised text: [`crate::dedup::exact_key`]) are found here too,
//! since version 8. Until then each was a look-up in a SQLite index on `records(text_key)`; that
//! key is a hash as well, so each accepted record's entry landed on a random page of that index,
//! which cost ~1 page write per record once the index outgrew a batch (~11 µs of the store's
//! ~88 µs of CPU per record at 20,000 records). A text key is one more slot of the map, beside
//! the 14 bands (its "band" is [`EXACT_BAND`]), with the same owner, undo and revocation rules,
//! and the rebuild reads it from the same rows.

use std::collections::HashMap;

use gleaner_protocol::Digest;
use rusqlite::Connection;

use super::{Op, StoreError, digest_from};
use crate::dedup::{MinHash, NUM_BANDS};

/// What [`BandIndex::load`] reads: the table in rowid order, which is its storage order (no sort).
pub(super) const LOAD_SQL: &str = "SELECT record_id, text_key, minhash, seq FROM records
                                    WHERE verdict = 'accepted' AND role = 'primary'
                                    ORDER BY rowid";

/// `NUM_BANDS` fits the slot's low 4 bits.
const BAND_BITS: u32 = 4;
/// The slot "band" of exact text keys: one past the LSH bands.
const EXACT_BAND: usize = NUM_BANDS;
const _: () = assert!(EXACT_BAND < 1 << BAND_BITS);

/// One map entry per (band, key): the key with its low 4 bits replaced by the band. Two keys of
/// one band that differ only in those bits share a slot, so a band match is decided on 60 bits of
/// the band's hash instead of 64: with a billion records stored, 14 probes against 10⁹ keys per
/// band at 2⁻⁶⁰ each give a false match with odds of about 10⁻⁸ per record, far below the LSH
/// scheme's own false positives.
fn slot(band: usize, key: i64) -> u64 {
    ((key as u64) & !((1 << BAND_BITS) - 1)) | band as u64
}

/// The slot of an exact text key: its first 8 bytes in [`EXACT_BAND`], so decided on 60 bits as
/// the bands are (a text key is a blake3 digest, so the odds of a false match are as small).
fn exact_slot(text_key: &Digest) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&text_key.as_bytes()[..8]);
    slot(EXACT_BAND, i64::from_le_bytes(first))
}

/// A record's slots: its bands, then its exact text key.
fn slots_of<'a>(
    text_key: &'a Digest,
    bands: &'a [i64; NUM_BANDS],
) -> impl Iterator<Item = u64> + 'a {
    let bands = bands.iter().enumerate().map(|(b, &key)| slot(b, key));
    bands.chain(std::iter::once(exact_slot(text_key)))
}

/// What `BandIndex::size` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandIndexSize {
    /// Records that own or owned slots (revoked ones stay counted until the next rebuild).
    pub records: usize,
    /// (band, key) and exact text key slots owned.
    pub slots: usize,
    /// Heap memory of the index, estimated from its capacities.
    pub heap_bytes: usize,
}

#[derive(Debug)]
enum Undo {
    /// A slot was added: remove it.
    Added(u64),
    /// A slot was removed: put its owner back.
    Removed(u64, u32),
    /// An owner was pushed: pop it.
    Owner,
}

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct BandIndex {
    /// Slot → index of its owner in `owners`.
    /// foldhash instead of SipHash: ~30 look-ups and inserts per accepted record, each keyed
    /// by a hash of text a node chose, so still seeded at random per process.
    slots: HashMap<u64, u32, foldhash::fast::RandomState>,
    /// Ids and seqs (rows) of records that own or owned slots (a revoked record's stay; its
    /// slots go).
    owners: Vec<(Digest, i64)>,
    /// Changes of the open transaction, oldest first.
    undo: Vec<Undo>,
}

impl BandIndex {
    /// Builds the index from the committed accepted primary records, in the order they were
    /// received (so each key goes to the record that took it first).
    pub(crate) fn load(conn: &Connection) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let mut index = BandIndex::default();
        let mut stmt = conn.prepare(LOAD_SQL).op("load bands")?;
        let mut rows = stmt.query([]).op("load bands")?;
        while let Some(row) = rows.next().op("load bands")? {
            let blob = |i: usize, what: &'static str| -> Result<&[u8], StoreError> {
                row.get_ref(i)
                    .op("load bands")?
                    .as_blob()
                    .map_err(|e| StoreError::Corrupt {
                        what,
                        why: e.to_string(),
                    })
            };
            let id = digest_from(blob(0, "record id")?, "record id")?;
            let text_key = digest_from(blob(1, "record text key")?, "record text key")?;
            let bytes = blob(2, "record minhash")?;
            let minhash = MinHash::from_bytes(bytes).ok_or_else(|| StoreError::Corrupt {
                what: "record minhash",
                why: format!("{} bytes", bytes.len()),
            })?;
            let seq: i64 = row.get(3).op("load bands")?;
            index.insert(id, seq, &text_key, &minhash.bands());
        }
        index.undo = Vec::new();
        let size = index.size();
        tracing::info!(
            records = size.records,
            slots = size.slots,
            mib = size.heap_bytes / (1 << 20),
            ms = started.elapsed().as_millis() as u64,
            "band index loaded"
        );
        Ok(index)
    }

    /// The record (id and seq) owning the first of `bands` (in band order) that any record owns.
    pub(crate) fn find(&self, bands: &[i64; NUM_BANDS]) -> Option<(Digest, i64)> {
        bands.iter().enumerate().find_map(|(b, &key)| {
            let owner = *self.slots.get(&slot(b, key))?;
            self.owners.get(owner as usize).copied()
        })
    }

    /// The record (id and seq) owning `text_key`: an accepted primary record with the same
    /// normalised text.
    pub(crate) fn find_exact(&self, text_key: &Digest) -> Option<(Digest, i64)> {
        let owner = *self.slots.get(&exact_slot(text_key))?;
        self.owners.get(owner as usize).copied()
    }

    /// Gives record `id`, stored at row `seq`, its `text_key` and every one of `bands` that no
    /// record owns yet.
    pub(crate) fn insert(
        &mut self,
        id: Digest,
        seq: i64,
        text_key: &Digest,
        bands: &[i64; NUM_BANDS],
    ) {
        let Ok(owner) = u32::try_from(self.owners.len()) else {
            tracing::error!("band index full: {} owners", self.owners.len());
            return;
        };
        self.owners.push((id, seq));
        self.undo.push(Undo::Owner);
        for s in slots_of(text_key, bands) {
            if let std::collections::hash_map::Entry::Vacant(e) = self.slots.entry(s) {
                e.insert(owner);
                self.undo.push(Undo::Added(s));
            }
        }
    }

    /// Takes out `text_key` and every one of `bands` where `id` owns them.
    pub(crate) fn remove(&mut self, id: &Digest, text_key: &Digest, bands: &[i64; NUM_BANDS]) {
        for s in slots_of(text_key, bands) {
            let Some(&owner) = self.slots.get(&s) else {
                continue;
            };
            if self.owners.get(owner as usize).map(|o| &o.0) == Some(id) {
                self.slots.remove(&s);
                self.undo.push(Undo::Removed(s, owner));
            }
        }
    }

    /// Where the undo log stands: pass it to [`BandIndex::undo_to`] to roll back what follows.
    pub(crate) fn mark(&self) -> usize {
        self.undo.len()
    }

    /// Undoes every change made since `mark`, newest first.
    pub(crate) fn undo_to(&mut self, mark: usize) {
        while self.undo.len() > mark {
            match self.undo.pop() {
                Some(Undo::Added(s)) => {
                    self.slots.remove(&s);
                }
                Some(Undo::Removed(s, owner)) => {
                    self.slots.insert(s, owner);
                }
                Some(Undo::Owner) => {
                    self.owners.pop();
                }
                None => break,
            }
        }
    }

    /// The changes are committed: forget how to undo them.
    pub(crate) fn committed(&mut self) {
        self.undo.clear();
    }

    /// How much the index holds, and its heap memory (hashbrown's table: a power-of-two
    /// number of buckets at most 7/8 full, each an entry and a control byte).
    pub(crate) fn size(&self) -> BandIndexSize {
        let buckets = if self.slots.capacity() == 0 {
            0
        } else {
            (self.slots.capacity() * 8 / 7).next_power_of_two()
        };
        BandIndexSize {
            records: self.owners.len(),
            slots: self.slots.len(),
            heap_bytes: buckets * (std::mem::size_of::<(u64, u32)>() + 1)
                + self.owners.capacity() * std::mem::size_of::<(Digest, i64)>()
                + self.undo.capacity() * std::mem::size_of::<Undo>(),
        }
    }

    /// Number of slots owned (bands and text keys).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Ids owning at least one slot, sorted.
    #[cfg(test)]
    pub(crate) fn owners(&self) -> Vec<Digest> {
        let mut ids: Vec<Digest> = self
            .slots
            .values()
            .filter_map(|&o| self.owners.get(o as usize).map(|o| o.0))
            .collect();
        ids.sort_by_key(|d| *d.as_bytes());
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bands(seed: u64) -> [i64; NUM_BANDS] {
        MinHash::of(&crate::testkit::sample_text(seed, 1_500)).bands()
    }

    fn id(n: u8) -> Digest {
        Digest::from_bytes([n; 32])
    }

    /// A text key (as `exact_key` makes them: a digest).
    fn key(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn the_first_owner_keeps_a_key_and_a_shared_band_finds_it() {
        let mut ix = BandIndex::default();
        let (a, b) = (bands(1), bands(2));
        assert_eq!(ix.find(&a), None);
        assert_eq!(ix.find_exact(&key(1)), None);
        ix.insert(id(1), 1, &key(1), &a);
        assert_eq!(ix.len(), NUM_BANDS + 1);
        assert_eq!(ix.find(&a), Some((id(1), 1)));
        assert_eq!(ix.find_exact(&key(1)), Some((id(1), 1)));
        assert_eq!(ix.find_exact(&key(2)), None);
        assert_eq!(ix.find(&b), None);
        // Sharing one band (the last) is enough.
        let mut near = b;
        near[NUM_BANDS - 1] = a[NUM_BANDS - 1];
        assert_eq!(ix.find(&near), Some((id(1), 1)));
        // A later record with that band does not take it over.
        ix.insert(id(2), 2, &key(2), &near);
        assert_eq!(ix.len(), 2 * NUM_BANDS - 1 + 2);
        assert_eq!(ix.find(&a), Some((id(1), 1)));
        assert_eq!(ix.find_exact(&key(2)), Some((id(2), 2)));
        // Removing a record takes out only the keys it owns.
        ix.remove(&id(2), &key(2), &near);
        assert_eq!(ix.len(), NUM_BANDS + 1);
        assert_eq!(ix.owners(), vec![id(1)]);
        assert_eq!(ix.find_exact(&key(2)), None);
        // Nor does a later record with the same text key take that over, nor remove it.
        ix.insert(id(3), 3, &key(1), &bands(3));
        assert_eq!(ix.find_exact(&key(1)), Some((id(1), 1)));
        ix.remove(&id(3), &key(1), &bands(3));
        assert_eq!(ix.find_exact(&key(1)), Some((id(1), 1)));
        assert_eq!(ix.len(), NUM_BANDS + 1);
        let size = ix.size();
        assert_eq!((size.records, size.slots), (3, NUM_BANDS + 1), "{size:?}");
        assert!(size.heap_bytes >= NUM_BANDS * 17 + 2 * 32, "{size:?}");
        // The same key in another band is another slot, and a band key is not a text key.
        let mut shifted = b;
        shifted[0] = a[1];
        assert_eq!(ix.find(&shifted), None);
        let mut as_band = b;
        as_band[0] = i64::from_le_bytes(key(1).as_bytes()[..8].try_into().unwrap());
        assert_eq!(ix.find(&as_band), None);
    }

    #[test]
    fn undo_restores_the_index_as_it_was_at_the_mark() {
        let mut ix = BandIndex::default();
        ix.insert(id(1), 1, &key(1), &bands(1));
        ix.insert(id(2), 2, &key(2), &bands(2));
        ix.committed();
        let before = (ix.slots.clone(), ix.owners.clone());

        let mark = ix.mark();
        ix.insert(id(3), 3, &key(3), &bands(3));
        ix.remove(&id(1), &key(1), &bands(1));
        let inner = ix.mark();
        ix.remove(&id(2), &key(2), &bands(2));
        ix.insert(id(4), 4, &key(1), &bands(1)); // takes the keys id 1 gave up
        assert_eq!(ix.owners(), vec![id(3), id(4)]);
        assert_eq!(ix.find_exact(&key(1)), Some((id(4), 4)));
        ix.undo_to(inner);
        assert_eq!(ix.owners(), vec![id(2), id(3)]);
        assert_eq!(ix.find(&bands(1)), None);
        assert_eq!(ix.find_exact(&key(1)), None);
        assert_eq!(ix.find_exact(&key(2)), Some((id(2), 2)));
        ix.undo_to(mark);
        assert_eq!((ix.slots.clone(), ix.owners.clone()), before);
        assert_eq!(ix.find(&bands(1)), Some((id(1), 1)));
        assert_eq!(ix.find_exact(&key(1)), Some((id(1), 1)));
        assert_eq!(ix.find_exact(&key(3)), None);

        // Committed changes stay.
        ix.insert(id(5), 5, &key(5), &bands(5));
        ix.committed();
        ix.undo_to(0);
        assert_eq!(ix.find(&bands(5)), Some((id(5), 5)));
        assert_eq!(ix.find_exact(&key(5)), Some((id(5), 5)));
    }
}
