//! `Set`: a Mesos SET value (an ordered set of strings) with union,
//! difference, containment and the `{a,b}` text syntax.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ParseError;

/// A set of string items.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Set(pub BTreeSet<String>);

impl Set {
    /// An empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// True when no items are held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Items in sorted order.
    pub fn iter(&self) -> std::collections::btree_set::Iter<'_, String> {
        self.0.iter()
    }

    /// Inserts one item.
    pub fn insert(&mut self, item: impl Into<String>) {
        self.0.insert(item.into());
    }

    /// Unions `other` into `self`.
    pub fn add(&mut self, other: &Set) {
        self.0.extend(other.0.iter().cloned());
    }

    /// Removes the items of `other`.
    pub fn subtract(&mut self, other: &Set) {
        self.0.retain(|i| !other.0.contains(i));
    }

    /// True when every item of `other` is held.
    pub fn contains(&self, other: &Set) -> bool {
        other.0.is_subset(&self.0)
    }

    /// True when `item` is held.
    pub fn contains_item(&self, item: &str) -> bool {
        self.0.contains(item)
    }
}

impl<S: Into<String>> FromIterator<S> for Set {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Set {
        Set(iter.into_iter().map(Into::into).collect())
    }
}

impl fmt::Display for Set {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(item)?;
        }
        f.write_str("}")
    }
}

impl FromStr for Set {
    type Err = ParseError;

    /// Parses `{a,b}`; items are trimmed and empty items skipped.
    fn from_str(s: &str) -> Result<Set, ParseError> {
        let inner = s
            .trim()
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .ok_or_else(|| ParseError::Unbalanced(s.to_string()))?;
        if inner.contains(['{', '}']) {
            return Err(ParseError::Unbalanced(s.to_string()));
        }
        Ok(inner
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect())
    }
}

/// Mesos JSON shape of `Value.Set`: `{"item":[..]}`.
#[derive(Serialize, Deserialize)]
struct SetShape {
    #[serde(default)]
    item: Vec<String>,
}

impl Serialize for Set {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SetShape {
            item: self.0.iter().cloned().collect(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Set {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Set, D::Error> {
        Ok(SetShape::deserialize(d)?.item.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, ParseError>) {
        let got = input.parse::<Set>().map(|r| r.to_string());
        assert_eq!(got, expected.map(str::to_string), "input {input:?}");
    }

    #[test]
    fn parse_and_display() {
        let u = |s: &str| ParseError::Unbalanced(s.to_string());
        for (input, expected) in [
            ("{a,b}", Ok("{a, b}")),
            (" { b , a ,a} ", Ok("{a, b}")),
            ("{}", Ok("{}")),
            ("{a,,b,}", Ok("{a, b}")),
            ("{a", Err(u("{a"))),
            ("a}", Err(u("a}"))),
            ("{{a}}", Err(u("{{a}}"))),
        ] {
            check(input, expected);
        }
    }

    #[test]
    fn arithmetic_and_serde() {
        let mut a: Set = "{a,b,c}".parse().unwrap();
        let b: Set = "{b,d}".parse().unwrap();
        assert!(!a.contains(&b));
        a.add(&b);
        assert!(a.contains(&b));
        a.subtract(&b);
        assert_eq!(a.to_string(), "{a, c}");
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"item":["a","c"]}"#);
        let back: Set = serde_json::from_str(r#"{"item":["c","a"],"x":1}"#).unwrap();
        assert_eq!(back, a);
    }
}
