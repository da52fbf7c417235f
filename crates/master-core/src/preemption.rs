//! Priorities and preemption of revocable work. A framework's priority is its
//! `strata.priority` label (an integer, default 0); a task's is its own label, else its
//! framework's. When a REVOCABLE_RESOURCES framework's stated demand (REQUEST) for
//! revocable resources fits nowhere, revocable tasks of lower priority are chosen on the
//! agent where the fewest must go (lowest priority, then newest, first); their frameworks
//! get an inverse offer at once, and after `preemption_grace` the agent evicts them
//! (TASK_LOST/TASK_GONE, REASON_CONTAINER_PREEMPTED). The freed revocable resources are
//! offered to the highest-priority capable framework first (the allocator's rule).
//! Capacity the allocator lent from unmet quota guarantees is taken back the same way
//! once a framework below the guarantee can use it.

use crate::io::Effect;
use crate::master::Master;
use std::collections::BTreeMap;
use strata_api::agent_link::{PreemptTasks, ToAgent};
use strata_api::maintenance::{InverseOffer, InverseOffers, Unavailability};
use strata_api::scheduler::Event;
use strata_api::{AgentId, FrameworkId, Labels, TaskId};
use strata_resources::{Resources, Scalar, WireFormat};

/// The label carrying a priority on a FrameworkInfo or a TaskInfo.
pub const PRIORITY_LABEL: &str = "strata.priority";

/// A victim waiting for its grace period to end.
#[derive(Debug, Clone)]
pub struct PendingPreemption {
    pub agent_id: AgentId,
    /// When to evict; once sent, when to give up waiting for the task to end.
    pub deadline: f64,
    /// The framework the resources are freed for (`None`: a quota guarantee).
    pub for_framework: Option<FrameworkId>,
    /// Whether PREEMPT_TASKS went to the agent.
    pub sent: bool,
}

/// How long after PREEMPT_TASKS a victim that has not ended stops blocking further
/// preemption for its beneficiary.
const GIVE_UP_AFTER: f64 = 60.0;

/// The priority in `labels`, if any.
pub fn priority_of(labels: Option<&Labels>) -> Option<i64> {
    labels?
        .labels
        .iter()
        .find(|l| l.key == PRIORITY_LABEL)
        .and_then(|l| parse_priority(l.value.as_deref()?))
}

/// A `strata.priority` label value as a priority (ignored when not an integer).
fn parse_priority(value: &str) -> Option<i64> {
    value.trim().parse().ok()
}

/// A running revocable task that could be preempted.
struct Candidate {
    framework: FrameworkId,
    task: TaskId,
    priority: i64,
    started: f64,
    revocable: Resources,
}

/// Who goes first: lowest priority, then the newest, then by task id.
fn victim_order(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    a.priority
        .cmp(&b.priority)
        .then(b.started.total_cmp(&a.started))
        .then(a.task.cmp(&b.task))
}

fn covers(have: &BTreeMap<String, Scalar>, want: &BTreeMap<String, Scalar>) -> bool {
    want.iter()
        .all(|(n, q)| have.get(n).is_some_and(|h| h >= q))
}

impl Master {
    /// Gives the allocator the framework's priority (from its labels).
    pub(crate) fn sync_priority(&mut self, fid: &FrameworkId) {
        let p = self
            .frameworks
            .get(fid)
            .and_then(|f| priority_of(f.info.labels.as_ref()))
            .unwrap_or(0);
        self.allocator.set_priority(fid, p);
    }

