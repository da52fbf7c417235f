//! The registry's data model and how operations change it (pure, shared by backends).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use strata_api::{AgentInfo, FrameworkInfo};

/// What the registry remembers of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub info: AgentInfo,
    /// `ip:port` of the agent's HTTP server.
    pub address: String,
    /// Seconds since the epoch at which the agent was marked unreachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_since: Option<f64>,
    /// Marked gone by an operator: never re-admitted.
    #[serde(default)]
    pub gone: bool,
}

/// The durable state: agents by id, frameworks by id.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RegistryState {
    pub agents: BTreeMap<String, AgentRecord>,
    pub frameworks: BTreeMap<String, FrameworkInfo>,
}

/// One change to the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Admit (or re-admit, clearing unreachability) an agent.
    AdmitAgent { id: String, record: AgentRecord },
    /// Mark an admitted agent unreachable since `time`.
    MarkUnreachable { id: String, time: f64 },
    /// Mark an agent gone for good.
    MarkGone { id: String },
    /// Forget an agent.
    RemoveAgent { id: String },
    /// Record (or update) a framework.
    PutFramework { id: String, info: FrameworkInfo },
    /// Forget a framework (torn down or failed over for good).
    RemoveFramework { id: String },
}

impl RegistryState {
    /// Applies one operation in memory.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::AdmitAgent { id, record } => {
                self.agents.insert(id.clone(), record.clone());
            }
            Op::MarkUnreachable { id, time } => {
                if let Some(a) = self.agents.get_mut(id) {
                    a.unreachable_since = Some(*time);
                }
            }
            Op::MarkGone { id } => {
                if let Some(a) = self.agents.get_mut(id) {
                    a.gone = true;
                }
            }
            Op::RemoveAgent { id } => {
                self.agents.remove(id);
            }
            Op::PutFramework { id, info } => {
                self.frameworks.insert(id.clone(), info.clone());
            }
            Op::RemoveFramework { id } => {
                self.frameworks.remove(id);
            }
        }
    }
}
