//! The allocation cycle. For each agent, roles are visited in hierarchical DRF order and
//! the role's lowest-share eligible framework is offered what the role may have there:
//! unreserved resources plus those reserved for the role or an ancestor, cut down by
//! quota (limits of the role and its ancestors; headroom held back for other roles'
//! guarantees). When some role has an unmet guarantee, a first pass over the agents
//! offers only to such roles, up to their guarantees (Mesos' two stages).

use super::why::{Reason, Recorder};
use super::{Allocation, Allocator, Key};
use crate::filters::Slot;
use crate::quota::{add_into, chop, min_caps, minus, Quantities};
use crate::roles::{is_self_or_descendant, self_and_ancestors};
use crate::sorter::Sorter;
use std::collections::{BTreeSet, HashMap};
use strata_resources::{Resources, Scalar};

/// Free non-revocable resources a role may be offered: unreserved, or reserved for the
/// role or one of its ancestors. Shared resources are offered apart, to capable
/// frameworks only (`Allocator::shared_offerable`).
pub(crate) fn allocatable_to(free: &Resources, role: &str) -> Resources {
    free.filter(|r| {
        !r.revocable && !r.shared && (!r.is_reserved() || is_self_or_descendant(role, r.role()))
    })
}

/// Free revocable resources a role may be offered (frameworks with
/// REVOCABLE_RESOURCES only).
pub(crate) fn revocable_to(free: &Resources, role: &str) -> Resources {
    free.filter(|r| r.revocable && (!r.is_reserved() || is_self_or_descendant(role, r.role())))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Only roles below an unmet guarantee, only up to it.
    Guarantees,
    /// Everyone, within limits and headroom.
    Fair,
}

impl<F: Key, A: Key> Allocator<F, A> {
    /// Runs an allocation cycle over every agent and records why roles were not offered
    /// anything (see [`Allocator::pending`]).
    pub fn allocate(&mut self, now: f64) -> Vec<Allocation<F, A>> {
        let agents: Vec<A> = self.agents.keys().cloned().collect();
        let mut rec = Recorder::new(now, agents.len());
        let out = self.run(now, &agents, Some(&mut rec));
        self.pending = rec.finish();
        out
    }

    /// Runs an allocation cycle over the given agents only (a freed resource does not
    /// trigger a scan of the world). Agents are visited once per stage, in key order.
    pub fn allocate_agents(&mut self, now: f64, agents: &[A]) -> Vec<Allocation<F, A>> {
        let agents: Vec<A> = agents
            .iter()
            .collect::<BTreeSet<&A>>()
            .into_iter()
            .cloned()
            .collect();
        self.run(now, &agents, None)
    }

    fn run(
        &mut self,
        now: f64,
        agents: &[A],
        mut rec: Option<&mut Recorder>,
    ) -> Vec<Allocation<F, A>> {
        let mut out = Vec::new();
        self.eligible_bits.clear();
        self.shared_offered.clear();
        self.take_back_unused_loans();
        let mut order = self.roles.order();
        if self.any_unmet_guarantee() {
            if let Some(r) = rec.as_deref_mut() {
                r.guarantee_stage = true;
            }
            for agent in agents {
                self.allocate_agent(
                    now,
                    agent,
                    Stage::Guarantees,
                    &mut order,
                    &mut out,
                    rec.as_deref_mut(),
                );
            }
            if let Some(r) = rec.as_deref_mut() {
                r.guarantee_stage = false;
            }
        }
        for agent in agents {
            self.allocate_agent(
                now,
                agent,
                Stage::Fair,
                &mut order,
                &mut out,
                rec.as_deref_mut(),
            );
            if self.lend(agent) {
                // Offer what was just lent (revocable: capable frameworks only).
                self.allocate_agent(now, agent, Stage::Fair, &mut order, &mut out, None);
            }
        }
        out
    }

