//! External wire shapes: Mesos v1 JSON (scheduler, executor, operator), Strata's internal
//! master⇄agent protocol, RecordIO framing and ASCII-only compact JSON. No I/O lives here.
#![cfg_attr(test, allow(clippy::unwrap_used))]

#[macro_use]
mod macros;

pub mod agent_link;
pub mod ascii_json;
pub mod checks;
pub mod container;
pub mod domain;
pub mod executor;
pub mod ids;
pub mod maintenance;
pub mod mesos;
pub mod operator;
pub mod recordio;
pub mod scheduler;
pub mod status;

pub use ascii_json::{to_ascii_json, to_ascii_json_bytes};
pub use checks::{CheckInfo, CheckStatusInfo, CheckType, HealthCheck};
pub use container::{ContainerInfo, ContainerType, DockerInfo, DockerNetwork};
pub use ids::{AgentId, ContainerId, ExecutorId, FrameworkId, OfferId, TaskId};
pub use mesos::*;
pub use status::{Reason, Source, TaskState, TaskStatus};
