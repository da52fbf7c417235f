//! The master's state machine: frameworks, agents, offers, tasks and the allocator, driven
//! by `Master::step(now, Input) -> Reply` with effects pushed into a buffer.
//!
//! It never reads the clock, touches disk or network, or spawns anything: time comes in as
//! `now` (seconds since the epoch), durable writes go out as `Effect::Persist`, and every
//! message to a framework, agent or operator is an `Effect` the I/O shell delivers.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod agents;
mod config;
mod drain;
mod frameworks;
mod inverse_offers;
mod io;
mod launch;
mod maintenance;
mod master;
mod metrics;
mod offers;
mod operations;
mod oversubscription;
mod preemption;
mod quota;
mod recover;
mod reservations;
mod shared_volumes;
mod sorted_set;
mod state;
mod task_record;
mod tasks;
pub mod views;

pub use config::{Config, DEFAULT_OFFER_TIMEOUT};
pub use io::{CallError, ConnId, Effect, Input, OperatorInput, Reply};
pub use master::Master;
pub use metrics::Metrics;
pub use preemption::PRIORITY_LABEL;
pub use quota::validate_role;
pub use state::{
    AgentPhase, AgentState, FrameworkState, OfferRecord, TaskRecord, UnreachableAgent,
};