    fn allocate_agent(
        &mut self,
        now: f64,
        agent: &A,
        stage: Stage,
        order: &mut Vec<String>,
        out: &mut Vec<Allocation<F, A>>,
        mut rec: Option<&mut Recorder>,
    ) {
        let Some(state) = self.agents.get(agent) else {
            return;
        };
        if !state.active {
            if let Some(r) = rec.as_deref_mut() {
                r.agent(Reason::AgentInactive);
            }
            return;
        }
        if !self.allocatable(state.free()) {
            if let Some(r) = rec.as_deref_mut() {
                r.agent(Reason::NothingFree);
            }
            return;
        }
        let mut changed = false;
        // Only the recorder (full cycles) needs the agent's hash.
        let key = rec.as_ref().map_or(0, |_| agent_key(agent));
        for role in order.iter() {
            let Some(state) = self.agents.get(agent) else {
                return;
            };
            if state.free().is_empty() {
                break;
            }
            if stage == Stage::Guarantees && !self.below_guarantee(role) {
                continue;
            }
            let subscribed = self.subscribers.get(role).copied().unwrap_or(0);
            if subscribed == 0 {
                continue;
            }
            match self.offer_for(now, agent, role, stage) {
                Err(reason) => {
                    if let Some(r) = rec.as_deref_mut() {
                        r.role(key, role, reason);
                    }
                }
                Ok(grants) => {
                    if let Some(r) = rec.as_deref_mut() {
                        r.role(key, role, Reason::Offered);
                    }
                    for (fw, granted) in grants {
                        self.allocate_to(&fw, agent, &granted);
                        changed = true;
                        out.push(Allocation {
                            framework: fw,
                            agent: agent.clone(),
                            role: role.clone(),
                            resources: granted,
                        });
                    }
                }
            }
        }
        if changed {
            *order = self.roles.order();
        }
    }

    /// What `role` would be offered on `agent` and to which framework (a second grant
    /// carries revocable resources when the first framework cannot take them), or why
    /// nothing.
    fn offer_for(
        &mut self,
        now: f64,
        agent: &A,
        role: &str,
        stage: Stage,
    ) -> Result<Vec<(F, Resources)>, Reason> {
        let ridx = self.role_ids.get(role).copied();
        let Self {
            agents,
            subscribers,
            config,
            ..
        } = self;
        let state = agents.get_mut(agent).ok_or(Reason::AgentInactive)?;
        let avail = allocatable_to(state.free(), role);
        let lent = if stage == Stage::Fair {
            revocable_to(state.free(), role)
        } else {
            Resources::new()
        };
        let lent_ok = allocatable(config, &lent);
        if !allocatable(config, &avail) && !lent_ok {
            return Err(if avail.is_empty() {
                Reason::ReservedForOthers
            } else {
                Reason::BelowMinimum
            });
        }
        let n = subscribers.get(role).copied().unwrap_or(0);
        if let Some(s) = ridx.and_then(|i| state.filters.get_mut(&i)) {
            s.expire(now);
            if s.all_refused(n) && !lent_ok {
                return Err(Reason::AllFiltered);
            }
        }
        let offer = self.quota_cut(role, &avail, stage);
        let offer_ok = self.allocatable(&offer);
        // Shared resources ride along with an offer to a capable framework.
        let shared = if offer_ok {
            self.shared_offerable(agent, role)
        } else {
            Resources::new()
        };
        if !offer_ok && !lent_ok {
            return Err(self.quota_reason(role));
        }
        let sparse = self.mostly_refused(agent, ridx, n);
        if sparse && !self.eligible_bits.contains_key(role) {
            let bits = self.eligible_set(role);
            self.eligible_bits.insert(role.to_string(), bits);
        }
        let Self {
            agents,
            frameworks,
            role_frameworks,
            fw_by_idx,
            eligible_bits,
            shared_offered,
            ..
        } = self;
        let sorter = role_frameworks
            .get(role)
            .ok_or(Reason::NoEligibleFramework)?;
        let mut slot = agents
            .get_mut(agent)
            .and_then(|a| ridx.and_then(|i| a.filters.get_mut(&i)));
        let mut grants = Vec::new();
        let mut lent_left = lent_ok;
        let mut why = Reason::NoEligibleFramework;
        let picked = match (sparse, slot.as_deref_mut(), eligible_bits.get(role)) {
            (true, Some(s), Some(elig)) if offer_ok => {
                Some(pick_sparse(sorter, fw_by_idx, elig, s, &offer, &avail, now))
            }
            _ if offer_ok => Some(pick(
                sorter,
                frameworks,
                role,
                slot.as_deref_mut(),
                &offer,
                &avail,
                now,
                false,
            )),
            _ => None,
        };
        // Revocable resources go to the highest-priority capable framework; when that is
        // the framework picked for the rest, both make one offer.
        let lent_to = lent_ok
            .then(|| pick(sorter, frameworks, role, slot, &lent, &lent, now, true).ok())
            .flatten();
        if let Some(picked) = picked {
            match picked {
                Ok(fw) => {
                    let mut granted = offer.clone();
                    if !shared.is_empty() && frameworks.get(&fw).is_some_and(|f| f.shared) {
                        *shared_offered.entry(agent.clone()).or_default() += shared.clone();
                        granted += shared;
                    }
                    if lent_to.as_ref() == Some(&fw) {
                        granted += lent.clone();
                        lent_left = false;
                    }
                    grants.push((fw, granted.with_allocation_role(role)));
                }
                Err(r) => why = r,
            }
        }
        if let (true, Some(fw)) = (lent_left, lent_to) {
            grants.push((fw, lent.with_allocation_role(role)));
        }
        if grants.is_empty() {
            return Err(why);
        }
        Ok(grants)
    }

