//! Health checks and checks as pure state: what to probe (`Probe`), when (`Schedule`:
//! delay, interval and timeout as deadlines on the core's clock) and what a result means
//! (`HealthTracker` for `TaskInfo.health_check`, `CheckTracker` for `TaskInfo.check`).
//!
//! Mesos semantics (`src/checks/{checker_process,health_checker,checker}.cpp`): the first
//! probe runs `delay` after the task starts, each next one `interval` after the previous
//! one ended; a probe still running after `timeout` (0 = never) is killed and counts as an
//! error. A health check reports the first result and every later change to healthy, and
//! *every* failure (ignoring failures inside the grace period until the first success);
//! `consecutive_failures` failures in a row kill the task. A check reports its result
//! (an empty result of its type after an error) only when it differs from the last one.
//! Where a probe goes is `ProbeTarget`'s business (`target`).

pub use super::target::{ProbeNetwork, ProbeTarget};
use std::net::SocketAddr;
use std::time::Duration;
use strata_api::checks::{CheckError, NetworkProtocol};
use strata_api::{CheckInfo, CheckStatusInfo, CheckType, CommandInfo, HealthCheck};

/// Which of a task's two probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    /// `TaskInfo.health_check`.
    Health,
    /// `TaskInfo.check`.
    Check,
}

/// What the shell runs for one probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Run this command in the task's sandbox and environment; report its exit code.
    Command(CommandInfo),
    /// Run this command inside the Docker container `container` (its environment plus the
    /// command's own variables); report its exit code.
    Exec {
        container: String,
        command: CommandInfo,
    },
    /// GET this URL (redirects followed, certificates not verified); report the status.
    Http { url: String },
    /// Connect to this address; report whether it was accepted.
    Tcp { addr: SocketAddr },
}

/// How one probe ended, as the shell observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The command exited with this code.
    Exited(i32),
    /// The HTTP server answered with this status code.
    Status(u16),
    /// Whether the TCP connection was accepted.
    Connected(bool),
    /// The probe could not be carried out (spawn failure, killed by a signal, no HTTP
    /// answer, timeout); Mesos treats this as a failed health check and an unknown check
    /// result.
    Error(String),
}

impl ProbeOutcome {
    /// Whether this outcome means healthy: exit 0, HTTP 200–399, or a TCP connection.
    pub fn is_healthy(&self) -> bool {
        match self {
            ProbeOutcome::Exited(code) => *code == 0,
            ProbeOutcome::Status(code) => (200..400).contains(code),
            ProbeOutcome::Connected(ok) => *ok,
            ProbeOutcome::Error(_) => false,
        }
    }

    /// The check status this outcome reports for a check of type `kind`.
    pub fn check_status(&self, kind: CheckType) -> CheckStatusInfo {
        match (self, kind) {
            (ProbeOutcome::Exited(code), CheckType::Command) => CheckStatusInfo::command(*code),
            (ProbeOutcome::Status(code), CheckType::Http) => {
                CheckStatusInfo::http(u32::from(*code))
            }
            (ProbeOutcome::Connected(ok), CheckType::Tcp) => CheckStatusInfo::tcp(*ok),
            _ => CheckStatusInfo::empty(kind),
        }
    }
}

/// Why a task's health check or check cannot run (the task runs without it, as in Mesos).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeConfigError {
    #[error(transparent)]
    Invalid(#[from] CheckError),
    #[error("port {0} is not a TCP port (1-65535)")]
    Port(u32),
    #[error(
        "container '{container}' has no {family} address on its Docker network to probe; \
         HTTP and TCP checks need HOST networking or a BRIDGE/USER network with {family}"
    )]
    NoAddress {
        container: String,
        family: &'static str,
    },
}

/// When probes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub delay: Duration,
    pub interval: Duration,
    /// `None` = no timeout (`timeout_seconds: 0`).
    pub timeout: Option<Duration>,
}

