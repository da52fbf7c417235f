//! "Why pending?": what the last full cycle saw on each agent for each role (offered,
//! or the reason nothing was), and explanations with hints built from it and from the
//! current state (quotas, filters, suppression).

use super::{Allocator, Key};
use crate::roles::self_and_ancestors;
use std::collections::BTreeMap;
use strata_resources::{Resources, Scalar};

/// The outcome for one role on one agent (or for an agent as a whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    Offered,
    AgentInactive,
    NothingFree,
    ReservedForOthers,
    BelowMinimum,
    QuotaLimit,
    QuotaHeadroom,
    AllFiltered,
    NoEligibleFramework,
}

impl Reason {
    /// A stable snake_case name for the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Offered => "offered",
            Reason::AgentInactive => "agent_inactive",
            Reason::NothingFree => "nothing_free",
            Reason::ReservedForOthers => "reserved_for_other_roles",
            Reason::BelowMinimum => "below_min_allocatable",
            Reason::QuotaLimit => "quota_limit",
            Reason::QuotaHeadroom => "quota_headroom",
            Reason::AllFiltered => "filtered",
            Reason::NoEligibleFramework => "no_eligible_framework",
        }
    }
}

/// Per-role outcome counts of the last full cycle (agents per reason).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleReport {
    pub agents: BTreeMap<Reason, u64>,
}

/// What the last full cycle saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pending {
    /// When the cycle ran (`None` before the first one).
    pub at: Option<f64>,
    pub agents: u64,
    /// Agents skipped as a whole (inactive, nothing free), per reason.
    pub skipped: BTreeMap<Reason, u64>,
    pub roles: BTreeMap<String, RoleReport>,
}

/// Collects a [`Pending`] during a cycle. Offers of the guarantee stage are recorded
/// too; the fair stage does not count again a (agent, role) offered before.
pub(super) struct Recorder {
    pending: Pending,
    /// Whether the current stage is the guarantee stage (only offers are recorded).
    pub(super) guarantee_stage: bool,
    offered_early: std::collections::HashSet<(u64, String)>,
}

impl Recorder {
    pub(super) fn new(now: f64, agents: usize) -> Self {
        Self {
            pending: Pending {
                at: Some(now),
                agents: agents as u64,
                ..Pending::default()
            },
            guarantee_stage: false,
            offered_early: std::collections::HashSet::new(),
        }
    }

    pub(super) fn agent(&mut self, reason: Reason) {
        if !self.guarantee_stage {
            *self.pending.skipped.entry(reason).or_insert(0) += 1;
        }
    }

    /// Records the outcome for `role` on the agent whose hash is `agent`.
    pub(super) fn role(&mut self, agent: u64, role: &str, reason: Reason) {
        if self.guarantee_stage {
            if reason != Reason::Offered {
                return;
            }
            self.offered_early.insert((agent, role.to_string()));
        } else if !self.offered_early.is_empty()
            && self.offered_early.contains(&(agent, role.to_string()))
        {
            return;
        }
        let report = match self.pending.roles.get_mut(role) {
            Some(r) => r,
            None => self.pending.roles.entry(role.to_string()).or_default(),
        };
        *report.agents.entry(reason).or_insert(0) += 1;
    }

    pub(super) fn finish(self) -> Pending {
        self.pending
    }
}

/// An answer to "why is this role or framework not getting (more) offers?".
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// Agents of the last full cycle per outcome (offered or why not).
    pub outcomes: BTreeMap<Reason, u64>,
    /// Agents on which roles earlier in fair-share order took everything first.
    pub taken_by_others: u64,
    /// Agents in the last full cycle.
    pub agents: u64,
    /// Human sentences, most actionable first: what blocks and what would help.
    pub hints: Vec<String>,
}

/// Where a stated demand may run (Strata's extension to REQUEST: constraints, or Mesos'
/// `Request.agent_id`): which agents qualify and how hints name them ("zone IS b").
pub struct Placement<'a, A> {
    pub accepts: &'a dyn Fn(&A) -> bool,
    pub describe: String,
}

