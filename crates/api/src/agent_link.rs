//! Strata's internal master⇄agent protocol (HTTP + JSON + RecordIO; see
//! docs/agent-protocol.md). The agent opens `POST CONNECT_PATH` with a [`Hello`]; the
//! master answers 200 with a RecordIO stream of [`ToAgent`] messages, the first always
//! `REGISTERED` carrying the session id. The agent sends [`ToMaster`] messages (one, or a
//! JSON array of several in order) as `POST MESSAGE_PATH` with the session id in
//! [`SESSION_HEADER`]; a stale session gets 409.

use crate::ids::{AgentId, ExecutorId, FrameworkId, TaskId};
use crate::mesos::{
    AgentInfo, ExecutorInfo, FrameworkInfo, KillPolicy, MasterInfo, Task, TaskGroupInfo, TaskInfo,
};
use crate::status::{TaskState, TaskStatus};
use crate::WireResource;
use serde::{Deserialize, Serialize};

/// Where agents open their session stream.
pub const CONNECT_PATH: &str = "/internal/agent/v1/connect";
/// Where agents post messages.
pub const MESSAGE_PATH: &str = "/internal/agent/v1/message";
/// Header carrying the session id on every agent message.
pub const SESSION_HEADER: &str = "strata-agent-session";
/// Version of this protocol; the master refuses others with 400.
pub const PROTOCOL_VERSION: u32 = 1;

/// The agent's opening message: who it is and, when re-registering, what it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol: u32,
    /// `id` set = re-registration of a known agent.
    pub agent_info: AgentInfo,
    /// `ip:port` the agent's HTTP server listens on (used for `pid` and offer URLs).
    pub address: String,
    pub version: String,
    #[serde(default)]
    pub frameworks: Vec<FrameworkInfo>,
    #[serde(default)]
    pub executors: Vec<ExecutorInfo>,
    #[serde(default)]
    pub tasks: Vec<Task>,
    /// Dynamic reservations and persistent volumes the agent holds (what the master sent
    /// it in `CHECKPOINT_RESOURCES`); `agent_info.resources` are its configured ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpointed_resources: Vec<WireResource>,
    /// The agent's current total of oversubscribed (revocable) resources, as in
    /// [`UpdateOversubscribed`]; empty without oversubscription.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oversubscribed_resources: Vec<WireResource>,
}

/// First message on the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    pub agent_id: AgentId,
    pub session: String,
    pub ping_interval_seconds: f64,
    pub master_info: MasterInfo,
}

/// Launch one task (command or custom executor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTask {
    pub framework: FrameworkInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorInfo>,
    pub task: TaskInfo,
}

/// Launch a task group on one executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTaskGroup {
    pub framework: FrameworkInfo,
    pub executor: ExecutorInfo,
    pub task_group: TaskGroupInfo,
}

/// Kill a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillTask {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

/// The scheduler acknowledged an update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusAck {
    pub framework_id: FrameworkId,
    pub task_id: TaskId,
    pub uuid: String,
}

/// A framework (and all its executors) is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownFramework {
    pub framework_id: FrameworkId,
}

/// Shut one executor down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownExecutor {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
}

/// Opaque data between a framework and an executor (base64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkMessage {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub data: String,
}

/// The framework changed its FrameworkInfo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateFramework {
    pub framework_info: FrameworkInfo,
}

/// After re-registration: tasks the master has for this agent that the agent did not
/// report. The agent answers each one it does not know with a reliable TASK_DROPPED
/// (TASK_LOST for frameworks that are not partition-aware), REASON_RECONCILIATION.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileTasks {
    pub framework: FrameworkInfo,
    pub task_ids: Vec<TaskId>,
}

/// The complete set of dynamic reservations and persistent volumes the agent must hold
/// (post-refinement format). The agent persists it before handling later messages,
/// creates the directories of new volumes and removes those of destroyed ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointResources {
    #[serde(default)]
    pub resources: Vec<WireResource>,
}

/// The master refuses or removes this agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownAgent {
    pub message: String,
}

/// Master → agent: evict these tasks' revocable containers for higher-priority work; the
/// tasks end as for a QoS correction (TASK_LOST/TASK_GONE, REASON_CONTAINER_PREEMPTED).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreemptTasks {
    pub framework_id: FrameworkId,
    pub task_ids: Vec<TaskId>,
    pub message: String,
}

