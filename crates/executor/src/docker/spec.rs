//! A DOCKER task as a plain description of the container to run (`DockerRun`), following
//! Mesos' `Docker::RunOptions::create` (src/docker/docker.cpp): the command, environment,
//! volumes plus the sandbox at `/mnt/mesos/sandbox`, network and port mappings, and cpu
//! and memory limits from the task's resources. Pure: no Docker, no I/O.

use super::params::{self, ParamOptions};
use std::collections::BTreeMap;
use std::path::Path;
use strata_api::container::{DockerInfo, DockerNetwork, Volume, VolumeMode};
use strata_api::{ContainerInfo, TaskInfo, WireResource};

/// Where the sandbox is mounted inside the container (Mesos' `--sandbox_directory`).
pub const SANDBOX_IN_CONTAINER: &str = "/mnt/mesos/sandbox";
/// `DockerRun::network` of a container on the host's network.
pub const HOST_NETWORK: &str = "host";
/// Prefix of every container name (Mesos' `DOCKER_NAME_PREFIX`).
pub const NAME_PREFIX: &str = "mesos-";
/// Label keys every container carries; the agent finds orphans by `strata.agent`.
pub const LABEL_AGENT: &str = "strata.agent";
pub const LABEL_FRAMEWORK: &str = "strata.framework";
pub const LABEL_EXECUTOR: &str = "strata.executor";
pub const LABEL_TASK: &str = "strata.task";

/// Mesos' cgroups constants (src/slave/containerizer/mesos/isolators/cgroups/constants.hpp).
const CPU_SHARES_PER_CPU: f64 = 1024.0;
const MIN_CPU_SHARES: i64 = 2;
pub const CPU_CFS_PERIOD_US: i64 = 100_000;
const MIN_CPU_CFS_QUOTA_US: i64 = 1_000;
const MIN_MEMORY_BYTES: i64 = 32 * 1024 * 1024;
const MB: f64 = 1024.0 * 1024.0;

/// Why a task cannot run as a Docker container (reported as "Failed to create docker run
/// options: <error>", as Mesos' docker executor does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A check Mesos makes, with Mesos' message.
    #[error("{0}")]
    Invalid(String),
    #[error("unsupported docker parameter '{key}'; supported: {}", params::SUPPORTED.join(", "))]
    UnsupportedParameter { key: String },
    #[error("invalid value '{value}' for docker parameter '{key}': {why}")]
    BadParameter {
        key: String,
        value: String,
        why: String,
    },
}

fn invalid(message: impl Into<String>) -> PlanError {
    PlanError::Invalid(message.into())
}

/// Who runs the container: ids for its name and labels, and the host sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerContext<'a> {
    /// From SUBSCRIBED; names the container `mesos-<container id>`.
    pub container_id: Option<&'a str>,
    pub executor_id: &'a str,
    pub framework_id: &'a str,
    pub agent_id: Option<&'a str>,
    /// The host sandbox (`MESOS_DIRECTORY`).
    pub directory: &'a Path,
    /// Persistent volumes: container path → host directory (from the agent).
    pub volumes: &'a std::collections::BTreeMap<String, std::path::PathBuf>,
}

/// A published port: `host_port` on the host to `container_port`/`protocol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub host_port: u32,
    pub container_port: u32,
    pub protocol: String,
}

/// Cgroup limits of the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerLimits {
    pub cpu_shares: Option<i64>,
    /// CFS quota per `CPU_CFS_PERIOD_US`.
    pub cpu_quota_us: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub memory_reservation_bytes: Option<i64>,
}

/// Everything needed to create and run the task's container.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerRun {
    pub name: String,
    pub image: String,
    pub force_pull: bool,
    /// Overrides the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// The container's command; empty = the image's default.
    pub cmd: Vec<String>,
    /// `NAME=value`, one per name (the last definition wins).
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// `host:container:mode` or `volume:container:mode`.
    pub binds: Vec<String>,
    pub volume_driver: Option<String>,
    /// `host`, `bridge`, `none` or a user-defined network's name.
    pub network: String,
    pub ports: Vec<PortBinding>,
    pub hostname: Option<String>,
    pub privileged: bool,
    pub limits: DockerLimits,
    /// Settings from `DockerInfo.parameters`.
    pub options: ParamOptions,
}

