//! Read-only views of the allocator state and the bookkeeping invariant check.

use super::shared::counted;
use super::{Allocator, Key};
use std::collections::{BTreeMap, BTreeSet};
use strata_resources::{Resources, Scalar};

impl<F: Key, A: Key> Allocator<F, A> {
    /// Free (unallocated) resources of an agent.
    pub fn free(&self, agent: &A) -> Resources {
        self.agents
            .get(agent)
            .map(|a| a.free().clone())
            .unwrap_or_default()
    }

    /// Total resources of an agent.
    pub fn agent_total(&self, agent: &A) -> Resources {
        self.agents
            .get(agent)
            .map(|a| a.total.clone())
            .unwrap_or_default()
    }

    /// Known agents, in key order.
    pub fn agents(&self) -> Vec<A> {
        self.agents.keys().cloned().collect()
    }

    /// Allocated (offered or used) resources of an agent.
    pub fn allocated(&self, agent: &A) -> Resources {
        self.agents
            .get(agent)
            .map(|a| a.allocated.clone())
            .unwrap_or_default()
    }

    /// Allocations on an agent per framework.
    pub fn allocated_by_framework(&self, agent: &A) -> BTreeMap<F, Resources> {
        self.agents
            .get(agent)
            .map(|a| a.by_framework.clone())
            .unwrap_or_default()
    }

    /// Everything a framework holds, per agent.
    pub fn framework_allocation(&self, fw: &F) -> BTreeMap<A, Resources> {
        self.agents
            .iter()
            .filter_map(|(id, a)| a.by_framework.get(fw).map(|r| (id.clone(), r.clone())))
            .collect()
    }

    /// Cluster scalar totals.
    pub fn total(&self) -> &BTreeMap<String, Scalar> {
        &self.total
    }

    /// A role's weight.
    pub fn weight(&self, role: &str) -> f64 {
        self.roles.weight(role)
    }

    /// Every weight that was set.
    pub fn weights(&self) -> &BTreeMap<String, f64> {
        self.roles.weights()
    }

    /// A role's quota (default: none).
    pub fn quota(&self, role: &str) -> crate::Quota {
        self.quotas.get(role).cloned().unwrap_or_default()
    }

    /// Every role with a quota.
    pub fn quotas(&self) -> &BTreeMap<String, crate::Quota> {
        &self.quotas
    }

    /// Scalars counted against a role's quota (subtree allocations and unallocated
    /// reservations).
    pub fn quota_consumed(&self, role: &str) -> BTreeMap<String, Scalar> {
        self.consumed(role)
    }

    /// Scalars reserved for each role across agents.
    pub fn reservations(&self) -> &BTreeMap<String, BTreeMap<String, Scalar>> {
        &self.reserved
    }

    /// Roles known to the allocator (subscribed to or holding resources).
    pub fn roles(&self) -> Vec<String> {
        self.role_frameworks.keys().cloned().collect()
    }

    /// A role's weighted dominant share and its allocated scalars.
    pub fn role_share(&self, role: &str) -> (f64, BTreeMap<String, Scalar>) {
        (self.roles.share(role), self.roles.allocated(role))
    }

    /// Whether the agent is known and active.
    pub fn is_agent_active(&self, agent: &A) -> bool {
        self.agents.get(agent).is_some_and(|a| a.active)
    }

    /// Whether the framework is known (added and not removed).
    pub fn has_framework(&self, fw: &F) -> bool {
        self.frameworks.contains_key(fw)
    }

    /// Whether the framework is known and active.
    pub fn is_framework_active(&self, fw: &F) -> bool {
        self.frameworks.get(fw).is_some_and(|f| f.active)
    }

    /// Whether the framework is subscribed to `role`.
    pub fn is_subscribed(&self, fw: &F, role: &str) -> bool {
        self.frameworks
            .get(fw)
            .is_some_and(|f| f.roles.contains(role))
    }

    /// Whether the framework currently suppresses `role`.
    pub fn is_suppressed(&self, fw: &F, role: &str) -> bool {
        self.frameworks
            .get(fw)
            .is_some_and(|f| f.suppressed.contains(role))
    }

