//! The fetcher cache's bookkeeping as plain data: which URIs have an entry, how many bytes
//! each holds, who is using it, and which entries to evict to make room. No I/O, no clock
//! (recency is a counter), no tokio: every rule is tested in a table below.

use std::collections::HashMap;

/// One cache entry's identity. Ids are never reused, so a stale handle can never touch a
/// later entry for the same URI; the entry's file is named after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EntryId(pub(crate) u64);

/// What the ledger knows about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Complete: its file is in the cache.
    Resident(EntryId),
    /// Its download is under way.
    Downloading(EntryId),
    Absent,
}

/// Why an entry got no space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoRoom {
    /// The item alone is larger than the whole cache.
    TooBig,
    /// Entries in use (being downloaded or delivered) hold the space it needs.
    InUse,
}

#[derive(Debug, Clone)]
struct Entry {
    id: EntryId,
    bytes: u64,
    resident: bool,
    /// Fetches using the entry: waiting for it, downloading it or delivering from it.
    pins: u32,
    /// The tick of the last pin; the smallest is the least recently used.
    last_used: u64,
}

/// The cache's entries and space.
#[derive(Debug, Clone)]
pub(crate) struct Ledger {
    capacity_bytes: u64,
    used_bytes: u64,
    tick: u64,
    next_id: u64,
    entries: HashMap<String, Entry>,
}

impl Ledger {
    pub(crate) fn new(capacity_bytes: u64) -> Self {
        Self {
            capacity_bytes,
            used_bytes: 0,
            tick: 0,
            next_id: 1,
            entries: HashMap::new(),
        }
    }

    pub(crate) fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// How many fetches use the entry for `key` (0 without one).
    pub(crate) fn pins(&self, key: &str) -> u32 {
        self.entries.get(key).map_or(0, |entry| entry.pins)
    }

    pub(crate) fn lookup(&self, key: &str) -> Lookup {
        match self.entries.get(key) {
            Some(entry) if entry.resident => Lookup::Resident(entry.id),
            Some(entry) => Lookup::Downloading(entry.id),
            None => Lookup::Absent,
        }
    }

    /// Starts a new entry for `key` (which must be absent), pinned once by its downloader.
    /// It holds no space until [`Ledger::reserve`].
    pub(crate) fn begin(&mut self, key: &str) -> EntryId {
        assert!(
            !self.entries.contains_key(key),
            "a second cache entry for {key}"
        );
        let id = EntryId(self.next_id);
        self.next_id += 1;
        self.tick += 1;
        let entry = Entry {
            id,
            bytes: 0,
            resident: false,
            pins: 1,
            last_used: self.tick,
        };
        self.entries.insert(key.to_owned(), entry);
        id
    }

