//! Core Mesos v1 types shared by the scheduler, executor and operator APIs: frameworks,
//! agents, masters, tasks, executors, commands, offers and filters.
//!
//! Fields Strata does not interpret yet (discovery…) are kept as raw JSON so they pass
//! through to executors and endpoints unchanged; health checks and checks (`checks`) and
//! containers (`container`) are typed.

use crate::checks::{CheckInfo, HealthCheck};
use crate::container::ContainerInfo;
use crate::ids::{AgentId, ContainerId, ExecutorId, FrameworkId, OfferId, TaskId};
use crate::status::{TaskState, TaskStatus};
use serde::{Deserialize, Deserializer, Serialize};
use strata_resources::attributes::WireAttribute;
pub use strata_resources::{Label, Labels, WireResource};

/// Deserialises an optional enum leniently: an unknown name drops the field, as stout does.
pub fn lenient_enum<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let raw = Option::<serde_json::Value>::deserialize(d)?;
    Ok(raw.and_then(|v| serde_json::from_value(v).ok()))
}

fn default_true() -> bool {
    true
}

/// `TimeInfo`: nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeInfo {
    pub nanoseconds: i64,
}

/// `DurationInfo`: a duration in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationInfo {
    pub nanoseconds: i64,
}

impl DurationInfo {
    /// The duration as std; negative durations clamp to zero.
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanoseconds.max(0) as u64)
    }

    /// From whole milliseconds.
    pub fn from_millis(ms: i64) -> Self {
        Self {
            nanoseconds: ms.saturating_mul(1_000_000),
        }
    }
}

/// `FrameworkInfo.Capability`; the type is kept as text so unknown capabilities pass through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    #[serde(rename = "type")]
    pub kind: String,
}

/// `FrameworkInfo`. `user` and `name` are required, as in Mesos.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    pub user: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    #[serde(default)]
    pub failover_timeout: f64,
    #[serde(default)]
    pub checkpoint: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_filters: Option<serde_json::Value>,
}

impl FrameworkInfo {
    /// Whether the framework declared capability `name` (e.g. `"PARTITION_AWARE"`).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c.kind == name)
    }

    /// The roles the framework subscribes to: `roles` with MULTI_ROLE, else `role` or `*`.
    pub fn effective_roles(&self) -> Vec<String> {
        if self.has_capability("MULTI_ROLE") {
            self.roles.clone()
        } else {
            vec![self.role.clone().unwrap_or_else(|| "*".to_string())]
        }
    }
}

/// `Address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub port: u32,
}

/// `URL`, used in offers to point at the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Url {
    pub scheme: String,
    pub address: Address,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `MasterInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterInfo {
    pub id: String,
    /// IPv4 in network byte order, as Mesos writes it.
    pub ip: u32,
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// `DomainInfo` (`{"fault_domain":{"region":{"name"},"zone":{"name"}}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
}

/// `AgentInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub hostname: String,
    #[serde(default = "default_agent_port")]
    pub port: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<WireResource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<WireAttribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
}

fn default_agent_port() -> u32 {
    5051
}

/// `Environment.Variable`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<serde_json::Value>,
}

/// `Environment`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Environment {
    #[serde(default)]
    pub variables: Vec<EnvVar>,
}

/// `CommandInfo.URI`: something the fetcher puts into the sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandUri {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    #[serde(default = "default_true")]
    pub extract: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
}

/// `CommandInfo`. `shell` defaults to true (`/bin/sh -c value`); otherwise `value` is the
/// program and `arguments` its argv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandInfo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<CommandUri>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default = "default_true")]
    pub shell: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl CommandInfo {
    /// A shell command.
    pub fn shell(value: impl Into<String>) -> Self {
        Self {
            uris: Vec::new(),
            environment: None,
            shell: true,
            value: Some(value.into()),
            arguments: Vec::new(),
            user: None,
        }
    }
}

/// `KillPolicy`: the grace period between SIGTERM and SIGKILL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KillPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<DurationInfo>,
}

wire_enum! {
    /// `ExecutorInfo.Type`.
    pub enum ExecutorType {
        Default = "DEFAULT",
        Custom = "CUSTOM",
    }
}

/// `ExecutorInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    #[serde(
        rename = "type",
        default,
        deserialize_with = "lenient_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<ExecutorType>,
    pub executor_id: ExecutorId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<WireResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace_period: Option<DurationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// `TaskInfo`. Exactly one of `executor` and `command` must be set (checked by the master).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// mesoshttp adds the pre-1.0 name beside `agent_id`; read, never written.
    #[serde(default, skip_serializing)]
    pub slave_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<WireResource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_time: Option<DurationInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<serde_json::Value>,
}

