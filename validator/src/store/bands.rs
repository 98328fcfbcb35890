//! The LSH band index of accepted primary records, kept in memory (schema version 7).
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
//! one pass over a covering index that only ever grows at its end (`records_bands`). Nothing
//! about bands is written at ingest beyond the record's row.
//!
//! The map follows the database's transaction: changes are applied at once and logged; a
//! savepoint rolled back or a transaction not committed undoes them ([`BandIndex::undo_to`]), so
//! the map always equals what a rebuild from the committed records would give. Only one process
//! may ingest into a data directory (the server; nothing else writes records).
//!
//! Semantics are those of the table it replaces: a key belongs to the first accepted record that
//! had it, a record sharing a key with an accepted one is a near duplicate (and adds no keys), and
//! a revoked record's keys leave the index.

use std::collections::HashMap;

use gleaner_protocol::Digest;
use rusqlite::Connection;

use super::{Op, StoreError, digest_from};
use crate::dedup::{MinHash, NUM_BANDS};

/// `NUM_BANDS` fits the slot's low 4 bits.
const BAND_BITS: u32 = 4;
const _: () = assert!(NUM_BANDS <= 1 << BAND_BITS);

/// One map entry per (band, key): the key with its low 4 bits replaced by the band. Two keys of
/// one band that differ only in those bits share a slot, so a band match is decided on 60 bits of
/// the band's hash instead of 64: with a billion records stored, 14 probes against 10⁹ keys per
/// band at 2⁻⁶⁰ each give a false match with odds of about 10⁻⁸ per record, far below the LSH
/// scheme's own false positives.
fn slot(band: usize, key: i64) -> u64 {
    ((key as u64) & !((1 << BAND_BITS) - 1)) | band as u64
}

/// What [`BandIndex::size`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandIndexSize {
    /// Records that own or owned slots (revoked ones stay counted until the next rebuild).
    pub records: usize,
    /// (band, key) slots owned.
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
    slots: HashMap<u64, u32>,
    /// Ids of records that own or owned slots (a revoked record's id stays; its slots go).
    owners: Vec<Digest>,
    /// Changes of the open transaction, oldest first.
    undo: Vec<Undo>,
}

impl BandIndex {
    /// Builds the index from the committed accepted primary records, in the order they were
    /// received (so each key goes to the record that took it first).
    pub(crate) fn load(conn: &Connection) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let mut index = BandIndex::default();
        let mut stmt = conn
            .prepare(
                "SELECT record_id, minhash FROM records INDEXED BY records_bands
                  WHERE verdict = 'accepted' AND role = 'primary'
                  ORDER BY received_at_ms, record_id",
            )
            .op("load bands")?;
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
            let bytes = blob(1, "record minhash")?;
            let minhash = MinHash::from_bytes(bytes).ok_or_else(|| StoreError::Corrupt {
                what: "record minhash",
                why: format!("{} bytes", bytes.len()),
            })?;
            index.insert(id, &minhash.bands());
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

    /// The record owning the first of `bands` (in band order) that any record owns.
    pub(crate) fn find(&self, bands: &[i64; NUM_BANDS]) -> Option<Digest> {
        bands.iter().enumerate().find_map(|(b, &key)| {
            let owner = *self.slots.get(&slot(b, key))?;
            self.owners.get(owner as usize).copied()
        })
    }

    /// Gives `id` every one of `bands` that no record owns yet.
    pub(crate) fn insert(&mut self, id: Digest, bands: &[i64; NUM_BANDS]) {
        let Ok(owner) = u32::try_from(self.owners.len()) else {
            tracing::error!("band index full: {} owners", self.owners.len());
            return;
        };
        self.owners.push(id);
        self.undo.push(Undo::Owner);
        for (b, &key) in bands.iter().enumerate() {
            let s = slot(b, key);
            if let std::collections::hash_map::Entry::Vacant(e) = self.slots.entry(s) {
                e.insert(owner);
                self.undo.push(Undo::Added(s));
            }
        }
    }

    /// Takes out every one of `bands` that `id` owns.
    pub(crate) fn remove(&mut self, id: &Digest, bands: &[i64; NUM_BANDS]) {
        for (b, &key) in bands.iter().enumerate() {
            let s = slot(b, key);
            let Some(&owner) = self.slots.get(&s) else {
                continue;
            };
            if self.owners.get(owner as usize) == Some(id) {
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
                + self.owners.capacity() * std::mem::size_of::<Digest>()
                + self.undo.capacity() * std::mem::size_of::<Undo>(),
        }
    }

    /// Number of (band, key) slots owned.
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
            .filter_map(|&o| self.owners.get(o as usize).copied())
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

    #[test]
    fn the_first_owner_keeps_a_key_and_a_shared_band_finds_it() {
        let mut ix = BandIndex::default();
        let (a, b) = (bands(1), bands(2));
        assert_eq!(ix.find(&a), None);
        ix.insert(id(1), &a);
        assert_eq!(ix.len(), NUM_BANDS);
        assert_eq!(ix.find(&a), Some(id(1)));
        assert_eq!(ix.find(&b), None);
        // Sharing one band (the last) is enough.
        let mut near = b;
        near[NUM_BANDS - 1] = a[NUM_BANDS - 1];
        assert_eq!(ix.find(&near), Some(id(1)));
        // A later record with that band does not take it over.
        ix.insert(id(2), &near);
        assert_eq!(ix.len(), 2 * NUM_BANDS - 1);
        assert_eq!(ix.find(&a), Some(id(1)));
        // Removing a record takes out only the keys it owns.
        ix.remove(&id(2), &near);
        assert_eq!(ix.len(), NUM_BANDS);
        assert_eq!(ix.owners(), vec![id(1)]);
        let size = ix.size();
        assert_eq!((size.records, size.slots), (2, NUM_BANDS), "{size:?}");
        assert!(size.heap_bytes >= NUM_BANDS * 17 + 2 * 32, "{size:?}");
        // The same key in another band is another slot.
        let mut shifted = b;
        shifted[0] = a[1];
        assert_eq!(ix.find(&shifted), None);
    }

    #[test]
    fn undo_restores_the_index_as_it_was_at_the_mark() {
        let mut ix = BandIndex::default();
        ix.insert(id(1), &bands(1));
        ix.insert(id(2), &bands(2));
        ix.committed();
        let before = (ix.slots.clone(), ix.owners.clone());

        let mark = ix.mark();
        ix.insert(id(3), &bands(3));
        ix.remove(&id(1), &bands(1));
        let inner = ix.mark();
        ix.remove(&id(2), &bands(2));
        ix.insert(id(4), &bands(1)); // takes the keys id 1 gave up
        assert_eq!(ix.owners(), vec![id(3), id(4)]);
        ix.undo_to(inner);
        assert_eq!(ix.owners(), vec![id(2), id(3)]);
        assert_eq!(ix.find(&bands(1)), None);
        ix.undo_to(mark);
        assert_eq!((ix.slots.clone(), ix.owners.clone()), before);
        assert_eq!(ix.find(&bands(1)), Some(id(1)));

        // Committed changes stay.
        ix.insert(id(5), &bands(5));
        ix.committed();
        ix.undo_to(0);
        assert_eq!(ix.find(&bands(5)), Some(id(5)));
    }
}
