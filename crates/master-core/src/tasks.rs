//! Task traffic after launch: status updates from agents, acknowledgements, KILL,
//! RECONCILE, SHUTDOWN of executors, executor exits and framework⇄executor messages.

use crate::io::Effect;
use crate::master::Master;
use crate::state::AgentPhase;
use crate::views::operator_events;
use strata_api::agent_link::{
    ExecutorExited, FrameworkMessage, KillTask, ShutdownExecutor, StatusAck, StatusUpdate, ToAgent,
};
use strata_api::scheduler::{
    Acknowledge, Event, EventMessage, Failure, Kill, Message, Reconcile, ReconcileTask, Shutdown,
    Update,
};
use strata_api::{AgentId, FrameworkId, Reason, Source, TaskId, TaskState, TaskStatus, TimeInfo};
use strata_resources::Resources;

impl Master {
    /// A status update relayed by an agent: record it, free resources on a terminal
    /// state, forward it (with its uuid) to the framework.
    pub(crate) fn status_update(
        &mut self,
        now: f64,
        aid: &AgentId,
        upd: StatusUpdate,
        out: &mut Vec<Effect>,
    ) {
        self.metrics.messages_status_update += 1;
        let fid = upd.framework_id.clone();
        let mut status = upd.status;
        status.agent_id = Some(aid.clone());
        status.timestamp.get_or_insert(now);
        let Some(fw) = self.frameworks.get_mut(&fid) else {
            self.metrics.invalid_status_updates += 1;
            tracing::debug!(framework_id = %fid, task_id = %status.task_id, "status update for unknown framework dropped");
            return;
        };
        let visible = fw.visible_state(status.state);
        let mut freed: Option<Resources> = None;
        if let Some(t) = fw.tasks.get_mut(&status.task_id) {
            if status.executor_id.is_none() {
                status.executor_id = t.executor_id.clone();
            }
            let old = t.apply(&status, upd.latest_state, now);
            self.metrics.transition(old, t);
            if t.state().is_terminal() && !t.released {
                t.released = true;
                freed = Some(t.resources.clone());
            }
            self.metrics.valid_status_updates += 1;
        } else {
            self.metrics.invalid_status_updates += 1;
        }
        if let Some(res) = freed {
            self.allocator.recover(&fid, aid, &res, None);
            self.dirty_agents.insert(aid.clone());
        }
        let latest = self
            .frameworks
            .get(&fid)
            .and_then(|f| f.tasks.get(&status.task_id))
            .map(|t| t.state());
        if let Some(state) = latest {
            self.operator_event(|| operator_events::task_updated(&fid, &status, state), out);
        }
        let mut forwarded = status;
        forwarded.state = visible;
        self.send_framework(&fid, Event::Update(Update { status: forwarded }), out);
    }

    /// ACKNOWLEDGE: relay to the agent; an acknowledged terminal update completes the task.
    pub(crate) fn acknowledge(
        &mut self,
        _now: f64,
        fid: &FrameworkId,
        ack: Acknowledge,
        out: &mut Vec<Effect>,
    ) {
        self.metrics.messages_status_update_acknowledgement += 1;
        // Dropped when the agent cannot hear it (Mesos): the task stays until an ack
        // reaches the agent, which resends the update after re-registering.
        if !self
            .agents
            .get(&ack.agent_id)
            .is_some_and(|a| a.connected())
        {
            self.metrics.invalid_status_update_acknowledgements += 1;
            return;
        }
        let Some(fw) = self.frameworks.get_mut(fid) else {
            return;
        };
        let Some(t) = fw.tasks.get(&ack.task_id) else {
            self.metrics.invalid_status_update_acknowledgements += 1;
            // The agent may still hold the update (e.g. after a master restart): relay anyway.
            let msg = ToAgent::StatusAck(StatusAck {
                framework_id: fid.clone(),
                task_id: ack.task_id,
                uuid: ack.uuid,
            });
            self.send_agent(&ack.agent_id, msg, out);
            return;
        };
        self.metrics.valid_status_update_acknowledgements += 1;
        let done = t.status_update_uuid.as_deref() == Some(ack.uuid.as_str())
            && t.status_update_state.is_some_and(|s| s.is_terminal());
        let agent_id = t.agent_id.clone();
        if done {
            if let Some(t) = fw.tasks.remove(&ack.task_id) {
                fw.push_completed(t, self.cfg.max_completed_tasks_per_framework);
            }
            if let Some(agent) = self.agents.get_mut(&agent_id) {
                agent.tasks.remove(&(fid.clone(), ack.task_id.clone()));
            }
        }
        let msg = ToAgent::StatusAck(StatusAck {
            framework_id: fid.clone(),
            task_id: ack.task_id,
            uuid: ack.uuid,
        });
        self.send_agent(&agent_id, msg, out);
    }

