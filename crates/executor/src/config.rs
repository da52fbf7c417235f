//! The executor's configuration, read from the `MESOS_*` environment the agent sets (the
//! same names Mesos uses), validated once at start-up.

use crate::duration::{parse_duration, DurationError};
use std::path::PathBuf;
use std::time::Duration;
use strata_api::{ExecutorId, FrameworkId};

/// Shutdown grace period when `MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD` is unset (agent default).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// `MESOS_RECOVERY_TIMEOUT` default (agent `--recovery_timeout`).
pub const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// `MESOS_SUBSCRIPTION_BACKOFF_MAX` default (agent `--executor_reregistration_timeout`).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Why the environment cannot start an executor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set; `strata executor` must be started by a Strata (or Mesos) agent, which sets it")]
    Missing(&'static str),
    #[error("{name} is invalid: {source}")]
    Duration {
        name: &'static str,
        #[source]
        source: DurationError,
    },
    #[error("MESOS_AGENT_ENDPOINT='{0}' is not an ip:port address")]
    Endpoint(String),
}

/// Everything the executor needs from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    /// `ip:port` of the agent's HTTP endpoint.
    pub agent_endpoint: String,
    /// The host sandbox (`MESOS_DIRECTORY`, else the working directory).
    pub directory: PathBuf,
    /// The sandbox as tasks see it (`MESOS_SANDBOX`, else `directory`).
    pub sandbox: PathBuf,
    pub checkpoint: bool,
    pub shutdown_grace: Duration,
    pub recovery_timeout: Duration,
    pub backoff_max: Duration,
    pub agent_id: Option<String>,
    /// Whether DOCKER tasks may run (`STRATA_DOCKER`, set by the agent from its
    /// `--containerizers`; unset means yes).
    pub docker_enabled: bool,
    /// Persistent volumes of DOCKER tasks: container path → host directory
    /// (`STRATA_VOLUMES`, a JSON object set by the agent; unreadable → none).
    pub docker_volumes: std::collections::BTreeMap<String, PathBuf>,
}

impl Config {
    /// Reads the configuration through `get` (e.g. `|k| std::env::var(k).ok()`).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let duration =
            |name: &'static str, default: Duration| match get(name).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(text) => {
                    parse_duration(&text).map_err(|source| ConfigError::Duration { name, source })
                }
            };
        let agent_endpoint = required("MESOS_AGENT_ENDPOINT")?;
        if !agent_endpoint
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        {
            return Err(ConfigError::Endpoint(agent_endpoint));
        }
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let directory = get("MESOS_DIRECTORY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or(cwd);
        let sandbox = get("MESOS_SANDBOX")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| directory.clone());
        Ok(Config {
            framework_id: FrameworkId::new(required("MESOS_FRAMEWORK_ID")?),
            executor_id: ExecutorId::new(required("MESOS_EXECUTOR_ID")?),
            agent_endpoint,
            directory,
            sandbox,
            checkpoint: get("MESOS_CHECKPOINT").as_deref() == Some("1"),
            shutdown_grace: duration(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                DEFAULT_SHUTDOWN_GRACE,
            )?,
            recovery_timeout: duration("MESOS_RECOVERY_TIMEOUT", DEFAULT_RECOVERY_TIMEOUT)?,
            backoff_max: duration("MESOS_SUBSCRIPTION_BACKOFF_MAX", DEFAULT_BACKOFF_MAX)?,
            agent_id: get("MESOS_SLAVE_ID")
                .or_else(|| get("MESOS_AGENT_ID"))
                .filter(|v| !v.is_empty()),
            docker_enabled: get("STRATA_DOCKER").as_deref() != Some("0"),
            docker_volumes: get("STRATA_VOLUMES")
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or_default(),
        })
    }

    /// The executor API URL on the agent.
    pub fn executor_url(&self) -> String {
        format!("http://{}/api/v1/executor", self.agent_endpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 4] = [
        ("MESOS_FRAMEWORK_ID", "fw"),
        ("MESOS_EXECUTOR_ID", "ex"),
        ("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051"),
        ("MESOS_DIRECTORY", "/tmp/sb"),
    ];

    #[test]
    fn reads_defaults() {
        let c = env(&BASE).unwrap();
        assert_eq!(c.executor_url(), "http://127.0.0.1:5051/api/v1/executor");
        assert_eq!(c.sandbox, PathBuf::from("/tmp/sb"));
        assert!(!c.checkpoint);
        assert_eq!(c.shutdown_grace, DEFAULT_SHUTDOWN_GRACE);
        assert_eq!(c.recovery_timeout, DEFAULT_RECOVERY_TIMEOUT);
        assert_eq!(c.backoff_max, DEFAULT_BACKOFF_MAX);
        assert!(c.docker_enabled);
    }

    #[test]
    fn reads_overrides() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("MESOS_SANDBOX", "/mnt/mesos/sandbox"),
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "10secs"),
            ("MESOS_RECOVERY_TIMEOUT", "1mins"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "500ms"),
            ("MESOS_SLAVE_ID", "a-S0"),
            ("STRATA_DOCKER", "0"),
        ]);
        let c = env(&pairs).unwrap();
        assert_eq!(c.sandbox, PathBuf::from("/mnt/mesos/sandbox"));
        assert!(c.checkpoint);
        assert_eq!(c.shutdown_grace, Duration::from_secs(10));
        assert_eq!(c.recovery_timeout, Duration::from_secs(60));
        assert_eq!(c.backoff_max, Duration::from_millis(500));
        assert_eq!(c.agent_id.as_deref(), Some("a-S0"));
        assert!(!c.docker_enabled);
    }

    #[test]
    fn rejects_missing_and_malformed() {
        assert_eq!(
            env(&BASE[1..]).unwrap_err(),
            ConfigError::Missing("MESOS_FRAMEWORK_ID")
        );
        assert_eq!(
            env(&BASE[..2]).unwrap_err(),
            ConfigError::Missing("MESOS_AGENT_ENDPOINT")
        );
        let mut bad = BASE.to_vec();
        bad.push(("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5"));
        assert!(matches!(
            env(&bad).unwrap_err(),
            ConfigError::Duration {
                name: "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                ..
            }
        ));
        let mut bad = BASE.to_vec();
        bad[2] = ("MESOS_AGENT_ENDPOINT", "localhost");
        assert_eq!(
            env(&bad).unwrap_err(),
            ConfigError::Endpoint("localhost".into())
        );
    }
}