impl Timing {
    /// From validated (finite, non-negative) seconds.
    fn from_secs(delay: f64, interval: f64, timeout: f64) -> Self {
        let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO);
        Timing {
            delay: secs(delay),
            interval: secs(interval),
            timeout: Some(secs(timeout)).filter(|t| !t.is_zero()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting {
        due: Duration,
    },
    InFlight {
        seq: u64,
        deadline: Option<Duration>,
    },
    Stopped,
}

/// What time did to a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Start probe `seq` now.
    Start(u64),
    /// Probe `seq` ran past its timeout: kill it and count an error.
    TimedOut(u64),
}

/// The timer of one prober: waiting for the next probe, one probe in flight, or stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    timing: Timing,
    phase: Phase,
    next_seq: u64,
}

impl Schedule {
    /// Starts at `now`: the first probe is due after the delay.
    pub fn new(timing: Timing, now: Duration) -> Self {
        Schedule {
            timing,
            phase: Phase::Waiting {
                due: now.saturating_add(timing.delay),
            },
            next_seq: 1,
        }
    }

    /// The next moment `poll` has something to do.
    pub fn deadline(&self) -> Option<Duration> {
        match self.phase {
            Phase::Waiting { due } => Some(due),
            Phase::InFlight { deadline, .. } => deadline,
            Phase::Stopped => None,
        }
    }

    /// Starts a due probe or times out a late one.
    pub fn poll(&mut self, now: Duration) -> Option<Poll> {
        match self.phase {
            Phase::Waiting { due } if due <= now => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let deadline = self.timing.timeout.map(|t| now.saturating_add(t));
                self.phase = Phase::InFlight { seq, deadline };
                Some(Poll::Start(seq))
            }
            Phase::InFlight {
                seq,
                deadline: Some(at),
            } if at <= now => {
                self.rest(now);
                Some(Poll::TimedOut(seq))
            }
            _ => None,
        }
    }

    /// Probe `seq` ended at `now`; false if it is not the one in flight (a late answer
    /// of a timed-out or stopped probe), which must then be ignored.
    pub fn finish(&mut self, seq: u64, now: Duration) -> bool {
        match self.phase {
            Phase::InFlight { seq: current, .. } if current == seq => {
                self.rest(now);
                true
            }
            _ => false,
        }
    }

    /// Stops probing; returns the probe still in flight, which the shell must abandon.
    pub fn stop(&mut self) -> Option<u64> {
        let in_flight = match self.phase {
            Phase::InFlight { seq, .. } => Some(seq),
            _ => None,
        };
        self.phase = Phase::Stopped;
        in_flight
    }

    /// The configured timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.timing.timeout
    }

    fn rest(&mut self, now: Duration) {
        self.phase = Phase::Waiting {
            due: now.saturating_add(self.timing.interval),
        };
    }
}

/// A health update to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthVerdict {
    pub healthy: bool,
    /// `consecutive_failures` was reached: kill the task.
    pub kill: bool,
}

/// Mesos' `HealthChecker` bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTracker {
    max_failures: u32,
    grace: Duration,
    started: Duration,
    failures: u32,
    /// No success seen yet (the grace period applies only then).
    initializing: bool,
}

impl HealthTracker {
    pub fn new(max_failures: u32, grace: Duration, started: Duration) -> Self {
        HealthTracker {
            max_failures,
            grace,
            started,
            failures: 0,
            initializing: true,
        }
    }

    /// A result at `now`: the update to send, if any.
    pub fn on_result(&mut self, now: Duration, healthy: bool) -> Option<HealthVerdict> {
        if healthy {
            let report = self.initializing || self.failures > 0;
            self.initializing = false;
            self.failures = 0;
            return report.then_some(HealthVerdict {
                healthy: true,
                kill: false,
            });
        }
        let in_grace = self.initializing
            && !self.grace.is_zero()
            && now.saturating_sub(self.started) <= self.grace;
        if in_grace {
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        Some(HealthVerdict {
            healthy: false,
            kill: self.failures >= self.max_failures,
        })
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Mesos' `Checker` bookkeeping: the last reported status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTracker {
    kind: CheckType,
    previous: CheckStatusInfo,
}

impl CheckTracker {
    pub fn new(kind: CheckType) -> Self {
        CheckTracker {
            kind,
            previous: CheckStatusInfo::empty(kind),
        }
    }

    /// A result: the new status to report if it changed.
    pub fn on_outcome(&mut self, outcome: &ProbeOutcome) -> Option<CheckStatusInfo> {
        let status = outcome.check_status(self.kind);
        (status != self.previous).then(|| {
            self.previous = status.clone();
            status
        })
    }
}

/// What a prober does with its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judge {
    Health(HealthTracker),
    Check(CheckTracker),
}

/// One running health check or check of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct Prober {
    pub kind: ProbeKind,
    pub probe: Probe,
    pub schedule: Schedule,
    pub judge: Judge,
}

