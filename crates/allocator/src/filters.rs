//! Refusal filters of one (agent, role) slot, indexed so that a cycle can tell in O(1)
//! that every framework of the role refused the agent's free resources (Mesos'
//! "DeclineOffers" shape) instead of checking every framework against every agent.
//!
//! A framework's entry is *blocking* when one of its unexpired refusals contains the
//! slot's free resources as they were when the flags were last computed
//! (`checked_against`). Free resources only ever shrink between two recomputations
//! (the owner calls [`Slot::free_grew`] when they grow), and a refusal that contains a
//! set contains every subset, so a blocking flag is never wrong; a non-blocking flag
//! may be stale (the framework could in fact be refused), which only costs a precise
//! check later.

use std::collections::HashMap;
use std::sync::Arc;
use strata_resources::Resources;

/// One refusal: `resources` declined until `until` (seconds).
#[derive(Debug, Clone)]
struct Refusal {
    resources: Arc<Resources>,
    until: f64,
}

#[derive(Debug, Clone)]
struct Entry {
    refusals: Vec<Refusal>,
    blocking: bool,
}

impl Entry {
    fn blocks(&self, offer: &Resources, now: f64) -> bool {
        self.refusals
            .iter()
            .any(|r| r.until > now && r.resources.contains(offer))
    }

    fn min_until(&self) -> f64 {
        self.refusals
            .iter()
            .map(|r| r.until)
            .fold(f64::INFINITY, f64::min)
    }
}

/// The refusals on one agent for one role, keyed by framework index.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot {
    entries: HashMap<u32, Entry>,
    /// Number of entries whose `blocking` flag is set.
    blocking: u32,
    /// The same flags as a bitset by framework index, for scans over many frameworks.
    bits: Vec<u64>,
    /// The free resources (for this role) the flags were computed against.
    checked_against: Resources,
    /// Earliest expiry among all refusals; a sweep is due once `now` reaches it.
    min_until: f64,
    /// The last refused resources, shared by identical refusals of other frameworks.
    last: Option<Arc<Resources>>,
}

impl Slot {
    /// Records that framework `fw` refused `resources` until `until`, given the slot's
    /// current free resources `free`.
    pub(crate) fn add(&mut self, fw: u32, resources: Resources, until: f64, free: &Resources) {
        if self.entries.is_empty() {
            self.checked_against = free.clone();
            self.min_until = f64::INFINITY;
        }
        let shared = match &self.last {
            Some(last) if **last == resources => last.clone(),
            _ => {
                let arc = Arc::new(resources);
                self.last = Some(arc.clone());
                arc
            }
        };
        let blocks_now = shared.contains(&self.checked_against);
        let entry = self.entries.entry(fw).or_insert(Entry {
            refusals: Vec::new(),
            blocking: false,
        });
        entry.refusals.push(Refusal {
            resources: shared,
            until,
        });
        if blocks_now && !entry.blocking {
            entry.blocking = true;
            self.blocking += 1;
            set_bit(&mut self.bits, fw, true);
        }
        self.min_until = self.min_until.min(until);
    }

    /// Whether `fw` may not be offered `offer` at `now` (a precise check).
    /// A blocking entry refuses without a containment check: offers are cut from the
    /// slot's free resources, which are within `checked_against`.
    pub(crate) fn refuses(&self, fw: u32, offer: &Resources, now: f64) -> bool {
        if get_bit(&self.bits, fw) {
            return true;
        }
        self.entries
            .get(&fw)
            .is_some_and(|e| e.blocking || e.blocks(offer, now))
    }

    /// Whether at least `n` frameworks refuse the slot's whole free resources: with `n`
    /// the number of frameworks subscribed to the role, nobody can be offered anything.
    /// Valid only after [`Slot::expire`] for the same `now`.
    pub(crate) fn all_refused(&self, n: usize) -> bool {
        n > 0 && self.blocking as usize >= n
    }

    /// Drops refusals that expired by `now` (cheap unless one did).
    pub(crate) fn expire(&mut self, now: f64) {
        if now < self.min_until {
            return;
        }
        let checked = &self.checked_against;
        self.entries.retain(|_, e| {
            let before = e.refusals.len();
            e.refusals.retain(|r| r.until > now);
            if e.refusals.len() != before {
                e.blocking = e.blocks(checked, now);
            }
            !e.refusals.is_empty()
        });
        self.recount();
    }

    /// The slot's free resources grew to `free`: flags computed against less are
    /// recomputed (nothing to do when `free` is no larger than before).
    pub(crate) fn free_grew(&mut self, free: &Resources, now: f64) {
        if self.entries.is_empty() || self.checked_against.contains(free) {
            return;
        }
        self.checked_against = free.clone();
        for e in self.entries.values_mut() {
            e.blocking = e.blocks(free, now);
        }
        self.recount();
    }

    /// Marks `fw` as blocking after a precise check found it refuses all of `free`
    /// (self-healing of stale flags while scanning).
    pub(crate) fn mark_blocking(&mut self, fw: u32, free: &Resources, now: f64) {
        if *free != self.checked_against {
            return;
        }
        if let Some(e) = self.entries.get_mut(&fw) {
            if !e.blocking && e.blocks(free, now) {
                e.blocking = true;
                self.blocking += 1;
                set_bit(&mut self.bits, fw, true);
            }
        }
    }

