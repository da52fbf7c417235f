//! Checkpointing for frameworks with `checkpoint: true`: the records the agent writes as
//! things happen (framework, executor, task, pending status updates) and how a restarted
//! agent rebuilds its frameworks, executors, tasks and update streams from them.

use crate::agent::Agent;
use crate::io::{Effect, ExecutorKind};
use crate::state::{ExecutorPhase, ExecutorState, FrameworkEntry, TaskEntry, UpdateStream};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use strata_api::{
    ContainerId, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, TaskId, TaskInfo, TaskState,
    TaskStatus,
};

/// What is kept of an executor run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorRecord {
    pub info: ExecutorInfo,
    pub kind: ExecutorKind,
    pub container_id: ContainerId,
    pub directory: String,
}

/// One durable change, written (temp file, fsync, rename) before any later effect runs.
// Built, written and dropped at once (and boxed inside `Effect`): no point boxing variants.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CheckpointOp {
    Framework {
        info: FrameworkInfo,
    },
    /// A new executor run (replaces the executor's previous run and its tasks).
    Executor {
        framework_id: FrameworkId,
        record: ExecutorRecord,
    },
    Task {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        task: TaskInfo,
    },
    /// The task's latest status and its unacknowledged updates, oldest first.
    Updates {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        task_id: TaskId,
        latest: Option<TaskStatus>,
        pending: Vec<TaskStatus>,
    },
    RemoveTask {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        task_id: TaskId,
    },
    RemoveExecutor {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
    },
    RemoveFramework {
        framework_id: FrameworkId,
    },
    /// The complete set of dynamic reservations and persistent volumes (replaces the last).
    Resources {
        resources: Vec<strata_api::WireResource>,
    },
}

/// A task as read back from its checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredTask {
    pub info: TaskInfo,
    pub latest: Option<TaskStatus>,
    pub pending: Vec<TaskStatus>,
}

/// An executor run as read back, with what the shell found of its process.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredExecutor {
    pub record: ExecutorRecord,
    pub tasks: Vec<RecoveredTask>,
    /// The executor process still runs (pid and start time matched).
    pub pid: Option<u32>,
}

/// A framework as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveredFramework {
    pub info: FrameworkInfo,
    pub executors: Vec<RecoveredExecutor>,
}

/// Everything a restarted agent read from its checkpoints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveredState {
    pub frameworks: Vec<RecoveredFramework>,
}

impl Agent {
    /// Whether this framework's state is checkpointed.
    pub(crate) fn checkpointing(&self, fid: &FrameworkId) -> bool {
        self.frameworks.get(fid).is_some_and(|f| f.info.checkpoint)
    }

    /// Checkpoints a task's latest status and pending updates (checkpointing frameworks).
    pub(crate) fn checkpoint_updates(
        &self,
        fid: &FrameworkId,
        tid: &TaskId,
        out: &mut Vec<Effect>,
    ) {
        if !self.checkpointing(fid) {
            return;
        }
        let Some(fw) = self.frameworks.get(fid) else {
            return;
        };
        let Some((eid, entry)) = fw.executors.iter().find_map(|(eid, e)| {
            e.launched
                .get(tid)
                .or_else(|| e.terminated.get(tid))
                .map(|t| (eid, t))
        }) else {
            return;
        };
        let pending = self
            .streams
            .get(&(fid.clone(), tid.clone()))
            .map(|s| s.pending.iter().cloned().collect())
            .unwrap_or_default();
        out.push(Effect::Checkpoint(Box::new(CheckpointOp::Updates {
            framework_id: fid.clone(),
            executor_id: eid.clone(),
            task_id: tid.clone(),
            latest: entry.latest.clone(),
            pending,
        })));
    }

    /// Rebuilds state from checkpoints, before the agent registers. Executors whose process
    /// still runs wait (until `executor_reregistration_timeout`) for their re-subscription;
    /// the others are treated as exited, so their unfinished tasks get terminal updates.
    pub fn recover(&mut self, state: RecoveredState, now: f64, out: &mut Vec<Effect>) {
        let timeout = self.cfg.executor_reregistration_timeout;
        let mut dead = Vec::new();
        for rf in state.frameworks {
            let Some(fid) = rf.info.id.clone() else {
                continue;
            };
            let mut entry = FrameworkEntry {
                info: rf.info,
                executors: BTreeMap::new(),
                completed_executors: VecDeque::new(),
                terminating: false,
            };
            for re in rf.executors {
                let cid = re.record.container_id.clone();
                let ex = self.recovered_executor(&fid, re, now + timeout);
                if ex.pid.is_none() {
                    dead.push(cid.clone());
                }
                self.containers
                    .insert(cid, (fid.clone(), ex.info.executor_id.clone()));
                entry.executors.insert(ex.info.executor_id.clone(), ex);
            }
            self.frameworks.insert(fid, entry);
        }
        for cid in dead {
            if let Some((fid, eid)) = self.containers.get(&cid).cloned() {
                if let Some(ex) = self
                    .frameworks
                    .get_mut(&fid)
                    .and_then(|f| f.executors.get_mut(&eid))
                {
                    ex.termination = Some((
                        TaskState::Failed,
                        strata_api::Reason::ExecutorTerminated,
                        "Executor terminated while the agent was down".into(),
                    ));
                }
            }
            self.container_exited(now, &cid, -1, out);
        }
    }

    fn recovered_executor(
        &mut self,
        fid: &FrameworkId,
        re: RecoveredExecutor,
        deadline: f64,
    ) -> ExecutorState {
        let mut ex = ExecutorState {
            info: re.record.info,
            kind: re.record.kind,
            container_id: re.record.container_id,
            directory: re.record.directory,
            phase: ExecutorPhase::Recovering { deadline },
            conn: None,
            pid: re.pid,
            queued: Vec::new(),
            launched: BTreeMap::new(),
            terminated: BTreeMap::new(),
            completed: VecDeque::new(),
            termination: None,
            pending_kills: Vec::new(),
            held: Vec::new(),
            // Launch time is not checkpointed: recovered containers count as the oldest.
            launched_at: 0.0,
        };
        let mut never_started = Vec::new();
        for t in re.tasks {
            let tid = t.info.task_id.clone();
            if !t.pending.is_empty() {
                let initial = self.cfg.status_update_retry_initial;
                let stream = UpdateStream {
                    pending: t.pending.into(),
                    next_retry: None,
                    backoff: initial,
                };
                self.streams.insert((fid.clone(), tid.clone()), stream);
            }
            match t.latest {
                None => never_started.push(t.info),
                Some(status) => {
                    let entry = TaskEntry {
                        info: t.info,
                        state: status.state,
                        latest: Some(status),
                    };
                    if entry.state.is_terminal() {
                        ex.terminated.insert(tid, entry);
                    } else {
                        ex.launched.insert(tid, entry);
                    }
                }
            }
        }
        if !never_started.is_empty() {
            // Delivered on re-subscription unless the executor says it already has them.
            ex.queued.push(never_started);
        }
        ex
    }
}
