//! Reliable status updates: one ordered stream per task, only the oldest unacknowledged
//! update in flight, retried with capped exponential backoff until the master relays the
//! framework's acknowledgement.

use crate::agent::Agent;
use crate::checkpoint::CheckpointOp;
use crate::io::Effect;
use crate::state::{TaskEntry, UpdateStream};
use strata_api::agent_link::{ReconcileTasks, StatusUpdate, ToMaster};
use strata_api::{FrameworkId, Reason, Source, TaskId, TaskState, TaskStatus};

impl Agent {
    /// Queues an update (ignoring a duplicate uuid) and sends it if it heads its stream.
    pub(crate) fn push_update(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        status: TaskStatus,
        out: &mut Vec<Effect>,
    ) {
        let key = (fid.clone(), status.task_id.clone());
        let initial = self.cfg.status_update_retry_initial;
        let stream = self
            .streams
            .entry(key.clone())
            .or_insert_with(|| UpdateStream {
                backoff: initial,
                ..Default::default()
            });
        if status.uuid.is_some() && stream.pending.iter().any(|s| s.uuid == status.uuid) {
            return;
        }
        let terminal = status.state.is_terminal().then(|| status.clone());
        stream.pending.push_back(status);
        let first = stream.pending.len() == 1;
        if let Some(s) = terminal {
            self.record_black_box(&key.0, &s, now, out);
        }
        // Durable before anything else happens (the executor's ACKNOWLEDGED comes after).
        self.checkpoint_updates(&key.0, &key.1, out);
        if first {
            self.send_head(now, &key, out);
        }
    }

    fn send_head(&mut self, now: f64, key: &(FrameworkId, TaskId), out: &mut Vec<Effect>) {
        let latest = self.task(&key.0, &key.1).map(|t| t.state);
        let connected = self.master_connected;
        let Some(stream) = self.streams.get_mut(key) else {
            return;
        };
        let Some(head) = stream.pending.front() else {
            return;
        };
        stream.next_retry = Some(now + stream.backoff);
        if connected {
            let msg = StatusUpdate {
                framework_id: key.0.clone(),
                status: head.clone(),
                latest_state: latest,
            };
            out.push(Effect::Master(Box::new(ToMaster::StatusUpdate(msg))));
        }
    }

    /// The framework acknowledged `uuid`: drop it, complete the task if it was terminal,
    /// send the next update of the stream.
    pub(crate) fn acknowledge(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        tid: &TaskId,
        uuid: &str,
        out: &mut Vec<Effect>,
    ) {
        let key = (fid.clone(), tid.clone());
        let Some(stream) = self.streams.get_mut(&key) else {
            return;
        };
        if stream.pending.front().and_then(|s| s.uuid.as_deref()) != Some(uuid) {
            tracing::debug!(framework_id = %fid, task_id = %tid, "ignoring acknowledgement of an update that is not pending");
            return;
        }
        let acked = stream.pending.pop_front();
        stream.backoff = self.cfg.status_update_retry_initial;
        stream.next_retry = None;
        if stream.pending.is_empty() {
            self.streams.remove(&key);
        } else {
            self.send_head(now, &key, out);
        }
        if acked.is_some_and(|s| s.state.is_terminal()) {
            self.complete_task(fid, tid, out);
        } else {
            self.checkpoint_updates(fid, tid, out);
        }
    }

    /// On (re-)registration: every stream's head goes out again at once.
    /// As Mesos' `resume()`, the retry interval starts again from the minimum.
    pub(crate) fn resend_all_updates(&mut self, now: f64, out: &mut Vec<Effect>) {
        let initial = self.cfg.status_update_retry_initial;
        let keys: Vec<_> = self.streams.keys().cloned().collect();
        for key in keys {
            if let Some(s) = self.streams.get_mut(&key) {
                s.backoff = initial;
            }
            self.send_head(now, &key, out);
        }
    }

    /// Resends heads whose retry time passed, doubling their backoff (capped).
    pub(crate) fn retry_updates(&mut self, now: f64, out: &mut Vec<Effect>) {
        let max = self.cfg.status_update_retry_max;
        let due: Vec<_> = self
            .streams
            .iter()
            .filter(|(_, s)| s.next_retry.is_some_and(|t| t <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(s) = self.streams.get_mut(&key) {
                s.backoff = (s.backoff * 2.0).min(max);
            }
            self.send_head(now, &key, out);
        }
    }

    /// The master lists tasks it believes are here; unknown ones get a reliable
    /// TASK_DROPPED (TASK_LOST for frameworks that are not partition-aware).
    pub(crate) fn reconcile_tasks(&mut self, now: f64, r: ReconcileTasks, out: &mut Vec<Effect>) {
        let Some(fid) = r.framework.id.clone() else {
            return;
        };
        let state = if r.framework.has_capability("PARTITION_AWARE") {
            TaskState::Dropped
        } else {
            TaskState::Lost
        };
        for tid in r.task_ids {
            // Known = queued, launched or terminated (Mesos `Framework::hasTask`).
            let known = self
                .frameworks
                .get(&fid)
                .is_some_and(|f| f.executors.values().any(|e| e.has_task(&tid)));
            if known || self.streams.contains_key(&(fid.clone(), tid.clone())) {
                continue;
            }
            let status = self.agent_status(
                now,
                tid,
                state,
                Reason::Reconciliation,
                "Reconciliation: task unknown to the agent",
            );
            self.push_update(now, &fid, status, out);
        }
    }

    /// A status made by the agent itself (SOURCE_AGENT, fresh uuid).
    pub(crate) fn agent_status(
        &mut self,
        now: f64,
        tid: TaskId,
        state: TaskState,
        reason: Reason,
        message: &str,
    ) -> TaskStatus {
        let mut s = TaskStatus::new(tid, state).with(Source::Agent, Some(reason), message);
        s.timestamp = Some(now);
        s.uuid = Some(self.next_uuid());
        s.agent_id = self.agent_id.clone();
        s
    }

    /// Finds a live or terminated task.
    pub(crate) fn task(&self, fid: &FrameworkId, tid: &TaskId) -> Option<&TaskEntry> {
        self.frameworks
            .get(fid)?
            .executors
            .values()
            .find_map(|e| e.launched.get(tid).or_else(|| e.terminated.get(tid)))
    }

    /// Moves a terminal, acknowledged task to its executor's completed list and lets go
    /// of executors and frameworks that have nothing left.
    fn complete_task(&mut self, fid: &FrameworkId, tid: &TaskId, out: &mut Vec<Effect>) {
        let limit = self.cfg.max_completed_tasks_per_executor;
        let checkpointing = self.checkpointing(fid);
        let Some(fw) = self.frameworks.get_mut(fid) else {
            return;
        };
        for (eid, ex) in fw.executors.iter_mut() {
            if let Some(t) = ex.terminated.remove(tid) {
                ex.completed.push_back(t);
                while ex.completed.len() > limit {
                    ex.completed.pop_front();
                }
                if checkpointing {
                    let op = CheckpointOp::RemoveTask {
                        framework_id: fid.clone(),
                        executor_id: eid.clone(),
                        task_id: tid.clone(),
                    };
                    out.push(Effect::Checkpoint(Box::new(op)));
                }
            }
        }
        self.gc_framework(fid, out);
    }
}