fn fmt_q(q: f64) -> String {
    let s = format!("{q:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl<F: Key, A: Key> Allocator<F, A> {
    /// What the last full cycle saw.
    pub fn pending(&self) -> &Pending {
        &self.pending
    }

    /// Why `role` got what it got in the last full cycle, with hints.
    pub fn explain_role(&self, role: &str) -> Explanation {
        let report = self.pending.roles.get(role).cloned().unwrap_or_default();
        let skipped: u64 = self.pending.skipped.values().sum();
        let seen: u64 = report.agents.values().sum();
        let subscribed = self.subscribers.get(role).copied().unwrap_or(0) > 0;
        // Agents the role was not asked about although they had something free: roles
        // earlier in fair-share order took it all (only meaningful with subscribers).
        let taken = if subscribed {
            self.pending.agents.saturating_sub(skipped + seen)
        } else {
            0
        };
        let mut hints = Vec::new();
        if !subscribed {
            hints.push(format!("no framework is subscribed to role '{role}'"));
        }
        self.quota_hints(role, &report, &mut hints);
        let count = |r: Reason| report.agents.get(&r).copied().unwrap_or(0);
        if count(Reason::AllFiltered) > 0 {
            hints.push(format!(
                "every eligible framework of '{role}' declined {} agent(s) with a filter; they are offered again when the filters expire or the framework sends REVIVE",
                count(Reason::AllFiltered)
            ));
        }
        if count(Reason::NoEligibleFramework) > 0 {
            hints.push(format!(
                "the frameworks of '{role}' are suppressed or disconnected"
            ));
        }
        if count(Reason::ReservedForOthers) > 0 {
            hints.push(format!(
                "on {} agent(s) everything free is reserved for other roles",
                count(Reason::ReservedForOthers)
            ));
        }
        if count(Reason::BelowMinimum) > 0 {
            hints.push(format!(
                "on {} agent(s) what '{role}' may have is below the minimum allocatable resources",
                count(Reason::BelowMinimum)
            ));
        }
        if taken > 0 {
            hints.push(format!(
                "on {taken} agent(s) roles with a lower weighted share took the free resources first ('{role}' has share {:.3} at weight {}); raising its weight moves it ahead",
                self.roles.share(role),
                fmt_q(self.roles.weight(role))
            ));
        }
        self.cluster_hints(&mut hints);
        Explanation {
            outcomes: report.agents,
            taken_by_others: taken,
            agents: self.pending.agents,
            hints,
        }
    }

    /// Why `fw` got what it got: its own state (inactive, suppressed, its filters), how
    /// far its stated demand is from fitting (counting `offered`, what its outstanding
    /// offers hold per agent, as available to it; `placements[i]`, when given, limits
    /// the agents for the i-th entry of the demand) and the explanation of each of its
    /// roles. `None` for an unknown framework.
    pub fn explain_framework(
        &self,
        fw: &F,
        offered: &BTreeMap<A, Resources>,
        placements: &[Option<Placement<'_, A>>],
    ) -> Option<(Vec<String>, BTreeMap<String, Explanation>)> {
        let f = self.frameworks.get(fw)?;
        let mut hints = Vec::new();
        if !f.active {
            hints.push("the framework is disconnected (inactive): it gets no offers until it subscribes again".to_string());
        }
        for role in &f.suppressed {
            if f.auto_suppressed.contains(role) {
                hints.push(format!(
                    "offers for role '{role}' are suppressed automatically: the framework said (REQUEST) it has no pending work and declined an offer; a REQUEST with work or REVIVE resumes them"
                ));
            } else {
                hints.push(format!(
                    "the framework suppressed offers for role '{role}'; REVIVE resumes them"
                ));
            }
        }
        for role in &f.roles {
            let Some(ridx) = self.role_ids.get(role) else {
                continue;
            };
            let filtered = self
                .agents
                .values()
                .filter(|a| a.filters.get(ridx).is_some_and(|s| s.has(f.idx)))
                .count();
            if filtered > 0 {
                hints.push(format!(
                    "the framework holds refusal filters for {filtered} agent(s) in role '{role}' (declined offers); REVIVE clears them"
                ));
            }
        }
        let mut seen: Vec<(&Resources, Option<&str>)> = Vec::new();
        for (i, need) in f.demand.iter().enumerate() {
            let placement = placements.get(i).and_then(Option::as_ref);
            let key = (need, placement.map(|p| p.describe.as_str()));
            if !seen.contains(&key) {
                seen.push(key);
                hints.push(self.demand_hint(&f.roles, need, offered, placement));
            }
        }
        let roles = f
            .roles
            .iter()
            .map(|r| (r.clone(), self.explain_role(r)))
            .collect();
        Some((hints, roles))
    }

    /// How far the closest active agent (of those `placement` accepts) is from holding
    /// `need` for one of `roles`: "fits on N agents now" or "short by … on the closest".
    fn demand_hint(
        &self,
        roles: &std::collections::BTreeSet<String>,
        need: &Resources,
        offered: &BTreeMap<A, Resources>,
        placement: Option<&Placement<'_, A>>,
    ) -> String {
        let want = need.scalar_totals();
        let mut fits = 0usize;
        let mut best: Option<(f64, String, BTreeMap<String, Scalar>, &A)> = None;
        let eligible = |id: &A| placement.is_none_or(|p| (p.accepts)(id));
        for (id, a) in self
            .agents
            .iter()
            .filter(|(id, a)| a.active && eligible(id))
        {
            for role in roles {
                let mine = offered
                    .get(id)
                    .map(|o| o.allocated_to(role).without_allocation_role());
                let avail = super::cycle::allocatable_to(a.free(), role) + mine.unwrap_or_default();
                let have = avail.scalar_totals();
                let short = crate::quota::minus(&want, &have);
                let short: BTreeMap<String, Scalar> = short
                    .into_iter()
                    .filter(|(_, v)| *v > Scalar::ZERO)
                    .collect();
                if short.is_empty() && avail.contains(&need.filter(|r| r.as_scalar().is_none())) {
                    fits += 1;
                    break;
                }
                // Normalise by the need so cpus and mem weigh alike.
                let gap: f64 = short
                    .iter()
                    .map(|(n, v)| v.as_f64() / want.get(n).map_or(1.0, |w| w.as_f64().max(1e-9)))
                    .sum();
                if best.as_ref().is_none_or(|b| gap < b.0) {
                    best = Some((gap, role.clone(), short, id));
                }
            }
        }
        let shown = need.to_string();
        let (on, agents) = match placement {
            Some(p) => (
                format!(" (on agents where {})", p.describe),
                format!("agent where {}", p.describe),
            ),
            None => (String::new(), "agent".to_string()),
        };
        if fits > 0 {
            return format!(
                "its request {shown}{on} fits in the free resources of {fits} agent(s) right now: what holds it back is above (filters, suppression, quota, fair share)"
            );
        }
        match best {
            None if placement.is_some() => format!(
                "its request {shown} cannot be placed: no active {agents}; an agent with that attribute (or a looser constraint) would let it run"
            ),
            None => format!("its request {shown} cannot be placed: no active agent"),
            Some((_, role, short, agent)) => {
                let gap: Vec<String> = short
                    .iter()
                    .map(|(n, v)| format!("{} {n}", fmt_q(v.as_f64())))
                    .collect();
                format!(
                    "its request {shown} fits on no {agents}: the closest ({agent}, as role '{role}', counting what is offered to it) is {} short; freeing or adding that much on one such agent would let it run",
                    gap.join(" and ")
                )
            }
        }
    }

    fn quota_hints(&self, role: &str, report: &super::RoleReport, hints: &mut Vec<String>) {
        let count = |r: Reason| report.agents.get(&r).copied().unwrap_or(0);
        if count(Reason::QuotaLimit) > 0 {
            for r in self_and_ancestors(role) {
                let Some(q) = self.quotas.get(r) else {
                    continue;
                };
                let consumed = self.consumed(r);
                for (name, limit) in &q.limits {
                    let c = consumed.get(name).copied().unwrap_or(Scalar::ZERO);
                    if c >= *limit {
                        hints.push(format!(
                            "role '{r}' reached its quota limit on {name}: {} of {} consumed; raise the limit to get more",
                            fmt_q(c.as_f64()),
                            fmt_q(limit.as_f64())
                        ));
                    }
                }
            }
        }
        if count(Reason::QuotaHeadroom) > 0 {
            for (r, left) in self.required_headroom() {
                if crate::roles::is_self_or_descendant(role, &r) {
                    continue;
                }
                let owed: Vec<String> = left
                    .iter()
                    .filter(|(_, v)| **v > Scalar::ZERO)
                    .map(|(n, v)| format!("{n}:{}", fmt_q(v.as_f64())))
                    .collect();
                if !owed.is_empty() {
                    hints.push(format!(
                        "free capacity is held back for the unmet guarantee of role '{r}' ({} still owed); lowering that guarantee or adding capacity would help",
                        owed.join(";")
                    ));
                }
            }
        }
    }

    fn cluster_hints(&self, hints: &mut Vec<String>) {
        let skipped = |r: Reason| self.pending.skipped.get(&r).copied().unwrap_or(0);
        if skipped(Reason::AgentInactive) > 0 {
            hints.push(format!(
                "{} agent(s) are deactivated, draining or disconnected",
                skipped(Reason::AgentInactive)
            ));
        }
        if skipped(Reason::NothingFree) > 0 {
            let mut allocated = BTreeMap::new();
            for a in self.agents.values() {
                crate::quota::add_into(&mut allocated, &a.allocated.scalar_totals());
            }
            let used: Vec<String> = ["cpus", "mem", "disk", "gpus"]
                .iter()
                .filter_map(|n| {
                    let t = self.total.get(*n)?;
                    let u = allocated.get(*n).copied().unwrap_or(Scalar::ZERO);
                    Some(format!(
                        "{n} {} of {}",
                        fmt_q(u.as_f64()),
                        fmt_q(t.as_f64())
                    ))
                })
                .collect();
            hints.push(format!(
                "{} agent(s) have nothing free (allocated or offered: {})",
                skipped(Reason::NothingFree),
                used.join(", ")
            ));
        }
    }
}
