//! Lending held-back guaranteed capacity as revocable resources. While some role's quota
//! guarantee is unmet and no framework below it could take the capacity, the free
//! unreserved capacity held back for it would sit idle; up to the unmet amount it is
//! converted, agent by agent, into revocable resources that
//! frameworks with REVOCABLE_RESOURCES may use. Every cycle first takes back what is
//! lent but unused, so the guarantee stage sees it again; what lent tasks hold is taken
//! back by preempting them (the master's call: [`Allocator::reclaim_needed`]). Agents
//! that run a resource estimator do not lend (their QoS correction would count lent
//! containers against the estimate).

use super::{Allocator, Key};
use crate::quota::{add_into, chop, minus, Quantities};
use strata_resources::{Resources, Scalar};

fn revocable(r: &Resources) -> Resources {
    r.map(|x| x.revocable = true)
}

fn plain(r: &Resources) -> Resources {
    r.map(|x| x.revocable = false)
}

impl<F: Key, A: Key> Allocator<F, A> {
    /// Converts lent resources nobody uses back to ordinary ones (start of a cycle).
    pub(super) fn take_back_unused_loans(&mut self) {
        let lending: Vec<A> = self.lenders.iter().cloned().collect();
        for id in lending {
            let Some(a) = self.agents.get(&id) else {
                continue;
            };
            let unused = super::intersection(&a.lent, &a.free().revocable());
            if unused.is_empty() {
                continue;
            }
            if let Some(a) = self.agents.get_mut(&id) {
                a.lent = a.lent.saturating_sub(&unused);
                if a.lent.is_empty() {
                    self.lenders.remove(&id);
                }
            }
            self.replace_total(&id, &unused, &plain(&unused));
        }
    }

    /// Scalars lent across the cluster.
    fn lent_total(&self) -> Quantities {
        let mut q = Quantities::new();
        for a in self.agents.values() {
            add_into(&mut q, &a.lent.scalar_totals());
        }
        q
    }

    /// The unmet guarantees summed over roles, split by whether a framework below the
    /// role could take the capacity now (`wanted`) or not (`idle`: lendable).
    fn owed(&self) -> (Quantities, Quantities) {
        let (mut wanted, mut idle) = (Quantities::new(), Quantities::new());
        for (role, left) in self.required_headroom() {
            let taker = self.frameworks.values().any(|f| {
                f.active
                    && f.roles.iter().any(|r| {
                        crate::roles::is_self_or_descendant(r, &role) && !f.suppressed.contains(r)
                    })
            });
            add_into(if taker { &mut wanted } else { &mut idle }, &left);
        }
        wanted.retain(|_, v| *v > Scalar::ZERO);
        idle.retain(|_, v| *v > Scalar::ZERO);
        (wanted, idle)
    }

    /// Lends what `agent` holds back for unmet guarantees, up to what is owed and not
    /// lent yet; true when something was lent.
    pub(super) fn lend(&mut self, agent: &A) -> bool {
        if self.pool.is_none() || !self.frameworks.values().any(|f| f.revocable && f.active) {
            return false;
        }
        let Some(a) = self.agents.get(agent) else {
            return false;
        };
        let estimated = a.total.revocable().saturating_sub(&a.lent);
        if !a.active || !estimated.is_empty() {
            return false;
        }
        let caps = minus(&self.owed().1, &self.lent_total());
        if caps.values().all(|v| *v == Scalar::ZERO) {
            return false;
        }
        let free = a.free().unreserved().non_revocable();
        let lendable = chop(&free.filter(|r| caps.contains_key(r.name.as_str())), &caps);
        if !self.allocatable(&lendable) {
            return false;
        }
        let lent = revocable(&lendable);
        self.replace_total(agent, &lendable, &lent);
        if let Some(a) = self.agents.get_mut(agent) {
            a.lent += lent;
        }
        self.lenders.insert(agent.clone());
        true
    }

    /// How much of the unmet guarantees can only be met by taking back what lent tasks
    /// hold: owed minus what is free (unreserved, not lent) on active agents, capped by
    /// what is lent and in use. Empty when nothing needs preempting — in particular when
    /// no framework below an unmet guarantee could take the capacity.
    pub fn reclaim_needed(&self) -> Quantities {
        let Some(pool) = &self.pool else {
            return Quantities::new();
        };
        let owed = self.owed().0;
        let short = minus(&owed, pool);
        let mut in_use = Quantities::new();
        for a in self.agents.values() {
            let used = super::intersection(&a.lent, &a.allocated.without_allocation_role());
            add_into(&mut in_use, &used.scalar_totals());
        }
        let mut need: Quantities = short
            .into_iter()
            .map(|(n, v)| {
                let cap = in_use.get(&n).copied().unwrap_or(Scalar::ZERO);
                (n, if v < cap { v } else { cap })
            })
            .collect();
        need.retain(|_, v| *v > Scalar::ZERO);
        need
    }

    /// Resources lent on `agent` (revocable-flagged).
    pub fn lent(&self, agent: &A) -> Resources {
        self.agents
            .get(agent)
            .map(|a| a.lent.clone())
            .unwrap_or_default()
    }
}
