//! The agent's resource estimator loop (Mesos' `--resource_estimator`): every
//! `--oversubscribed_resources_interval` it produces an estimate of what this agent can
//! lend as revocable resources and hands it to the core, which runs the QoS correction
//! and reports a changed total to the master. `fixed` lends `--oversubscribed_resources`
//! (text, or a `file://` re-read each interval); `usage` samples the containers' cgroup
//! usage (the same statistics `/monitor/statistics` serves) and lends the idle part of
//! non-revocable containers' allocations. Off by default, as in Mesos.

use crate::event_loop::Handle;
use crate::flags::AgentFlags;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use strata_agent_core::estimator::{self, ContainerSample};
use strata_agent_core::{ContainerAllocation, Input};
use strata_containerizer::isolation::{ContainerId as IsoId, Isolator, Usage};
use strata_resources::Resources;

/// Which estimator runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// No oversubscription (Mesos' noop estimator).
    Off,
    /// A fixed amount: resource text or `file://` path (Mesos' FixedResourceEstimator).
    Fixed(String),
    /// Allocated but unused cpus and memory of non-revocable containers.
    Usage,
}

impl Mode {
    /// The mode the flags ask for; a fixed source must be readable and valid at start.
    pub fn from_flags(flags: &AgentFlags) -> anyhow::Result<Mode> {
        let fixed = flags.oversubscribed_resources.clone();
        let mode = match (flags.oversubscription.as_str(), fixed) {
            ("none", None) => Mode::Off,
            ("none" | "fixed", Some(source)) => Mode::Fixed(source),
            ("fixed", None) => anyhow::bail!(
                "--oversubscription=fixed needs --oversubscribed_resources (e.g. 'cpus:2;mem:256' or file:///path)"
            ),
            ("usage", None) => Mode::Usage,
            ("usage", Some(_)) => anyhow::bail!(
                "--oversubscribed_resources sets the fixed estimator's amount; drop it or use --oversubscription=fixed"
            ),
            (other, _) => anyhow::bail!(
                "--oversubscription={other} is not known; use none, fixed or usage"
            ),
        };
        if let Mode::Fixed(source) = &mode {
            read_fixed(source).map_err(|e| anyhow::anyhow!("--oversubscribed_resources: {e}"))?;
        }
        let interval = flags.oversubscribed_resources_interval;
        if !interval.is_finite() || interval <= 0.0 {
            anyhow::bail!(
                "--oversubscribed_resources_interval must be a positive number of seconds"
            );
        }
        Ok(mode)
    }
}

/// The fixed estimator's amount: `source` itself, or the file a `file://` source names.
pub fn read_fixed(source: &str) -> Result<Resources, String> {
    let text = match source.strip_prefix("file://") {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?
        }
        None => source.to_string(),
    };
    let parsed = Resources::parse_flag(text.trim(), "*").map_err(|e| e.to_string())?;
    if !parsed.reserved().is_empty() {
        return Err(format!(
            "'{}' reserves resources; oversubscribed resources are unreserved",
            text.trim()
        ));
    }
    Ok(estimator::as_estimate(&parsed))
}

/// Starts the estimator loop (nothing when oversubscription is off).
pub fn spawn(mode: Mode, interval_secs: f64, handle: Handle, isolator: Arc<dyn Isolator>) {
    if mode == Mode::Off {
        return;
    }
    tracing::info!(?mode, interval_secs, "oversubscription on");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(interval_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sampler = Sampler::default();
        let mut fixed = Resources::new();
        loop {
            tick.tick().await;
            let Some(allocations) = handle.read(|a, _| a.container_allocations()).await else {
                return;
            };
            let estimate = match &mode {
                Mode::Off => return,
                Mode::Fixed(source) => {
                    refresh_fixed(source, &mut fixed);
                    fixed.clone()
                }
                Mode::Usage => sampler.estimate(&allocations, isolator.as_ref()).await,
            };
            handle
                .tell(Input::ResourceEstimate {
                    revocable: estimate,
                })
                .await;
        }
    });
}

/// Re-reads the fixed amount; a file that became unreadable or invalid keeps the last
/// good amount (with a warning) rather than evicting every revocable task.
fn refresh_fixed(source: &str, current: &mut Resources) {
    match read_fixed(source) {
        Ok(r) => *current = r,
        Err(e) => {
            tracing::warn!(error = %e, "--oversubscribed_resources unreadable; keeping the last estimate")
        }
    }
}

