//! What goes into the master core (inputs) and what comes out (replies and effects).

use serde_json::Value;
use strata_api::agent_link::{Hello, ToAgent, ToMaster};
use strata_api::scheduler::{Command, Event, Subscribe};
use strata_api::{AgentId, FrameworkId};
use strata_registry::Op;

/// A streaming connection owned by the shell (a scheduler, agent or operator stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// An input to [`crate::Master::step`].
#[derive(Debug, Clone)]
pub enum Input {
    /// SUBSCRIBE on a new stream (the shell already answered 200 and owns `conn`).
    Subscribe {
        conn: ConnId,
        stream_id: String,
        subscribe: Box<Subscribe>,
    },
    /// Any other scheduler call, with the `Mesos-Stream-Id` header if sent.
    Call {
        stream_id: Option<String>,
        framework_id: FrameworkId,
        command: Box<Command>,
    },
    /// A scheduler's event stream ended.
    FrameworkStreamClosed { conn: ConnId },
    /// An agent opened its session stream.
    AgentConnect {
        conn: ConnId,
        session: String,
        hello: Box<Hello>,
    },
    /// A message an agent posted on its session.
    AgentMessage {
        session: String,
        message: Box<ToMaster>,
    },
    /// An agent's session stream ended.
    AgentStreamClosed { conn: ConnId },
    /// A mutating operator call.
    Operator(OperatorInput),
    /// Periodic housekeeping: pings, timeouts, failovers.
    Tick,
    /// Run a full allocation cycle over every agent (the allocation interval).
    Allocate,
    /// Offer only what changed since the last cycle (resources just freed, new agents or
    /// frameworks); the shell sends this when its request queue drains.
    AllocateChanged,
}

/// Mutating operator calls.
#[derive(Debug, Clone)]
pub enum OperatorInput {
    Teardown {
        framework_id: FrameworkId,
    },
    MarkAgentGone {
        agent_id: AgentId,
    },
    UpdateWeights {
        weights: Vec<(String, f64)>,
    },
    /// UPDATE_QUOTA: quotas per role (an empty quota removes one); `force` skips the
    /// cluster-capacity check.
    UpdateQuota {
        configs: Vec<(String, strata_allocator::Quota)>,
        force: bool,
    },
    /// Strata extension (`KILL_TASK`): kill a task on behalf of its framework.
    KillTask {
        task_id: strata_api::TaskId,
        framework_id: Option<FrameworkId>,
    },
    /// RESERVE_RESOURCES, UNRESERVE_RESOURCES, CREATE_VOLUMES, DESTROY_VOLUMES,
    /// GROW_VOLUME, SHRINK_VOLUME: the payload as the matching offer operation.
    ResourceOperation {
        agent_id: AgentId,
        operation: Box<strata_api::scheduler::Operation>,
    },
    /// UPDATE_MAINTENANCE_SCHEDULE (and `POST /maintenance/schedule`).
    UpdateMaintenanceSchedule {
        schedule: strata_api::maintenance::Schedule,
    },
    /// START_MAINTENANCE (and `POST /machine/down`).
    StartMaintenance {
        machines: Vec<strata_api::maintenance::MachineId>,
    },
    /// STOP_MAINTENANCE (and `POST /machine/up`).
    StopMaintenance {
        machines: Vec<strata_api::maintenance::MachineId>,
    },
    /// DRAIN_AGENT.
    DrainAgent {
        agent_id: AgentId,
        config: strata_api::maintenance::DrainConfig,
    },
    /// DEACTIVATE_AGENT.
    DeactivateAgent {
        agent_id: AgentId,
    },
    /// REACTIVATE_AGENT.
    ReactivateAgent {
        agent_id: AgentId,
    },
}

/// An HTTP-level error: status code and message (text/plain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub status: u16,
    pub message: String,
}

impl CallError {
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }
    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: 403,
            message: message.into(),
        }
    }
    /// 409 Conflict.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: 409,
            message: message.into(),
        }
    }
}

/// The synchronous answer to an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 202 Accepted, empty body (most calls).
    Accepted,
    /// 200 OK, empty body (UPDATE_FRAMEWORK, operator mutations).
    Ok,
    /// The input was a stream start; the stream carries the answer.
    Stream,
    /// Nothing to answer (internal inputs).
    None,
    /// An HTTP error.
    Error(CallError),
}

/// Something the shell must do, in order.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Durably apply registry operations before executing any later effect.
    Persist(Vec<Op>),
    /// Send an event on a scheduler stream.
    Framework { conn: ConnId, event: Box<Event> },
    /// Close a scheduler stream.
    CloseFramework { conn: ConnId },
    /// Send a message on an agent's session stream.
    Agent { conn: ConnId, message: Box<ToAgent> },
    /// Close an agent's session stream.
    CloseAgent { conn: ConnId },
    /// Broadcast an operator API event (`{"type":…}`) to operator subscribers.
    Operator { event: Value },
}
