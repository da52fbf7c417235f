//! Master settings that shape the core's behaviour (timeouts, limits, identity).

/// Default offer timeout in seconds. Mesos has none (offers are held until declined),
/// which lets one stuck scheduler starve everyone; DC/OS sets a timeout, and Strata
/// follows it: a minute is far longer than any live scheduler needs to answer.
pub const DEFAULT_OFFER_TIMEOUT: f64 = 60.0;

/// Master configuration. Durations are seconds.
#[derive(Debug, Clone)]
pub struct Config {
    /// This master run's id (a UUID); prefixes framework, agent and offer ids.
    pub master_id: String,
    pub hostname: String,
    /// IPv4 address advertised in MasterInfo.
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    pub version: String,
    /// How often the master pings each agent.
    pub agent_ping_interval: f64,
    /// Pings an agent may miss before it is marked unreachable.
    pub max_agent_ping_timeouts: u32,
    /// How long a disconnected (or, after a master restart, not yet re-registered) agent
    /// has to come back before it is marked unreachable.
    pub agent_reregister_timeout: f64,
    /// Scheduler heartbeat interval advertised in SUBSCRIBED.
    pub heartbeat_interval: f64,
    /// Offers (and inverse offers) older than this are rescinded (None = never).
    pub offer_timeout: Option<f64>,
    /// This master's `DomainInfo` (`--domain`): agents in another region are offered
    /// only to REGION_AWARE frameworks; agents with a domain need a master with one.
    pub domain: Option<serde_json::Value>,
    pub max_completed_frameworks: usize,
    pub max_completed_tasks_per_framework: usize,
    pub max_unreachable_tasks_per_framework: usize,
    /// Role weights given at start (`--weights`).
    pub weights: Vec<(String, f64)>,
    /// Seconds between the inverse offer warning a preempted revocable task's framework
    /// and its eviction.
    pub preemption_grace: f64,
    /// Flags echoed by /master/state and GET_FLAGS.
    pub flags: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            master_id: "00000000-0000-0000-0000-000000000000".into(),
            hostname: "localhost".into(),
            ip: std::net::Ipv4Addr::LOCALHOST,
            port: 5050,
            version: env!("CARGO_PKG_VERSION").into(),
            agent_ping_interval: 3.0,
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout: 15.0,
            heartbeat_interval: 15.0,
            offer_timeout: Some(DEFAULT_OFFER_TIMEOUT),
            domain: None,
            max_completed_frameworks: 50,
            max_completed_tasks_per_framework: 1000,
            max_unreachable_tasks_per_framework: 1000,
            weights: Vec::new(),
            preemption_grace: 5.0,
            flags: Vec::new(),
        }
    }
}

impl Config {
    /// Seconds without a pong after which an agent is unreachable.
    pub fn agent_ping_timeout(&self) -> f64 {
        self.agent_ping_interval * f64::from(self.max_agent_ping_timeouts)
    }
}