/// The container for a DOCKER task, or why there is none.
pub fn plan(task: &TaskInfo, ctx: &DockerContext) -> Result<DockerRun, PlanError> {
    let container = task
        .container
        .as_ref()
        .ok_or_else(|| invalid("No container info found in task"))?;
    let docker = container
        .docker
        .as_ref()
        .ok_or_else(|| invalid("No docker info found in container info"))?;
    let name = container_name(ctx);
    let (entrypoint, cmd) = command(task)?;
    let (mut binds, volume_driver) = volumes(container, docker, ctx.directory)?;
    binds.extend(persistent_volume_binds(task, ctx.volumes));
    let network = network(container, docker)?;
    if container.hostname.is_some() && network == HOST_NETWORK {
        return Err(invalid("Unable to set hostname with host network mode"));
    }
    let ports = port_bindings(docker, &network, &task.resources)?;
    let mut run = DockerRun {
        env: Vec::new(),
        labels: labels(task, ctx),
        image: docker.image.clone(),
        force_pull: docker.force_pull_image.unwrap_or(false),
        entrypoint,
        cmd,
        binds,
        volume_driver,
        network,
        ports,
        hostname: container.hostname.clone(),
        privileged: docker.privileged,
        limits: limits(task),
        options: ParamOptions::default(),
        name,
    };
    let mut env = environment(task, &run.name);
    params::apply(&docker.parameters, &mut run, &mut env)?;
    run.env = dedupe_env(env);
    Ok(run)
}

/// `mesos-<container id>` (Mesos' convention); without a container id (an agent that
/// does not send one) the executor id stands in.
pub fn container_name(ctx: &DockerContext) -> String {
    format!(
        "{NAME_PREFIX}{}",
        ctx.container_id.unwrap_or(ctx.executor_id)
    )
}

fn labels(task: &TaskInfo, ctx: &DockerContext) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            LABEL_AGENT.to_string(),
            ctx.agent_id.unwrap_or_default().to_string(),
        ),
        (LABEL_FRAMEWORK.to_string(), ctx.framework_id.to_string()),
        (LABEL_EXECUTOR.to_string(), ctx.executor_id.to_string()),
        (LABEL_TASK.to_string(), task.task_id.to_string()),
    ])
}

/// Mesos: with `shell` the entrypoint becomes `/bin/sh` and the command `-c value`;
/// otherwise the image's entrypoint runs with `value` (if set) and then `arguments`.
fn command(task: &TaskInfo) -> Result<(Option<Vec<String>>, Vec<String>), PlanError> {
    let command = task
        .command
        .as_ref()
        .ok_or_else(|| invalid("Task has no CommandInfo"))?;
    if command.shell {
        let value = command
            .value
            .clone()
            .ok_or_else(|| invalid("Shell specified but no command value provided"))?;
        let cmd = vec!["-c".to_string(), value];
        return Ok((Some(vec!["/bin/sh".to_string()]), cmd));
    }
    let cmd = command
        .value
        .iter()
        .chain(&command.arguments)
        .cloned()
        .collect();
    Ok((None, cmd))
}

/// The command's VALUE variables, then the variables Mesos sets for Docker tasks (which
/// win over the command's).
fn environment(task: &TaskInfo, name: &str) -> Vec<(String, String)> {
    let vars = task
        .command
        .iter()
        .flat_map(|c| c.environment.iter())
        .flat_map(|e| e.variables.iter())
        .filter(|v| matches!(v.kind.as_deref(), None | Some("VALUE")));
    let mut env: Vec<(String, String)> = vars
        .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
        .collect();
    env.push(("MESOS_TASK_ID".into(), task.task_id.to_string()));
    env.push(("MESOS_SANDBOX".into(), SANDBOX_IN_CONTAINER.into()));
    env.push(("MESOS_CONTAINER_NAME".into(), name.into()));
    let role = task
        .resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()));
    if let Some(role) = role {
        env.push(("MESOS_ALLOCATION_ROLE".into(), role));
    }
    env
}