    pub(super) fn allocatable(&self, res: &Resources) -> bool {
        allocatable(&self.config, res)
    }

    /// Whether most of the role's (many) frameworks refuse this agent, so that walking
    /// the role's frameworks in order would mostly meet refusals.
    fn mostly_refused(&self, agent: &A, ridx: Option<u32>, subscribed: usize) -> bool {
        let Some(slot) = ridx.and_then(|i| self.agents.get(agent)?.filters.get(&i)) else {
            return false;
        };
        subscribed >= self.config.sparse_pick_from && slot.blocking_count() * 2 >= subscribed
    }

    /// The role's eligible frameworks as a bitset by index.
    fn eligible_set(&self, role: &str) -> Vec<u64> {
        let mut bits = vec![0u64; self.fw_by_idx.len().div_ceil(64)];
        let Some(sorter) = self.role_frameworks.get(role) else {
            return bits;
        };
        for fw in sorter.iter() {
            if let Some(f) = self.frameworks.get(fw).filter(|f| f.eligible(role)) {
                if let Some(w) = bits.get_mut(f.idx as usize / 64) {
                    *w |= 1 << (f.idx % 64);
                }
            }
        }
        bits
    }

    // ----- quota ------------------------------------------------------------------------

    /// Scalars counted against a role's quota: its subtree's allocations plus the
    /// unallocated reservations of the subtree.
    pub(super) fn consumed(&self, role: &str) -> Quantities {
        let mut q = self.roles.subtree_allocated(role);
        for (r, reserved) in &self.reserved {
            if is_self_or_descendant(r, role) {
                let used = self.reserved_allocated.get(r).cloned().unwrap_or_default();
                add_into(&mut q, &minus(reserved, &used));
            }
        }
        q.retain(|_, v| *v > Scalar::ZERO);
        q
    }

    /// Guarantees not yet met, per role with a guarantee and no guaranteed ancestor
    /// (a nested guarantee lies within its parent's).
    pub(super) fn required_headroom(&self) -> HashMap<String, Quantities> {
        let mut out = HashMap::new();
        for (role, quota) in &self.quotas {
            if quota.guarantees.is_empty() {
                continue;
            }
            let nested = self_and_ancestors(role)
                .skip(1)
                .any(|a| self.quotas.get(a).is_some_and(|q| !q.guarantees.is_empty()));
            if !nested {
                let left = minus(&quota.guarantees, &self.consumed(role));
                out.insert(role.clone(), left);
            }
        }
        out
    }

    fn any_unmet_guarantee(&self) -> bool {
        self.pool.is_some()
            && self
                .required_headroom()
                .values()
                .any(|q| q.values().any(|v| *v > Scalar::ZERO))
    }