impl Prober {
    /// A task's health check against `target`, started at `now`.
    pub fn health(
        check: &HealthCheck,
        now: Duration,
        target: &ProbeTarget,
    ) -> Result<Self, ProbeConfigError> {
        check.validate()?;
        let probe = match check.kind {
            Some(CheckType::Http) => {
                let http = (check.http.as_ref()).ok_or(missing(
                    "http",
                    CheckType::Http,
                    "health check",
                ))?;
                let scheme = http.scheme.as_deref().unwrap_or("http");
                let path = http.path.as_deref().unwrap_or("");
                Probe::Http {
                    url: target.url(scheme, http.protocol, http.port, path)?,
                }
            }
            Some(CheckType::Tcp) => {
                let tcp =
                    (check.tcp.as_ref()).ok_or(missing("tcp", CheckType::Tcp, "health check"))?;
                Probe::Tcp {
                    addr: SocketAddr::new(target.ip(tcp.protocol)?, port(tcp.port)?),
                }
            }
            // `validate` accepted it, so it is a COMMAND check.
            _ => target.command(check.command.clone().ok_or(missing(
                "command",
                CheckType::Command,
                "health check",
            ))?),
        };
        let timing = Timing::from_secs(
            check.delay_seconds,
            check.interval_seconds,
            check.timeout_seconds,
        );
        let grace = Duration::try_from_secs_f64(check.grace_period_seconds).unwrap_or_default();
        Ok(Prober {
            kind: ProbeKind::Health,
            probe,
            schedule: Schedule::new(timing, now),
            judge: Judge::Health(HealthTracker::new(check.consecutive_failures, grace, now)),
        })
    }

    /// A task's check against `target`, started at `now`.
    pub fn check(
        check: &CheckInfo,
        now: Duration,
        target: &ProbeTarget,
    ) -> Result<Self, ProbeConfigError> {
        check.validate()?;
        let ipv4 = NetworkProtocol::Ipv4;
        let (kind, probe) = match (&check.command, &check.http, &check.tcp, check.kind) {
            (_, Some(http), _, Some(CheckType::Http)) => {
                let path = http.path.as_deref().unwrap_or("");
                let url = target.url("http", ipv4, http.port, path)?;
                (CheckType::Http, Probe::Http { url })
            }
            (_, _, Some(tcp), Some(CheckType::Tcp)) => {
                let addr = SocketAddr::new(target.ip(ipv4)?, port(tcp.port)?);
                (CheckType::Tcp, Probe::Tcp { addr })
            }
            (command, ..) => {
                let command =
                    command
                        .as_ref()
                        .ok_or(missing("command", CheckType::Command, "check"))?;
                (CheckType::Command, target.command(command.command.clone()))
            }
        };
        let timing = Timing::from_secs(
            check.delay_seconds,
            check.interval_seconds,
            check.timeout_seconds,
        );
        Ok(Prober {
            kind: ProbeKind::Check,
            probe,
            schedule: Schedule::new(timing, now),
            judge: Judge::Check(CheckTracker::new(kind)),
        })
    }
}

fn missing(field: &'static str, kind: CheckType, what: &'static str) -> CheckError {
    CheckError::Missing { field, kind, what }
}

/// A TCP port number, or why it is not one.
pub(super) fn port(port: u32) -> Result<u16, ProbeConfigError> {
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(ProbeConfigError::Port(port))
}

