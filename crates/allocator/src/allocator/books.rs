//! Bookkeeping of allocations: moving resources between free and allocated on an agent
//! and mirroring every change into the role tree, the framework sorters, the
//! reservation counters, the quota headroom pool and the filter slots.

use super::shared::{self, Delta, Held};
use super::{intersection, reserved_by_role, Allocator, Key};
use crate::quota::{add_into, sub_from, Quantities};
use std::collections::BTreeSet;
use strata_resources::Resources;

impl<F: Key, A: Key> Allocator<F, A> {
    pub(super) fn allocate_to(&mut self, fw: &F, agent: &A, res: &Resources) {
        if res.is_empty() || !self.agents.contains_key(agent) {
            return;
        }
        let before = self.shared_held(fw, agent, res);
        self.pool_remove(agent);
        if let Some(a) = self.agents.get_mut(agent) {
            a.allocated += res.clone();
            a.refresh_free();
            *a.by_framework.entry(fw.clone()).or_default() += res.clone();
        }
        self.pool_add(agent);
        match before {
            None => self.account(fw, res, res, res, true),
            Some(before) => {
                let d = self.shared_delta(fw, agent, res, &before, true);
                self.account(fw, &d.framework, &d.role, &d.agent, true);
            }
        }
    }

    /// The shared holdings `res` may change (None when `res` has no shared entry).
    fn shared_held(&self, fw: &F, agent: &A, res: &Resources) -> Option<Held> {
        if !shared::has_shared(res) {
            return None;
        }
        let a = self.agents.get(agent)?;
        Some(Held::of(a.by_framework.get(fw), &a.allocated))
    }

    /// How the counted holdings changed since `before` (see `shared`).
    fn shared_delta(&self, fw: &F, agent: &A, res: &Resources, before: &Held, add: bool) -> Delta {
        let (after, total) = match self.agents.get(agent) {
            Some(a) => (
                Held::of(a.by_framework.get(fw), &a.allocated),
                a.total.clone(),
            ),
            None => (Held::default(), Resources::new()),
        };
        before.delta(&after, res, &total, add)
    }

    pub(super) fn release(&mut self, fw: &F, agent: &A, res: &Resources) {
        let Some(a) = self.agents.get(agent) else {
            return;
        };
        let held = a.by_framework.get(fw).cloned().unwrap_or_default();
        // Only what the framework actually holds can be released (never double-free).
        let res = intersection(&held, res);
        if res.is_empty() {
            return;
        }
        let before = self.shared_held(fw, agent, &res);
        self.pool_remove(agent);
        if let Some(a) = self.agents.get_mut(agent) {
            a.allocated = a.allocated.saturating_sub(&res);
            a.refresh_free();
            let left = held.saturating_sub(&res);
            if left.is_empty() {
                a.by_framework.remove(fw);
            } else {
                a.by_framework.insert(fw.clone(), left);
            }
        }
        self.pool_add(agent);
        self.free_grew(agent);
        match before {
            None => self.account(fw, &res, &res, &res, false),
            Some(before) => {
                let d = self.shared_delta(fw, agent, &res, &before, false);
                self.account(fw, &d.framework, &d.role, &d.agent, false);
            }
        }
    }