    /// After a full allocation cycle: schedules preemptions for revocable demand that
    /// fits nowhere (one demand entry per framework at a time).
    pub(crate) fn plan_preemptions(&mut self, now: f64, out: &mut Vec<Effect>) {
        self.reclaim_loans(now, out);
        let needy: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| f.connected() && f.info.has_capability("REVOCABLE_RESOURCES"))
            .filter(|f| {
                !self
                    .preemptions
                    .values()
                    .any(|p| p.for_framework.as_ref() == Some(&f.id))
            })
            .map(|f| f.id.clone())
            .collect();
        for fid in needy {
            let wants: Vec<BTreeMap<String, Scalar>> = self
                .allocator
                .demand(&fid)
                .iter()
                .map(|d| d.revocable().scalar_totals())
                .filter(|w| !w.is_empty())
                .collect();
            for want in wants {
                if self.schedule_preemption(now, &fid, &want, out) {
                    break;
                }
            }
        }
    }

    /// Takes back capacity lent from unmet quota guarantees once a framework below the
    /// guarantee can use it: tasks on lent (revocable) resources are preempted, lowest
    /// priority and newest first, until enough would be freed (one round at a time).
    fn reclaim_loans(&mut self, now: f64, out: &mut Vec<Effect>) {
        if self.preemptions.values().any(|p| p.for_framework.is_none()) {
            return;
        }
        let need = self.allocator.reclaim_needed();
        if need.is_empty() {
            return;
        }
        let mut freed = BTreeMap::new();
        let mut chosen: Vec<(AgentId, Candidate)> = Vec::new();
        let lending: Vec<AgentId> = self
            .agents
            .keys()
            .filter(|a| !self.allocator.lent(a).is_empty())
            .cloned()
            .collect();
        let mut all: Vec<(AgentId, Candidate)> = lending
            .iter()
            .flat_map(|aid| {
                self.candidates(aid, i64::MAX)
                    .into_iter()
                    .map(move |c| (aid.clone(), c))
            })
            .collect();
        all.sort_by(|(_, a), (_, b)| victim_order(a, b));
        for (aid, c) in all {
            if covers(&freed, &need) {
                break;
            }
            strata_allocator::quota::add_into(&mut freed, &c.revocable.scalar_totals());
            chosen.push((aid, c));
        }
        let deadline = now + self.cfg.preemption_grace;
        tracing::info!(
            victims = chosen.len(),
            "taking back capacity lent from quota guarantees"
        );
        let mut warn: BTreeMap<(FrameworkId, AgentId), Resources> = BTreeMap::new();
        for (aid, c) in chosen {
            *warn.entry((c.framework.clone(), aid.clone())).or_default() += c.revocable.clone();
            let pending = PendingPreemption {
                agent_id: aid,
                deadline,
                for_framework: None,
                sent: false,
            };
            self.preemptions.insert((c.framework, c.task), pending);
        }
        for ((victim, aid), resources) in warn {
            self.warn_victim(&victim, &aid, deadline, &resources, out);
        }
    }

    /// Picks victims for `want` on the best agent; false when `want` already fits
    /// somewhere or nothing lower-priority can make room.
    fn schedule_preemption(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        want: &BTreeMap<String, Scalar>,
        out: &mut Vec<Effect>,
    ) -> bool {
        let priority = self.allocator.priority(fid);
        let mut best: Option<(AgentId, Vec<Candidate>)> = None;
        for aid in self
            .agents
            .keys()
            .filter(|a| self.allocator.is_agent_active(a))
        {
            let mut have = self.allocator.free(aid).revocable().scalar_totals();
            for o in self
                .offers
                .values()
                .filter(|o| &o.framework_id == fid && &o.agent_id == aid)
            {
                strata_allocator::quota::add_into(
                    &mut have,
                    &o.resources.revocable().scalar_totals(),
                );
            }
            if covers(&have, want) {
                return false; // it fits already: the allocator will offer it
            }
            let mut victims = Vec::new();
            for c in self.candidates(aid, priority) {
                if covers(&have, want) {
                    break;
                }
                strata_allocator::quota::add_into(&mut have, &c.revocable.scalar_totals());
                victims.push(c);
            }
            let enough = covers(&have, want);
            if enough && best.as_ref().is_none_or(|(_, v)| victims.len() < v.len()) {
                best = Some((aid.clone(), victims));
            }
        }
        let Some((aid, victims)) = best else {
            return false;
        };
        let deadline = now + self.cfg.preemption_grace;
        tracing::info!(framework_id = %fid, agent_id = %aid, victims = victims.len(), "preempting lower-priority revocable tasks");
        let mut by_framework: BTreeMap<FrameworkId, Resources> = BTreeMap::new();
        for v in victims {
            *by_framework.entry(v.framework.clone()).or_default() += v.revocable.clone();
            let pending = PendingPreemption {
                agent_id: aid.clone(),
                deadline,
                for_framework: Some(fid.clone()),
                sent: false,
            };
            self.preemptions.insert((v.framework, v.task), pending);
        }
        for (victim, resources) in by_framework {
            self.warn_victim(&victim, &aid, deadline, &resources, out);
        }
        true
    }

    /// Running tasks on `aid` holding revocable resources, of lower priority than
    /// `priority`, not already chosen; lowest priority first, then newest.
    fn candidates(&self, aid: &AgentId, priority: i64) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Vec::new();
        for f in self.frameworks.values() {
            let fw_priority = self.allocator.priority(&f.id);
            for (tid, t) in &f.tasks {
                let revocable = t.resources.revocable().without_allocation_role();
                if &t.agent_id != aid || t.state().is_terminal() || revocable.is_empty() {
                    continue;
                }
                let p = t
                    .label(PRIORITY_LABEL)
                    .and_then(parse_priority)
                    .unwrap_or(fw_priority);
                if p >= priority || self.preemptions.contains_key(&(f.id.clone(), tid.clone())) {
                    continue;
                }
                let started = t.statuses().first().map_or(0.0, |s| s.timestamp);
                out.push(Candidate {
                    framework: f.id.clone(),
                    task: tid.clone(),
                    priority: p,
                    started,
                    revocable,
                });
            }
        }
        out.sort_by(victim_order);
        out
    }

    /// An inverse offer telling the victim which revocable resources go, and when.
    fn warn_victim(
        &mut self,
        victim: &FrameworkId,
        aid: &AgentId,
        deadline: f64,
        resources: &Resources,
        out: &mut Vec<Effect>,
    ) {
        let start = strata_api::TimeInfo {
            nanoseconds: (deadline * 1e9) as i64,
        };
        let offer = InverseOffer {
            id: self.next_offer_id(),
            url: None,
            framework_id: victim.clone(),
            agent_id: Some(aid.clone()),
            unavailability: Unavailability {
                start,
                duration: None,
            },
            resources: resources.to_wire(WireFormat::PostRefinement),
        };
        let payload = InverseOffers {
            inverse_offers: vec![offer],
        };
        let event = Event::InverseOffers(serde_json::to_value(payload).unwrap_or_default());
        self.send_framework(victim, event, out);
    }

    /// On tick: victims whose grace ended are evicted by their agents; records of tasks
    /// that ended meanwhile are dropped.
    pub(crate) fn fire_preemptions(&mut self, now: f64, out: &mut Vec<Effect>) {
        let live = |m: &Master, fid: &FrameworkId, tid: &TaskId| {
            m.frameworks
                .get(fid)
                .and_then(|f| f.tasks.get(tid))
                .is_some_and(|t| !t.state().is_terminal())
        };
        let keys: Vec<(FrameworkId, TaskId)> = self.preemptions.keys().cloned().collect();
        let mut due: BTreeMap<(AgentId, FrameworkId, bool), Vec<TaskId>> = BTreeMap::new();
        for key in keys {
            if !live(self, &key.0, &key.1) {
                self.preemptions.remove(&key);
                continue;
            }
            let Some(p) = self.preemptions.get_mut(&key) else {
                continue;
            };
            if p.deadline > now {
                continue;
            }
            if p.sent {
                self.preemptions.remove(&key); // the agent did not evict it: give up
                continue;
            }
            p.sent = true;
            p.deadline = now + GIVE_UP_AFTER;
            let reclaim = p.for_framework.is_none();
            due.entry((p.agent_id.clone(), key.0.clone(), reclaim))
                .or_default()
                .push(key.1.clone());
        }
        for ((aid, fid, reclaim), task_ids) in due {
            let message = if reclaim {
                "Container preempted to return capacity lent from a quota guarantee"
            } else {
                "Container preempted for higher-priority work"
            }
            .to_string();
            let msg = ToAgent::PreemptTasks(PreemptTasks {
                framework_id: fid,
                task_ids,
                message,
            });
            self.send_agent(&aid, msg, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::Label;

    #[test]
    fn priority_from_labels() {
        let labels = |v: &str| Labels {
            labels: vec![Label {
                key: PRIORITY_LABEL.into(),
                value: Some(v.into()),
            }],
        };
        assert_eq!(priority_of(Some(&labels("7"))), Some(7));
        assert_eq!(priority_of(Some(&labels(" -2 "))), Some(-2));
        assert_eq!(priority_of(Some(&labels("high"))), None);
        assert_eq!(priority_of(None), None);
    }
}