/// One `NAME=value` per name, in first-seen order, with the last value.
fn dedupe_env(env: Vec<(String, String)>) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in env {
        if values.insert(name.clone(), value).is_none() {
            order.push(name);
        }
    }
    order
        .into_iter()
        .map(|name| {
            let value = values.get(&name).cloned().unwrap_or_default();
            format!("{name}={value}")
        })
        .collect()
}

/// Bind mounts: each volume, then the sandbox at `/mnt/mesos/sandbox` (Mesos' order).
fn volumes(
    container: &ContainerInfo,
    docker: &DockerInfo,
    directory: &Path,
) -> Result<(Vec<String>, Option<String>), PlanError> {
    let mut binds = Vec::new();
    let mut driver: Option<String> = None;
    for volume in &container.volumes {
        if let Some(bind) = volume_bind(volume, docker, directory, &mut driver)? {
            binds.push(bind);
        }
    }
    binds.push(format!("{}:{SANDBOX_IN_CONTAINER}", directory.display()));
    if let Some(deprecated) = &docker.volume_driver {
        if driver.as_ref().is_some_and(|d| d != deprecated) {
            return Err(invalid("Only one volume driver per task is supported"));
        }
        driver = Some(deprecated.clone());
    }
    Ok((binds, driver))
}

/// Persistent volumes among the task's resources, bind-mounted at
/// `/mnt/mesos/sandbox/<container_path>` from the host directories the agent named
/// (Mesos mounts them into the sandbox the same way); `RO` volumes read-only.
fn persistent_volume_binds(
    task: &TaskInfo,
    hosts: &std::collections::BTreeMap<String, std::path::PathBuf>,
) -> Vec<String> {
    let res = strata_resources::Resources::from_wire(&task.resources).unwrap_or_default();
    res.iter()
        .filter(|r| r.is_persistent_volume())
        .filter_map(|r| {
            let path = r.volume_container_path()?;
            let host = hosts.get(path)?;
            let mode = if r.volume_read_only() { "ro" } else { "rw" };
            Some(format!(
                "{}:{SANDBOX_IN_CONTAINER}/{path}:{mode}",
                host.display()
            ))
        })
        .collect()
}

fn volume_bind(
    volume: &Volume,
    docker: &DockerInfo,
    directory: &Path,
    driver: &mut Option<String>,
) -> Result<Option<String>, PlanError> {
    let target = match volume.container_path.starts_with('/') {
        true => volume.container_path.clone(),
        false => format!("{SANDBOX_IN_CONTAINER}/{}", volume.container_path),
    };
    let mode = match volume.mode {
        VolumeMode::Rw => "rw",
        VolumeMode::Ro => "ro",
    };
    if let Some(host) = &volume.host_path {
        let host_relative = !host.starts_with('/');
        if host_relative && !volume.container_path.starts_with('/') {
            return Err(invalid(format!(
                "Both host_path '{host}' and container_path '{}' of a volume are relative",
                volume.container_path
            )));
        }
        let source = match host_relative && docker.volume_driver.is_none() {
            true => directory.join(host).display().to_string(),
            false => host.clone(),
        };
        return Ok(Some(format!("{source}:{target}:{mode}")));
    }
    let Some(source) = &volume.source else {
        return Err(invalid("Host path or volume source is required"));
    };
    let named = source
        .docker_volume
        .as_ref()
        .filter(|_| source.kind.as_deref() == Some("DOCKER_VOLUME"));
    let Some(named) = named else {
        tracing::warn!(kind = ?source.kind, "Ignoring a volume type Docker does not support");
        return Ok(None);
    };
    if let Some(d) = &named.driver {
        if driver.as_ref().is_some_and(|current| current != d) {
            return Err(invalid("Only one volume driver is supported"));
        }
        *driver = Some(d.clone());
    }
    Ok(Some(format!("{}:{target}:{mode}", named.name)))
}