    /// Removes every refusal of `fw`.
    pub(crate) fn remove(&mut self, fw: u32) {
        if let Some(e) = self.entries.remove(&fw) {
            if e.blocking {
                self.blocking -= 1;
                set_bit(&mut self.bits, fw, false);
            }
        }
    }

    /// Blocking flags by framework index (bit `i` of word `i / 64`).
    pub(crate) fn blocking_bits(&self) -> &[u64] {
        &self.bits
    }

    /// Number of blocking entries.
    pub(crate) fn blocking_count(&self) -> usize {
        self.blocking as usize
    }

    /// Whether `fw` has refusals here (expired ones included until the next sweep).
    pub(crate) fn has(&self, fw: u32) -> bool {
        self.entries.contains_key(&fw)
    }

    /// Whether the slot holds no refusal.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn recount(&mut self) {
        self.bits.iter_mut().for_each(|w| *w = 0);
        for (fw, e) in &self.entries {
            if e.blocking {
                set_bit(&mut self.bits, *fw, true);
            }
        }
        self.blocking = self.entries.values().filter(|e| e.blocking).count() as u32;
        self.min_until = self
            .entries
            .values()
            .map(Entry::min_until)
            .fold(f64::INFINITY, f64::min);
        if self.entries.is_empty() {
            self.last = None;
        }
    }
}

fn set_bit(bits: &mut Vec<u64>, i: u32, on: bool) {
    let (word, bit) = ((i / 64) as usize, i % 64);
    if bits.len() <= word {
        if !on {
            return;
        }
        bits.resize(word + 1, 0);
    }
    if let Some(w) = bits.get_mut(word) {
        if on {
            *w |= 1 << bit;
        } else {
            *w &= !(1 << bit);
        }
    }
}

fn get_bit(bits: &[u64], i: u32) -> bool {
    bits.get((i / 64) as usize)
        .is_some_and(|w| w & (1 << (i % 64)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(flag: &str) -> Resources {
        Resources::parse_flag(flag, "*").unwrap()
    }

    #[test]
    fn all_refused_counts_blocking_frameworks() {
        let free = res("cpus:4;mem:100");
        let mut s = Slot::default();
        s.add(1, free.clone(), 10.0, &free);
        assert!(s.all_refused(1));
        assert!(!s.all_refused(2));
        s.add(2, res("cpus:1"), 10.0, &free);
        assert!(
            !s.all_refused(2),
            "a smaller refusal does not block all of free"
        );
        assert!(
            s.refuses(2, &res("cpus:1"), 0.0),
            "but it blocks what it refused"
        );
        s.remove(1);
        assert!(!s.all_refused(1));
        assert!(!s.all_refused(0));
    }

    #[test]
    fn expiry_and_growth_clear_blocking() {
        let free = res("cpus:4");
        let mut s = Slot::default();
        s.add(1, free.clone(), 5.0, &free);
        s.add(2, free.clone(), 50.0, &free);
        s.expire(4.0);
        assert!(s.all_refused(2));
        s.expire(5.0);
        assert!(!s.all_refused(2) && s.all_refused(1));
        assert_eq!(s.entries.len(), 1);
        s.free_grew(&res("cpus:2"), 6.0);
        assert!(s.all_refused(1), "less free: still refused");
        s.free_grew(&res("cpus:6"), 6.0);
        assert!(!s.all_refused(1), "more free than refused");
        assert!(!s.refuses(2, &res("cpus:6"), 6.0));
        assert!(s.refuses(2, &res("cpus:3"), 6.0));
    }

    #[test]
    fn an_expired_large_refusal_leaves_the_small_one_non_blocking() {
        let free = res("cpus:4");
        let mut s = Slot::default();
        s.add(1, free.clone(), 5.0, &free);
        s.add(1, res("cpus:1"), 50.0, &free);
        assert!(s.all_refused(1));
        s.expire(6.0);
        assert!(!s.all_refused(1));
        assert!(s.refuses(1, &res("cpus:1"), 6.0));
    }

    #[test]
    fn stale_flags_heal_on_a_precise_check() {
        let mut s = Slot::default();
        s.add(1, res("cpus:1"), 10.0, &res("cpus:4"));
        assert!(!s.all_refused(1));
        s.mark_blocking(1, &res("cpus:1"), 0.0);
        assert!(!s.all_refused(1), "only against the checked free");
        s.mark_blocking(1, &res("cpus:4"), 0.0);
        assert!(!s.all_refused(1), "the refusal does not contain cpus:4");
        let mut t = Slot::default();
        t.add(1, res("cpus:4"), 10.0, &res("cpus:4"));
        t.add(2, res("cpus:4"), 10.0, &res("cpus:4"));
        assert!(t.all_refused(2));
        assert!(Arc::ptr_eq(
            &t.entries[&1].refusals[0].resources,
            &t.entries[&2].refusals[0].resources
        ));
    }
}
