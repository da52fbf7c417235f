//! DOCKER tasks (`TaskInfo.container.type == DOCKER`): the executor runs the task in a
//! Docker container instead of forking it, as Mesos' docker executor does
//! (src/docker/executor.cpp), but inside Strata's own command executor.
//!
//! `spec` and `params` turn a TaskInfo into a `DockerRun` and `body` into the Engine API's
//! create request: pure, decided by the core. `engine` is the shell's side: it pulls the
//! image, creates, attaches and starts the container, streams its output into the
//! executor's stdout/stderr (the sandbox files), waits for it, signals it and removes it.
//! `exec` runs the task's COMMAND health checks and checks inside its container.

mod body;
pub mod engine;
pub mod exec;
pub mod params;
pub mod spec;
#[cfg(test)]
mod tests;

pub use body::{container_ips, create_body, exit_termination, image_reference, oom_kill};
pub use spec::{container_name, plan, DockerContext, DockerRun, PlanError};
