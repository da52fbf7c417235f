//! Oversubscription on the agent: what each live container is allocated (for the shell's
//! resource estimator), the QoS correction that evicts revocable containers the latest
//! estimate no longer covers, and the oversubscribed total reported to the master.
//!
//! As in Mesos, a container is revocable when any resource of its tasks or executor is;
//! its tasks end TASK_KILLED with REASON_CONTAINER_PREEMPTED when it is evicted (Mesos
//! says TASK_LOST/TASK_GONE; see `preempt`). Non-revocable containers are never touched.

use crate::agent::Agent;
use crate::estimator::{self, Lent};
use crate::io::Effect;
use crate::state::{ExecutorPhase, ExecutorState};
use strata_api::agent_link::{ToMaster, UpdateOversubscribed};
use strata_api::{ContainerId, Reason, TaskState};
use strata_resources::{Resources, WireFormat};

/// A live container's allocation, as the resource estimator needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerAllocation {
    pub container_id: ContainerId,
    /// Cpus and memory of the container's tasks plus its executor's (the built-in
    /// executors' overhead included): what its cgroups are given.
    pub cpus: f64,
    pub mem_mb: f64,
    /// Some task or executor resource is revocable.
    pub revocable: bool,
}

/// The resources of an executor's tasks (queued and launched) and its own.
fn held(ex: &ExecutorState) -> Resources {
    let mut res = Resources::from_wire(&ex.info.resources).unwrap_or_default();
    let queued = ex.queued.iter().flatten();
    for t in queued.chain(ex.launched.values().map(|t| &t.info)) {
        res += Resources::from_wire(&t.resources).unwrap_or_default();
    }
    res
}

/// Whether the container is running or about to (not being torn down).
fn live(ex: &ExecutorState) -> bool {
    !matches!(
        ex.phase,
        ExecutorPhase::Terminating { .. } | ExecutorPhase::Terminated
    )
}

impl Agent {
    /// Allocations of live containers (not being torn down).
    pub fn container_allocations(&self) -> Vec<ContainerAllocation> {
        let executors = self.frameworks.values().flat_map(|f| f.executors.values());
        executors
            .filter(|e| live(e))
            .map(|e| {
                let tasks: Vec<_> = e
                    .queued
                    .iter()
                    .flatten()
                    .chain(e.launched.values().map(|t| &t.info))
                    .cloned()
                    .collect();
                let limits = crate::launch::container_limits(&e.kind, &e.info, &tasks);
                ContainerAllocation {
                    container_id: e.container_id.clone(),
                    cpus: limits.cpus,
                    mem_mb: limits.mem_mb,
                    revocable: !held(e).revocable().is_empty(),
                }
            })
            .collect()
    }

    /// The oversubscribed total for the Hello: the last report, or what revocable
    /// containers hold when nothing was estimated yet (after an agent restart).
    pub(crate) fn oversubscribed_wire(&self) -> Vec<strata_resources::WireResource> {
        let total = estimator::report(&self.oversubscribed, &self.revocable_held());
        total.to_wire(WireFormat::PostRefinement)
    }

    /// A new estimate: evict what it no longer covers, then report a changed total.
    pub(crate) fn resource_estimate(&mut self, estimate: &Resources, out: &mut Vec<Effect>) {
        let estimate = estimator::as_estimate(estimate);
        let lent = self.lent();
        let evict = estimator::evictions(&lent, &estimate);
        if !evict.is_empty() {
            let held = self.revocable_held();
            let why = format!(
                "Container preempted by QoS correction: the agent's revocable estimate {} no longer covers the {} revocable containers hold",
                text(&estimate),
                text(&held)
            );
            for cid in &evict {
                self.preempt(cid, &why, out);
            }
        }
        let report = estimator::report(&estimate, &self.revocable_held());
        self.estimate = Some(estimate);
        if report == self.oversubscribed {
            return;
        }
        tracing::info!(oversubscribed = %text(&report), "oversubscribed resources changed");
        self.oversubscribed = report;
        self.report_oversubscribed(out);
    }