    /// Tells the agent's filter slots that its free resources grew.
    pub(super) fn free_grew(&mut self, agent: &A) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if a.filters.is_empty() {
            return;
        }
        let names: Vec<(u32, String)> = self
            .role_ids
            .iter()
            .filter(|(_, i)| a.filters.contains_key(i))
            .map(|(r, i)| (*i, r.clone()))
            .collect();
        for (ridx, role) in names {
            let free = super::cycle::allocatable_to(a.free(), &role);
            if let Some(slot) = a.filters.get_mut(&ridx) {
                slot.free_grew(&free, f64::NEG_INFINITY);
            }
        }
    }

    /// Mirrors an allocation (`add`) or release into the role tree, the framework
    /// sorters and the reservation counters: what changed as the framework, its roles and
    /// the agent count it (the same, but for shared entries; see `shared`).
    fn account(
        &mut self,
        fw: &F,
        for_fw: &Resources,
        for_role: &Resources,
        for_agent: &Resources,
        add: bool,
    ) {
        // Without shared entries the three views are one (the common case: work once).
        let same = std::ptr::eq(for_fw, for_role);
        let roles: BTreeSet<String> = for_fw
            .iter()
            .chain(for_role.iter().filter(|_| !same))
            .filter_map(|r| r.allocation_role.as_deref().map(str::to_string))
            .collect();
        for (role, q) in reserved_by_role(for_agent) {
            let slot = self.reserved_allocated.entry(role.clone()).or_default();
            if add {
                add_into(slot, &q);
            } else {
                sub_from(slot, &q);
                if slot.is_empty() {
                    self.reserved_allocated.remove(&role);
                }
            }
        }
        for role in roles {
            let q_role = for_role.allocated_to(&role).non_revocable().scalar_totals();
            let q_fw_own;
            let q_fw = if same {
                &q_role
            } else {
                q_fw_own = for_fw.allocated_to(&role).non_revocable().scalar_totals();
                &q_fw_own
            };
            if add {
                self.track_role(&role);
                if let Some(s) = self.role_frameworks.get_mut(&role) {
                    s.add(fw.clone(), 1.0);
                }
            }
            self.roles.update(&role, &q_role, add, &self.total);
            if let Some(s) = self.role_frameworks.get_mut(&role) {
                s.update(fw, q_fw, add, &self.total);
            }
            if !add {
                let subscribed = self
                    .frameworks
                    .get(fw)
                    .is_some_and(|f| f.roles.contains(&role));
                if !subscribed {
                    self.untrack_framework_role(fw, &role);
                }
            }
        }
    }

    pub(super) fn track_role(&mut self, role: &str) {
        self.roles.add(role);
        self.role_frameworks.entry(role.to_string()).or_default();
        self.role_idx(role);
    }

    /// Drops `fw` from the role's sorter once it holds nothing there, and the role once
    /// it has neither frameworks nor allocations.
    pub(super) fn untrack_framework_role(&mut self, fw: &F, role: &str) {
        let Some(s) = self.role_frameworks.get_mut(role) else {
            return;
        };
        if !s.allocated(fw).is_empty() {
            return; // still holds resources in this role; stays in the sorter until released
        }
        s.remove(fw);
        if s.is_empty() && self.roles.allocated(role).is_empty() {
            self.role_frameworks.remove(role);
            self.roles.remove(role);
        }
    }

    pub(super) fn rebuild_sorters(&mut self) {
        self.roles.rebuild(&self.total);
        for s in self.role_frameworks.values_mut() {
            s.rebuild(&self.total);
        }
    }

    // ----- quota headroom pool ----------------------------------------------------------

    /// An agent's contribution to the headroom pool.
    fn pool_share(&self, agent: &A) -> Quantities {
        self.agents
            .get(agent)
            .filter(|a| a.active)
            .map(|a| a.free().unreserved().non_revocable().scalar_totals())
            .unwrap_or_default()
    }

    pub(super) fn pool_remove(&mut self, agent: &A) {
        if self.pool.is_some() {
            let q = self.pool_share(agent);
            if let Some(p) = self.pool.as_mut() {
                sub_from(p, &q);
            }
        }
    }

    pub(super) fn pool_add(&mut self, agent: &A) {
        if self.pool.is_some() {
            let q = self.pool_share(agent);
            if let Some(p) = self.pool.as_mut() {
                add_into(p, &q);
            }
        }
    }

    /// Starts (some role has a guarantee) or stops keeping the headroom pool.
    pub(super) fn refresh_pool(&mut self) {
        let needed = self.quotas.values().any(|q| !q.guarantees.is_empty());
        self.pool = None;
        if needed {
            let mut pool = Quantities::new();
            let ids: Vec<A> = self.agents.keys().cloned().collect();
            for id in ids {
                add_into(&mut pool, &self.pool_share(&id));
            }
            self.pool = Some(pool);
        }
    }
}