/// The `check_status` every from-scratch update of a task with a check carries: an empty
/// result of the check's type (Mesos' `createTaskStatus`); none for a check without a
/// usable type.
pub fn empty_check_status(check: Option<&CheckInfo>) -> Option<CheckStatusInfo> {
    let kind = check?.kind.filter(|k| *k != CheckType::Unknown)?;
    Some(CheckStatusInfo::empty(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn timing(delay: u64, interval: u64, timeout: Option<u64>) -> Timing {
        Timing {
            delay: ms(delay),
            interval: ms(interval),
            timeout: timeout.map(ms),
        }
    }

    /// Drives a schedule: each step is (time, event) → expected poll/finish result.
    #[test]
    fn schedule_runs_delay_then_interval_after_each_end() {
        let mut s = Schedule::new(timing(1_000, 500, Some(300)), ms(100));
        assert_eq!(s.deadline(), Some(ms(1_100)));
        assert_eq!(s.poll(ms(1_099)), None);
        assert_eq!(s.poll(ms(1_100)), Some(Poll::Start(1)));
        assert_eq!(s.deadline(), Some(ms(1_400)), "the timeout");
        assert_eq!(s.poll(ms(1_200)), None);
        assert!(s.finish(1, ms(1_250)));
        assert_eq!(s.deadline(), Some(ms(1_750)), "interval after the end");
        assert!(!s.finish(1, ms(1_260)), "a second answer is stale");
        assert_eq!(s.poll(ms(1_750)), Some(Poll::Start(2)));
        assert_eq!(s.poll(ms(2_049)), None);
        assert_eq!(s.poll(ms(2_050)), Some(Poll::TimedOut(2)));
        assert_eq!(s.deadline(), Some(ms(2_550)));
        assert!(!s.finish(2, ms(2_100)), "the timed-out probe's late answer");
        assert_eq!(s.poll(ms(2_550)), Some(Poll::Start(3)));
        assert_eq!(s.stop(), Some(3));
        assert_eq!((s.deadline(), s.poll(ms(99_999))), (None, None));
        assert!(!s.finish(3, ms(3_000)));
    }

    #[test]
    fn zero_timeout_means_none_and_zero_delay_is_due_at_once() {
        let mut s = Schedule::new(timing(0, 0, None), ms(7));
        assert_eq!(s.poll(ms(7)), Some(Poll::Start(1)));
        assert_eq!(s.deadline(), None);
        assert_eq!(s.poll(ms(1_000_000)), None);
        assert!(s.finish(1, ms(9)));
        assert_eq!(s.poll(ms(9)), Some(Poll::Start(2)));
        assert_eq!(Timing::from_secs(0.5, 0.2, 0.0).timeout, None);
        assert_eq!(Timing::from_secs(0.5, 0.2, 1.5).timeout, Some(ms(1_500)));
    }

    /// (time ms, healthy?, expected (healthy, kill) verdict), for a tracker started at 0.
    type HealthStep = (u64, bool, Option<(bool, bool)>);

    fn check_health(max: u32, grace_ms: u64, steps: &[HealthStep]) {
        let mut t = HealthTracker::new(max, ms(grace_ms), ms(0));
        for (i, (at, healthy, expected)) in steps.iter().enumerate() {
            let got = t.on_result(ms(*at), *healthy).map(|v| (v.healthy, v.kill));
            assert_eq!(got, *expected, "step {i} at {at}ms");
        }
    }

    #[test]
    fn health_reports_first_result_changes_and_every_failure() {
        let unhealthy = Some((false, false));
        check_health(
            3,
            0,
            &[
                (1, true, Some((true, false))),
                (2, true, None),
                (3, false, unhealthy),
                (4, false, unhealthy),
                (5, true, Some((true, false))),
                (6, true, None),
                (7, false, unhealthy),
                (8, false, unhealthy),
                (9, false, Some((false, true))),
                (10, false, Some((false, true))),
            ],
        );
    }

    #[test]
    fn grace_period_ignores_failures_until_the_first_success() {
        check_health(
            1,
            1_000,
            &[
                (0, false, None),
                (1_000, false, None),
                (1_001, false, Some((false, true))),
            ],
        );
        check_health(
            2,
            1_000,
            &[
                (100, false, None),
                (200, true, Some((true, false))),
                (300, false, Some((false, false))),
                (400, false, Some((false, true))),
            ],
        );
        // A zero consecutive_failures kills on the first counted failure, as in Mesos.
        check_health(0, 0, &[(1, false, Some((false, true)))]);
    }

    #[test]
    fn check_reports_only_changes_and_errors_as_empty() {
        let mut t = CheckTracker::new(CheckType::Command);
        let seen: Vec<_> = [
            ProbeOutcome::Error("timed out".into()),
            ProbeOutcome::Exited(1),
            ProbeOutcome::Exited(1),
            ProbeOutcome::Exited(0),
            ProbeOutcome::Error("killed".into()),
            ProbeOutcome::Error("again".into()),
            ProbeOutcome::Exited(0),
        ]
        .iter()
        .map(|o| t.on_outcome(o).map(|s| serde_json::to_string(&s).unwrap()))
        .collect();
        let cmd = |c: &str| Some(format!(r#"{{"type":"COMMAND","command":{c}}}"#));
        assert_eq!(
            seen,
            [
                None,
                cmd(r#"{"exit_code":1}"#),
                None,
                cmd(r#"{"exit_code":0}"#),
                cmd("{}"),
                None,
                cmd(r#"{"exit_code":0}"#)
            ]
        );
    }

    #[test]
    fn outcomes_mean_what_mesos_says() {
        let cases = [
            (ProbeOutcome::Exited(0), true),
            (ProbeOutcome::Exited(1), false),
            (ProbeOutcome::Status(199), false),
            (ProbeOutcome::Status(200), true),
            (ProbeOutcome::Status(302), true),
            (ProbeOutcome::Status(399), true),
            (ProbeOutcome::Status(400), false),
            (ProbeOutcome::Status(503), false),
            (ProbeOutcome::Connected(true), true),
            (ProbeOutcome::Connected(false), false),
            (ProbeOutcome::Error("x".into()), false),
        ];
        for (outcome, healthy) in cases {
            assert_eq!(outcome.is_healthy(), healthy, "{outcome:?}");
        }
        let tcp = ProbeOutcome::Connected(false).check_status(CheckType::Tcp);
        assert_eq!(tcp, CheckStatusInfo::tcp(false));
        let http = ProbeOutcome::Error("refused".into()).check_status(CheckType::Http);
        assert_eq!(http, CheckStatusInfo::empty(CheckType::Http));
    }

    fn probe_of(health: serde_json::Value) -> Result<Probe, String> {
        let check: HealthCheck = serde_json::from_value(health).unwrap();
        Prober::health(&check, ms(0), &ProbeTarget::default())
            .map(|p| p.probe)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn probes_target_the_loopback_address() {
        let cases = [
            (
                json!({"type": "HTTP", "http": {"port": 8080}}),
                Ok(Probe::Http {
                    url: "http://127.0.0.1:8080".into(),
                }),
            ),
            (
                json!({"type": "HTTP", "http": {"port": 8443, "scheme": "https", "path": "/ok?x=1", "protocol": "IPv6"}}),
                Ok(Probe::Http {
                    url: "https://[::1]:8443/ok?x=1".into(),
                }),
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 22}}),
                Ok(Probe::Tcp {
                    addr: "127.0.0.1:22".parse().unwrap(),
                }),
            ),
            (
                json!({"type": "COMMAND", "command": {"value": "exit 0"}}),
                Ok(Probe::Command(CommandInfo::shell("exit 0"))),
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 70000}}),
                Err("port 70000 is not a TCP port (1-65535)".to_string()),
            ),
            (
                json!({"type": "COMMAND"}),
                Err("Expecting 'command' to be set for COMMAND health check".to_string()),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(probe_of(input.clone()), expected, "{input}");
        }
        let check: CheckInfo =
            serde_json::from_value(json!({"type": "HTTP", "http": {"port": 81, "path": "/r"}}))
                .unwrap();
        let prober = Prober::check(&check, ms(0), &ProbeTarget::default()).unwrap();
        assert_eq!(
            prober.probe,
            Probe::Http {
                url: "http://127.0.0.1:81/r".into()
            }
        );
        assert_eq!(
            prober.judge,
            Judge::Check(CheckTracker::new(CheckType::Http))
        );
        assert_eq!(
            empty_check_status(Some(&check)),
            Some(CheckStatusInfo::empty(CheckType::Http))
        );
        assert_eq!(empty_check_status(None), None);
    }
}
