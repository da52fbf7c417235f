//! The registry's data model and how operations change it (pure, shared by backends).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use strata_api::maintenance::{DrainInfo, MachineId, Schedule};
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
    /// Dynamic reservations and persistent volumes on the agent (post-refinement JSON), so
    /// a restarted master offers them correctly before the agent re-registers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checkpointed_resources: Vec<strata_api::WireResource>,
}

/// The maintenance state: the schedule as posted and the machines that are DOWN (every
/// other machine of the schedule is DRAINING; machines outside it are UP).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MaintenanceRecord {
    #[serde(default)]
    pub schedule: Schedule,
    #[serde(default)]
    pub down: Vec<MachineId>,
}

/// An agent deactivated by an operator (DEACTIVATE_AGENT or DRAIN_AGENT).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeactivatedAgent {
    /// Set when the agent is (or was) drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<DrainInfo>,
}

/// The durable state: agents by id, frameworks by id, maintenance, deactivated agents.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RegistryState {
    pub agents: BTreeMap<String, AgentRecord>,
    pub frameworks: BTreeMap<String, FrameworkInfo>,
    #[serde(default)]
    pub maintenance: MaintenanceRecord,
    #[serde(default)]
    pub deactivated_agents: BTreeMap<String, DeactivatedAgent>,
    /// Quotas by role (UPDATE_QUOTA).
    #[serde(default)]
    pub quotas: BTreeMap<String, QuotaRecord>,
    /// Role weights set by UPDATE_WEIGHTS (flags are applied on top at start).
    #[serde(default)]
    pub weights: BTreeMap<String, f64>,
}

/// A role's quota: guarantees and limits, scalar quantities by resource name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuotaRecord {
    #[serde(default)]
    pub guarantees: BTreeMap<String, f64>,
    #[serde(default)]
    pub limits: BTreeMap<String, f64>,
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
    /// Replace an admitted agent's dynamic reservations and persistent volumes.
    SetAgentResources {
        id: String,
        resources: Vec<strata_api::WireResource>,
    },
    /// Replace the maintenance schedule and the set of DOWN machines.
    SetMaintenance { record: MaintenanceRecord },
    /// Deactivate (or drain, or mark drained) an agent.
    DeactivateAgent {
        id: String,
        record: DeactivatedAgent,
    },
    /// Reactivate an agent (forgets its drain state).
    ReactivateAgent { id: String },
    /// Set (`Some`) or remove (`None`) a role's quota.
    SetQuota {
        role: String,
        record: Option<QuotaRecord>,
    },
    /// Set a role's weight.
    SetWeight { role: String, weight: f64 },
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
            Op::SetAgentResources { id, resources } => {
                if let Some(a) = self.agents.get_mut(id) {
                    a.checkpointed_resources.clone_from(resources);
                }
            }
            Op::SetMaintenance { record } => self.maintenance = record.clone(),
            Op::DeactivateAgent { id, record } => {
                self.deactivated_agents.insert(id.clone(), record.clone());
            }
            Op::ReactivateAgent { id } => {
                self.deactivated_agents.remove(id);
            }
            Op::SetQuota { role, record } => match record {
                Some(r) => {
                    self.quotas.insert(role.clone(), r.clone());
                }
                None => {
                    self.quotas.remove(role);
                }
            },
            Op::SetWeight { role, weight } => {
                self.weights.insert(role.clone(), *weight);
            }
        }
    }
}