    /// Marks the entry as used once more; a pinned entry is never evicted.
    pub(crate) fn pin(&mut self, key: &str, id: EntryId) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(entry) = self.entry_mut(key, id) {
            entry.pins += 1;
            entry.last_used = tick;
        }
    }

    /// Ends one use. A no-op for an entry that is gone.
    pub(crate) fn unpin(&mut self, key: &str, id: EntryId) {
        if let Some(entry) = self.entry_mut(key, id) {
            entry.pins = entry.pins.saturating_sub(1);
        }
    }

    /// Gives the downloading entry `bytes` of space, evicting least recently used entries
    /// that nobody uses if needed. Returns the evicted ids, whose files the caller deletes.
    /// Evicts nothing when the space cannot be found.
    pub(crate) fn reserve(
        &mut self,
        key: &str,
        id: EntryId,
        bytes: u64,
    ) -> Result<Vec<EntryId>, NoRoom> {
        if bytes > self.capacity_bytes {
            return Err(NoRoom::TooBig);
        }
        let held = self.entry_mut(key, id).map_or(0, |entry| entry.bytes);
        let needed = self.used_bytes - held + bytes;
        let victims = self.victims(needed).ok_or(NoRoom::InUse)?;
        let evicted = self.evict(&victims);
        if let Some(entry) = self.entry_mut(key, id) {
            entry.bytes = bytes;
            self.used_bytes = self.used_bytes - held + bytes;
        }
        Ok(evicted)
    }

    /// Marks the entry resident with its actual size, which may differ from the reserved
    /// one. If it grew past the capacity, unused entries are evicted to get back under it
    /// (when only entries in use remain, the cache stays over until they are released).
    pub(crate) fn complete(&mut self, key: &str, id: EntryId, bytes: u64) -> Vec<EntryId> {
        let Some(entry) = self.entry_mut(key, id) else {
            return Vec::new();
        };
        let held = entry.bytes;
        entry.bytes = bytes;
        entry.resident = true;
        self.used_bytes = self.used_bytes - held + bytes;
        let victims = self
            .victims(self.used_bytes)
            .unwrap_or_else(|| self.all_unused());
        self.evict(&victims)
    }

    /// Drops the entry (its download failed, was cancelled or bypassed the cache) and frees
    /// its space. A no-op for an entry that is gone.
    pub(crate) fn remove(&mut self, key: &str, id: EntryId) {
        if self.entry_mut(key, id).is_some() {
            if let Some(entry) = self.entries.remove(key) {
                self.used_bytes -= entry.bytes;
            }
        }
    }

    fn entry_mut(&mut self, key: &str, id: EntryId) -> Option<&mut Entry> {
        self.entries.get_mut(key).filter(|entry| entry.id == id)
    }

    /// Unused resident entries, least recently used first.
    fn unused(&self) -> Vec<(&String, &Entry)> {
        let mut unused: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.resident && entry.pins == 0)
            .collect();
        unused.sort_by_key(|(_, entry)| entry.last_used);
        unused
    }

    /// The fewest least recently used unused entries whose removal brings `needed` bytes
    /// within the capacity, or `None` if even removing all of them would not.
    fn victims(&self, needed: u64) -> Option<Vec<String>> {
        let mut total = needed;
        let mut victims = Vec::new();
        for (key, entry) in self.unused() {
            if total <= self.capacity_bytes {
                break;
            }
            total -= entry.bytes;
            victims.push(key.clone());
        }
        (total <= self.capacity_bytes).then_some(victims)
    }

    fn all_unused(&self) -> Vec<String> {
        self.unused()
            .into_iter()
            .map(|(key, _)| key.clone())
            .collect()
    }

    fn evict(&mut self, keys: &[String]) -> Vec<EntryId> {
        let mut evicted = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(entry) = self.entries.remove(key) {
                self.used_bytes -= entry.bytes;
                evicted.push(entry.id);
            }
        }
        evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One step of a script and what it must return.
    enum Step {
        /// Starts `key` (and checks the id it gets).
        Begin(&'static str, u64),
        Pin(&'static str, u64),
        Unpin(&'static str, u64),
        /// Reserves bytes; expects the evicted ids or the refusal.
        Reserve(&'static str, u64, u64, Result<&'static [u64], NoRoom>),
        /// Completes with the actual size; expects the evicted ids.
        Complete(&'static str, u64, u64, &'static [u64]),
        Remove(&'static str, u64),
        /// Expects the lookup and the used bytes.
        Expect(&'static str, Lookup, u64),
        /// Expects how many fetches use the key's entry.
        Users(&'static str, u32),
    }

    /// Runs a script against a ledger of `capacity` bytes.
    fn check(capacity: u64, script: &[Step]) {
        let mut ledger = Ledger::new(capacity);
        let ids = |ids: &[u64]| ids.iter().copied().map(EntryId).collect::<Vec<_>>();
        for (index, step) in script.iter().enumerate() {
            match *step {
                Step::Begin(key, want) => assert_eq!(ledger.begin(key), EntryId(want), "{index}"),
                Step::Pin(key, id) => ledger.pin(key, EntryId(id)),
                Step::Unpin(key, id) => ledger.unpin(key, EntryId(id)),
                Step::Reserve(key, id, bytes, want) => {
                    let got = ledger.reserve(key, EntryId(id), bytes);
                    assert_eq!(got, want.map(ids), "step {index}");
                }
                Step::Complete(key, id, bytes, want) => {
                    let got = ledger.complete(key, EntryId(id), bytes);
                    assert_eq!(got, ids(want), "step {index}");
                }
                Step::Remove(key, id) => ledger.remove(key, EntryId(id)),
                Step::Users(key, want) => assert_eq!(ledger.pins(key), want, "step {index}"),
                Step::Expect(key, want, used) => {
                    assert_eq!(
                        (ledger.lookup(key), ledger.used_bytes()),
                        (want, used),
                        "step {index}"
                    );
                }
            }
        }
    }

    use Lookup::{Absent, Downloading, Resident};
    use Step::*;

    #[test]
    fn entries_go_from_downloading_to_resident() {
        check(
            100,
            &[
                Expect("a", Absent, 0),
                Begin("a", 1),
                Expect("a", Downloading(EntryId(1)), 0),
                Reserve("a", 1, 40, Ok(&[])),
                Expect("a", Downloading(EntryId(1)), 40),
                Complete("a", 1, 30, &[]),
                Expect("a", Resident(EntryId(1)), 30),
                Begin("b", 2),
            ],
        );
    }

    #[test]
    fn least_recently_used_unpinned_entries_are_evicted() {
        check(
            100,
            &[
                Begin("a", 1),
                Reserve("a", 1, 40, Ok(&[])),
                Complete("a", 1, 40, &[]),
                Unpin("a", 1),
                Begin("b", 2),
                Reserve("b", 2, 40, Ok(&[])),
                Complete("b", 2, 40, &[]),
                Unpin("b", 2),
                // Using "a" again makes "b" the least recently used.
                Pin("a", 1),
                Unpin("a", 1),
                Begin("c", 3),
                Reserve("c", 3, 40, Ok(&[2])),
                Expect("b", Absent, 80),
                Expect("a", Resident(EntryId(1)), 80),
                // Only as many as needed: 80 + 20 fits without evicting "a".
                Complete("c", 3, 40, &[]),
                Unpin("c", 3),
                Begin("d", 4),
                Reserve("d", 4, 20, Ok(&[])),
                Expect("a", Resident(EntryId(1)), 100),
            ],
        );
    }

    #[test]
    fn entries_in_use_are_never_evicted() {
        check(
            100,
            &[
                Begin("a", 1),
                Reserve("a", 1, 60, Ok(&[])),
                Complete("a", 1, 60, &[]),
                // Still pinned by its downloader: "b" finds no room and evicts nothing.
                Users("a", 1),
                Begin("b", 2),
                Reserve("b", 2, 60, Err(NoRoom::InUse)),
                Expect("a", Resident(EntryId(1)), 60),
                // A downloading entry holds its reservation too.
                Pin("a", 1),
                Users("a", 2),
                Unpin("a", 1),
                Unpin("a", 1),
                Users("a", 0),
                Begin("c", 3),
                Reserve("c", 3, 30, Ok(&[])),
                Reserve("b", 2, 80, Err(NoRoom::InUse)),
                Reserve("b", 2, 70, Ok(&[1])),
                Expect("a", Absent, 100),
            ],
        );
    }

    #[test]
    fn an_item_larger_than_the_cache_is_refused() {
        check(
            100,
            &[
                Begin("a", 1),
                Reserve("a", 1, 101, Err(NoRoom::TooBig)),
                Reserve("a", 1, 100, Ok(&[])),
                Expect("a", Downloading(EntryId(1)), 100),
            ],
        );
        check(0, &[Begin("a", 1), Reserve("a", 1, 1, Err(NoRoom::TooBig))]);
    }

    #[test]
    fn a_grown_entry_evicts_others_on_completion() {
        check(
            100,
            &[
                Begin("a", 1),
                Reserve("a", 1, 50, Ok(&[])),
                Complete("a", 1, 50, &[]),
                Unpin("a", 1),
                Begin("b", 2),
                Reserve("b", 2, 50, Ok(&[])),
                Complete("b", 2, 70, &[1]),
                Expect("b", Resident(EntryId(2)), 70),
                // Over capacity with nothing unused to evict: it stays until released.
                Begin("c", 3),
                Reserve("c", 3, 30, Ok(&[])),
                Complete("c", 3, 40, &[]),
                Expect("c", Resident(EntryId(3)), 110),
            ],
        );
    }

    #[test]
    fn removed_entries_free_space_and_stale_ids_do_nothing() {
        check(
            100,
            &[
                Begin("a", 1),
                Reserve("a", 1, 60, Ok(&[])),
                Remove("a", 1),
                Expect("a", Absent, 0),
                Begin("a", 2),
                // Handles of the removed entry touch nothing.
                Remove("a", 1),
                Unpin("a", 1),
                Pin("a", 1),
                Complete("a", 1, 10, &[]),
                Expect("a", Downloading(EntryId(2)), 0),
                Reserve("a", 2, 10, Ok(&[])),
                // A second reservation replaces the first.
                Reserve("a", 2, 20, Ok(&[])),
                Expect("a", Downloading(EntryId(2)), 20),
            ],
        );
    }
}