    /// KILL: forward to the agent; unknown tasks get an explicit reconciliation reply.
    pub(crate) fn kill(&mut self, now: f64, fid: &FrameworkId, kill: Kill, out: &mut Vec<Effect>) {
        self.metrics.messages_kill_task += 1;
        let task = self
            .frameworks
            .get(fid)
            .and_then(|f| f.tasks.get(&kill.task_id));
        let Some(t) = task else {
            let one = ReconcileTask {
                task_id: kill.task_id,
                agent_id: kill.agent_id,
            };
            self.reconcile(now, fid, Reconcile { tasks: vec![one] }, out);
            return;
        };
        let aid = t.agent_id.clone();
        if kill.agent_id.as_ref().is_some_and(|a| a != &aid) {
            return; // Mesos silently ignores a KILL naming the wrong agent
        }
        let msg = ToAgent::KillTask(KillTask {
            framework_id: fid.clone(),
            task_id: kill.task_id.clone(),
            kill_policy: kill.kill_policy,
        });
        if !self.send_agent(&aid, msg, out) {
            if let Some(agent) = self.agents.get_mut(&aid) {
                agent.pending_kills.insert((fid.clone(), kill.task_id));
            }
        }
    }

    /// RECONCILE, implicit (empty) or explicit, answered with uuid-less UPDATEs.
    pub(crate) fn reconcile(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        r: Reconcile,
        out: &mut Vec<Effect>,
    ) {
        self.metrics.messages_reconcile_tasks += 1;
        let Some(fw) = self.frameworks.get(fid) else {
            return;
        };
        let mut replies = Vec::new();
        if r.tasks.is_empty() {
            // Mesos answers from `framework->tasks` only (not unreachable tasks).
            for t in fw.tasks.values() {
                replies.push(self.reconcile_known(t, now));
            }
        } else {
            for q in &r.tasks {
                if let Some(s) = self.reconcile_one(fid, q, now) {
                    replies.push(s);
                }
            }
        }
        for mut status in replies {
            status.state = fw.visible_state(status.state);
            out.push(Effect::Framework {
                conn: match fw.conn {
                    Some(c) => c,
                    None => return,
                },
                event: Box::new(Event::Update(Update { status })),
            });
        }
    }

    fn reconcile_known(&self, t: &crate::state::TaskRecord, now: f64) -> TaskStatus {
        let last = t.statuses().last();
        // The state of the last update sent with a uuid, as Mesos does; the latest state
        // only when there was none.
        let state = t.status_update_state.unwrap_or(t.state());
        let mut s = TaskStatus::new(t.id.clone(), state).with(
            Source::Master,
            Some(Reason::Reconciliation),
            "Reconciliation: Latest task state",
        );
        s.agent_id = Some(t.agent_id.clone());
        s.executor_id = t.executor_id.clone();
        s.timestamp = Some(now);
        s.healthy = last.and_then(|l| l.healthy);
        s.container_status = last.and_then(|l| t.container_status(l));
        s.unreachable_time = t.unreachable_time.map(to_time_info);
        s
    }