impl TaskInfo {
    /// A command task with only the common fields set.
    pub fn command(
        name: &str,
        task_id: TaskId,
        agent_id: AgentId,
        resources: Vec<WireResource>,
        command: CommandInfo,
    ) -> Self {
        Self {
            name: name.to_string(),
            task_id,
            agent_id: Some(agent_id),
            slave_id: None,
            resources,
            executor: None,
            command: Some(command),
            container: None,
            health_check: None,
            check: None,
            kill_policy: None,
            data: None,
            labels: None,
            discovery: None,
            max_completion_time: None,
            limits: None,
        }
    }

    /// The agent the task is meant for, from either spelling.
    pub fn target_agent(&self) -> Option<&AgentId> {
        self.agent_id.as_ref().or(self.slave_id.as_ref())
    }
}

/// `TaskGroupInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskGroupInfo {
    #[serde(default)]
    pub tasks: Vec<TaskInfo>,
}

/// `Resource.AllocationInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// `Offer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub hostname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<WireResource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<WireAttribute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executor_ids: Vec<ExecutorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailability: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
}

/// `Filters`. Mesos writes the 5 s default even when unset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<f64>,
}

/// Default `Filters.refuse_seconds`.
pub const DEFAULT_REFUSE_SECONDS: f64 = 5.0;
/// Cap on `refuse_seconds` (365 days), as Mesos applies it.
pub const MAX_REFUSE_SECONDS: f64 = 31_536_000.0;

impl Filters {
    /// The effective refusal in seconds: default for absent/negative/NaN, capped at a year.
    pub fn refuse_seconds_effective(filters: Option<&Filters>) -> f64 {
        match filters.and_then(|f| f.refuse_seconds) {
            Some(s) if s.is_finite() && s >= 0.0 => s.min(MAX_REFUSE_SECONDS),
            Some(s) if s == f64::INFINITY => MAX_REFUSE_SECONDS,
            _ => DEFAULT_REFUSE_SECONDS,
        }
    }
}

/// `Task`: the master's and agents' record of a launched task (operator API, agent
/// re-registration, TASK_ADDED events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub name: String,
    pub task_id: TaskId,
    pub framework_id: FrameworkId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    pub agent_id: AgentId,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<WireResource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<TaskStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_state: Option<TaskState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_update_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Box<ContainerInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Box<HealthCheck>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<serde_json::Value>,
    /// The container the task runs in (Strata extension: lets a restarted master
    /// rebuild `statuses[0].container_status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<ContainerId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framework_info_writes_defaults_and_ignores_unknown_keys() {
        let f: FrameworkInfo = serde_json::from_str(
            r#"{"user":"u","name":"n","hostname":"","webui_url":"","credentials":{"x":1},"failover_timeout":100}"#,
        )
        .unwrap();
        assert_eq!(f.failover_timeout, 100.0);
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"user":"u","name":"n","failover_timeout":100.0,"checkpoint":false,"hostname":"","webui_url":""}"#
        );
        assert!(serde_json::from_str::<FrameworkInfo>(r#"{"name":"n"}"#).is_err());
        assert_eq!(f.effective_roles(), vec!["*".to_string()]);
    }

    #[test]
    fn command_info_defaults_shell_true() {
        let c: CommandInfo = serde_json::from_str(r#"{"value":"echo hi"}"#).unwrap();
        assert!(c.shell);
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"shell":true,"value":"echo hi"}"#
        );
    }

    #[test]
    fn task_info_accepts_mesoshttp_slave_id() {
        let t: TaskInfo = serde_json::from_str(
            r#"{"name":"t","task_id":{"value":"t"},"agent_id":{"value":"a"},"slave_id":{"value":"a"},"command":{"value":"true"}}"#,
        )
        .unwrap();
        assert_eq!(t.target_agent(), Some(&AgentId::new("a")));
        assert!(!serde_json::to_string(&t).unwrap().contains("slave_id"));
    }

    #[test]
    fn refuse_seconds_defaults_and_caps() {
        let f = |s| Filters {
            refuse_seconds: Some(s),
        };
        assert_eq!(Filters::refuse_seconds_effective(None), 5.0);
        assert_eq!(Filters::refuse_seconds_effective(Some(&f(-1.0))), 5.0);
        assert_eq!(
            Filters::refuse_seconds_effective(Some(&f(1e12))),
            MAX_REFUSE_SECONDS
        );
        assert_eq!(Filters::refuse_seconds_effective(Some(&f(0.0))), 0.0);
    }
}
