//! `strata master` flags, spelled as Mesos spells them (`--work_dir`, `--agent_ping_timeout`).

use clap::Args;

/// Master command-line flags.
#[derive(Debug, Clone, Args)]
pub struct MasterFlags {
    /// IP address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "STRATA_MASTER_IP")]
    pub ip: String,
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 5050, env = "STRATA_MASTER_PORT")]
    pub port: u16,
    /// Hostname advertised to frameworks and agents (default: the listen IP).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Directory for the registry (admitted agents, framework ids).
    #[arg(
        long = "work_dir",
        default_value = "/var/lib/strata/master",
        env = "STRATA_MASTER_WORK_DIR"
    )]
    pub work_dir: String,
    /// Seconds between pings to each agent.
    #[arg(long = "agent_ping_interval", default_value_t = 3.0)]
    pub agent_ping_interval: f64,
    /// Pings an agent may miss before it is marked unreachable (interval × this = timeout).
    #[arg(long = "max_agent_ping_timeouts", default_value_t = 5)]
    pub max_agent_ping_timeouts: u32,
    /// Seconds a disconnected or recovered agent has to re-register.
    #[arg(long = "agent_reregister_timeout", default_value_t = 15.0)]
    pub agent_reregister_timeout: f64,
    /// Seconds between allocation cycles (resources freed in between are offered at once).
    #[arg(long = "allocation_interval", default_value_t = 1.0)]
    pub allocation_interval: f64,
    /// Seconds between HEARTBEAT events on scheduler and operator streams.
    #[arg(long = "heartbeat_interval", default_value_t = 15.0)]
    pub heartbeat_interval: f64,
    /// Rescind offers (and inverse offers) held longer than this many seconds; 0 = never.
    /// Mesos has no default; Strata rescinds after a minute so a stuck scheduler cannot
    /// sit on resources (as DC/OS configures Mesos).
    #[arg(long = "offer_timeout", default_value_t = strata_master_core::DEFAULT_OFFER_TIMEOUT)]
    pub offer_timeout: f64,
    /// Seconds between the inverse offer that warns a framework of a preempted revocable
    /// task (for higher-priority work) and the task's eviction.
    #[arg(long = "preemption_grace_period", default_value_t = 5.0)]
    pub preemption_grace_period: f64,
    /// This master's domain: JSON `{"fault_domain":{"region":{"name":"r1"},"zone":{"name":"z1"}}}`
    /// or a file holding it (`file:///path` or a path). Agents in other regions are offered
    /// only to REGION_AWARE frameworks.
    #[arg(long)]
    pub domain: Option<String>,
    /// Role weights, `role=weight,role=weight`.
    #[arg(long)]
    pub weights: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long = "max_request_bytes", default_value_t = 8 << 20)]
    pub max_request_bytes: usize,
}

impl MasterFlags {
    /// Flags for a master on `ip:port` with its registry in `work_dir`.
    pub fn new(ip: &str, port: u16, work_dir: &str) -> Self {
        Self {
            ip: ip.to_string(),
            port,
            hostname: None,
            work_dir: work_dir.to_string(),
            agent_ping_interval: 3.0,
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout: 15.0,
            allocation_interval: 1.0,
            heartbeat_interval: 15.0,
            offer_timeout: strata_master_core::DEFAULT_OFFER_TIMEOUT,
            preemption_grace_period: 5.0,
            domain: None,
            weights: None,
            max_request_bytes: 8 << 20,
        }
    }

    /// The offer timeout the core uses (None = never).
    pub fn offer_timeout(&self) -> anyhow::Result<Option<f64>> {
        anyhow::ensure!(
            self.offer_timeout.is_finite() && self.offer_timeout >= 0.0,
            "--offer_timeout must be a number of seconds (0 = never), got {}",
            self.offer_timeout
        );
        Ok((self.offer_timeout > 0.0).then_some(self.offer_timeout))
    }

    /// Parsed `--domain` (JSON, or a file holding it).
    pub fn domain(&self) -> anyhow::Result<Option<serde_json::Value>> {
        strata_api::domain::from_flag(self.domain.as_deref()).map_err(|e| anyhow::anyhow!(e))
    }

    /// Parsed `--weights`.
    pub fn weights(&self) -> anyhow::Result<Vec<(String, f64)>> {
        let Some(text) = self.weights.as_deref() else {
            return Ok(Vec::new());
        };
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|item| {
                let (role, w) = item
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--weights item '{item}' is not role=weight"))?;
                let w: f64 = w
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--weights: '{w}' is not a number"))?;
                anyhow::ensure!(
                    w > 0.0 && w.is_finite(),
                    "--weights: weight of '{role}' must be positive"
                );
                Ok((role.trim().to_string(), w))
            })
            .collect()
    }

    /// `(name, value)` pairs for /master/state and GET_FLAGS.
    pub fn as_pairs(&self) -> Vec<(String, String)> {
        vec![
            ("ip".into(), self.ip.clone()),
            ("port".into(), self.port.to_string()),
            ("hostname".into(), self.hostname.clone().unwrap_or_default()),
            ("work_dir".into(), self.work_dir.clone()),
            (
                "agent_ping_interval".into(),
                format!("{}secs", self.agent_ping_interval),
            ),
            (
                "max_agent_ping_timeouts".into(),
                self.max_agent_ping_timeouts.to_string(),
            ),
            (
                "agent_reregister_timeout".into(),
                format!("{}secs", self.agent_reregister_timeout),
            ),
            (
                "allocation_interval".into(),
                format!("{}secs", self.allocation_interval),
            ),
            (
                "heartbeat_interval".into(),
                format!("{}secs", self.heartbeat_interval),
            ),
            (
                "offer_timeout".into(),
                if self.offer_timeout > 0.0 {
                    format!("{}secs", self.offer_timeout)
                } else {
                    String::new()
                },
            ),
            (
                "preemption_grace_period".into(),
                format!("{}secs", self.preemption_grace_period),
            ),
            ("domain".into(), self.domain.clone().unwrap_or_default()),
            ("weights".into(), self.weights.clone().unwrap_or_default()),
        ]
    }
}