    fn reconcile_one(&self, fid: &FrameworkId, q: &ReconcileTask, now: f64) -> Option<TaskStatus> {
        let fw = self.frameworks.get(fid)?;
        // Known means in `tasks` (Mesos' `Framework::getTask`), whatever agent was named.
        if let Some(t) = fw.tasks.get(&q.task_id) {
            return Some(self.reconcile_known(t, now));
        }
        let recovering = |a: &AgentId| {
            self.agents
                .get(a)
                .is_some_and(|x| matches!(x.phase, AgentPhase::Recovered { .. }))
        };
        let (state, message, unreachable) = match &q.agent_id {
            Some(a) if recovering(a) => return None,
            None if self
                .agents
                .values()
                .any(|x| matches!(x.phase, AgentPhase::Recovered { .. })) =>
            {
                return None
            }
            Some(a) if self.agents.contains_key(a) => (
                TaskState::Gone,
                "Reconciliation: Task is unknown to the agent",
                None,
            ),
            Some(a) if self.unreachable.contains_key(a) => (
                TaskState::Unreachable,
                "Reconciliation: Task is unreachable",
                self.unreachable.get(a).map(|u| u.since),
            ),
            Some(a) if self.gone.contains(a) => (
                TaskState::GoneByOperator,
                "Reconciliation: Task is gone",
                None,
            ),
            _ => (TaskState::Unknown, "Reconciliation: Task is unknown", None),
        };
        let mut s = TaskStatus::new(q.task_id.clone(), state).with(
            Source::Master,
            Some(Reason::Reconciliation),
            message,
        );
        s.agent_id = q.agent_id.clone();
        s.timestamp = Some(now);
        s.unreachable_time = unreachable.map(to_time_info);
        Some(s)
    }

    /// SHUTDOWN of one executor.
    pub(crate) fn shutdown_executor(
        &mut self,
        fid: &FrameworkId,
        s: Shutdown,
        out: &mut Vec<Effect>,
    ) {
        let msg = ToAgent::ShutdownExecutor(ShutdownExecutor {
            framework_id: fid.clone(),
            executor_id: s.executor_id,
        });
        self.send_agent(&s.agent_id, msg, out);
    }

    /// MESSAGE from a framework to one of its executors (best effort).
    pub(crate) fn framework_message(
        &mut self,
        fid: &FrameworkId,
        m: Message,
        out: &mut Vec<Effect>,
    ) {
        self.metrics.messages_framework_to_executor += 1;
        let msg = ToAgent::FrameworkMessage(FrameworkMessage {
            framework_id: fid.clone(),
            executor_id: m.executor_id,
            data: m.data,
        });
        if self.send_agent(&m.agent_id, msg, out) {
            self.metrics.valid_framework_to_executor_messages += 1;
        } else {
            self.metrics.invalid_framework_to_executor_messages += 1;
        }
    }

    /// MESSAGE from an executor to its framework.
    pub(crate) fn executor_message(
        &mut self,
        aid: &AgentId,
        m: FrameworkMessage,
        out: &mut Vec<Effect>,
    ) {
        self.metrics.messages_executor_to_framework += 1;
        let event = Event::Message(EventMessage {
            agent_id: aid.clone(),
            executor_id: m.executor_id,
            data: m.data,
        });
        self.send_framework(&m.framework_id, event, out);
    }

    /// An executor process ended: free its resources; FAILURE for custom executors.
    pub(crate) fn executor_exited(
        &mut self,
        aid: &AgentId,
        e: ExecutorExited,
        out: &mut Vec<Effect>,
    ) {
        self.metrics.messages_exited_executor += 1;
        let Some(fw) = self.frameworks.get_mut(&e.framework_id) else {
            return;
        };
        let removed = fw
            .executors
            .get_mut(aid)
            .and_then(|m| m.remove(&e.executor_id));
        if fw.executors.get(aid).is_some_and(|m| m.is_empty()) {
            fw.executors.remove(aid);
        }
        if let Some(info) = removed {
            let res = Resources::from_wire(&info.resources).unwrap_or_default();
            self.allocator.recover(&e.framework_id, aid, &res, None);
            self.dirty_agents.insert(aid.clone());
        }
        if !e.command_executor {
            let failure = Failure {
                agent_id: Some(aid.clone()),
                executor_id: Some(e.executor_id),
                status: Some(e.status),
            };
            self.send_framework(&e.framework_id, Event::Failure(failure), out);
        }
    }
}

/// Seconds since the epoch as a `TimeInfo`.
pub(crate) fn to_time_info(secs: f64) -> TimeInfo {
    TimeInfo {
        nanoseconds: (secs * 1e9) as i64,
    }
}

/// Builds a master-generated status (no uuid).
pub(crate) fn master_status(
    task_id: TaskId,
    state: TaskState,
    reason: Reason,
    message: &str,
    now: f64,
) -> TaskStatus {
    let mut s = TaskStatus::new(task_id, state).with(Source::Master, Some(reason), message);
    s.timestamp = Some(now);
    s
}
