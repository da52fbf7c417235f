//! The agent's records: frameworks, executors (one container each) and their tasks.

use crate::io::{ConnId, ExecutorKind};
use std::collections::{BTreeMap, VecDeque};
use strata_api::{
    ContainerId, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, Reason, TaskId, TaskInfo,
    TaskState, TaskStatus,
};

/// A task on this agent.
#[derive(Debug, Clone)]
pub struct TaskEntry {
    pub info: TaskInfo,
    pub state: TaskState,
    /// Latest status received for the task (from the executor or made by the agent).
    pub latest: Option<TaskStatus>,
}

/// Where an executor is in its life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExecutorPhase {
    /// Container asked for; waiting for the executor to SUBSCRIBE before `deadline`.
    Registering { deadline: f64 },
    /// Subscribed on a live stream.
    Running,
    /// Stream lost; the process may still live (checkpointing executors resubscribe).
    Disconnected,
    /// Recovered from checkpoints after an agent restart; must re-subscribe by `deadline`.
    Recovering { deadline: f64 },
    /// SHUTDOWN sent (or asked for); the container is destroyed at `deadline`.
    Terminating { deadline: f64 },
    /// The process exited.
    Terminated,
}

/// An executor and its container.
#[derive(Debug, Clone)]
pub struct ExecutorState {
    pub info: ExecutorInfo,
    pub kind: ExecutorKind,
    pub container_id: ContainerId,
    pub directory: String,
    pub phase: ExecutorPhase,
    pub conn: Option<ConnId>,
    pub pid: Option<u32>,
    /// Tasks not yet sent to the executor (waiting for SUBSCRIBE), in arrival order;
    /// each inner vector is one LAUNCH (one task) or LAUNCH_GROUP.
    pub queued: Vec<Vec<TaskInfo>>,
    /// Tasks sent to the executor and not yet terminal.
    pub launched: BTreeMap<TaskId, TaskEntry>,
    /// Terminal tasks whose terminal update the master has not acknowledged yet.
    pub terminated: BTreeMap<TaskId, TaskEntry>,
    /// Finished tasks kept for the state endpoint.
    pub completed: VecDeque<TaskEntry>,
    /// TASK_FAILED updates of a built-in executor waiting (until the container exits, or a
    /// deadline) for a possible limitation to explain them.
    pub held: Vec<(TaskStatus, f64)>,
    /// Kills asked for while the executor had no stream, sent when it subscribes.
    pub pending_kills: Vec<strata_api::executor::Kill>,
    /// Why the agent ended (or will end) this container: the state, reason and message
    /// its unfinished tasks get when it exits (default: FAILED, EXECUTOR_TERMINATED).
    pub termination: Option<(TaskState, Reason, String)>,
    /// When the agent started the container (0 for one recovered after a restart); the
    /// QoS correction evicts the most recent revocable containers first.
    pub launched_at: f64,
}

impl ExecutorState {
    /// Looks a task up among queued, launched and terminated tasks.
    pub fn has_task(&self, id: &TaskId) -> bool {
        self.launched.contains_key(id)
            || self.terminated.contains_key(id)
            || self.queued.iter().flatten().any(|t| &t.task_id == id)
    }

    /// Whether any task still needs this executor.
    pub fn is_idle(&self) -> bool {
        self.queued.is_empty() && self.launched.is_empty()
    }
}

/// A framework with executors on this agent.
#[derive(Debug, Clone)]
pub struct FrameworkEntry {
    pub info: FrameworkInfo,
    pub executors: BTreeMap<ExecutorId, ExecutorState>,
    pub completed_executors: VecDeque<ExecutorState>,
    /// Shutdown requested by the master: no new tasks; removed when executors are gone.
    pub terminating: bool,
}

impl FrameworkEntry {
    /// The framework's id (always set: the master sends it).
    pub fn id(&self) -> FrameworkId {
        self.info.id.clone().unwrap_or_default()
    }
}

/// The reliable, ordered stream of status updates of one task.
#[derive(Debug, Clone, Default)]
pub struct UpdateStream {
    pub pending: VecDeque<TaskStatus>,
    pub next_retry: Option<f64>,
    pub backoff: f64,
}
