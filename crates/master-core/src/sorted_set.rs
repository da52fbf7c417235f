//! `SortedVecSet`: an ordered set in one sorted `Vec`, for small per-agent indexes (a
//! `BTreeSet` allocates an 11-slot node however few entries it holds).

/// An ordered set kept as a sorted vector: O(log n) lookups, O(n) inserts and removes,
/// one allocation sized to the entries (see "Master memory" in docs/benchmarks.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedVecSet<T>(Vec<T>);

impl<T> Default for SortedVecSet<T> {
    fn default() -> Self {
        SortedVecSet(Vec::new())
    }
}

impl<T: Ord> SortedVecSet<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value`; false if it was already there.
    pub fn insert(&mut self, value: T) -> bool {
        match self.0.binary_search(&value) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, value);
                true
            }
        }
    }

    /// Removes `value`; false if it was not there.
    pub fn remove(&mut self, value: &T) -> bool {
        match self.0.binary_search(value) {
            Ok(at) => {
                self.0.remove(at);
                if self.0.len() * 4 <= self.0.capacity() {
                    self.0.shrink_to(self.0.len() * 2);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Keeps only the entries `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.0.retain(keep);
    }

    pub fn contains(&self, value: &T) -> bool {
        self.0.binary_search(value).is_ok()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a, T> IntoIterator for &'a SortedVecSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: Ord> FromIterator<T> for SortedVecSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v: Vec<T> = iter.into_iter().collect();
        v.sort();
        v.dedup();
        SortedVecSet(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #[test]
        fn behaves_like_a_btreeset(ops in proptest::collection::vec((any::<bool>(), 0u8..32), 0..200)) {
            let (mut s, mut b) = (SortedVecSet::new(), BTreeSet::new());
            for (add, v) in ops {
                if add {
                    prop_assert_eq!(s.insert(v), b.insert(v));
                } else {
                    prop_assert_eq!(s.remove(&v), b.remove(&v));
                }
                prop_assert_eq!(s.len(), b.len());
                prop_assert!(s.iter().eq(b.iter()));
                prop_assert!((0..32).all(|x| s.contains(&x) == b.contains(&x)));
            }
        }
    }
}
