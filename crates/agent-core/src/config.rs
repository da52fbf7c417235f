//! Agent settings the core needs: identity, sandbox layout root and timeouts.

use strata_api::AgentInfo;

/// Agent configuration. Durations are seconds.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the agent registers with (hostname, port, resources, attributes; `id` unset).
    pub agent_info: AgentInfo,
    /// `ip:port` the agent's HTTP server listens on.
    pub address: String,
    /// Root of sandboxes: `<work_dir>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>`.
    pub work_dir: String,
    pub version: String,
    /// Prefix for container ids (random per agent run) and for agent-made update uuids.
    pub id_prefix: String,
    /// 8 random bytes (from the shell) that make agent-made update uuids unique.
    pub uuid_seed: [u8; 8],
    /// An executor must subscribe within this long (Mesos `--executor_registration_timeout`).
    pub executor_registration_timeout: f64,
    /// After an agent restart, a recovered executor must re-subscribe within this long.
    pub executor_reregistration_timeout: f64,
    /// Default time between SHUTDOWN and destroying an executor's container.
    pub executor_shutdown_grace_period: f64,
    /// A checkpointing framework's executor shuts itself down after its agent has been
    /// gone this long (`MESOS_RECOVERY_TIMEOUT`).
    pub recovery_timeout: f64,
    /// First retry of an unacknowledged status update; doubles up to the max.
    pub status_update_retry_initial: f64,
    pub status_update_retry_max: f64,
    /// Completed frameworks and executors kept for the state endpoint.
    pub max_completed_frameworks: usize,
    pub max_completed_executors_per_framework: usize,
    pub max_completed_tasks_per_executor: usize,
    /// Flags echoed by `/state` and GET_FLAGS.
    pub flags: Vec<(String, String)>,
    /// Containers get their own mount namespace (`--isolation filesystem/linux`): volumes
    /// of a new container's tasks are bind-mounted (read-only ones read-only) instead of
    /// linked.
    pub bind_volumes: bool,
}

impl Config {
    /// A config with Mesos' default timings for the given identity.
    pub fn new(agent_info: AgentInfo, address: String, work_dir: String) -> Self {
        Self {
            agent_info,
            address,
            work_dir,
            version: env!("CARGO_PKG_VERSION").into(),
            id_prefix: "c".into(),
            uuid_seed: [0; 8],
            executor_registration_timeout: 60.0,
            executor_reregistration_timeout: 5.0,
            executor_shutdown_grace_period: 5.0,
            recovery_timeout: 900.0,
            status_update_retry_initial: 10.0,
            status_update_retry_max: 600.0,
            max_completed_frameworks: 50,
            max_completed_executors_per_framework: 150,
            max_completed_tasks_per_executor: 200,
            flags: Vec::new(),
            bind_volumes: false,
        }
    }
}
