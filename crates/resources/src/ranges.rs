//! `Range` and `Ranges`: inclusive u64 intervals kept sorted and coalesced,
//! with set arithmetic, port picking and the `[a-b, c-d]` text syntax.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ParseError;

/// An inclusive interval `[begin, end]`.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Range {
    /// First number in the range.
    pub begin: u64,
    /// Last number in the range (inclusive).
    pub end: u64,
}

impl Range {
    /// A range `[begin, end]`.
    pub const fn new(begin: u64, end: u64) -> Range {
        Range { begin, end }
    }

    /// How many numbers the range holds (saturating for `[0-u64::MAX]`).
    pub fn count(&self) -> u64 {
        (self.end - self.begin).saturating_add(1)
    }
}

/// A normalized set of ranges: sorted, non-overlapping, non-adjacent.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Ranges(Vec<Range>);

impl Ranges {
    /// Normalizes `ranges`: sorts and merges overlapping or adjacent ranges.
    /// Ranges with `begin > end` are dropped (parsers reject them earlier).
    pub fn new(mut ranges: Vec<Range>) -> Ranges {
        ranges.retain(|r| r.begin <= r.end);
        ranges.sort_unstable();
        let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match out.last_mut() {
                Some(last) if r.begin <= last.end.saturating_add(1) => {
                    last.end = last.end.max(r.end);
                }
                _ => out.push(r),
            }
        }
        Ranges(out)
    }

    /// A single range `[begin, end]` (empty if `begin > end`).
    pub fn single(begin: u64, end: u64) -> Ranges {
        Ranges::new(vec![Range::new(begin, end)])
    }

    /// True when no numbers are held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many numbers are held (saturating).
    pub fn count(&self) -> u64 {
        self.0.iter().fold(0u64, |n, r| n.saturating_add(r.count()))
    }

    /// The normalized ranges, lowest first.
    pub fn iter(&self) -> std::slice::Iter<'_, Range> {
        self.0.iter()
    }

    /// The normalized ranges as a slice.
    pub fn as_slice(&self) -> &[Range] {
        &self.0
    }

    /// Consumes into the normalized vector.
    pub fn into_vec(self) -> Vec<Range> {
        self.0
    }

    /// Unions `other` into `self`.
    pub fn add(&mut self, other: &Ranges) {
        if other.is_empty() {
            return;
        }
        let mut all = std::mem::take(&mut self.0);
        all.extend_from_slice(&other.0);
        *self = Ranges::new(all);
    }

    /// Removes every number of `other` from `self`.
    pub fn subtract(&mut self, other: &Ranges) {
        let mut out = Vec::with_capacity(self.0.len());
        for r in &self.0 {
            let mut pieces = vec![*r];
            for o in other
                .0
                .iter()
                .filter(|o| o.begin <= r.end && o.end >= r.begin)
            {
                pieces = pieces.into_iter().flat_map(|p| cut(p, o)).collect();
            }
            out.extend(pieces);
        }
        self.0 = out;
    }

    /// True when every number of `other` is in `self`.
    pub fn contains(&self, other: &Ranges) -> bool {
        // `self` is coalesced, so each range of `other` must fit in one range.
        other
            .0
            .iter()
            .all(|o| self.0.iter().any(|r| r.begin <= o.begin && o.end <= r.end))
    }

    /// True when `n` is held.
    pub fn contains_value(&self, n: u64) -> bool {
        self.0.iter().any(|r| r.begin <= n && n <= r.end)
    }

    /// The lowest `n` numbers (fewer if not enough are held).
    pub fn first_n(&self, n: u64) -> Ranges {
        let mut left = n;
        let mut out = Vec::new();
        for r in &self.0 {
            if left == 0 {
                break;
            }
            let take = r.count().min(left);
            out.push(Range::new(r.begin, r.begin + (take - 1)));
            left -= take;
        }
        Ranges(out)
    }
}

/// `p` minus `o`, as zero, one or two pieces.
fn cut(p: Range, o: &Range) -> Vec<Range> {
    if o.end < p.begin || o.begin > p.end {
        return vec![p];
    }
    let mut out = Vec::with_capacity(2);
    if o.begin > p.begin {
        out.push(Range::new(p.begin, o.begin - 1));
    }
    if o.end < p.end {
        out.push(Range::new(o.end + 1, p.end));
    }
    out
}

impl FromIterator<Range> for Ranges {
    fn from_iter<I: IntoIterator<Item = Range>>(iter: I) -> Ranges {
        Ranges::new(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Ranges {
    type Item = &'a Range;
    type IntoIter = std::slice::Iter<'a, Range>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Ranges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}-{}", r.begin, r.end)?;
        }
        f.write_str("]")
    }
}

impl FromStr for Ranges {
    type Err = ParseError;