    /// Sends the oversubscribed total to the master: when it changes, and after every
    /// (re-)registration, as Mesos' agent does (the Hello may predate the estimate).
    pub(crate) fn report_oversubscribed(&self, out: &mut Vec<Effect>) {
        if !self.master_connected || self.estimate.is_none() {
            return;
        }
        let update = UpdateOversubscribed {
            resources: self.oversubscribed.to_wire(WireFormat::PostRefinement),
        };
        out.push(Effect::Master(Box::new(ToMaster::UpdateOversubscribed(
            update,
        ))));
    }

    /// Live containers holding revocable resources, with what they hold.
    fn lent(&self) -> Vec<Lent<ContainerId>> {
        self.holding_revocable(live)
    }

    /// Containers (`which` of them) holding revocable resources, with what they hold.
    fn holding_revocable(&self, which: fn(&ExecutorState) -> bool) -> Vec<Lent<ContainerId>> {
        let executors = self.frameworks.values().flat_map(|f| f.executors.values());
        executors
            .filter(|e| which(e))
            .filter_map(|e| {
                let resources = held(e).revocable();
                (!resources.is_empty()).then(|| Lent {
                    key: e.container_id.clone(),
                    order: e.launched_at,
                    resources,
                })
            })
            .collect()
    }

    /// Revocable resources containers hold until they have exited: a container being
    /// torn down keeps its share in the report until its tasks' terminal updates (which
    /// precede the next report) have freed it at the master.
    fn revocable_held(&self) -> Resources {
        let not_exited = |e: &ExecutorState| e.phase != ExecutorPhase::Terminated;
        self.holding_revocable(not_exited)
            .into_iter()
            .fold(Resources::new(), |acc, l| acc + l.resources)
    }

    /// PREEMPT_TASKS from the master: evicts the revocable containers running these
    /// tasks (for higher-priority work), as a QoS correction does. Containers holding no
    /// revocable resources are never evicted this way.
    pub(crate) fn preempt_tasks(
        &mut self,
        p: &strata_api::agent_link::PreemptTasks,
        out: &mut Vec<Effect>,
    ) {
        let Some(fw) = self.frameworks.get(&p.framework_id) else {
            return;
        };
        let containers: Vec<ContainerId> = fw
            .executors
            .values()
            .filter(|e| live(e) && !held(e).revocable().is_empty())
            .filter(|e| {
                p.task_ids.iter().any(|t| {
                    e.launched.contains_key(t) || e.queued.iter().flatten().any(|q| &q.task_id == t)
                })
            })
            .map(|e| e.container_id.clone())
            .collect();
        for cid in containers {
            self.preempt(&cid, &p.message, out);
        }
    }

    /// Destroys a revocable container; its tasks end TASK_KILLED with
    /// REASON_CONTAINER_PREEMPTED when it exits. (Mesos' QoS correction reports TASK_LOST,
    /// or TASK_GONE to partition-aware frameworks; a preempted task is certainly dead, not
    /// lost somewhere, so Strata says killed.)
    fn preempt(&mut self, cid: &ContainerId, why: &str, out: &mut Vec<Effect>) {
        let Some((fid, eid)) = self.containers.get(cid).cloned() else {
            return;
        };
        let Some(fw) = self.frameworks.get_mut(&fid) else {
            return;
        };
        let state = TaskState::Killed;
        let Some(ex) = fw.executors.get_mut(&eid) else {
            return;
        };
        tracing::warn!(framework_id = %fid, executor_id = %eid, container_id = %cid, "evicting a revocable container: {why}");
        ex.termination = Some((state, Reason::ContainerPreempted, why.to_string()));
        ex.phase = ExecutorPhase::Terminating {
            deadline: f64::INFINITY,
        };
        self.counters.executors_preempted += 1;
        out.push(Effect::Destroy {
            container_id: cid.clone(),
        });
    }
}

/// `cpus:1;mem:32` (empty set: `nothing`).
fn text(res: &Resources) -> String {
    if res.is_empty() {
        "nothing".into()
    } else {
        res.to_string()
    }
}