    /// Checks the bookkeeping invariants; used by tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut by_role: BTreeMap<String, BTreeMap<String, Scalar>> = BTreeMap::new();
        let mut by_role_fw: BTreeMap<(String, F), BTreeMap<String, Scalar>> = BTreeMap::new();
        for (id, a) in &self.agents {
            // Shared entries count once on the agent, whatever number of copies is held.
            let in_use = counted(&a.allocated.without_allocation_role(), &a.total);
            if !a.total.contains(&in_use) {
                return Err(format!(
                    "agent {id:?} over-committed: {} of {}",
                    a.allocated, a.total
                ));
            }
            if in_use.clone() + a.free().clone() != a.total {
                return Err(format!(
                    "agent {id:?}: allocated {in_use} + free {} != total {}",
                    a.free(),
                    a.total
                ));
            }
            if a.lent.is_empty() == self.lenders.contains(id) {
                return Err(format!("agent {id:?}: lenders index out of step"));
            }
            if !a.total.contains(&a.lent) || !a.lent.iter().all(|r| r.revocable) {
                return Err(format!(
                    "agent {id:?}: lent {} not in total {}",
                    a.lent, a.total
                ));
            }
            if *a.free()
                != a.total
                    .saturating_sub(&a.allocated.without_allocation_role())
            {
                return Err(format!("agent {id:?}: free {} is stale", a.free()));
            }
            let sum = a
                .by_framework
                .values()
                .fold(Resources::new(), |acc, r| acc + r.clone());
            if sum != a.allocated {
                return Err(format!(
                    "agent {id:?}: per-framework sum {sum} != allocated {}",
                    a.allocated
                ));
            }
            for (fw, res) in &a.by_framework {
                if res.is_empty() {
                    return Err(format!("agent {id:?}: empty entry for {fw:?}"));
                }
                let roles: BTreeSet<String> = res
                    .iter()
                    .filter_map(|r| r.allocation_role.as_deref().map(str::to_string))
                    .collect();
                for role in roles {
                    let q = counted(&res.allocated_to(&role), &a.total)
                        .non_revocable()
                        .scalar_totals();
                    add_into(by_role_fw.entry((role, fw.clone())).or_default(), &q);
                }
            }
            let roles: BTreeSet<String> = a
                .allocated
                .iter()
                .filter_map(|r| r.allocation_role.as_deref().map(str::to_string))
                .collect();
            for role in roles {
                let q = counted(&a.allocated.allocated_to(&role), &a.total)
                    .non_revocable()
                    .scalar_totals();
                add_into(by_role.entry(role).or_default(), &q);
            }
        }
        self.check_totals()?;
        self.check_quota_books()?;
        self.check_sorters(&by_role, &by_role_fw)
    }

    fn check_quota_books(&self) -> Result<(), String> {
        let mut reserved: BTreeMap<String, BTreeMap<String, Scalar>> = BTreeMap::new();
        let mut used: BTreeMap<String, BTreeMap<String, Scalar>> = BTreeMap::new();
        let mut pool = BTreeMap::new();
        for a in self.agents.values() {
            for (role, q) in super::reserved_by_role(&a.total) {
                add_into(reserved.entry(role).or_default(), &q);
            }
            let in_use = counted(&a.allocated.without_allocation_role(), &a.total);
            for (role, q) in super::reserved_by_role(&in_use) {
                add_into(used.entry(role).or_default(), &q);
            }
            if a.active {
                add_into(
                    &mut pool,
                    &a.free().unreserved().non_revocable().scalar_totals(),
                );
            }
        }
        let clean = |m: &mut BTreeMap<String, BTreeMap<String, Scalar>>| {
            m.values_mut()
                .for_each(|q| q.retain(|_, v| *v > Scalar::ZERO));
            m.retain(|_, q| !q.is_empty());
        };
        clean(&mut reserved);
        clean(&mut used);
        pool.retain(|_, v: &mut Scalar| *v > Scalar::ZERO);
        if reserved != self.reserved || used != self.reserved_allocated {
            return Err(format!(
                "reservation counters {:?}/{:?} != agents {reserved:?}/{used:?}",
                self.reserved, self.reserved_allocated
            ));
        }
        if let Some(p) = &self.pool {
            let mut p = p.clone();
            p.retain(|_, v| *v > Scalar::ZERO);
            if p != pool {
                return Err(format!("headroom pool {p:?} != agents {pool:?}"));
            }
        }
        Ok(())
    }

    fn check_totals(&self) -> Result<(), String> {
        let mut total = BTreeMap::new();
        for a in self.agents.values() {
            add_into(&mut total, &a.total.non_revocable().scalar_totals());
        }
        total.retain(|_, q: &mut Scalar| *q > Scalar::ZERO);
        if total != self.total {
            return Err(format!(
                "cluster total {:?} != sum of agents {total:?}",
                self.total
            ));
        }
        Ok(())
    }

    fn check_sorters(
        &self,
        by_role: &BTreeMap<String, BTreeMap<String, Scalar>>,
        by_role_fw: &BTreeMap<(String, F), BTreeMap<String, Scalar>>,
    ) -> Result<(), String> {
        for (role, q) in by_role {
            if self.roles.allocated(role) != *q {
                return Err(format!(
                    "role sorter {role}: {:?} != {q:?}",
                    self.roles.allocated(role)
                ));
            }
        }
        for ((role, fw), q) in by_role_fw {
            let got = self
                .role_frameworks
                .get(role)
                .map(|s| s.allocated(fw))
                .unwrap_or_default();
            if got != *q {
                return Err(format!("framework sorter {role}/{fw:?}: {got:?} != {q:?}"));
            }
        }
        for role in self.roles.leaves() {
            if !self.roles.allocated(role).is_empty() && !by_role.contains_key(role) {
                return Err(format!("role sorter {role} holds phantom allocation"));
            }
        }
        for (role, s) in &self.role_frameworks {
            for fw in s.iter() {
                if !s.allocated(fw).is_empty()
                    && !by_role_fw.contains_key(&(role.clone(), fw.clone()))
                {
                    return Err(format!(
                        "framework sorter {role}/{fw:?} holds phantom allocation"
                    ));
                }
            }
        }
        for (fw, f) in &self.frameworks {
            for role in &f.roles {
                if !self
                    .role_frameworks
                    .get(role)
                    .is_some_and(|s| s.contains(fw))
                {
                    return Err(format!(
                        "framework {fw:?} missing from sorter of role {role}"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn add_into(acc: &mut BTreeMap<String, Scalar>, q: &BTreeMap<String, Scalar>) {
    for (name, v) in q {
        *acc.entry(name.clone()).or_insert(Scalar::ZERO) += *v;
    }
}
