//! Shared resources (Mesos' shared persistent volumes, `Resource.shared`): several
//! frameworks and tasks may hold one at the same time.
//!
//! Representation: every use holds one *copy* of the agent's entry; copies of one
//! identity merge, so a holding's value is a multiple of the agent's entry (two tasks on a
//! 100 MB volume hold 200). That keeps "the allocator holds exactly what tasks, executors
//! and offers use" a plain sum. Everything that counts resources counts a shared entry
//! *once* per holder instead ([`counted`]): the agent (over-commit, reservation
//! counters), each role (role tree) and each framework (its sorter), as Mesos' sorters do.
//!
//! Offering (Mesos' `HierarchicalAllocatorProcess::__allocate`): a shared entry in use is
//! not free, yet stays offerable to frameworks with SHARED_RESOURCES, at most once per
//! agent in one allocation cycle; frameworks without the capability never see shared
//! resources, free or not.

use super::{Allocator, Key};
use std::collections::HashMap;
use strata_resources::{Resource, Resources};

/// Whether any entry of `res` is shared (the cheap common-case test).
pub(super) fn has_shared(res: &Resources) -> bool {
    res.iter().any(|r| r.shared)
}

/// The non-shared entries of `res`.
pub(super) fn non_shared(res: &Resources) -> Resources {
    res.filter(|r| !r.shared)
}

/// The shared entries of `held` counted once: each replaced by the agent's entry of the
/// same identity (from `total`), allocation role kept. An entry the agent does not have
/// (a broken invariant, caught by `check_invariants`) is kept as it is.
pub(super) fn once(held: &Resources, total: &Resources) -> Resources {
    let mut out = Resources::new();
    for r in held.iter().filter(|r| r.shared) {
        let mut bare = r.clone();
        bare.allocation_role = None;
        let unit = total.iter().find(|t| t.same_identity(&bare));
        let mut one: Resource = unit.cloned().unwrap_or(bare);
        one.allocation_role.clone_from(&r.allocation_role);
        out += one;
    }
    out
}

/// A holding as it counts: non-shared entries as they are, shared ones once.
pub(super) fn counted(held: &Resources, total: &Resources) -> Resources {
    if !has_shared(held) {
        return held.clone();
    }
    non_shared(held) + once(held, total)
}

/// How one allocation or release changes the counted holdings, seen by each holder.
#[derive(Debug, Default)]
pub(super) struct Delta {
    /// Of the framework (its sorter in each role).
    pub(super) framework: Resources,
    /// Of each role on the agent (the role tree).
    pub(super) role: Resources,
    /// Of the agent, allocation roles dropped (reservation counters).
    pub(super) agent: Resources,
}

/// Snapshot of the shared holdings an allocation or release may change.
#[derive(Debug, Default)]
pub(super) struct Held {
    framework: Resources,
    agent: Resources,
}

impl Held {
    /// The shared part of a framework's holding and of the agent's allocation.
    pub(super) fn of(framework: Option<&Resources>, agent: &Resources) -> Held {
        Held {
            framework: framework
                .map(|r| r.filter(|x| x.shared))
                .unwrap_or_default(),
            agent: agent.filter(|x| x.shared),
        }
    }

    /// The counted change from `self` (before) to `after` for `res` (what was added or
    /// removed): its non-shared part, plus the shared entries that appeared (`add`) or
    /// disappeared in each holder.
    pub(super) fn delta(
        &self,
        after: &Held,
        res: &Resources,
        total: &Resources,
        add: bool,
    ) -> Delta {
        let plain = non_shared(res);
        let change = |before: &Resources, after: &Resources| {
            let (b, a) = (once(before, total), once(after, total));
            if add {
                a.saturating_sub(&b)
            } else {
                b.saturating_sub(&a)
            }
        };
        let bare = |r: &Resources| r.without_allocation_role();
        Delta {
            framework: plain.clone() + change(&self.framework, &after.framework),
            role: plain.clone() + change(&self.agent, &after.agent),
            agent: plain + change(&bare(&self.agent), &bare(&after.agent)),
        }
    }
}

/// The shared entries offered in the current cycle, per agent (each at most once).
pub(super) type OfferedShared<A> = HashMap<A, Resources>;

