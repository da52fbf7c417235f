//! A DRF sorter: keeps clients (roles, or frameworks within a role) ordered by weighted
//! dominant share, updated incrementally as allocations change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use strata_resources::Scalar;

#[derive(Debug, Clone)]
struct Entry {
    allocated: BTreeMap<String, Scalar>,
    weight: f64,
    key: u64,
}

/// Orders clients by dominant share ÷ weight, ties broken by the client's own ordering.
#[derive(Debug, Clone)]
pub struct Sorter<K: Ord + Clone + Hash> {
    entries: HashMap<K, Entry>,
    order: BTreeSet<(u64, K)>,
}

impl<K: Ord + Clone + Hash> Default for Sorter<K> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            order: BTreeSet::new(),
        }
    }
}

/// Order-preserving key of a non-negative share (IEEE bits of a positive f64 sort as
/// ints; +∞, from a tiny weight, sorts last, NaN and non-positive shares first).
fn share_key(share: f64) -> u64 {
    if share > 0.0 {
        share.to_bits()
    } else {
        0
    }
}

/// Dominant share of `allocated` against cluster `total`.
pub(crate) fn dominant_share(
    allocated: &BTreeMap<String, Scalar>,
    total: &BTreeMap<String, Scalar>,
) -> f64 {
    allocated
        .iter()
        .filter_map(|(name, used)| {
            let t = total.get(name).copied().unwrap_or(Scalar::ZERO);
            (t > Scalar::ZERO).then(|| used.as_f64() / t.as_f64())
        })
        .fold(0.0, f64::max)
}

impl<K: Ord + Clone + Hash> Sorter<K> {
    /// Adds a client with `weight` (no-op if present).
    pub fn add(&mut self, client: K, weight: f64) {
        if self.entries.contains_key(&client) {
            return;
        }
        self.order.insert((0, client.clone()));
        self.entries.insert(
            client,
            Entry {
                allocated: BTreeMap::new(),
                weight,
                key: 0,
            },
        );
    }

    /// Removes a client.
    pub fn remove(&mut self, client: &K) {
        if let Some(e) = self.entries.remove(client) {
            self.order.remove(&(e.key, client.clone()));
        }
    }

    /// Whether the client is present.
    pub fn contains(&self, client: &K) -> bool {
        self.entries.contains_key(client)
    }

    /// Number of clients.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no clients.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Clients in allocation order (lowest weighted share first).
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.order.iter().map(|(_, k)| k)
    }

    /// Records scalar quantities allocated to (`sign` > 0) or recovered from a client.
    pub fn update(
        &mut self,
        client: &K,
        delta: &BTreeMap<String, Scalar>,
        add: bool,
        total: &BTreeMap<String, Scalar>,
    ) {
        let Some(e) = self.entries.get_mut(client) else {
            return;
        };
        for (name, q) in delta {
            let slot = e.allocated.entry(name.clone()).or_insert(Scalar::ZERO);
            *slot = if add {
                *slot + *q
            } else {
                slot.saturating_sub(*q)
            };
        }
        e.allocated.retain(|_, q| *q > Scalar::ZERO);
        Self::rekey(&mut self.order, client, e, total);
    }

    /// Changes a client's weight.
    pub fn set_weight(&mut self, client: &K, weight: f64, total: &BTreeMap<String, Scalar>) {
        if let Some(e) = self.entries.get_mut(client) {
            e.weight = weight;
            Self::rekey(&mut self.order, client, e, total);
        }
    }

    /// Recomputes every share after the cluster total changed.
    pub fn rebuild(&mut self, total: &BTreeMap<String, Scalar>) {
        self.order.clear();
        for (k, e) in self.entries.iter_mut() {
            e.key =
                share_key(dominant_share(&e.allocated, total) / e.weight.max(f64::MIN_POSITIVE));
            self.order.insert((e.key, k.clone()));
        }
    }

    /// The client's order key (weighted share bits): clients sort by `(key, client)`.
    pub fn key_of(&self, client: &K) -> Option<u64> {
        self.entries.get(client).map(|e| e.key)
    }

    /// The client's weighted dominant share.
    pub fn share(&self, client: &K) -> f64 {
        self.entries
            .get(client)
            .map(|e| f64::from_bits(e.key))
            .unwrap_or(0.0)
    }

    /// Scalar quantities allocated to the client.
    pub fn allocated(&self, client: &K) -> BTreeMap<String, Scalar> {
        self.entries
            .get(client)
            .map(|e| e.allocated.clone())
            .unwrap_or_default()
    }

    fn rekey(
        order: &mut BTreeSet<(u64, K)>,
        client: &K,
        e: &mut Entry,
        total: &BTreeMap<String, Scalar>,
    ) {
        order.remove(&(e.key, client.clone()));
        e.key = share_key(dominant_share(&e.allocated, total) / e.weight.max(f64::MIN_POSITIVE));
        order.insert((e.key, client.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::quota::q;

    #[test]
    fn orders_by_weighted_dominant_share() {
        let total = q(&[("cpus", 10.0), ("mem", 100.0)]);
        let mut s = Sorter::default();
        s.add("a", 1.0);
        s.add("b", 1.0);
        s.add("c", 2.0);
        s.update(&"a", &q(&[("cpus", 2.0)]), true, &total); // 0.2
        s.update(&"b", &q(&[("mem", 10.0)]), true, &total); // 0.1
        s.update(&"c", &q(&[("cpus", 3.0)]), true, &total); // 0.3 / 2 = 0.15
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec!["b", "c", "a"]);
        s.update(&"a", &q(&[("cpus", 2.0)]), false, &total);
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec!["a", "b", "c"]);
        assert!((s.share(&"c") - 0.15).abs() < 1e-9);
    }

    #[test]
    fn ties_break_by_client_and_zero_weight_sorts_last() {
        let total = q(&[("cpus", 10.0)]);
        let mut s = Sorter::default();
        for c in ["c", "a", "b"] {
            s.add(c, 1.0);
        }
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec!["a", "b", "c"]);
        s.set_weight(&"a", 0.0, &total);
        s.update(&"a", &q(&[("cpus", 1.0)]), true, &total);
        s.update(&"b", &q(&[("cpus", 9.0)]), true, &total);
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec!["c", "b", "a"]);
        assert!(s.share(&"a") > 1e300);
        assert!(
            share_key(f64::INFINITY) > share_key(f64::MAX),
            "+inf sorts last"
        );
        assert_eq!(share_key(f64::NAN), 0);
    }

    #[test]
    fn rebuild_follows_the_total_and_release_saturates() {
        let mut s = Sorter::default();
        s.add("a", 1.0);
        s.add("b", 1.0);
        s.update(&"a", &q(&[("cpus", 2.0)]), true, &q(&[("cpus", 10.0)]));
        s.update(&"b", &q(&[("mem", 50.0)]), true, &q(&[("cpus", 10.0)]));
        assert_eq!(
            s.iter().copied().collect::<Vec<_>>(),
            vec!["b", "a"],
            "mem not in total yet"
        );
        s.rebuild(&q(&[("cpus", 10.0), ("mem", 100.0)]));
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), vec!["a", "b"]);
        s.update(&"a", &q(&[("cpus", 5.0)]), false, &q(&[("cpus", 10.0)]));
        assert!(s.allocated(&"a").is_empty());
        s.remove(&"a");
        assert!(!s.contains(&"a") && s.len() == 1);
    }
}
