//! `Resources`: a normalized collection of `Resource` entries (merged by
//! identity, canonical order) with arithmetic, containment, totals, filters
//! and the agent-flag `Display`.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use crate::error::ValidationError;
use crate::ranges::Ranges;
use crate::resource::Resource;
use crate::scalar::Scalar;
use crate::set::Set;
use crate::value::Value;

/// A normalized resource collection.
///
/// Entries with the same identity are merged, zero/empty (and negative)
/// quantities are dropped and entries are kept sorted by identity, so the
/// derived `PartialEq`/`Hash` are independent of insertion order.
#[derive(Clone, PartialEq, Eq, Hash, Default, Debug)]
pub struct Resources(Vec<Resource>);

impl Resources {
    /// An empty collection.
    pub fn new() -> Resources {
        Resources::default()
    }

    /// Normalizes a list of resources.
    pub fn from_vec(items: Vec<Resource>) -> Resources {
        let mut out = Resources::new();
        for r in items {
            out.add_resource(r);
        }
        out
    }

    /// The entries in canonical order.
    pub fn iter(&self) -> std::slice::Iter<'_, Resource> {
        self.0.iter()
    }

    /// The entries as a slice.
    pub fn as_slice(&self) -> &[Resource] {
        &self.0
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of (merged) entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Consumes into the canonical entry list.
    pub fn into_vec(self) -> Vec<Resource> {
        self.0
    }

    fn position(&self, r: &Resource) -> Result<usize, usize> {
        self.0.binary_search_by(|e| e.cmp_identity(r))
    }

    /// Adds one entry, merging it with an entry of the same identity.
    /// Zero, empty and negative quantities are ignored.
    pub fn add_resource(&mut self, r: Resource) {
        if r.value.is_empty() || matches!(r.value, Value::Scalar(s) if s < Scalar::ZERO) {
            return;
        }
        match self.position(&r) {
            Ok(i) => {
                if let Some(e) = self.0.get_mut(i) {
                    e.value.add(&r.value);
                }
            }
            Err(i) => self.0.insert(i, r),
        }
    }

    /// Adds every entry of `other`.
    pub fn add(&mut self, other: &Resources) {
        for r in &other.0 {
            self.add_resource(r.clone());
        }
    }

    /// Removes as much of `r` as is present in the same-identity entry.
    pub fn subtract_resource(&mut self, r: &Resource) {
        if let Ok(i) = self.position(r) {
            let now_empty = match self.0.get_mut(i) {
                Some(e) => {
                    e.value.subtract(&r.value);
                    e.value.is_empty()
                }
                None => false,
            };
            if now_empty {
                self.0.remove(i);
            }
        }
    }

    /// True when `r` fits inside the same-identity entry.
    pub fn contains_resource(&self, r: &Resource) -> bool {
        if r.value.is_empty() {
            return true;
        }
        match self.position(r) {
            Ok(i) => self.0.get(i).is_some_and(|e| e.value.contains(&r.value)),
            Err(_) => false,
        }
    }

    /// True when every entry of `other` fits in the same-identity entry of
    /// `self` (reserved cpus do not contain unreserved cpus).
    pub fn contains(&self, other: &Resources) -> bool {
        other.0.iter().all(|r| self.contains_resource(r))
    }

    /// `self - other`, or `None` unless `self.contains(other)`.
    pub fn checked_sub(&self, other: &Resources) -> Option<Resources> {
        self.contains(other).then(|| self.saturating_sub(other))
    }

    /// `self - other`, removing whatever part of `other` is present.
    pub fn saturating_sub(&self, other: &Resources) -> Resources {
        let mut out = self.clone();
        for r in &other.0 {
            out.subtract_resource(r);
        }
        out
    }

    /// Total of the SCALAR resources called `name`, across identities.
    pub fn scalar(&self, name: &str) -> Scalar {
        self.0
            .iter()
            .filter(|r| r.name == name)
            .filter_map(Resource::as_scalar)
            .sum()
    }

    /// Total `cpus`.
    pub fn cpus(&self) -> Scalar {
        self.scalar("cpus")
    }

    /// Total `mem` (MB).
    pub fn mem_mb(&self) -> Scalar {
        self.scalar("mem")
    }

    /// Total `disk` (MB).
    pub fn disk_mb(&self) -> Scalar {
        self.scalar("disk")
    }

    /// Total `gpus`.
    pub fn gpus(&self) -> Scalar {
        self.scalar("gpus")
    }

    /// Union of the RANGES resources called `name`.
    pub fn ranges(&self, name: &str) -> Ranges {
        let mut out = Ranges::default();
        for r in self.0.iter().filter(|r| r.name == name) {
            if let Value::Ranges(v) = &r.value {
                out.add(v);
            }
        }
        out
    }

    /// Union of all `ports`.
    pub fn ports(&self) -> Ranges {
        self.ranges("ports")
    }

    /// Union of the SET resources called `name`.
    pub fn set(&self, name: &str) -> Set {
        let mut out = Set::new();
        for r in self.0.iter().filter(|r| r.name == name) {
            if let Value::Set(v) = &r.value {
                out.add(v);
            }
        }
        out
    }

    /// Totals of every SCALAR resource by name.
    pub fn scalar_totals(&self) -> BTreeMap<String, Scalar> {
        let mut out = BTreeMap::new();
        for r in &self.0 {
            if let Some(s) = r.as_scalar() {
                *out.entry(r.name.to_string()).or_insert(Scalar::ZERO) += s;
            }
        }
        out
    }

    /// The entries for which `keep` is true.
    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Resources {
        Resources(self.0.iter().filter(|r| keep(r)).cloned().collect())
    }

    /// Unreserved entries.
    pub fn unreserved(&self) -> Resources {
        self.filter(|r| !r.is_reserved())
    }

    /// Entries reserved for any role.
    pub fn reserved(&self) -> Resources {
        self.filter(Resource::is_reserved)
    }

    /// Entries whose (innermost) reservation role is `role`.
    pub fn reserved_for(&self, role: &str) -> Resources {
        self.filter(|r| r.is_reserved() && r.role() == role)
    }

    /// Entries whose allocation role is `role`.
    pub fn allocated_to(&self, role: &str) -> Resources {
        self.filter(|r| r.allocation_role.as_deref() == Some(role))
    }

    /// Revocable entries.
    pub fn revocable(&self) -> Resources {
        self.filter(|r| r.revocable)
    }

    /// Non-revocable entries.
    pub fn non_revocable(&self) -> Resources {
        self.filter(|r| !r.revocable)
    }

    /// A copy with `allocation_role` set to `role` on every entry.
    pub fn with_allocation_role(&self, role: &str) -> Resources {
        self.map(|r| r.allocation_role = Some(role.into()))
    }

    /// A copy with `allocation_role` cleared on every entry.
    pub fn without_allocation_role(&self) -> Resources {
        self.map(|r| r.allocation_role = None)
    }

    /// Applies `f` to a copy of every entry and renormalizes.
    pub fn map(&self, f: impl Fn(&mut Resource)) -> Resources {
        let mut items = self.0.clone();
        items.iter_mut().for_each(f);
        Resources::from_vec(items)
    }

    /// Fails if one name is used with two value types.
    pub(crate) fn check_type_conflicts(items: &[Resource]) -> Result<(), ValidationError> {
        let mut seen: BTreeMap<&str, &'static str> = BTreeMap::new();
        for r in items {
            let ty = r.value.type_name();
            match seen.insert(r.name.as_str(), ty) {
                Some(first) if first != ty => {
                    return Err(ValidationError::TypeConflict {
                        name: r.name.to_string(),
                        first: first.to_string(),
                        second: ty.to_string(),
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl From<Resource> for Resources {
    fn from(r: Resource) -> Resources {
        Resources::from_vec(vec![r])
    }
}

impl From<Vec<Resource>> for Resources {
    fn from(v: Vec<Resource>) -> Resources {
        Resources::from_vec(v)
    }
}

impl FromIterator<Resource> for Resources {
    fn from_iter<I: IntoIterator<Item = Resource>>(iter: I) -> Resources {
        Resources::from_vec(iter.into_iter().collect())
    }
}

impl Extend<Resource> for Resources {
    fn extend<I: IntoIterator<Item = Resource>>(&mut self, iter: I) {
        for r in iter {
            self.add_resource(r);
        }
    }
}

impl IntoIterator for Resources {
    type Item = Resource;
    type IntoIter = std::vec::IntoIter<Resource>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Resources {
    type Item = &'a Resource;
    type IntoIter = std::slice::Iter<'a, Resource>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl AddAssign<&Resources> for Resources {
    fn add_assign(&mut self, rhs: &Resources) {
        Resources::add(self, rhs);
    }
}

impl AddAssign for Resources {
    fn add_assign(&mut self, rhs: Resources) {
        Resources::add(self, &rhs);
    }
}

impl AddAssign<Resource> for Resources {
    fn add_assign(&mut self, rhs: Resource) {
        self.add_resource(rhs);
    }
}

impl Add for Resources {
    type Output = Resources;
    fn add(mut self, rhs: Resources) -> Resources {
        self += &rhs;
        self
    }
}

impl Add<&Resources> for Resources {
    type Output = Resources;
    fn add(mut self, rhs: &Resources) -> Resources {
        self += rhs;
        self
    }
}

impl Add<&Resources> for &Resources {
    type Output = Resources;
    fn add(self, rhs: &Resources) -> Resources {
        let mut out = self.clone();
        out += rhs;
        out
    }
}

impl SubAssign<&Resources> for Resources {
    fn sub_assign(&mut self, rhs: &Resources) {
        for r in &rhs.0 {
            self.subtract_resource(r);
        }
    }
}

impl SubAssign for Resources {
    fn sub_assign(&mut self, rhs: Resources) {
        *self -= &rhs;
    }
}

impl SubAssign<&Resource> for Resources {
    fn sub_assign(&mut self, rhs: &Resource) {
        self.subtract_resource(rhs);
    }
}

impl Sub for Resources {
    type Output = Resources;
    fn sub(mut self, rhs: Resources) -> Resources {
        self -= &rhs;
        self
    }
}

impl Sub<&Resources> for Resources {
    type Output = Resources;
    fn sub(mut self, rhs: &Resources) -> Resources {
        self -= rhs;
        self
    }
}

impl Sub<&Resources> for &Resources {
    type Output = Resources;
    fn sub(self, rhs: &Resources) -> Resources {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for Resources {
    /// Agent-flag syntax: `cpus:4;mem:8192;ports:[31000-32000];disk(ops):100`.
    /// Only the name, innermost role and value are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str(&r.name)?;
            if r.is_reserved() {
                write!(f, "({})", r.role())?;
            }
            write!(f, ":{}", r.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Reservation;

    fn res(flag: &str) -> Resources {
        Resources::parse_flag(flag, "*").unwrap()
    }

    fn check(op: &str, a: &str, b: &str, expected: &str) {
        let (a, b) = (res(a), res(b));
        let got = match op {
            "+" => (&a + &b).to_string(),
            "-" => (&a - &b).to_string(),
            "checked-" => a.checked_sub(&b).map_or("None".into(), |r| r.to_string()),
            "contains" => a.contains(&b).to_string(),
            _ => unreachable!("unknown op {op}"),
        };
        assert_eq!(got, expected, "{a} {op} {b}");
    }

    #[test]
    fn arithmetic_table() {
        for (op, a, b, expected) in [
            ("+", "cpus:1;mem:10", "cpus:0.5", "cpus:1.5;mem:10"),
            ("+", "cpus:1", "cpus(eng):1", "cpus:1;cpus(eng):1"),
            ("+", "ports:[1-5]", "ports:[6-9]", "ports:[1-9]"),
            ("+", "zones:{a}", "zones:{b}", "zones:{a, b}"),
            ("-", "cpus:1;mem:10", "cpus:1", "mem:10"),
            ("-", "cpus:1", "cpus:2", ""),
            ("-", "cpus:1", "cpus(eng):1", "cpus:1"),
            ("-", "ports:[1-10]", "ports:[3-4]", "ports:[1-2, 5-10]"),
            ("checked-", "cpus:1", "cpus:2", "None"),
            ("checked-", "cpus:2;mem:5", "cpus:2", "mem:5"),
            ("checked-", "cpus(eng):2", "cpus:1", "None"),
            ("contains", "cpus(eng):2", "cpus:1", "false"),
            (
                "contains",
                "cpus:2;cpus(eng):2",
                "cpus(eng):1;cpus:2",
                "true",
            ),
            ("contains", "ports:[1-10]", "ports:[10-11]", "false"),
            ("contains", "cpus:1", "", "true"),
        ] {
            check(op, a, b, expected);
        }
    }

    #[test]
    fn order_independent_equality() {
        let a = res("mem:10;cpus:1;disk(ops):5;ports:[1-2]");
        let b = res("ports:[1-2];disk(ops):5;cpus:1;mem:10");
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "cpus:1;mem:10;ports:[1-2];disk(ops):5");
        let set: std::collections::HashSet<Resources> = [a.clone(), b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn totals_and_filters() {
        let mut r = res("cpus:4;mem:1024;disk:100;gpus:1;ports:[1-5];cpus(eng):2;ports(eng):[7-8]");
        let mut rev = Resource::scalar("cpus", 0.5);
        rev.revocable = true;
        r.add_resource(rev);
        assert_eq!(r.cpus().to_string(), "6.5");
        assert_eq!(r.mem_mb(), Scalar::from_int(1024));
        assert_eq!(r.disk_mb(), Scalar::from_int(100));
        assert_eq!(r.gpus(), Scalar::from_int(1));
        assert_eq!(r.ports().to_string(), "[1-5, 7-8]");
        assert_eq!(r.scalar("nothing"), Scalar::ZERO);
        let totals: Vec<String> = r
            .scalar_totals()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(totals, ["cpus=6.5", "disk=100", "gpus=1", "mem=1024"]);
        assert_eq!(r.reserved().to_string(), "cpus(eng):2;ports(eng):[7-8]");
        assert_eq!(r.reserved_for("eng"), r.reserved());
        assert!(r.reserved_for("ops").is_empty());
        assert_eq!(r.unreserved().len() + r.reserved().len(), r.len());
        assert_eq!(r.revocable().cpus().to_string(), "0.5");
        assert_eq!(r.non_revocable().cpus().to_string(), "6");
        let alloc = r.with_allocation_role("web");
        assert_eq!(alloc.allocated_to("web"), alloc);
        assert!(r.allocated_to("web").is_empty());
        assert_eq!(alloc.without_allocation_role(), r);
        assert!(!alloc.contains(&r));
    }

    #[test]
    fn refined_reservations_are_distinct() {
        let base = Resource::scalar("cpus", 1.0).reserved(Reservation::static_for("a"));
        let refined = base.clone().reserved(Reservation::dynamic("a/b", None));
        let r = Resources::from_vec(vec![base.clone(), refined.clone(), base]);
        assert_eq!(r.len(), 2);
        assert_eq!(r.reserved_for("a").cpus().to_string(), "2");
        assert_eq!(r.reserved_for("a/b").cpus().to_string(), "1");
        assert_eq!(r.to_string(), "cpus(a):2;cpus(a/b):1");
    }

    #[test]
    fn negative_and_zero_dropped() {
        let r = Resources::from_vec(vec![
            Resource::new("cpus", Scalar::from_int(-1)),
            Resource::scalar("mem", 0.0),
            Resource::ranges("ports", Ranges::default()),
        ]);
        assert!(r.is_empty());
    }
}
