//! DOCKER tasks in the core: whether Docker may run them and, if so, the container they
//! run in (remembered for the task's probes). The core decides it from the TaskInfo, the
//! executor's ids and its sandbox (`crate::docker::plan`); the shell only carries out the
//! `Spawn` that carries it.

use super::task::{Phase, Task, TaskContainer};
use super::Core;
use crate::docker::spec::HOST_NETWORK;
use crate::docker::{plan, DockerContext};
use std::path::PathBuf;
use strata_api::{Reason, TaskInfo, TaskState};

/// The answer to a DOCKER task when the agent runs without the docker containerizer.
pub const DOCKER_DISABLED_MESSAGE: &str =
    "Docker containerizer is not enabled on this agent (--containerizers)";

/// What DOCKER tasks need from the executor's environment.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerSettings {
    /// The agent's `--containerizers` include `docker` (`STRATA_DOCKER`).
    pub enabled: bool,
    pub framework_id: String,
    /// `MESOS_SLAVE_ID`: labels the container so the agent can find it.
    pub agent_id: Option<String>,
    /// The host sandbox, mounted at `/mnt/mesos/sandbox`.
    pub directory: PathBuf,
    /// Persistent volumes: container path (relative to the sandbox) → host directory.
    pub volumes: std::collections::BTreeMap<String, PathBuf>,
}

impl Default for DockerSettings {
    fn default() -> Self {
        DockerSettings {
            enabled: true,
            framework_id: String::new(),
            agent_id: None,
            directory: PathBuf::from("."),
            volumes: std::collections::BTreeMap::new(),
        }
    }
}

impl Core {
    /// LAUNCH of a DOCKER task (command-executor mode): TASK_FAILED at once when Docker
    /// is disabled; otherwise TASK_STARTING and a `Spawn` with the container, or
    /// TASK_FAILED when the TaskInfo cannot become one (Mesos' docker executor message).
    pub(super) fn launch_docker(&mut self, info: TaskInfo) {
        let task_id = info.task_id.clone();
        let settings = &self.cfg.docker;
        let planned = settings.enabled.then(|| {
            let ctx = DockerContext {
                container_id: self.container_id.as_deref(),
                executor_id: self.cfg.executor_id.as_str(),
                framework_id: &settings.framework_id,
                agent_id: settings.agent_id.as_deref(),
                directory: &settings.directory,
                volumes: &settings.volumes,
            };
            plan(&info, &ctx)
        });
        self.tasks.insert(task_id.clone(), Task::new(info, None));
        let failure = match planned {
            None => {
                tracing::warn!(%task_id, "Rejecting a DOCKER task: Docker is not enabled");
                self.set_done(&task_id);
                let reason = Some(Reason::ContainerLaunchFailed);
                let message = Some(DOCKER_DISABLED_MESSAGE.to_string());
                return self.send_update(&task_id, TaskState::Failed, message, reason);
            }
            Some(Ok(run)) => {
                tracing::info!(%task_id, container = %run.name, image = %run.image, "Launching task in a Docker container");
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.container = Some(TaskContainer {
                        name: run.name.clone(),
                        host_network: run.network == HOST_NETWORK,
                        ips: Vec::new(),
                    });
                }
                self.send_update(&task_id, TaskState::Starting, None, None);
                return self.request_spawn(&task_id, false, Some(Box::new(run)));
            }
            Some(Err(e)) => format!("Failed to create docker run options: {e}"),
        };
        tracing::warn!(%task_id, message = %failure, "Cannot run the task in Docker");
        self.send_update(&task_id, TaskState::Starting, None, None);
        self.set_done(&task_id);
        self.send_update(&task_id, TaskState::Failed, Some(failure), None);
    }

    fn set_done(&mut self, task_id: &strata_api::TaskId) {
        if let Some(task) = self.tasks.get_mut(task_id) {
            task.phase = Phase::Done;
        }
    }
}
