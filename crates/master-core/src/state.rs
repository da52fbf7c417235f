//! The master's records of frameworks, agents, offers and tasks.

use crate::io::ConnId;
pub use crate::sorted_set::SortedVecSet;
pub use crate::task_record::TaskRecord;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use strata_api::{
    AgentId, AgentInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo, OfferId, TaskId,
    TaskState,
};
use strata_resources::{Attribute, Resources, WireFormat};

/// A registered (or recovered) framework.
#[derive(Debug, Clone)]
pub struct FrameworkState {
    pub id: FrameworkId,
    pub info: FrameworkInfo,
    pub roles: Vec<String>,
    pub conn: Option<ConnId>,
    pub stream_id: Option<String>,
    /// Known from the registry or an agent but not yet re-subscribed.
    pub recovered: bool,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    pub unregistered_time: Option<f64>,
    pub failover_deadline: Option<f64>,
    pub tasks: BTreeMap<TaskId, Box<TaskRecord>>,
    pub unreachable_tasks: BTreeMap<TaskId, Box<TaskRecord>>,
    pub completed_tasks: VecDeque<Box<TaskRecord>>,
    pub offers: BTreeSet<OfferId>,
    pub executors: BTreeMap<AgentId, BTreeMap<ExecutorId, ExecutorInfo>>,
    pub suppressed_roles: BTreeSet<String>,
    /// Where each entry of the latest REQUEST may run (same order as the allocator's
    /// demand); only `strata why` reads it.
    pub demand_placements: Vec<Option<DemandPlacement>>,
}

/// Where a REQUEST entry may run: Mesos' `Request.agent_id` and Strata's extension,
/// Marathon-style `constraints` (`[["zone", "IS", "b"]]`).
#[derive(Debug, Clone, Default)]
pub struct DemandPlacement {
    pub agent_id: Option<AgentId>,
    pub constraints: Vec<strata_resources::constraints::Constraint>,
}

impl DemandPlacement {
    /// Whether `agent` qualifies.
    pub fn accepts(&self, agent: &AgentState) -> bool {
        if self.agent_id.as_ref().is_some_and(|a| *a != agent.id) {
            return false;
        }
        let domain = agent.info.domain.as_ref();
        let facts = strata_resources::constraints::AgentFacts {
            hostname: &agent.info.hostname,
            region: strata_api::domain::region(domain),
            zone: strata_api::domain::zone(domain),
            attributes: &agent.attributes,
        };
        self.constraints.iter().all(|c| c.accepts(&facts))
    }

    /// How hints name the qualifying agents: `zone IS b and rack LIKE r1`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.constraints.iter().map(|c| c.to_string()).collect();
        if let Some(a) = &self.agent_id {
            parts.insert(0, format!("agent_id is {a}"));
        }
        parts.join(" and ")
    }
}

impl FrameworkState {
    /// Connected to a live stream.
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether the framework declared PARTITION_AWARE.
    pub fn partition_aware(&self) -> bool {
        self.info.has_capability("PARTITION_AWARE")
    }

    /// The state this framework should see for `state`.
    pub fn visible_state(&self, state: TaskState) -> TaskState {
        if self.partition_aware() {
            state
        } else {
            state.for_non_partition_aware()
        }
    }

    /// Moves a task to the bounded completed list (oldest dropped first).
    pub fn push_completed(&mut self, t: Box<TaskRecord>, limit: usize) {
        self.completed_tasks.push_back(t);
        while self.completed_tasks.len() > limit {
            self.completed_tasks.pop_front();
        }
    }

    /// FrameworkInfo with its id set.
    pub fn info_with_id(&self) -> FrameworkInfo {
        let mut info = self.info.clone();
        info.id = Some(self.id.clone());
        info
    }
}

/// Connection phase of a registered agent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AgentPhase {
    /// Session stream open.
    Connected,
    /// Stream broke at the given time; waiting for re-registration.
    Disconnected { since: f64 },
    /// Admitted in the registry before this master started; not yet re-registered.
    Recovered { since: f64 },
}

/// An agent admitted by this master (unreachable and gone agents live elsewhere).
#[derive(Debug, Clone)]
pub struct AgentState {
    pub id: AgentId,
    /// What the agent registered with, except `resources`, which are kept parsed in
    /// `declared` (one copy instead of two; [`AgentState::agent_info`] rebuilds it).
    pub info: AgentInfo,
    /// The resources of the agent's AgentInfo, parsed.
    pub declared: Resources,
    /// `ip:port` of the agent's HTTP server.
    pub address: String,
    pub total: Resources,
    pub attributes: Vec<Attribute>,
    pub phase: AgentPhase,
    pub conn: Option<ConnId>,
    pub session: Option<String>,
    pub version: String,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    pub last_seen: f64,
    pub next_ping: f64,
    /// Tasks on this agent: (framework, task).
    pub tasks: SortedVecSet<(FrameworkId, TaskId)>,
    pub offers: BTreeSet<OfferId>,
    /// Kills asked for while disconnected, resent on re-registration.
    pub pending_kills: BTreeSet<(FrameworkId, TaskId)>,
    /// Messages to send right after the next REGISTERED.
    pub pending_messages: Vec<strata_api::agent_link::ToAgent>,
}

impl AgentState {
    /// The AgentInfo as registered, resources included.
    pub fn agent_info(&self) -> AgentInfo {
        let mut info = self.info.clone();
        info.resources = self.declared.to_wire(WireFormat::PostRefinement);
        info
    }

    /// The agent's `/slave(1)` URL, as offers and inverse offers carry it.
    pub fn url(&self) -> strata_api::Url {
        strata_api::Url {
            scheme: "http".into(),
            address: strata_api::Address {
                hostname: Some(self.info.hostname.clone()),
                ip: Some(self.ip().to_string()),
                port: self.port(),
            },
            path: Some("/slave(1)".into()),
        }
    }

    /// Whether `info` is what this agent registered with (resources compared parsed).
    pub fn same_info(&self, info: &AgentInfo) -> bool {
        let mut stripped = info.clone();
        let resources = std::mem::take(&mut stripped.resources);
        self.info == stripped && Resources::from_wire(&resources).is_ok_and(|r| r == self.declared)
    }

    /// Whether messages can be sent to the agent now.
    pub fn connected(&self) -> bool {
        self.phase == AgentPhase::Connected && self.conn.is_some()
    }

    /// IP part of the address.
    pub fn ip(&self) -> &str {
        self.address
            .rsplit_once(':')
            .map(|(ip, _)| ip)
            .unwrap_or(&self.address)
    }

    /// Port part of the address.
    pub fn port(&self) -> u32 {
        self.address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(self.info.port)
    }

    /// libprocess-style pid, `slave(1)@ip:port`.
    pub fn pid(&self) -> String {
        format!("slave(1)@{}", self.address)
    }
}

/// An outstanding offer.
#[derive(Debug, Clone)]
pub struct OfferRecord {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub role: String,
    /// With allocation role set.
    pub resources: Resources,
    pub created: f64,
}

/// An agent marked unreachable: kept so it can come back.
#[derive(Debug, Clone)]
pub struct UnreachableAgent {
    pub info: AgentInfo,
    pub address: String,
    pub since: f64,
}
