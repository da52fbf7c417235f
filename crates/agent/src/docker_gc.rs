//! Docker containers whose executor is gone. Every DOCKER task's container is named
//! `mesos-<container id>` and labelled `strata.agent=<agent id>` by the executor, which
//! removes it when the task ends; a container outlives it only when the executor died
//! (kill -9, OOM) or was not recovered after an agent restart. Like Mesos'
//! `--docker_kill_orphans`, the agent force-removes such containers: at start, those of
//! its agent id (from `<work_dir>/meta/agent_id`) that no recovered executor owns; then
//! every `SWEEP_INTERVAL`, those whose executor the agent no longer runs. An unreachable
//! Docker daemon is a warning, not an error: the agent runs without this cleanup.

use crate::checkpoint::ContainerRecord;
use crate::event_loop::Handle;
use crate::flags::AgentFlags;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use bollard::Docker;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// Prefix of the executors' container names (Mesos' `DOCKER_NAME_PREFIX`).
const NAME_PREFIX: &str = "mesos-";
/// Label naming the agent whose executor made the container.
const AGENT_LABEL: &str = "strata.agent";
/// Time between sweeps for containers of executors that ended while the agent ran.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// Limit on each call to the Docker daemon.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the cleanup (unless `--containerizers` leaves Docker out). `survivors` are
/// the recovered executors whose process still runs: their containers are kept.
pub fn spawn(flags: &AgentFlags, work_dir: &Path, survivors: &[ContainerRecord], handle: Handle) {
    if !flags.docker_enabled() {
        return;
    }
    let agent_id = std::fs::read_to_string(work_dir.join("meta").join("agent_id"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let live: HashSet<String> = survivors
        .iter()
        .map(|r| r.container_id.to_string())
        .collect();
    tokio::spawn(run(agent_id, live, handle));
}

async fn run(agent_id: Option<String>, survivors: HashSet<String>, handle: Handle) {
    let docker = match connect().await {
        Ok(docker) => docker,
        Err(e) => {
            return tracing::warn!(error = %e, "Docker daemon unreachable; containers of dead executors will not be removed")
        }
    };
    // Containers of this agent run carry its fresh container-id prefix; the start sweep
    // must not take them for orphans if a task was launched meanwhile.
    let prefix = handle.read(|a, _| a.config().id_prefix.clone()).await;
    if let Some(id) = agent_id {
        let keep =
            |c: &str| survivors.contains(c) || prefix.as_deref().is_some_and(|p| c.starts_with(p));
        if let Some(listed) = list(&docker, &id).await {
            remove_orphans(&docker, listed, keep).await;
        }
    }
    loop {
        tokio::time::sleep(SWEEP_INTERVAL).await;
        let Some(agent_id) = handle.read(|a, _| a.agent_id().cloned()).await else {
            return;
        };
        let Some(agent_id) = agent_id else { continue };
        // List first, then read the live set: a listed container's executor was recorded
        // by the agent before the container existed, so it is in the set if it still runs.
        let Some(listed) = list(&docker, agent_id.as_str()).await else {
            continue;
        };
        let live = handle
            .read(|a, _| a.containers().into_iter().map(|c| c.4.to_string()))
            .await;
        let Some(live) = live.map(|ids| ids.collect::<HashSet<String>>()) else {
            return;
        };
        remove_orphans(&docker, listed, |c| live.contains(c)).await;
    }
}

async fn connect() -> Result<Docker, String> {
    let docker = Docker::connect_with_defaults().map_err(|e| e.to_string())?;
    tokio::time::timeout(CALL_TIMEOUT, docker.negotiate_version())
        .await
        .map_err(|_| format!("no answer in {CALL_TIMEOUT:?}"))?
        .map_err(|e| e.to_string())
}

/// Containers labelled with `agent_id`: Strata container id → Docker id.
async fn list(docker: &Docker, agent_id: &str) -> Option<HashMap<String, String>> {
    let filters = HashMap::from([("label", vec![format!("{AGENT_LABEL}={agent_id}")])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let listed = tokio::time::timeout(CALL_TIMEOUT, docker.list_containers(Some(options))).await;
    let containers = match listed {
        Ok(Ok(containers)) => containers,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Cannot list Docker containers");
            return None;
        }
        Err(_) => {
            tracing::warn!("Listing Docker containers timed out");
            return None;
        }
    };
    let ids = containers.into_iter().filter_map(|c| {
        let name = c.names?.into_iter().find_map(|n| {
            n.trim_start_matches('/')
                .strip_prefix(NAME_PREFIX)
                .map(str::to_string)
        })?;
        Some((name, c.id?))
    });
    Some(ids.collect())
}

async fn remove_orphans(
    docker: &Docker,
    listed: HashMap<String, String>,
    keep: impl Fn(&str) -> bool,
) {
    for (container_id, docker_id) in listed {
        if keep(&container_id) {
            continue;
        }
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let removal = docker.remove_container(&docker_id, Some(options));
        match tokio::time::timeout(CALL_TIMEOUT, removal).await {
            Ok(Ok(())) => {
                tracing::warn!(%container_id, "Removed the Docker container of an executor that is gone")
            }
            Ok(Err(e)) => {
                tracing::warn!(%container_id, error = %e, "Cannot remove an orphaned Docker container")
            }
            Err(_) => {
                tracing::warn!(%container_id, "Removing an orphaned Docker container timed out")
            }
        }
    }
}