tagged_union! {
    /// Master → agent messages.
    pub enum ToAgent via ToAgentEnvelope {
        payload {
            Registered(Registered) = "REGISTERED", registered;
            RunTask(RunTask) = "RUN_TASK", run_task;
            RunTaskGroup(RunTaskGroup) = "RUN_TASK_GROUP", run_task_group;
            KillTask(KillTask) = "KILL_TASK", kill_task;
            StatusAck(StatusAck) = "STATUS_ACK", status_ack;
            ShutdownFramework(ShutdownFramework) = "SHUTDOWN_FRAMEWORK", shutdown_framework;
            ShutdownExecutor(ShutdownExecutor) = "SHUTDOWN_EXECUTOR", shutdown_executor;
            FrameworkMessage(FrameworkMessage) = "FRAMEWORK_MESSAGE", framework_message;
            UpdateFramework(UpdateFramework) = "UPDATE_FRAMEWORK", update_framework;
            ReconcileTasks(ReconcileTasks) = "RECONCILE_TASKS", reconcile_tasks;
            CheckpointResources(CheckpointResources) = "CHECKPOINT_RESOURCES", checkpoint_resources;
            Shutdown(ShutdownAgent) = "SHUTDOWN", shutdown;
            PreemptTasks(PreemptTasks) = "PREEMPT_TASKS", preempt_tasks;
        }
        bare {
            Ping = "PING";
        }
    }
}

/// A status update from the agent, forwarded to the framework.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub framework_id: FrameworkId,
    pub status: TaskStatus,
    /// The newest state the agent knows (may be ahead of `status.state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_state: Option<TaskState>,
}

/// An executor process ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorExited {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    /// Raw wait status.
    pub status: i32,
    /// Whether it was a command executor (no FAILURE event for those).
    #[serde(default)]
    pub command_executor: bool,
}

/// The agent's total of oversubscribed resources changed (Mesos' `UpdateSlaveMessage`
/// with `oversubscribed_resources`): what its revocable containers hold plus what its
/// resource estimator says can still be lent. Every entry is revocable; the set replaces
/// the previous one (empty = none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateOversubscribed {
    #[serde(default)]
    pub resources: Vec<WireResource>,
}

tagged_union! {
    /// Agent → master messages.
    pub enum ToMaster via ToMasterEnvelope {
        payload {
            StatusUpdate(StatusUpdate) = "STATUS_UPDATE", status_update;
            ExecutorExited(ExecutorExited) = "EXECUTOR_EXITED", executor_exited;
            ExecutorMessage(FrameworkMessage) = "EXECUTOR_MESSAGE", executor_message;
            UpdateOversubscribed(UpdateOversubscribed) = "UPDATE_OVERSUBSCRIBED", update_oversubscribed;
        }
        bare {
            Pong = "PONG";
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_ascii_json;

    #[test]
    fn messages_round_trip() {
        let m = ToAgent::KillTask(KillTask {
            framework_id: FrameworkId::new("f"),
            task_id: TaskId::new("t"),
            kill_policy: None,
        });
        let s = to_ascii_json(&m);
        assert_eq!(
            s,
            r#"{"type":"KILL_TASK","kill_task":{"framework_id":{"value":"f"},"task_id":{"value":"t"}}}"#
        );
        assert_eq!(serde_json::from_str::<ToAgent>(&s).unwrap(), m);
        assert_eq!(
            serde_json::from_str::<ToMaster>(r#"{"type":"PONG"}"#).unwrap(),
            ToMaster::Pong
        );
    }

    #[test]
    fn oversubscribed_resources_travel_as_revocable_entries() {
        let text = r#"{"type":"UPDATE_OVERSUBSCRIBED","update_oversubscribed":{"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":2.0},"revocable":{}}]}}"#;
        let m: ToMaster = serde_json::from_str(text).unwrap();
        let ToMaster::UpdateOversubscribed(u) = &m else {
            panic!("{m:?}")
        };
        let res = strata_resources::Resources::from_wire(&u.resources).unwrap();
        assert_eq!(res.revocable().cpus().as_f64(), 2.0);
        assert_eq!(to_ascii_json(&m), text);
    }
}
