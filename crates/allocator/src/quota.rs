//! Quota: per-role guarantees (capacity held back for the role) and limits (never
//! exceeded), over scalar quantities, and the arithmetic the cycle needs to cut offers
//! down to what quota allows.

use std::collections::BTreeMap;
use strata_resources::{Resources, Scalar, Value};

/// Scalar quantities by resource name.
pub type Quantities = BTreeMap<String, Scalar>;

/// A role's quota. A name absent from `limits` is unlimited; absent from `guarantees`
/// is not guaranteed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quota {
    pub guarantees: Quantities,
    pub limits: Quantities,
}

impl Quota {
    /// Whether the quota says nothing (the default).
    pub fn is_empty(&self) -> bool {
        self.guarantees.is_empty() && self.limits.is_empty()
    }

    /// Checks a quota on its own: every guarantee within its limit.
    pub fn validate(&self) -> Result<(), String> {
        for (name, g) in &self.guarantees {
            if let Some(l) = self.limits.get(name) {
                if g > l {
                    return Err(format!(
                        "guarantee {name}:{g} is above the limit {name}:{l}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Checks quotas across the role tree (Mesos' rules for nested quota): a role's
/// guarantee is at least the sum of its children's (an absent guarantee is zero), and
/// no child's limit exceeds a limit its parent sets.
pub fn validate_tree(quotas: &BTreeMap<String, Quota>) -> Result<(), String> {
    let mut children: BTreeMap<&str, Quantities> = BTreeMap::new();
    for (role, q) in quotas {
        let parent = crate::roles::parent(role);
        if parent.is_empty() {
            continue;
        }
        add_into(children.entry(parent).or_default(), &q.guarantees);
        let Some(pq) = crate::roles::self_and_ancestors(parent).find_map(|a| quotas.get(a)) else {
            continue;
        };
        for (name, l) in &q.limits {
            if let Some(pl) = pq.limits.get(name) {
                if l > pl {
                    return Err(format!(
                        "the limit {name}:{l} of role '{role}' is above its parent's limit {name}:{pl}"
                    ));
                }
            }
        }
    }
    for (parent, sum) in children {
        let own = quotas.get(parent).map(|q| &q.guarantees);
        for (name, need) in sum.iter().filter(|(_, v)| **v > Scalar::ZERO) {
            let have = own
                .and_then(|g| g.get(name))
                .copied()
                .unwrap_or(Scalar::ZERO);
            if have < *need {
                return Err(format!(
                    "the guarantees of the children of role '{parent}' add up to {name}:{need}, above its own guarantee {name}:{have}"
                ));
            }
        }
    }
    Ok(())
}

/// `a - b` per name, floored at zero (names only in `b` are dropped).
pub fn minus(a: &Quantities, b: &Quantities) -> Quantities {
    a.iter()
        .map(|(n, q)| {
            (
                n.clone(),
                q.saturating_sub(b.get(n).copied().unwrap_or(Scalar::ZERO)),
            )
        })
        .collect()
}

/// `a += b` per name.
pub fn add_into(a: &mut Quantities, b: &Quantities) {
    for (n, q) in b {
        *a.entry(n.clone()).or_insert(Scalar::ZERO) += *q;
    }
}

/// `a -= b` per name, floored at zero; zero entries removed.
pub fn sub_from(a: &mut Quantities, b: &Quantities) {
    for (n, q) in b {
        if let Some(v) = a.get_mut(n) {
            *v = v.saturating_sub(*q);
        }
    }
    a.retain(|_, v| *v > Scalar::ZERO);
}

/// Per name, the smaller of two caps (a name in only one keeps that cap).
pub fn min_caps(a: &mut Quantities, b: &Quantities) {
    for (n, q) in b {
        let slot = a.entry(n.clone()).or_insert(*q);
        if *q < *slot {
            *slot = *q;
        }
    }
}

/// `res` with each scalar name in `caps` cut down to at most its cap (entries taken in
/// canonical order); other resources are kept whole.
pub fn chop(res: &Resources, caps: &Quantities) -> Resources {
    if caps.is_empty() {
        return res.clone();
    }
    let mut left = caps.clone();
    let mut out = Resources::new();
    for r in res {
        let (Value::Scalar(q), Some(cap)) = (&r.value, left.get_mut(r.name.as_str())) else {
            out.add_resource(r.clone());
            continue;
        };
        let take = if *q < *cap { *q } else { *cap };
        *cap = cap.saturating_sub(take);
        if take > Scalar::ZERO {
            let mut part = r.clone();
            part.value = Value::Scalar(take);
            out.add_resource(part);
        }
    }
    out
}

/// Quantities from `(name, amount)` pairs (tests of the allocator's modules).
#[cfg(test)]
pub(crate) fn q(pairs: &[(&str, f64)]) -> Quantities {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), Scalar::from_f64(*v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chop_cuts_capped_names_only() {
        let r = Resources::parse_flag("cpus:4;mem:100;ports:[1-5];cpus(a):2", "*").unwrap();
        let out = chop(&r, &q(&[("cpus", 3.0)]));
        assert_eq!(out.cpus(), Scalar::from_f64(3.0));
        assert_eq!(out.mem_mb(), Scalar::from_f64(100.0));
        assert_eq!(out.ports(), r.ports());
        assert!(chop(&r, &q(&[("mem", 0.0)])).mem_mb() == Scalar::ZERO);
    }

    #[test]
    fn arithmetic() {
        assert_eq!(
            minus(&q(&[("cpus", 3.0), ("mem", 1.0)]), &q(&[("cpus", 5.0)])),
            q(&[("cpus", 0.0), ("mem", 1.0)])
        );
        let mut a = q(&[("cpus", 3.0)]);
        min_caps(&mut a, &q(&[("cpus", 2.0), ("mem", 7.0)]));
        assert_eq!(a, q(&[("cpus", 2.0), ("mem", 7.0)]));
        sub_from(&mut a, &q(&[("cpus", 2.0)]));
        assert_eq!(a, q(&[("mem", 7.0)]));
        add_into(&mut a, &q(&[("mem", 1.0)]));
        assert_eq!(a, q(&[("mem", 8.0)]));
        let bad = Quota {
            guarantees: q(&[("cpus", 3.0)]),
            limits: q(&[("cpus", 2.0)]),
        };
        assert!(bad.validate().is_err());
        assert!(Quota::default().is_empty());
    }
}