impl<F: Key, A: Key> Allocator<F, A> {
    /// Whether the framework has the SHARED_RESOURCES capability: it may be offered
    /// shared resources, also while they are in use.
    pub fn set_shared_capable(&mut self, fw: &F, capable: bool) {
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.shared = capable;
        }
    }

    /// The shared resources of `agent` that `role` may still be offered in this cycle
    /// (reserved for the role or an ancestor, as every volume is, or unreserved).
    pub(super) fn shared_offerable(&self, agent: &A, role: &str) -> Resources {
        let Some(a) = self.agents.get(agent) else {
            return Resources::new();
        };
        if !has_shared(&a.total) {
            return Resources::new();
        }
        let mine = a.total.filter(|r| {
            r.shared
                && !r.revocable
                && (!r.is_reserved() || crate::roles::is_self_or_descendant(role, r.role()))
        });
        match self.shared_offered.get(agent) {
            Some(done) => mine.saturating_sub(done),
            None => mine,
        }
    }

    /// Keeps only what may be used again: the non-shared part of `res` that is free on
    /// the agent, and every copy of shared entries the agent has.
    pub(super) fn clamp_usable(&self, agent: &A, res: &Resources) -> Resources {
        let fits = super::part_within(&non_shared(res), &self.free(agent));
        if !has_shared(res) {
            return fits;
        }
        let total = self.agent_total(agent);
        let shared = res.filter(|r| {
            let mut bare = r.clone();
            bare.allocation_role = None;
            r.shared && total.iter().any(|t| t.same_identity(&bare))
        });
        fits + shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(id: &str, mb: f64, role: Option<&str>) -> Resource {
        let mut v =
            Resource::scalar("disk", mb).reserved(strata_resources::Reservation::static_for("eng"));
        v.disk = Some(Box::new(
            serde_json::json!({"persistence": {"id": id}, "volume": {"container_path": "d", "mode": "RW"}}),
        ));
        v.shared = true;
        v.allocation_role = role.map(Into::into);
        v
    }

    fn check(held: Vec<Resource>, expected_disk: f64) {
        let total =
            Resources::from(volume("v1", 100.0, None)) + Resources::from(volume("v2", 10.0, None));
        let got = counted(&Resources::from_vec(held), &total);
        assert_eq!(got.disk_mb().to_string(), expected_disk.to_string());
    }

    #[test]
    fn copies_count_once() {
        check(vec![], 0.0);
        check(vec![volume("v1", 100.0, Some("eng"))], 100.0);
        // Two copies merged: 200, counted 100.
        check(vec![volume("v1", 100.0, Some("eng")); 2], 100.0);
        check(
            vec![volume("v1", 100.0, Some("eng")); 3]
                .into_iter()
                .chain([volume("v2", 10.0, Some("eng"))])
                .collect(),
            110.0,
        );
        // Held in two roles: once per role.
        check(
            vec![
                volume("v1", 100.0, Some("eng")),
                volume("v1", 100.0, Some("eng/web")),
            ],
            200.0,
        );
    }

    #[test]
    fn delta_counts_transitions_only() {
        let total = Resources::from(volume("v1", 100.0, None));
        let one = Resources::from(volume("v1", 100.0, Some("eng")));
        let two = one.clone() + one.clone();
        let first = Held::of(None, &Resources::new()).delta(
            &Held::of(Some(&one), &one),
            &one,
            &total,
            true,
        );
        assert_eq!(first.framework.disk_mb().to_string(), "100");
        assert_eq!(first.agent.disk_mb().to_string(), "100");
        // A second copy (another framework) counts for that framework only.
        let second = Held::of(None, &one).delta(&Held::of(Some(&one), &two), &one, &total, true);
        assert_eq!(second.framework.disk_mb().to_string(), "100");
        assert!(second.role.is_empty() && second.agent.is_empty());
        // Releasing one of two copies of one framework changes nothing counted.
        let back =
            Held::of(Some(&two), &two).delta(&Held::of(Some(&one), &one), &one, &total, false);
        assert!(back.framework.is_empty() && back.role.is_empty() && back.agent.is_empty());
    }
}
