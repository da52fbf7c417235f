//! The allocator state (agents, frameworks, the role tree, quotas, refusal filters) and
//! its lifecycle calls; the allocation cycle lives in `cycle`, the bookkeeping of
//! allocations in `books`, shared resources in `shared`, read-only views and invariants
//! in `views`, the "why pending" report in `why`.

mod books;
mod cycle;
mod lending;
mod shared;
mod views;
mod why;

use crate::filters::Slot;
use crate::quota::{Quantities, Quota};
use crate::roles::RoleTree;
use crate::sorter::Sorter;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use strata_resources::{Resources, Scalar};

pub use why::{Explanation, Pending, Placement, Reason, RoleReport};

/// What the allocator needs of framework and agent identifiers.
pub trait Key: Clone + Ord + Hash + Debug + std::fmt::Display {}
impl<T: Clone + Ord + Hash + Debug + std::fmt::Display> Key for T {}

/// Allocator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Resources are offered only if they hold at least one of these quantity sets
    /// (Mesos `--min_allocatable_resources`, default `cpus:0.01|mem:32`).
    pub min_allocatable: Vec<BTreeMap<String, Scalar>>,
    /// From how many subscribed frameworks a role's pick on an agent that most of them
    /// refuse uses the bitset path instead of walking the frameworks in order (both give
    /// the same answer; tests lower it to compare them).
    pub sparse_pick_from: usize,
}

impl Default for Config {
    fn default() -> Self {
        let one = |n: &str, v: f64| BTreeMap::from([(n.to_string(), Scalar::from_f64(v))]);
        Self {
            min_allocatable: vec![one("cpus", 0.01), one("mem", 32.0)],
            sparse_pick_from: 64,
        }
    }
}

/// One decision: offer `resources` (allocation role set) of `agent` to `framework` in `role`.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation<F, A> {
    pub framework: F,
    pub agent: A,
    pub role: String,
    pub resources: Resources,
}

#[derive(Debug, Clone)]
struct AgentState<F> {
    total: Resources,
    allocated: Resources,
    /// `total - allocated` (without allocation roles), kept in step while something is
    /// allocated; `None` for an idle agent, whose free resources are its total (saves a
    /// copy of the total per idle agent).
    free_part: Option<Resources>,
    by_framework: BTreeMap<F, Resources>,
    active: bool,
    /// Refusal filters by role index.
    filters: HashMap<u32, Slot>,
    /// Revocable resources made from capacity held back for unmet guarantees (part of
    /// `total`; see `lending`).
    lent: Resources,
}

impl<F> AgentState<F> {
    /// The agent's free resources: `total - allocated`.
    fn free(&self) -> &Resources {
        self.free_part.as_ref().unwrap_or(&self.total)
    }

    /// Recomputes the free resources after `total` or `allocated` changed.
    fn refresh_free(&mut self) {
        self.free_part = (!self.allocated.is_empty()).then(|| {
            self.total
                .saturating_sub(&self.allocated.without_allocation_role())
        });
    }
}

#[derive(Debug, Clone)]
struct FrameworkState {
    /// Dense index used by the filter slots (never reused).
    idx: u32,
    /// REVOCABLE_RESOURCES: may be offered revocable resources.
    revocable: bool,
    /// SHARED_RESOURCES: may be offered shared resources (also while in use).
    shared: bool,
    /// Higher goes first for revocable resources (and may preempt lower; see the master).
    priority: i64,
    /// What the framework says it still needs (REQUEST), one entry per unit of work;
    /// used to explain why it is not getting it.
    demand: Vec<Resources>,
    /// Whether the framework ever stated its demand (an empty REQUEST means "no pending
    /// work", which lets declines auto-suppress it).
    demand_stated: bool,
    /// Roles suppressed automatically: the framework said it has no pending work and
    /// then declined an offer. Its next REQUEST with work, or REVIVE, resumes them.
    auto_suppressed: BTreeSet<String>,
    roles: BTreeSet<String>,
    suppressed: BTreeSet<String>,
    active: bool,
}

impl FrameworkState {
    fn eligible(&self, role: &str) -> bool {
        self.active && self.roles.contains(role) && !self.suppressed.contains(role)
    }
}

