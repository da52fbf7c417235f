//! `Value`: the typed quantity of a resource (SCALAR, RANGES or SET) and
//! the per-type arithmetic used by the `Resources` collection.

use std::fmt;

use crate::ranges::Ranges;
use crate::scalar::Scalar;
use crate::set::Set;

/// A resource value. Mesos TEXT values are only valid for attributes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Value {
    /// A fixed-point quantity.
    Scalar(Scalar),
    /// Inclusive integer ranges.
    Ranges(Ranges),
    /// A set of strings.
    Set(Set),
}

impl Value {
    /// The Mesos `Value.Type` name: `SCALAR`, `RANGES` or `SET`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "SCALAR",
            Value::Ranges(_) => "RANGES",
            Value::Set(_) => "SET",
        }
    }

    /// A small number ordering the types (SCALAR < RANGES < SET).
    pub(crate) fn type_tag(&self) -> u8 {
        match self {
            Value::Scalar(_) => 0,
            Value::Ranges(_) => 1,
            Value::Set(_) => 2,
        }
    }

    /// True for zero scalars and empty ranges/sets.
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Scalar(s) => s.is_zero(),
            Value::Ranges(r) => r.is_empty(),
            Value::Set(s) => s.is_empty(),
        }
    }

    /// Adds `other` (same type) into `self`; returns false on a type mismatch.
    pub fn add(&mut self, other: &Value) -> bool {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a += *b,
            (Value::Ranges(a), Value::Ranges(b)) => a.add(b),
            (Value::Set(a), Value::Set(b)) => a.add(b),
            _ => return false,
        }
        true
    }

    /// Removes `other` (same type) from `self`, clamping scalars at zero;
    /// returns false on a type mismatch.
    pub fn subtract(&mut self, other: &Value) -> bool {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => *a = a.saturating_sub(*b),
            (Value::Ranges(a), Value::Ranges(b)) => a.subtract(b),
            (Value::Set(a), Value::Set(b)) => a.subtract(b),
            _ => return false,
        }
        true
    }

    /// True when `other` has the same type and is no larger than `self`.
    pub fn contains(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Scalar(a), Value::Scalar(b)) => a >= b,
            (Value::Ranges(a), Value::Ranges(b)) => a.contains(b),
            (Value::Set(a), Value::Set(b)) => a.contains(b),
            _ => false,
        }
    }
}

impl From<Scalar> for Value {
    fn from(v: Scalar) -> Value {
        Value::Scalar(v)
    }
}

impl From<Ranges> for Value {
    fn from(v: Ranges) -> Value {
        Value::Ranges(v)
    }
}

impl From<Set> for Value {
    fn from(v: Set) -> Value {
        Value::Set(v)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar(s) => s.fmt(f),
            Value::Ranges(r) => r.fmt(f),
            Value::Set(s) => s.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(mut a: Value, b: Value, sum: &str, diff: &str, contains: bool) {
        assert_eq!(a.contains(&b), contains, "{a} contains {b}");
        let orig = a.clone();
        assert!(a.add(&b));
        assert_eq!(a.to_string(), sum);
        let mut d = orig;
        assert!(d.subtract(&b));
        assert_eq!(d.to_string(), diff);
    }

    #[test]
    fn per_type_arithmetic() {
        let s = |v: f64| Value::Scalar(Scalar::from_f64(v));
        let r = |t: &str| Value::Ranges(t.parse().unwrap());
        let t = |t: &str| Value::Set(t.parse().unwrap());
        check(s(2.0), s(0.5), "2.5", "1.5", true);
        check(s(0.5), s(2.0), "2.5", "0", false);
        check(r("[1-5]"), r("[3-4]"), "[1-5]", "[1-2, 5-5]", true);
        check(r("[1-5]"), r("[6-9]"), "[1-9]", "[1-5]", false);
        check(t("{a,b}"), t("{b}"), "{a, b}", "{a}", true);
        check(t("{a}"), t("{c}"), "{a, c}", "{a}", false);
    }

    #[test]
    fn type_mismatch() {
        let mut a = Value::Scalar(Scalar::from_int(1));
        let b = Value::Set(Set::new());
        assert!(!a.add(&b));
        assert!(!a.subtract(&b));
        assert!(!a.contains(&b));
        assert_eq!(a.type_name(), "SCALAR");
        assert!(b.is_empty());
    }
}
