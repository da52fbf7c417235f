//! `strata agent` flags, spelled as Mesos spells them.

use clap::Args;

/// Agent command-line flags.
#[derive(Debug, Clone, Args)]
pub struct AgentFlags {
    /// The master, `host:port`.
    #[arg(long, env = "STRATA_MASTER")]
    pub master: String,
    /// IP address to listen on and to advertise.
    #[arg(long, default_value = "127.0.0.1", env = "STRATA_AGENT_IP")]
    pub ip: String,
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 5051, env = "STRATA_AGENT_PORT")]
    pub port: u16,
    /// Hostname advertised in offers (default: the IP).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Sandboxes and agent metadata live here.
    #[arg(
        long = "work_dir",
        default_value = "/var/lib/strata/agent",
        env = "STRATA_AGENT_WORK_DIR"
    )]
    pub work_dir: String,
    /// Resources, Mesos syntax: `cpus:4;mem:8192;ports:[31000-32000];disk(ops):100`.
    /// Unspecified cpus, mem, disk and ports are detected.
    #[arg(long)]
    pub resources: Option<String>,
    /// Attributes, Mesos syntax: `rack:r1;zone:a`.
    #[arg(long)]
    pub attributes: Option<String>,
    /// This agent's domain: JSON `{"fault_domain":{"region":{"name":"r1"},"zone":{"name":"z1"}}}`
    /// or a file holding it (`file:///path` or a path); carried in offers.
    #[arg(long)]
    pub domain: Option<String>,
    /// Seconds an executor has to subscribe after it is started.
    #[arg(long = "executor_registration_timeout", default_value_t = 60.0)]
    pub executor_registration_timeout: f64,
    /// Isolators, Mesos syntax: `cgroups/cpu,cgroups/mem,cgroups/pids` (or `cgroups/all`);
    /// `posix/cpu,posix/mem` isolates nothing; `namespaces/pid` gives containers their own
    /// pid namespace; `filesystem/linux` their own mount namespace with persistent volumes
    /// bind-mounted (`RO` ones read-only; without it volumes are links and `RO` is not
    /// enforced for process tasks). Without usable cgroups (or namespaces) the agent logs
    /// a warning and runs tasks unisolated.
    #[arg(long, default_value = "cgroups/cpu,cgroups/mem")]
    pub isolation: String,
    /// Where the cgroup hierarchies are mounted.
    #[arg(long = "cgroups_hierarchy", default_value = "/sys/fs/cgroup")]
    pub cgroups_hierarchy: String,
    /// Parent cgroup of this agent's containers (default: `strata/<hash of work_dir>`, so
    /// several agents on one machine never touch each other's containers).
    #[arg(long = "cgroups_root")]
    pub cgroups_root: Option<String>,
    /// Cap CPU with a CFS quota equal to the task's cpus (its `limits` when given).
    #[arg(long = "cgroups_enable_cfs", default_value_t = true, action = clap::ArgAction::Set)]
    pub cgroups_enable_cfs: bool,
    /// Most processes (and threads) one container may hold: `pids.max` of its cgroup.
    /// Needs `cgroups/pids` (or `cgroups/all`) in `--isolation`. Unset: no limit.
    /// Docker tasks take theirs from the `pids-limit` parameter.
    #[arg(long = "cgroups_pids_max", value_parser = clap::value_parser!(u64).range(1..))]
    pub cgroups_pids_max: Option<u64>,
    /// Sandbox `stdout`/`stderr` are rotated past this many bytes.
    #[arg(long = "sandbox_log_max_size", default_value_t = 10 << 20)]
    pub sandbox_log_max_size: u64,
    /// Rotated sandbox logs kept per file (`stdout.1` … `stdout.N`).
    #[arg(long = "sandbox_log_max_files", default_value_t = 2)]
    pub sandbox_log_max_files: u32,
    /// Finished sandboxes are removed after this many seconds (sooner as the disk fills).
    #[arg(long = "gc_delay", default_value_t = 604_800.0)]
    pub gc_delay: f64,
    /// Disk fraction kept free when scaling the GC delay.
    #[arg(long = "gc_disk_headroom", default_value_t = 0.1)]
    pub gc_disk_headroom: f64,
    /// Seconds between sandbox GC passes.
    #[arg(long = "disk_watch_interval", default_value_t = 60.0)]
    pub disk_watch_interval: f64,
    /// After an agent restart, seconds a recovered executor has to re-subscribe.
    #[arg(long = "executor_reregistration_timeout", default_value_t = 5.0)]
    pub executor_reregistration_timeout: f64,
    /// Containers using revocable cpus get low CPU priority (cgroups v1 `cpu.shares` of 10
    /// per cpu, v2 `cpu.weight` of 1 per cpu), as Mesos does by default.
    #[arg(long = "revocable_cpu_low_priority", default_value_t = true, action = clap::ArgAction::Set)]
    pub revocable_cpu_low_priority: bool,
    /// Seconds a checkpointing framework's executor waits for a lost agent to come back
    /// before it shuts itself down (Mesos `--recovery_timeout`, 15 minutes).
    #[arg(long = "recovery_timeout", default_value_t = 900.0)]
    pub recovery_timeout: f64,
    /// Default seconds between SHUTDOWN and killing an executor.
    #[arg(long = "executor_shutdown_grace_period", default_value_t = 5.0)]
    pub executor_shutdown_grace_period: f64,
    /// First retry of an unacknowledged status update, seconds (doubles up to 10 min).
    #[arg(long = "status_update_retry_interval", default_value_t = 10.0)]
    pub status_update_retry_interval: f64,
    /// The `strata` binary used to run the built-in executors (default: this binary).
    #[arg(long = "executor_binary")]
    pub executor_binary: Option<String>,
    /// Bytes the fetcher cache (`<work_dir>/fetch-cache`) may hold; 0 disables caching.
    #[arg(long = "fetcher_cache_size", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub fetcher_cache_size: u64,
    /// Containerizers, Mesos syntax: `process` (Mesos' `mesos` is an alias) runs tasks as
    /// processes, `docker` runs DOCKER tasks in Docker containers.
    #[arg(long, default_value = "process,docker", value_parser = parse_containerizers)]
    pub containerizers: String,
    /// Resource estimator (Mesos' `--resource_estimator`): `none` lends nothing (Mesos'
    /// default), `fixed` lends `--oversubscribed_resources`, `usage` lends the allocated
    /// but idle cpus and memory of non-revocable containers, as revocable resources.
    #[arg(long, default_value = "none")]
    pub oversubscription: String,
    /// The fixed estimator's amount (Mesos' FixedResourceEstimator `resources`):
    /// `cpus:2;mem:256`, or `file:///path` holding it, re-read every interval. Given
    /// alone it selects `--oversubscription=fixed`.
    #[arg(long = "oversubscribed_resources")]
    pub oversubscribed_resources: Option<String>,
    /// Seconds between estimates; the master hears of each change.
    #[arg(long = "oversubscribed_resources_interval", default_value_t = 15.0)]
    pub oversubscribed_resources_interval: f64,
}