/// The allocator. Invariants: for every agent, `allocated` (shared entries counted once)
/// ⊆ `total`, equals the sum of `by_framework`, `free = total - allocated`, and counted
/// `allocated` + `free` = `total`; the role tree and the framework sorters hold the scalar
/// sums of the same data; reservation counters match the agents.
#[derive(Debug, Clone)]
pub struct Allocator<F: Key, A: Key> {
    config: Config,
    agents: BTreeMap<A, AgentState<F>>,
    frameworks: HashMap<F, FrameworkState>,
    next_framework: u32,
    /// Framework keys by dense index (`None` once removed).
    fw_by_idx: Vec<Option<F>>,
    /// Per role, the eligible frameworks as a bitset by index; built lazily during a
    /// cycle (eligibility cannot change within one) and dropped at the next.
    eligible_bits: HashMap<String, Vec<u64>>,
    roles: RoleTree,
    role_ids: HashMap<String, u32>,
    /// Frameworks subscribed to each role.
    subscribers: HashMap<String, usize>,
    role_frameworks: BTreeMap<String, Sorter<F>>,
    total: Quantities,
    quotas: BTreeMap<String, Quota>,
    /// Scalars reserved per role (agents' totals) and the allocated part of them.
    reserved: BTreeMap<String, Quantities>,
    reserved_allocated: BTreeMap<String, Quantities>,
    /// Free unreserved scalars of active agents: the headroom quota guarantees draw on.
    /// Kept only while some role has a guarantee.
    pool: Option<Quantities>,
    /// What the last full cycle saw, for "why pending?".
    pending: Pending,
    /// Agents with lent capacity (so a cycle need not look at every agent for loans).
    lenders: BTreeSet<A>,
    /// Shared resources offered in the running cycle, per agent (cleared at its start).
    shared_offered: shared::OfferedShared<A>,
}

/// The part of `want` that `have` contains (`want ∩ have`).
fn intersection(want: &Resources, have: &Resources) -> Resources {
    want.saturating_sub(&want.saturating_sub(have))
}

