//! `Scalar`: Mesos fixed-point quantities (thousandths), arithmetic,
//! display without trailing zeros and serde as a JSON double.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A scalar quantity in thousandths (Mesos' 0.001 fixed-point precision).
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Scalar(i64);

impl Scalar {
    /// Zero.
    pub const ZERO: Scalar = Scalar(0);

    /// Rounds `v` to the nearest thousandth. Non-finite input saturates
    /// (NaN becomes zero); callers validate before converting.
    pub fn from_f64(v: f64) -> Scalar {
        // `as` saturates on overflow and maps NaN to 0.
        Scalar((v * 1000.0).round() as i64)
    }

    /// From a count of thousandths.
    pub const fn from_millis(millis: i64) -> Scalar {
        Scalar(millis)
    }

    /// From a whole number.
    pub const fn from_int(v: i64) -> Scalar {
        Scalar(v.saturating_mul(1000))
    }

    /// The value in thousandths.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The value as a double.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// True when zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `self - other`, or `None` if that would be negative or overflow.
    pub fn checked_sub(self, other: Scalar) -> Option<Scalar> {
        match self.0.checked_sub(other.0) {
            Some(v) if v >= 0 => Some(Scalar(v)),
            _ => None,
        }
    }

    /// `self - other`, clamped at zero.
    pub fn saturating_sub(self, other: Scalar) -> Scalar {
        Scalar(self.0.saturating_sub(other.0).max(0))
    }
}

impl Add for Scalar {
    type Output = Scalar;
    fn add(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for Scalar {
    fn add_assign(&mut self, rhs: Scalar) {
        *self = *self + rhs;
    }
}

impl Sub for Scalar {
    type Output = Scalar;
    /// Plain (possibly negative) difference; see `saturating_sub`.
    fn sub(self, rhs: Scalar) -> Scalar {
        Scalar(self.0.saturating_sub(rhs.0))
    }
}

impl SubAssign for Scalar {
    fn sub_assign(&mut self, rhs: Scalar) {
        *self = *self - rhs;
    }
}

impl std::iter::Sum for Scalar {
    fn sum<I: Iterator<Item = Scalar>>(iter: I) -> Scalar {
        iter.fold(Scalar::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, frac) = (abs / 1000, abs % 1000);
        if frac == 0 {
            return write!(f, "{sign}{whole}");
        }
        let digits = format!("{frac:03}");
        write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl Serialize for Scalar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() {
            return Err(serde::de::Error::custom(format!("non-finite scalar {v}")));
        }
        Ok(Scalar::from_f64(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: f64, millis: i64, shown: &str) {
        let s = Scalar::from_f64(input);
        assert_eq!(s.millis(), millis, "millis of {input}");
        assert_eq!(s.to_string(), shown, "display of {input}");
    }

    #[test]
    fn conversions_and_display() {
        for (input, millis, shown) in [
            (4.0, 4000, "4"),
            (0.5, 500, "0.5"),
            (1.001, 1001, "1.001"),
            (0.0004, 0, "0"),
            (0.0005, 1, "0.001"),
            (2.10, 2100, "2.1"),
            (8192.0, 8_192_000, "8192"),
            (-1.25, -1250, "-1.25"),
            (0.1 + 0.2, 300, "0.3"),
        ] {
            check(input, millis, shown);
        }
    }

    #[test]
    fn arithmetic() {
        let a = Scalar::from_int(2);
        let b = Scalar::from_millis(500);
        assert_eq!((a + b).millis(), 2500);
        assert_eq!((a - b).millis(), 1500);
        assert_eq!(b.checked_sub(a), None);
        assert_eq!(a.checked_sub(b), Some(Scalar::from_millis(1500)));
        assert_eq!(b.saturating_sub(a), Scalar::ZERO);
        let mut c = a;
        c += b;
        c -= Scalar::from_int(1);
        assert_eq!(c.to_string(), "1.5");
        assert_eq!(a.as_f64(), 2.0);
    }

    #[test]
    fn serde_as_double() {
        assert_eq!(serde_json::to_string(&Scalar::from_int(4)).unwrap(), "4.0");
        assert_eq!(
            serde_json::to_string(&Scalar::from_millis(500)).unwrap(),
            "0.5"
        );
        let s: Scalar = serde_json::from_str("1.0016").unwrap();
        assert_eq!(s.millis(), 1002);
    }
}