/// Cumulative CPU seconds of each container at the previous sample, for usage rates.
#[derive(Default)]
struct Sampler {
    previous: HashMap<String, (f64, f64)>,
}

impl Sampler {
    /// The usage-based estimate over the non-revocable containers.
    async fn estimate(
        &mut self,
        allocations: &[ContainerAllocation],
        iso: &dyn Isolator,
    ) -> Resources {
        let mut samples = Vec::new();
        let mut seen = HashMap::new();
        for a in allocations.iter().filter(|a| !a.revocable) {
            let usage = usage_of(iso, a.container_id.as_str()).await;
            let cpu_secs = cpu_seconds(&usage);
            let previous = self.previous.get(a.container_id.as_str()).copied();
            if let Some(secs) = cpu_secs {
                seen.insert(a.container_id.to_string(), (usage.timestamp, secs));
            }
            let rate = previous
                .zip(cpu_secs)
                .and_then(|(p, secs)| estimator::cpu_rate(p, (usage.timestamp, secs)));
            samples.push(ContainerSample {
                allocated_cpus: a.cpus,
                allocated_mem_mb: a.mem_mb,
                cpus_used: rate,
                mem_used_mb: usage.mem_total_bytes.map(|b| b as f64 / (1024.0 * 1024.0)),
            });
        }
        self.previous = seen;
        estimator::usage_slack(&samples)
    }
}

async fn usage_of(iso: &dyn Isolator, container_id: &str) -> Usage {
    match IsoId::new(container_id) {
        Ok(id) => iso.usage(&id).await.unwrap_or_else(|_| Usage::now()),
        Err(_) => Usage::now(),
    }
}

fn cpu_seconds(u: &Usage) -> Option<f64> {
    Some(u.cpus_user_time_secs? + u.cpus_system_time_secs?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(mode: &str, fixed: Option<&str>) -> AgentFlags {
        let mut f = AgentFlags::new("127.0.0.1:5050", "127.0.0.1", 0, "/tmp/w");
        f.oversubscription = mode.into();
        f.oversubscribed_resources = fixed.map(str::to_string);
        f
    }

    fn check(mode: &str, fixed: Option<&str>, expected: Result<Mode, &str>) {
        let got = Mode::from_flags(&flags(mode, fixed)).map_err(|e| e.to_string());
        match expected {
            Ok(m) => assert_eq!(got.unwrap(), m),
            Err(text) => assert!(got.as_ref().unwrap_err().contains(text), "{got:?}"),
        }
    }

    #[test]
    fn flags_pick_the_estimator() {
        check("none", None, Ok(Mode::Off));
        check("none", Some("cpus:2"), Ok(Mode::Fixed("cpus:2".into())));
        check(
            "fixed",
            Some("cpus:2;mem:256"),
            Ok(Mode::Fixed("cpus:2;mem:256".into())),
        );
        check("usage", None, Ok(Mode::Usage));
        check("fixed", None, Err("needs --oversubscribed_resources"));
        check(
            "usage",
            Some("cpus:1"),
            Err("drop it or use --oversubscription=fixed"),
        );
        check("fixed", Some("cpus:two"), Err("--oversubscribed_resources"));
        check("fixed", Some("cpus(eng):1"), Err("unreserved"));
        check("fixed", Some("file:///nonexistent/x"), Err("cannot read"));
        check("magic", None, Err("use none, fixed or usage"));
    }

    #[test]
    fn the_fixed_amount_is_revocable_and_a_file_is_re_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lend");
        std::fs::write(&path, "cpus:2;mem:256\n").unwrap();
        let source = format!("file://{}", path.display());
        let mut current = Resources::new();
        refresh_fixed(&source, &mut current);
        assert_eq!(current.revocable().cpus().as_f64(), 2.0);
        assert_eq!(current.revocable(), current);
        std::fs::write(&path, "cpus:0.5").unwrap();
        refresh_fixed(&source, &mut current);
        assert_eq!(current.to_string(), "cpus:0.5");
        std::fs::remove_file(&path).unwrap();
        refresh_fixed(&source, &mut current);
        assert_eq!(
            current.to_string(),
            "cpus:0.5",
            "the last good amount stays"
        );
    }
}