impl<F: Key, A: Key> Allocator<F, A> {
    /// An empty allocator.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            agents: BTreeMap::new(),
            frameworks: HashMap::new(),
            next_framework: 0,
            fw_by_idx: Vec::new(),
            eligible_bits: HashMap::new(),
            roles: RoleTree::default(),
            role_ids: HashMap::new(),
            subscribers: HashMap::new(),
            role_frameworks: BTreeMap::new(),
            total: BTreeMap::new(),
            quotas: BTreeMap::new(),
            reserved: BTreeMap::new(),
            reserved_allocated: BTreeMap::new(),
            pool: None,
            pending: Pending::default(),
            lenders: BTreeSet::new(),
            shared_offered: shared::OfferedShared::new(),
        }
    }

    // ----- agents -------------------------------------------------------------------

    /// Adds an agent with its total resources and what is already in use on it
    /// (tasks reported by a re-registering agent), in `(framework, resources)` pairs whose
    /// resources carry their allocation role. Re-adding an agent replaces it. Used
    /// resources are recorded as by [`Allocator::add_used`] (clamped to the total).
    pub fn add_agent(&mut self, agent: A, total: Resources, used: Vec<(F, Resources)>) {
        self.remove_agent(&agent);
        self.count_total(&total, true);
        self.agents.insert(
            agent.clone(),
            AgentState {
                free_part: None,
                total,
                allocated: Resources::new(),
                by_framework: BTreeMap::new(),
                active: true,
                filters: HashMap::new(),
                lent: Resources::new(),
            },
        );
        self.pool_add(&agent);
        self.rebuild_sorters();
        for (fw, res) in used {
            self.add_used(&fw, &agent, &res);
        }
    }

    /// Removes an agent, dropping every allocation on it and every filter for it.
    pub fn remove_agent(&mut self, agent: &A) {
        let Some(state) = self.agents.get(agent) else {
            return;
        };
        let held: Vec<(F, Resources)> = state
            .by_framework
            .iter()
            .map(|(f, r)| (f.clone(), r.clone()))
            .collect();
        for (fw, res) in &held {
            self.release(fw, agent, res);
        }
        self.pool_remove(agent);
        self.lenders.remove(agent);
        if let Some(state) = self.agents.remove(agent) {
            self.count_total(&state.total, false);
        }
        self.rebuild_sorters();
    }

    /// Stops (false) or resumes (true) offering an agent's resources.
    pub fn set_agent_active(&mut self, agent: &A, active: bool) {
        self.pool_remove(agent);
        if let Some(a) = self.agents.get_mut(agent) {
            a.active = active;
        }
        self.pool_add(agent);
    }

    // ----- frameworks ---------------------------------------------------------------

    /// Adds (or re-adds, updating roles, suppression and activity) a framework
    /// subscribed to `roles`.
    pub fn add_framework(&mut self, fw: F, roles: &[String], suppressed: &[String], active: bool) {
        let next = self.next_framework;
        let state = self
            .frameworks
            .entry(fw.clone())
            .or_insert_with(|| FrameworkState {
                idx: next,
                revocable: false,
                shared: false,
                priority: 0,
                demand: Vec::new(),
                demand_stated: false,
                auto_suppressed: BTreeSet::new(),
                roles: BTreeSet::new(),
                suppressed: BTreeSet::new(),
                active,
            });
        if state.idx == next {
            self.next_framework += 1;
            self.fw_by_idx.push(Some(fw.clone()));
        }
        state.active = active;
        let new_roles: BTreeSet<String> = roles.iter().cloned().collect();
        let old_roles = std::mem::replace(&mut state.roles, new_roles.clone());
        state.suppressed = suppressed.iter().cloned().collect();
        for role in new_roles.difference(&old_roles) {
            *self.subscribers.entry(role.clone()).or_insert(0) += 1;
        }
        for role in &new_roles {
            self.track_role(role);
            if let Some(s) = self.role_frameworks.get_mut(role) {
                s.add(fw.clone(), 1.0);
            }
        }
        for role in old_roles.difference(&new_roles) {
            self.unsubscribe(&fw, role);
        }
    }

    /// Removes a framework and every allocation it holds (on any agent).
    pub fn remove_framework(&mut self, fw: &F) {
        let held: Vec<(A, Resources)> = self
            .agents
            .iter()
            .filter_map(|(id, a)| a.by_framework.get(fw).map(|r| (id.clone(), r.clone())))
            .collect();
        for (agent, res) in &held {
            self.release(fw, agent, res);
        }
        let Some(state) = self.frameworks.get(fw) else {
            return;
        };
        let roles: Vec<String> = state.roles.iter().cloned().collect();
        let idx = state.idx as usize;
        for role in &roles {
            self.unsubscribe(fw, role);
        }
        self.frameworks.remove(fw);
        if let Some(slot) = self.fw_by_idx.get_mut(idx) {
            *slot = None;
        }
    }

    /// The framework leaves `role`: its filters there go, its sorter entry too once it
    /// holds nothing there.
    fn unsubscribe(&mut self, fw: &F, role: &str) {
        if let Some(n) = self.subscribers.get_mut(role) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.subscribers.remove(role);
            }
        }
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.roles.remove(role);
            f.suppressed.remove(role);
        }
        self.clear_filters(fw, role);
        self.untrack_framework_role(fw, role);
    }

    /// Activates or deactivates (disconnected) a framework.
    pub fn set_framework_active(&mut self, fw: &F, active: bool) {
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.active = active;
        }
    }

    /// Whether the framework has the REVOCABLE_RESOURCES capability.
    pub fn set_revocable_capable(&mut self, fw: &F, capable: bool) {
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.revocable = capable;
        }
    }

    /// Sets a framework's priority (default 0): revocable resources go to the highest
    /// priority capable framework first (DRF among equals).
    pub fn set_priority(&mut self, fw: &F, priority: i64) {
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.priority = priority;
        }
    }

    /// A framework's priority (0 when unknown).
    pub fn priority(&self, fw: &F) -> i64 {
        self.frameworks.get(fw).map_or(0, |f| f.priority)
    }

    /// A framework's stated demand (its latest REQUEST).
    pub fn demand(&self, fw: &F) -> &[Resources] {
        self.frameworks.get(fw).map_or(&[], |f| f.demand.as_slice())
    }

    /// Records what the framework still needs (its latest REQUEST; empty clears it).
    pub fn set_demand(&mut self, fw: &F, demand: Vec<Resources>) {
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.demand = demand
                .into_iter()
                .map(|r| r.without_allocation_role())
                .filter(|r| !r.is_empty())
                .collect();
            f.demand_stated = true;
            if !f.demand.is_empty() {
                let auto = std::mem::take(&mut f.auto_suppressed);
                f.suppressed.retain(|r| !auto.contains(r));
            }
        }
    }

    /// Roles the framework is auto-suppressed in (see [`Allocator::set_demand`]).
    pub fn auto_suppressed(&self, fw: &F) -> BTreeSet<String> {
        self.frameworks
            .get(fw)
            .map(|f| f.auto_suppressed.clone())
            .unwrap_or_default()
    }

    /// Stops offers for `roles` (all the framework's roles when empty).
    pub fn suppress(&mut self, fw: &F, roles: &[String]) {
        if let Some(f) = self.frameworks.get_mut(fw) {
            let roles: Vec<String> = if roles.is_empty() {
                f.roles.iter().cloned().collect()
            } else {
                roles.to_vec()
            };
            f.suppressed.extend(roles);
        }
    }

    /// Resumes offers for `roles` (all when empty) and clears their refusal filters.
    pub fn revive(&mut self, fw: &F, roles: &[String]) {
        let Some(f) = self.frameworks.get_mut(fw) else {
            return;
        };
        let roles: Vec<String> = if roles.is_empty() {
            f.roles.iter().cloned().collect()
        } else {
            roles.to_vec()
        };
        f.suppressed.retain(|r| !roles.contains(r));
        f.auto_suppressed.retain(|r| !roles.contains(r));
        for role in &roles {
            self.clear_filters(fw, role);
        }
    }

    /// Removes every refusal filter of `fw` in `role` (one lookup per agent).
    fn clear_filters(&mut self, fw: &F, role: &str) {
        let (Some(f), Some(ridx)) = (self.frameworks.get(fw), self.role_ids.get(role)) else {
            return;
        };
        let idx = f.idx;
        for a in self.agents.values_mut() {
            if let Some(slot) = a.filters.get_mut(ridx) {
                slot.remove(idx);
                if slot.is_empty() {
                    a.filters.remove(ridx);
                }
            }
        }
    }

    // ----- roles and quota ----------------------------------------------------------

    /// Sets a role's weight (default 1.0; must be positive).
    pub fn set_weight(&mut self, role: &str, weight: f64) {
        self.roles.set_weight(role, weight, &self.total);
    }

    /// Sets a role's quota (an empty quota removes it). Fails on a guarantee above its
    /// limit, children's guarantees above their parent's, or a child's limit above its
    /// parent's; cluster-capacity checks are the caller's (they need `force`).
    pub fn set_quota(&mut self, role: &str, quota: Quota) -> Result<(), String> {
        quota.validate()?;
        let mut next = self.quotas.clone();
        if quota.is_empty() {
            next.remove(role);
        } else {
            next.insert(role.to_string(), quota);
        }
        crate::quota::validate_tree(&next)?;
        self.quotas = next;
        self.refresh_pool();
        Ok(())
    }

    /// Sets several roles' quotas at once (all or nothing), validated as a whole.
    pub fn set_quotas(&mut self, quotas: Vec<(String, Quota)>) -> Result<(), String> {
        let mut next = self.quotas.clone();
        for (role, quota) in quotas {
            quota
                .validate()
                .map_err(|e| format!("role '{role}': {e}"))?;
            if quota.is_empty() {
                next.remove(&role);
            } else {
                next.insert(role, quota);
            }
        }
        crate::quota::validate_tree(&next)?;
        self.quotas = next;
        self.refresh_pool();
        Ok(())
    }

    // ----- resource flow ------------------------------------------------------------

    /// Records resources as in use by `fw` on `agent` without an offer (recovered tasks,
    /// or one more task on a shared volume). Each entry should carry its allocation role.
    /// Only the non-shared part that is still free on the agent is recorded, so the agent
    /// is never over-committed, plus one more copy of each shared entry the agent has;
    /// returns what was recorded.
    pub fn add_used(&mut self, fw: &F, agent: &A, resources: &Resources) -> Resources {
        let fits = self.clamp_usable(agent, resources);
        self.allocate_to(fw, agent, &fits);
        fits
    }

    /// Returns resources (declined offer, finished task…) to the free pool. With
    /// `refuse_until`, the framework is not offered this agent's resources of this role
    /// again before that time unless more than `resources` becomes available.
    pub fn recover(&mut self, fw: &F, agent: &A, resources: &Resources, refuse_until: Option<f64>) {
        if resources.is_empty() {
            return;
        }
        self.release(fw, agent, resources);
        let Some(until) = refuse_until else {
            return;
        };
        let Some(f) = self.frameworks.get_mut(fw) else {
            return;
        };
        let idx = f.idx;
        let roles: BTreeSet<String> = resources
            .iter()
            .filter_map(|r| r.allocation_role.as_deref())
            .filter(|r| f.roles.contains(*r))
            .map(str::to_string)
            .collect();
        if f.demand_stated && f.demand.is_empty() {
            // Declining with no pending work: stop offering until there is some.
            for role in &roles {
                if f.suppressed.insert(role.clone()) {
                    f.auto_suppressed.insert(role.clone());
                }
            }
        }
        for role in roles {
            let ridx = self.role_idx(&role);
            let Some(a) = self.agents.get_mut(agent) else {
                return;
            };
            let declined = resources.allocated_to(&role).without_allocation_role();
            let free = cycle::allocatable_to(a.free(), &role);
            a.filters
                .entry(ridx)
                .or_default()
                .add(idx, declined, until, &free);
        }
    }

    /// Applies an offer operation (RESERVE, UNRESERVE, CREATE, DESTROY, GROW, SHRINK) to
    /// resources `fw` holds on `agent`: `from` (with its allocation role) becomes `to`
    /// (with its allocation role) in the framework's allocation and in the agent's total.
    /// Fails, changing nothing, unless the framework holds all of `from` there.
    pub fn convert_allocated(
        &mut self,
        fw: &F,
        agent: &A,
        from: &Resources,
        to: &Resources,
    ) -> Result<(), String> {
        let a = self
            .agents
            .get(agent)
            .ok_or_else(|| format!("unknown agent {agent:?}"))?;
        let held = a.by_framework.get(fw).cloned().unwrap_or_default();
        if !held.contains(from) {
            return Err(format!(
                "the framework does not hold {from} on agent {agent:?}"
            ));
        }
        if shared::has_shared(from) {
            // Converting a shared entry changes the agent's total: no other copy may be
            // held (the master rescinds other offers holding it first).
            let others = a
                .allocated
                .without_allocation_role()
                .saturating_sub(&from.without_allocation_role());
            if let Some(r) = from.iter().filter(|r| r.shared).find(|r| {
                let mut bare = (*r).clone();
                bare.allocation_role = None;
                others.iter().any(|o| o.same_identity(&bare))
            }) {
                return Err(format!(
                    "the shared resource {} on agent {agent:?} is still held by other offers or tasks",
                    Resources::from(r.clone())
                ));
            }
        }
        self.release(fw, agent, from);
        self.replace_total(
            agent,
            &from.without_allocation_role(),
            &to.without_allocation_role(),
        );
        self.allocate_to(fw, agent, to);
        Ok(())
    }

    /// Applies an operator operation (RESERVE_RESOURCES, UNRESERVE_RESOURCES,
    /// CREATE_VOLUMES, …) to free resources of `agent`: `from` becomes `to` in its total.
    /// Fails, changing nothing, unless all of `from` is free (unallocated and unoffered).
    pub fn convert_free(
        &mut self,
        agent: &A,
        from: &Resources,
        to: &Resources,
    ) -> Result<(), String> {
        if !self.agents.contains_key(agent) {
            return Err(format!("unknown agent {agent:?}"));
        }
        if !self.free(agent).contains(from) {
            return Err(format!("{from} is not free on agent {agent:?}"));
        }
        self.replace_total(agent, from, to);
        Ok(())
    }

    /// Replaces an agent's revocable resources (its estimate of idle allocated
    /// capacity; entries must be flagged revocable). Allocations of revocable resources
    /// beyond the new estimate are released and returned per framework, for the caller
    /// to rescind the offers or evict the tasks.
    pub fn update_revocable(&mut self, agent: &A, revocable: &Resources) -> Vec<(F, Resources)> {
        let Some(a) = self.agents.get(agent) else {
            return Vec::new();
        };
        // The agent's estimate, plus what this allocator lends there.
        let revocable = revocable.filter(|r| r.revocable) + a.lent.clone();
        let old = a.total.revocable();
        let mut over = Vec::new();
        let mut keep = revocable.clone();
        for (fw, held) in &a.by_framework {
            let lent = held.revocable();
            if lent.is_empty() {
                continue;
            }
            let bare = lent.without_allocation_role();
            let fits = intersection(&bare, &keep);
            keep = keep.saturating_sub(&fits);
            let excess = bare.saturating_sub(&fits);
            if !excess.is_empty() {
                // Give back the excess with its allocation roles.
                over.push((fw.clone(), part_within(&lent, &excess)));
            }
        }
        for (fw, back) in &over {
            self.release(fw, agent, back);
        }
        self.replace_total(agent, &old, &revocable);
        over
    }

    /// `total := total - from + to` on one agent, keeping the cluster totals in step.
    fn replace_total(&mut self, agent: &A, from: &Resources, to: &Resources) {
        if !self.agents.contains_key(agent) {
            return;
        }
        self.pool_remove(agent);
        self.count_total(from, false);
        self.count_total(to, true);
        if let Some(a) = self.agents.get_mut(agent) {
            a.total = a.total.saturating_sub(from) + to.clone();
            a.refresh_free();
        }
        self.pool_add(agent);
        self.free_grew(agent);
        self.rebuild_sorters();
    }

    /// Adds (or removes) an agent total to the cluster and reservation counters.
    fn count_total(&mut self, total: &Resources, add: bool) {
        // Revocable resources are lent, not owned: they count in no share or total.
        let q = total.non_revocable().scalar_totals();
        if add {
            crate::quota::add_into(&mut self.total, &q);
        } else {
            crate::quota::sub_from(&mut self.total, &q);
        }
        for (role, q) in reserved_by_role(total) {
            let slot = self.reserved.entry(role.clone()).or_default();
            if add {
                crate::quota::add_into(slot, &q);
            } else {
                crate::quota::sub_from(slot, &q);
                if slot.is_empty() {
                    self.reserved.remove(&role);
                }
            }
        }
    }

    fn role_idx(&mut self, role: &str) -> u32 {
        let n = self.role_ids.len() as u32;
        *self.role_ids.entry(role.to_string()).or_insert(n)
    }
}

/// The entries of `held` (with allocation roles), taken in order, whose bare form fits in
/// `within` (what is free, or what is in excess).
fn part_within(held: &Resources, within: &Resources) -> Resources {
    let mut left = within.clone();
    let mut out = Resources::new();
    for r in held {
        let mut bare = r.clone();
        bare.allocation_role = None;
        let part = intersection(&Resources::from(bare), &left);
        left = left.saturating_sub(&part);
        out += part.map(|x| x.allocation_role.clone_from(&r.allocation_role));
    }
    out
}

/// Scalar quantities of reserved entries, by the role they are reserved for.
fn reserved_by_role(res: &Resources) -> BTreeMap<String, Quantities> {
    let mut out: BTreeMap<String, Quantities> = BTreeMap::new();
    for r in res.iter().filter(|r| r.is_reserved() && !r.revocable) {
        if let Some(q) = r.as_scalar() {
            *out.entry(r.role().to_string())
                .or_default()
                .entry(r.name.to_string())
                .or_insert(Scalar::ZERO) += q;
        }
    }
    out
}