/// The Docker network mode: HOST (default), BRIDGE, NONE, or USER's single named network.
fn network(container: &ContainerInfo, docker: &DockerInfo) -> Result<String, PlanError> {
    Ok(match docker.network {
        DockerNetwork::Host => HOST_NETWORK.into(),
        DockerNetwork::Bridge => "bridge".into(),
        DockerNetwork::None => "none".into(),
        DockerNetwork::User => match container.network_infos.as_slice() {
            [] => return Err(invalid("No network info found in container info")),
            [only] => only
                .name
                .clone()
                .ok_or_else(|| invalid("No network name found in network info"))?,
            _ => {
                return Err(invalid(
                    "Only a single network can be defined in Docker run",
                ))
            }
        },
    })
}

/// Port mappings, allowed on bridge and user networks for host ports the task holds.
fn port_bindings(
    docker: &DockerInfo,
    network: &str,
    resources: &[WireResource],
) -> Result<Vec<PortBinding>, PlanError> {
    if docker.port_mappings.is_empty() {
        return Ok(Vec::new());
    }
    if network == HOST_NETWORK || network == "none" {
        return Err(invalid(
            "Port mappings are only supported for bridge and user-defined networks",
        ));
    }
    let ranges: Vec<(u64, u64)> = resources
        .iter()
        .filter(|r| r.name == "ports")
        .flat_map(|r| r.ranges.iter().flat_map(|rs| rs.range.iter()))
        .map(|r| (r.begin, r.end))
        .collect();
    if ranges.is_empty() {
        return Err(invalid("Port mappings require port resources"));
    }
    let mut out = Vec::new();
    for mapping in &docker.port_mappings {
        let port = u64::from(mapping.host_port);
        if !ranges.iter().any(|(b, e)| (*b..=*e).contains(&port)) {
            return Err(invalid(format!(
                "Port [{}] not included in resources",
                mapping.host_port
            )));
        }
        out.push(PortBinding {
            host_port: mapping.host_port,
            container_port: mapping.container_port,
            protocol: mapping.protocol.clone().unwrap_or_else(|| "tcp".into()),
        });
    }
    Ok(out)
}

fn scalar(resources: &[WireResource], name: &str) -> Option<f64> {
    let values = resources
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.as_ref().map(|s| s.value));
    values.reduce(|a, b| a + b)
}

/// A `limits` entry: `{"cpus": {"value": 2}}`, `"Infinity"` allowed.
fn task_limit(task: &TaskInfo, name: &str) -> Option<f64> {
    let value = task.limits.as_ref()?.get(name)?.get("value")?;
    match value {
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("infinity") => Some(f64::INFINITY),
        serde_json::Value::String(s) => s.parse().ok(),
        other => other.as_f64(),
    }
}

/// Mesos: shares = 1024 × cpus (≥ 2); a CFS quota from the cpu limit, else from the
/// request; memory = the limit (none when infinite) or else the request, ≥ 32 MB, with
/// the request as reservation when a limit is given.
fn limits(task: &TaskInfo) -> DockerLimits {
    let cpus = scalar(&task.resources, "cpus");
    let mem_mb = scalar(&task.resources, "mem");
    let quota = |cpus: f64| ((CPU_CFS_PERIOD_US as f64 * cpus) as i64).max(MIN_CPU_CFS_QUOTA_US);
    let mem = |mb: f64| ((mb * MB) as i64).max(MIN_MEMORY_BYTES);
    let cpu_quota_us = match task_limit(task, "cpus") {
        Some(limit) if limit.is_infinite() => None,
        Some(limit) => Some(quota(limit)),
        None => cpus.map(quota),
    };
    let (memory_bytes, memory_reservation_bytes) = match task_limit(task, "mem") {
        Some(limit) => (limit.is_finite().then(|| mem(limit)), mem_mb.map(mem)),
        None => (mem_mb.map(mem), None),
    };
    DockerLimits {
        cpu_shares: cpus.map(|c| ((CPU_SHARES_PER_CPU * c) as i64).max(MIN_CPU_SHARES)),
        cpu_quota_us,
        memory_bytes,
        memory_reservation_bytes,
    }
}