    /// Whether the role or an ancestor has an unmet guarantee.
    fn below_guarantee(&self, role: &str) -> bool {
        self_and_ancestors(role).any(|r| {
            self.quotas.get(r).is_some_and(|q| {
                minus(&q.guarantees, &self.consumed(r))
                    .values()
                    .any(|v| *v > Scalar::ZERO)
            })
        })
    }

    /// Cuts the unreserved part of `avail` down to what quota lets `role` take.
    fn quota_cut(&self, role: &str, avail: &Resources, stage: Stage) -> Resources {
        if self.quotas.is_empty() {
            return avail.clone();
        }
        // Reservations of the role itself are already counted in its consumption.
        let mut out = avail.filter(|r| r.is_reserved() && r.role() == role);
        let mut taken = Quantities::new();
        // An ancestor's reservation counts against the limits of the roles below it.
        let owners: BTreeSet<&str> = avail
            .iter()
            .filter(|r| r.is_reserved() && r.role() != role)
            .map(|r| r.role())
            .collect();
        for owner in owners {
            let mut caps = self.limit_caps(role, Some(owner));
            if !caps.is_empty() {
                caps = minus(&caps, &taken);
            }
            let got = chop(
                &avail.filter(|r| r.is_reserved() && r.role() == owner),
                &caps,
            );
            add_into(&mut taken, &got.scalar_totals());
            out += got;
        }
        let mut caps = self.limit_caps(role, None);
        if !caps.is_empty() {
            caps = minus(&caps, &taken);
        }
        min_caps(&mut caps, &self.quota_caps(role, stage));
        out + chop(&avail.unreserved(), &caps)
    }

    /// Limit headroom (`limit - consumed`) of `role` and its ancestors strictly below
    /// `below` (all of them for `None`).
    fn limit_caps(&self, role: &str, below: Option<&str>) -> Quantities {
        let mut caps = Quantities::new();
        for r in self_and_ancestors(role) {
            if below.is_some_and(|b| is_self_or_descendant(b, r)) {
                break;
            }
            if let Some(q) = self.quotas.get(r).filter(|q| !q.limits.is_empty()) {
                min_caps(&mut caps, &minus(&q.limits, &self.consumed(r)));
            }
        }
        caps
    }

    /// Per-name caps on unreserved resources beyond the limits: the unmet guarantee in
    /// the guarantee stage, and headroom held back for other roles' guarantees.
    fn quota_caps(&self, role: &str, stage: Stage) -> Quantities {
        let mut caps = Quantities::new();
        let mut guaranteed_left: Option<Quantities> = None;
        for r in self_and_ancestors(role) {
            let Some(q) = self.quotas.get(r) else {
                continue;
            };
            if !q.guarantees.is_empty() {
                let left = minus(&q.guarantees, &self.consumed(r));
                // Any role below an unmet guarantee may fill it: the most owed wins.
                match guaranteed_left.as_mut() {
                    None => guaranteed_left = Some(left),
                    Some(g) => {
                        for (n, v) in left {
                            let slot = g.entry(n).or_insert(v);
                            if v > *slot {
                                *slot = v;
                            }
                        }
                    }
                }
            }
        }
        if stage == Stage::Guarantees {
            if let Some(g) = &guaranteed_left {
                min_caps(&mut caps, g);
            }
        }
        if let Some(pool) = &self.pool {
            // What is free beyond the others' unmet guarantees; a role below its own
            // (top-level) guarantee may also take that part.
            let required = self.required_headroom();
            let mut others = Quantities::new();
            for (r, left) in &required {
                if !is_self_or_descendant(role, r) {
                    add_into(&mut others, left);
                }
            }
            let mut headroom = minus(pool, &others);
            if stage == Stage::Guarantees {
                // The guaranteed part is owed to this role whatever others are owed.
                if let Some(g) = &guaranteed_left {
                    headroom.retain(|n, _| !g.contains_key(n));
                }
            }
            if !others.is_empty() {
                min_caps(&mut caps, &headroom);
            }
        }
        caps
    }

