//! The master's state machine: frameworks, agents, offers, tasks and the allocator, driven
//! by `Master::step(now, Input) -> Reply` with effects pushed into a buffer.
//!
//! It never reads the clock, touches disk or network, or spawns anything: time comes in as
//! `now` (seconds since the epoch), durable writes go out as `Effect::Persist`, and every
//! message to a framework, agent or operator is an `Effect` the I/O shell delivers.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod agents;
mod config;
mod frameworks;
mod io;
mod launch;
mod master;
mod metrics;
mod offers;
mod recover;
mod state;
mod tasks;
pub mod views;

pub use config::Config;
pub use io::{CallError, ConnId, Effect, Input, OperatorInput, Reply};
pub use master::Master;
pub use metrics::Metrics;
pub use state::{
    AgentPhase, AgentState, FrameworkState, OfferRecord, TaskRecord, UnreachableAgent,
};