    /// Parses `[31000-32000, 40000-40010]`; single numbers (`[80]`) and
    /// extra whitespace are accepted.
    fn from_str(s: &str) -> Result<Ranges, ParseError> {
        let t = s.trim();
        let inner = t
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .ok_or_else(|| ParseError::Unbalanced(s.to_string()))?;
        if inner.contains(['[', ']']) {
            return Err(ParseError::Unbalanced(s.to_string()));
        }
        let mut ranges = Vec::new();
        for item in inner.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            ranges.push(parse_range_item(item)?);
        }
        Ok(Ranges::new(ranges))
    }
}

fn parse_range_item(item: &str) -> Result<Range, ParseError> {
    let num = |x: &str| {
        x.trim()
            .parse::<u64>()
            .map_err(|_| ParseError::InvalidRange(item.to_string()))
    };
    let range = match item.split_once('-') {
        Some((b, e)) => Range::new(num(b)?, num(e)?),
        None => {
            let n = num(item)?;
            Range::new(n, n)
        }
    };
    if range.begin > range.end {
        return Err(ParseError::InvalidRange(item.to_string()));
    }
    Ok(range)
}

/// Mesos JSON shape of `Value.Ranges`: `{"range":[{"begin":..,"end":..}]}`.
#[derive(Serialize, Deserialize)]
struct RangesShape {
    #[serde(default)]
    range: Vec<Range>,
}

impl Serialize for Ranges {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        RangesShape {
            range: self.0.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ranges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ranges, D::Error> {
        let shape = RangesShape::deserialize(d)?;
        if let Some(bad) = shape.range.iter().find(|r| r.begin > r.end) {
            return Err(serde::de::Error::custom(format!(
                "invalid range [{}-{}]",
                bad.begin, bad.end
            )));
        }
        Ok(Ranges::new(shape.range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, ParseError>) {
        let got = input.parse::<Ranges>().map(|r| r.to_string());
        assert_eq!(got, expected.map(str::to_string), "input {input:?}");
    }

    #[test]
    fn parse_and_display() {
        let e = |s: &str| ParseError::InvalidRange(s.to_string());
        let u = |s: &str| ParseError::Unbalanced(s.to_string());
        for (input, expected) in [
            ("[31000-32000]", Ok("[31000-32000]")),
            (
                "[31000-32000,40000-40010]",
                Ok("[31000-32000, 40000-40010]"),
            ),
            (" [ 1-2 , 3-5 ] ", Ok("[1-5]")),
            ("[80-80]", Ok("[80-80]")),
            ("[80]", Ok("[80-80]")),
            ("[10-20, 5-12]", Ok("[5-20]")),
            ("[]", Ok("[]")),
            ("[5-1]", Err(e("5-1"))),
            ("[a-b]", Err(e("a-b"))),
            ("[1-2-3]", Err(e("1-2-3"))),
            ("[-5]", Err(e("-5"))),
            ("[1-2", Err(u("[1-2"))),
            ("1-2]", Err(u("1-2]"))),
            ("[[1-2]]", Err(u("[[1-2]]"))),
        ] {
            check(input, expected);
        }
    }

    fn r(s: &str) -> Ranges {
        s.parse().unwrap()
    }

    #[test]
    fn arithmetic() {
        let mut a = r("[1-10, 20-30]");
        a.subtract(&r("[5-6, 10-21, 30-30]"));
        assert_eq!(a.to_string(), "[1-4, 7-9, 22-29]");
        assert_eq!(a.count(), 4 + 3 + 8);
        a.add(&r("[5-6]"));
        assert_eq!(a.to_string(), "[1-9, 22-29]");
        assert!(a.contains(&r("[2-3, 25-29]")));
        assert!(!a.contains(&r("[9-10]")));
        assert!(a.contains(&Ranges::default()));
        assert_eq!(a.first_n(10).to_string(), "[1-9, 22-22]");
        assert_eq!(a.first_n(0).to_string(), "[]");
        assert_eq!(a.first_n(100), a);
        let full = Ranges::single(0, u64::MAX);
        assert_eq!(full.count(), u64::MAX);
        assert_eq!(full.first_n(2).to_string(), "[0-1]");
    }

    #[test]
    fn serde_shape() {
        let json = serde_json::to_string(&r("[1-2, 4-5]")).unwrap();
        assert_eq!(
            json,
            r#"{"range":[{"begin":1,"end":2},{"begin":4,"end":5}]}"#
        );
        let back: Ranges = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r("[1-2, 4-5]"));
        assert!(serde_json::from_str::<Ranges>(r#"{"range":[{"begin":3,"end":1}]}"#).is_err());
    }
}