    fn quota_reason(&self, role: &str) -> Reason {
        let limited = self_and_ancestors(role).any(|r| {
            self.quotas.get(r).is_some_and(|q| {
                let c = self.consumed(r);
                q.limits
                    .iter()
                    .any(|(n, l)| c.get(n).copied().unwrap_or(Scalar::ZERO) >= *l)
            })
        });
        if limited {
            Reason::QuotaLimit
        } else {
            Reason::QuotaHeadroom
        }
    }
}

/// A stable hash of an agent id, for the recorder's bookkeeping.
fn agent_key<A: Key>(agent: &A) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    agent.hash(&mut h);
    h.finish()
}

fn allocatable(config: &super::Config, res: &Resources) -> bool {
    if res.is_empty() {
        return false;
    }
    if config.min_allocatable.is_empty() {
        return true;
    }
    let have = res.scalar_totals();
    config.min_allocatable.iter().any(|need| {
        need.iter()
            .all(|(n, q)| have.get(n).is_some_and(|h| h >= q))
    })
}

/// `pick` for an agent most frameworks refuse: the candidates are the eligible
/// frameworks without a blocking refusal (a bitset difference, 64 frameworks per step),
/// and the one first in the role's order among those not refusing `offer` wins — the
/// same framework the walk in `pick` finds.
fn pick_sparse<F: Key>(
    sorter: &Sorter<F>,
    by_idx: &[Option<F>],
    eligible: &[u64],
    slot: &mut Slot,
    offer: &Resources,
    avail: &Resources,
    now: f64,
) -> Result<F, Reason> {
    let mut best: Option<(u64, &F)> = None;
    let mut refusing = Vec::new();
    let mut any = false;
    let block = slot.blocking_bits();
    for (w, e) in eligible.iter().enumerate() {
        any |= *e != 0;
        let mut cand = e & !block.get(w).copied().unwrap_or(0);
        while cand != 0 {
            let idx = (w * 64) as u32 + cand.trailing_zeros();
            cand &= cand - 1;
            let Some(Some(fw)) = by_idx.get(idx as usize) else {
                continue;
            };
            if slot.refuses(idx, offer, now) {
                refusing.push(idx);
                continue;
            }
            let Some(key) = sorter.key_of(fw) else {
                continue;
            };
            if best.is_none_or(|(k, f)| (key, fw) < (k, f)) {
                best = Some((key, fw));
            }
        }
    }
    let best = best.map(|(_, f)| f.clone());
    for idx in refusing {
        slot.mark_blocking(idx, avail, now);
    }
    match best {
        Some(f) => Ok(f),
        None if any => Err(Reason::AllFiltered),
        None => Err(Reason::NoEligibleFramework),
    }
}

/// The role's lowest-share eligible framework (with REVOCABLE_RESOURCES when
/// `revocable`) whose filters let it have `offer`.
#[allow(clippy::too_many_arguments)]
fn pick<F: Key>(
    sorter: &Sorter<F>,
    frameworks: &HashMap<F, super::FrameworkState>,
    role: &str,
    mut slot: Option<&mut Slot>,
    offer: &Resources,
    avail: &Resources,
    now: f64,
    revocable: bool,
) -> Result<F, Reason> {
    let mut eligible = false;
    // For revocable resources the highest priority wins (the first in DRF order among
    // equals); otherwise the first in DRF order.
    let mut best: Option<(i64, &F)> = None;
    for fw in sorter.iter() {
        let Some(f) = frameworks.get(fw) else {
            continue;
        };
        if !f.eligible(role) || (revocable && !f.revocable) {
            continue;
        }
        eligible = true;
        if best.is_some_and(|(p, _)| f.priority <= p) {
            continue;
        }
        if let Some(s) = slot.as_deref_mut() {
            if s.refuses(f.idx, offer, now) {
                s.mark_blocking(f.idx, avail, now);
                continue;
            }
        }
        if !revocable {
            return Ok(fw.clone());
        }
        best = Some((f.priority, fw));
    }
    match best {
        Some((_, fw)) => Ok(fw.clone()),
        None if eligible => Err(Reason::AllFiltered),
        None => Err(Reason::NoEligibleFramework),
    }
}
