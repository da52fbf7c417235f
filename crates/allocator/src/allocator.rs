//! The allocator state (agents, frameworks, roles, refusal filters) and the allocation
//! cycle: for each agent, offer its free resources to the role with the lowest weighted
//! dominant share, then to that role's framework with the lowest share.

mod views;

use crate::sorter::Sorter;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use strata_resources::{Resources, Scalar};

/// What the allocator needs of framework and agent identifiers.
pub trait Key: Clone + Ord + Hash + Debug {}
impl<T: Clone + Ord + Hash + Debug> Key for T {}

/// Allocator settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Resources are offered only if they hold at least one of these quantity sets
    /// (Mesos `--min_allocatable_resources`, default `cpus:0.01|mem:32`).
    pub min_allocatable: Vec<BTreeMap<String, Scalar>>,
}

impl Default for Config {
    fn default() -> Self {
        let one = |n: &str, v: f64| BTreeMap::from([(n.to_string(), Scalar::from_f64(v))]);
        Self {
            min_allocatable: vec![one("cpus", 0.01), one("mem", 32.0)],
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
    by_framework: BTreeMap<F, Resources>,
    active: bool,
}

/// A refused-offer filter: `resources` (no allocation role) declined until `until`.
#[derive(Debug, Clone)]
struct Refusal {
    resources: Resources,
    until: f64,
}

#[derive(Debug, Clone)]
struct FrameworkState<A> {
    roles: BTreeSet<String>,
    suppressed: BTreeSet<String>,
    active: bool,
    /// Every unexpired filter per (agent, role); any one of them may block an offer.
    refusals: HashMap<(A, String), Vec<Refusal>>,
}

/// The allocator. Invariant: for every agent, `allocated` ⊆ `total` and equals the sum
/// of `by_framework`; role and framework sorters hold the scalar sums of the same data.
#[derive(Debug, Clone)]
pub struct Allocator<F: Key, A: Key> {
    config: Config,
    agents: BTreeMap<A, AgentState<F>>,
    frameworks: HashMap<F, FrameworkState<A>>,
    roles: Sorter<String>,
    role_frameworks: BTreeMap<String, Sorter<F>>,
    weights: BTreeMap<String, f64>,
    total: BTreeMap<String, Scalar>,
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
            roles: Sorter::default(),
            role_frameworks: BTreeMap::new(),
            weights: BTreeMap::new(),
            total: BTreeMap::new(),
        }
    }

    // ----- agents -------------------------------------------------------------------

    /// Adds an agent with its total resources and what is already in use on it
    /// (tasks reported by a re-registering agent), in `(framework, resources)` pairs whose
    /// resources carry their allocation role. Re-adding an agent replaces it. Used
    /// resources are recorded as by [`Allocator::add_used`] (clamped to the total).
    pub fn add_agent(&mut self, agent: A, total: Resources, used: Vec<(F, Resources)>) {
        self.remove_agent(&agent);
        for (name, q) in total.scalar_totals() {
            *self.total.entry(name).or_insert(Scalar::ZERO) += q;
        }
        self.agents.insert(
            agent.clone(),
            AgentState {
                total,
                allocated: Resources::new(),
                by_framework: BTreeMap::new(),
                active: true,
            },
        );
        self.rebuild_sorters();
        for (fw, res) in used {
            self.add_used(&fw, &agent, &res);
        }
    }

    /// Removes an agent, dropping every allocation on it and every filter for it.
    pub fn remove_agent(&mut self, agent: &A) {
        let Some(state) = self.agents.get(agent).cloned() else {
            return;
        };
        for (fw, res) in &state.by_framework {
            self.release(fw, agent, res);
        }
        for (name, q) in state.total.scalar_totals() {
            if let Some(t) = self.total.get_mut(&name) {
                *t = t.saturating_sub(q);
            }
        }
        self.total.retain(|_, q| *q > Scalar::ZERO);
        self.agents.remove(agent);
        for f in self.frameworks.values_mut() {
            f.refusals.retain(|(a, _), _| a != agent);
        }
        self.rebuild_sorters();
    }

    /// Stops (false) or resumes (true) offering an agent's resources.
    pub fn set_agent_active(&mut self, agent: &A, active: bool) {
        if let Some(a) = self.agents.get_mut(agent) {
            a.active = active;
        }
    }

    // ----- frameworks ---------------------------------------------------------------

