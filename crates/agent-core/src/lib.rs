//! The agent's state machine: frameworks, executors and tasks on this machine, the
//! reliable status-update streams to the master, and the executor API's semantics.
//!
//! Like the master core it never reads the clock, touches the disk or network, or
//! spawns processes: `Agent::step(now, Input, &mut Vec<Effect>) -> Reply`, and the I/O
//! shell launches containers, talks HTTP and reports process exits back as inputs.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod agent;
pub mod blackbox;
pub mod checkpoint;
mod config;
pub mod estimator;
mod executors;
mod io;
mod launch;
mod oversubscription;
mod state;
mod updates;
pub mod views;
pub mod volumes;

pub use agent::Agent;
pub use config::Config;
pub use io::{ConnId, ContainerLimits, ContainerSpec, Effect, ExecutorKind, Input, Reply};
pub use oversubscription::ContainerAllocation;
pub use state::{ExecutorPhase, ExecutorState, FrameworkEntry, TaskEntry};
