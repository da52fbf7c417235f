//! Read-only views of the master state in the shapes tools expect: the legacy JSON
//! endpoints, the v1 operator API responses and events, and metrics.

pub mod allocation;
mod common;
pub mod legacy;
pub mod maintenance;
pub mod metrics;
pub mod operator;
pub mod operator_events;

pub use common::{executor_resources, framework_used, offered_on_agent, used_on_agent};