    /// Adds (or re-adds, updating roles, suppression and activity) a framework
    /// subscribed to `roles`.
    pub fn add_framework(&mut self, fw: F, roles: &[String], suppressed: &[String], active: bool) {
        let state = self
            .frameworks
            .entry(fw.clone())
            .or_insert_with(|| FrameworkState {
                roles: BTreeSet::new(),
                suppressed: BTreeSet::new(),
                active,
                refusals: HashMap::new(),
            });
        state.active = active;
        let new_roles: BTreeSet<String> = roles.iter().cloned().collect();
        let old_roles = std::mem::replace(&mut state.roles, new_roles.clone());
        state.suppressed = suppressed.iter().cloned().collect();
        for role in &new_roles {
            self.track_role(role);
            if let Some(s) = self.role_frameworks.get_mut(role) {
                s.add(fw.clone(), 1.0);
            }
        }
        for role in old_roles.difference(&new_roles) {
            self.untrack_framework_role(&fw, role);
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
        let Some(state) = self.frameworks.remove(fw) else {
            return;
        };
        for role in &state.roles {
            self.untrack_framework_role(fw, role);
        }
    }

    /// Activates or deactivates (disconnected) a framework.
    pub fn set_framework_active(&mut self, fw: &F, active: bool) {
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.active = active;
        }
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
        if let Some(f) = self.frameworks.get_mut(fw) {
            let roles: BTreeSet<String> = if roles.is_empty() {
                f.roles.clone()
            } else {
                roles.iter().cloned().collect()
            };
            f.suppressed.retain(|r| !roles.contains(r));
            f.refusals.retain(|(_, role), _| !roles.contains(role));
        }
    }

    /// Sets a role's weight (default 1.0; must be positive).
    pub fn set_weight(&mut self, role: &str, weight: f64) {
        self.weights.insert(role.to_string(), weight);
        self.roles
            .set_weight(&role.to_string(), weight, &self.total);
    }

    // ----- resource flow ------------------------------------------------------------

    /// Records resources as in use by `fw` on `agent` without an offer (recovered tasks).
    /// Each entry should carry its allocation role. Only the part that is still free on
    /// the agent is recorded, so the agent is never over-committed; returns that part.
    pub fn add_used(&mut self, fw: &F, agent: &A, resources: &Resources) -> Resources {
        let fits = self.clamp_to_free(agent, resources);
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
        let (Some(until), Some(f)) = (refuse_until, self.frameworks.get_mut(fw)) else {
            return;
        };
        if !self.agents.contains_key(agent) {
            return;
        }
        let roles: BTreeSet<String> = resources
            .iter()
            .filter_map(|r| r.allocation_role.clone())
            .collect();
        for role in roles {
            let declined = resources.allocated_to(&role).without_allocation_role();
            f.refusals
                .entry((agent.clone(), role))
                .or_default()
                .push(Refusal {
                    resources: declined,
                    until,
                });
        }
    }

    /// Runs an allocation cycle over every agent.
    pub fn allocate(&mut self, now: f64) -> Vec<Allocation<F, A>> {
        let agents: Vec<A> = self.agents.keys().cloned().collect();
        self.allocate_agents(now, &agents)
    }

    /// Runs an allocation cycle over the given agents only (a freed resource does not
    /// trigger a scan of the world). Agents are visited once each, in key order.
    pub fn allocate_agents(&mut self, now: f64, agents: &[A]) -> Vec<Allocation<F, A>> {
        self.expire_refusals(now);
        let agents: BTreeSet<&A> = agents.iter().collect();
        let mut out = Vec::new();
        for agent in agents {
            self.allocate_agent(now, agent, &mut out);
        }
        out
    }

    fn allocate_agent(&mut self, now: f64, agent: &A, out: &mut Vec<Allocation<F, A>>) {
        let Some(state) = self.agents.get(agent) else {
            return;
        };
        if !state.active {
            return;
        }
        let mut free = state
            .total
            .saturating_sub(&state.allocated.without_allocation_role());
        if !self.allocatable(&free) {
            return;
        }
        let roles: Vec<String> = self.roles.iter().cloned().collect();
        for role in roles {
            let offerable = free.unreserved() + free.reserved_for(&role);
            if !self.allocatable(&offerable) {
                continue;
            }
            let Some(fw) = self.pick_framework(now, agent, &role, &offerable) else {
                continue;
            };
            let granted = offerable.with_allocation_role(&role);
            self.allocate_to(&fw, agent, &granted);
            free = free.saturating_sub(&offerable);
            out.push(Allocation {
                framework: fw,
                agent: agent.clone(),
                role,
                resources: granted,
            });
            if free.is_empty() {
                break;
            }
        }
    }

