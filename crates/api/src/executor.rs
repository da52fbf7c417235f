//! The v1 executor API (`/api/v1/executor` on the agent): calls an executor sends and the
//! events it receives.

use crate::ids::{ContainerId, ExecutorId, FrameworkId, TaskId};
use crate::mesos::{AgentInfo, ExecutorInfo, FrameworkInfo, KillPolicy, TaskGroupInfo, TaskInfo};
use crate::status::TaskStatus;
use serde::{Deserialize, Serialize};

/// An update the executor sent but the agent never acknowledged (resent on resubscribe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnacknowledgedUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    pub status: TaskStatus,
}

/// SUBSCRIBE payload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Subscribe {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unacknowledged_tasks: Vec<TaskInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unacknowledged_updates: Vec<UnacknowledgedUpdate>,
}

/// UPDATE payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

/// MESSAGE payload (executor → framework), base64 data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub data: String,
}

tagged_union! {
    /// The body of an executor `Call`.
    pub enum CallBody via CallEnvelope {
        payload {
            Subscribe(Subscribe) = "SUBSCRIBE", subscribe;
            Update(Update) = "UPDATE", update;
            Message(Message) = "MESSAGE", message;
        }
        bare {
            Heartbeat = "HEARTBEAT";
        }
    }
}

/// An executor `Call`: every call names its framework and executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    #[serde(flatten)]
    pub body: CallBody,
}

/// SUBSCRIBED event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub executor_info: ExecutorInfo,
    pub framework_info: FrameworkInfo,
    pub agent_info: AgentInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<ContainerId>,
}

/// LAUNCH event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    pub task: TaskInfo,
}

/// LAUNCH_GROUP event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchGroup {
    pub task_group: TaskGroupInfo,
}

/// KILL event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

/// ACKNOWLEDGED event payload: the agent holds the update with this uuid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledged {
    pub task_id: TaskId,
    pub uuid: String,
}

/// ERROR event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub message: String,
}

tagged_union! {
    /// An executor event.
    pub enum Event via EventEnvelope {
        payload {
            Subscribed(Subscribed) = "SUBSCRIBED", subscribed;
            Launch(Launch) = "LAUNCH", launch;
            LaunchGroup(LaunchGroup) = "LAUNCH_GROUP", launch_group;
            Kill(Kill) = "KILL", kill;
            Acknowledged(Acknowledged) = "ACKNOWLEDGED", acknowledged;
            Message(Message) = "MESSAGE", message;
            Error(ErrorEvent) = "ERROR", error;
        }
        bare {
            Shutdown = "SHUTDOWN";
            Heartbeat = "HEARTBEAT";
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pymesos_executor_update() {
        let c: Call = serde_json::from_str(
            r#"{"type":"UPDATE","executor_id":{"value":"e"},"framework_id":{"value":"f"},
               "update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","timestamp":1700000000,
               "uuid":"AAAAAAAAAAAAAAAAAAAAAA==","source":"SOURCE_EXECUTOR"}}}"#,
        )
        .unwrap();
        let CallBody::Update(u) = c.body else {
            panic!("not an update")
        };
        assert_eq!(u.status.timestamp, Some(1_700_000_000.0));
    }

    #[test]
    fn missing_ids_are_errors() {
        assert!(serde_json::from_str::<Call>(
            r#"{"type":"HEARTBEAT","executor_id":{"value":"e"}}"#
        )
        .is_err());
    }
}