impl AgentFlags {
    /// Flags for an agent on `ip:port` registering with `master`.
    pub fn new(master: &str, ip: &str, port: u16, work_dir: &str) -> Self {
        Self {
            master: master.to_string(),
            ip: ip.to_string(),
            port,
            hostname: None,
            work_dir: work_dir.to_string(),
            resources: None,
            attributes: None,
            domain: None,
            executor_registration_timeout: 60.0,
            executor_reregistration_timeout: 5.0,
            sandbox_log_max_size: 10 << 20,
            sandbox_log_max_files: 2,
            gc_delay: 604_800.0,
            gc_disk_headroom: 0.1,
            disk_watch_interval: 60.0,
            isolation: "cgroups/cpu,cgroups/mem".into(),
            cgroups_hierarchy: "/sys/fs/cgroup".into(),
            cgroups_root: None,
            cgroups_enable_cfs: true,
            cgroups_pids_max: None,
            executor_shutdown_grace_period: 5.0,
            recovery_timeout: 900.0,
            revocable_cpu_low_priority: true,
            status_update_retry_interval: 10.0,
            executor_binary: None,
            fetcher_cache_size: 2 * 1024 * 1024 * 1024,
            containerizers: "process,docker".into(),
            oversubscription: "none".into(),
            oversubscribed_resources: None,
            oversubscribed_resources_interval: 15.0,
        }
    }

    /// `(name, value)` pairs for `/state` and GET_FLAGS.
    pub fn as_pairs(&self) -> Vec<(String, String)> {
        vec![
            ("master".into(), self.master.clone()),
            ("ip".into(), self.ip.clone()),
            ("port".into(), self.port.to_string()),
            ("hostname".into(), self.hostname.clone().unwrap_or_default()),
            ("work_dir".into(), self.work_dir.clone()),
            (
                "resources".into(),
                self.resources.clone().unwrap_or_default(),
            ),
            ("isolation".into(), self.isolation.clone()),
            (
                "cgroups_pids_max".into(),
                self.cgroups_pids_max
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
            ),
            (
                "attributes".into(),
                self.attributes.clone().unwrap_or_default(),
            ),
            ("domain".into(), self.domain.clone().unwrap_or_default()),
            ("containerizers".into(), self.containerizers.clone()),
            (
                "executor_registration_timeout".into(),
                format!("{}secs", self.executor_registration_timeout),
            ),
            (
                "executor_shutdown_grace_period".into(),
                format!("{}secs", self.executor_shutdown_grace_period),
            ),
            (
                "recovery_timeout".into(),
                format!("{}secs", self.recovery_timeout),
            ),
            ("oversubscription".into(), self.oversubscription.clone()),
            (
                "oversubscribed_resources".into(),
                self.oversubscribed_resources.clone().unwrap_or_default(),
            ),
            (
                "oversubscribed_resources_interval".into(),
                format!("{}secs", self.oversubscribed_resources_interval),
            ),
        ]
    }
}

impl AgentFlags {
    /// Parsed `--domain` (JSON, or a file holding it).
    pub fn domain(&self) -> anyhow::Result<Option<serde_json::Value>> {
        strata_api::domain::from_flag(self.domain.as_deref()).map_err(|e| anyhow::anyhow!(e))
    }

    /// Whether `--containerizers` includes `docker`.
    pub fn docker_enabled(&self) -> bool {
        self.containerizers.split(',').any(|c| c.trim() == "docker")
    }
}

/// `--containerizers`: a comma-separated list of `process`, `mesos` (its Mesos name) and
/// `docker`, as Mesos refuses an unknown one at start.
fn parse_containerizers(text: &str) -> Result<String, String> {
    let names: Vec<&str> = text.split(',').map(str::trim).collect();
    match names
        .iter()
        .find(|n| !matches!(**n, "process" | "mesos" | "docker"))
    {
        Some(bad) => Err(format!(
            "unknown containerizer '{bad}': use process (or mesos) and/or docker"
        )),
        None => Ok(names.join(",")),
    }
}