    /// The role's lowest-share framework that may be offered `offerable` on `agent`.
    fn pick_framework(&self, now: f64, agent: &A, role: &str, offerable: &Resources) -> Option<F> {
        let sorter = self.role_frameworks.get(role)?;
        let key = (agent.clone(), role.to_string());
        sorter
            .iter()
            .find(|fw| {
                let Some(f) = self.frameworks.get(*fw) else {
                    return false;
                };
                if !f.active || !f.roles.contains(role) || f.suppressed.contains(role) {
                    return false;
                }
                let refused = f.refusals.get(&key).into_iter().flatten();
                !refused
                    .filter(|r| r.until > now)
                    .any(|r| r.resources.contains(offerable))
            })
            .cloned()
    }

    fn allocatable(&self, res: &Resources) -> bool {
        if res.is_empty() {
            return false;
        }
        let have = res.scalar_totals();
        self.config.min_allocatable.is_empty()
            || self.config.min_allocatable.iter().any(|need| {
                need.iter()
                    .all(|(n, q)| have.get(n).is_some_and(|h| h >= q))
            })
    }

    fn expire_refusals(&mut self, now: f64) {
        for f in self.frameworks.values_mut() {
            f.refusals.retain(|_, list| {
                list.retain(|r| r.until > now);
                !list.is_empty()
            });
        }
    }

    // ----- bookkeeping --------------------------------------------------------------

    /// The part of `res` (entry by entry, allocation roles kept) free on `agent`.
    fn clamp_to_free(&self, agent: &A, res: &Resources) -> Resources {
        let mut free = self.free(agent);
        let mut out = Resources::new();
        for r in res {
            let mut bare = r.clone();
            bare.allocation_role = None;
            let fits = intersection(&Resources::from(bare), &free);
            free = free.saturating_sub(&fits);
            out += fits.map(|x| x.allocation_role.clone_from(&r.allocation_role));
        }
        out
    }

    fn allocate_to(&mut self, fw: &F, agent: &A, res: &Resources) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        if res.is_empty() {
            return;
        }
        a.allocated += res.clone();
        *a.by_framework.entry(fw.clone()).or_default() += res.clone();
        self.account(fw, res, true);
    }

    fn release(&mut self, fw: &F, agent: &A, res: &Resources) {
        let Some(a) = self.agents.get_mut(agent) else {
            return;
        };
        let held = a.by_framework.get(fw).cloned().unwrap_or_default();
        // Only what the framework actually holds can be released (never double-free).
        let res = intersection(&held, res);
        if res.is_empty() {
            return;
        }
        a.allocated = a.allocated.saturating_sub(&res);
        let left = held.saturating_sub(&res);
        if left.is_empty() {
            a.by_framework.remove(fw);
        } else {
            a.by_framework.insert(fw.clone(), left);
        }
        self.account(fw, &res, false);
    }

    /// Mirrors an allocation (`add`) or release into the role and framework sorters.
    fn account(&mut self, fw: &F, res: &Resources, add: bool) {
        let roles: BTreeSet<String> = res
            .iter()
            .filter_map(|r| r.allocation_role.clone())
            .collect();
        for role in roles {
            let q = res.allocated_to(&role).scalar_totals();
            if add {
                self.track_role(&role);
                if let Some(s) = self.role_frameworks.get_mut(&role) {
                    s.add(fw.clone(), 1.0);
                }
            }
            self.roles.update(&role, &q, add, &self.total);
            if let Some(s) = self.role_frameworks.get_mut(&role) {
                s.update(fw, &q, add, &self.total);
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

    fn track_role(&mut self, role: &str) {
        if !self.roles.contains(&role.to_string()) {
            let weight = self.weights.get(role).copied().unwrap_or(1.0);
            self.roles.add(role.to_string(), weight);
        }
        self.role_frameworks.entry(role.to_string()).or_default();
    }

    /// Drops `fw` from the role's sorter once it holds nothing there, and the role once
    /// it has neither frameworks nor allocations.
    fn untrack_framework_role(&mut self, fw: &F, role: &str) {
        let Some(s) = self.role_frameworks.get_mut(role) else {
            return;
        };
        if !s.allocated(fw).is_empty() {
            return; // still holds resources in this role; stays in the sorter until released
        }
        s.remove(fw);
        let role_key = role.to_string();
        if s.is_empty() && self.roles.allocated(&role_key).is_empty() {
            self.role_frameworks.remove(role);
            self.roles.remove(&role_key);
        }
    }

    fn rebuild_sorters(&mut self) {
        self.roles.rebuild(&self.total);
        for s in self.role_frameworks.values_mut() {
            s.rebuild(&self.total);
        }
    }
}
