//! One task as the executor core sees it: its launch phase, kill progress, deadlines and
//! probes, plus the pure rules for the terminal state and the kill grace period.

use super::probe::{ProbeNetwork, ProbeTarget, Prober};
use super::updates::Uuid;
use crate::termination::{OomKill, Termination};
use std::net::IpAddr;
use std::time::Duration;
use strata_api::{KillPolicy, Reason, TaskInfo, TaskState, TaskStatus};

/// Grace period between SIGTERM and SIGKILL when no kill policy says otherwise (Mesos 3 s).
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// Where a task's process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TASK_STARTING sent; the shell has been asked to spawn it.
    Launching,
    /// The process is alive.
    Running,
    /// The process ended (or never started); a terminal update was generated.
    Done,
}

/// Why a kill was started; decides TASK_KILLING and the terminal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillCause {
    /// A KILL event from the framework.
    Framework,
    /// A SHUTDOWN event.
    Shutdown,
    /// `TaskInfo.max_completion_time` passed.
    MaxCompletion,
    /// Another task of the same group failed or was killed.
    Group,
    /// The health check failed `consecutive_failures` times in a row.
    HealthCheck,
}

/// A kill in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillState {
    pub cause: KillCause,
    /// When SIGKILL follows the SIGTERM; `None` once SIGKILL was sent.
    pub escalate_at: Option<Duration>,
}

/// One task handed to this executor.
#[derive(Debug, Clone)]
pub struct Task {
    pub info: TaskInfo,
    /// The LAUNCH_GROUP this task came in (default executor), if any.
    pub group: Option<u64>,
    pub phase: Phase,
    /// The last state reported to the agent.
    pub state: TaskState,
    pub kill: Option<KillState>,
    /// When `max_completion_time` runs out (set once the process runs).
    pub completion_deadline: Option<Duration>,
    /// When the terminal update was generated, and its uuid.
    pub terminal: Option<(Duration, Uuid)>,
    /// Whether the agent acknowledged any update of this task.
    pub acked_any: bool,
    /// The health check and check while the process runs and no kill started.
    pub probers: Vec<Prober>,
    /// The last update generated; health and check updates are copies of it.
    pub last_status: Option<TaskStatus>,
    /// A health check killed this task (or another task of its group): its terminal
    /// update says `healthy: false`.
    pub unhealthy: bool,
    /// The Docker container the task runs in, if it is a DOCKER task.
    pub container: Option<TaskContainer>,
}

/// A DOCKER task's container, as its probes need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContainer {
    pub name: String,
    /// The container shares the host's network (HTTP and TCP probes go to loopback).
    pub host_network: bool,
    /// Its addresses on its Docker network, learnt when it started.
    pub ips: Vec<IpAddr>,
}

impl Task {
    /// A task about to be launched.
    pub fn new(info: TaskInfo, group: Option<u64>) -> Self {
        Task {
            info,
            group,
            phase: Phase::Launching,
            state: TaskState::Staging,
            kill: None,
            completion_deadline: None,
            terminal: None,
            acked_any: false,
            probers: Vec::new(),
            last_status: None,
            unhealthy: false,
            container: None,
        }
    }

    /// Whether the process may still be running (spawn requested and not reaped).
    pub fn is_live(&self) -> bool {
        self.phase != Phase::Done
    }

    /// Where the task's health check and check reach it.
    pub fn probe_target(&self) -> ProbeTarget {
        let Some(c) = &self.container else {
            return ProbeTarget::default();
        };
        ProbeTarget {
            container: Some(c.name.clone()),
            network: match c.host_network {
                true => ProbeNetwork::Loopback,
                false => ProbeNetwork::Container(c.ips.clone()),
            },
        }
    }
}

/// The terminal state and reason of a task whose process ended: a requested kill wins over
/// the exit status (TASK_KILLED), except a max-completion kill (TASK_FAILED + reason).
pub fn terminal_state(
    kill: Option<KillCause>,
    termination: Termination,
) -> (TaskState, Option<Reason>) {
    match kill {
        Some(KillCause::MaxCompletion) => {
            (TaskState::Failed, Some(Reason::MaxCompletionTimeReached))
        }
        Some(_) => (TaskState::Killed, None),
        None if termination.is_success() => (TaskState::Finished, None),
        None => (TaskState::Failed, None),
    }
}

/// The terminal update of a task whose process or container ended: `terminal_state`,
/// and Mesos' message for the termination. A container the kernel OOM-killed in is
/// TASK_FAILED with REASON_CONTAINER_LIMITATION_MEMORY and "Memory limit exceeded…"
/// wherever it would otherwise fail without a reason (a requested kill, a max completion
/// time or a successful exit keep their outcome, as the agent only rewrites TASK_FAILED
/// for its memory limitations).
pub fn terminal_update(
    kill: Option<KillCause>,
    termination: Termination,
    oom: Option<OomKill>,
) -> (TaskState, Option<Reason>, String) {
    match (terminal_state(kill, termination), oom) {
        ((TaskState::Failed, None), Some(oom)) => (
            TaskState::Failed,
            Some(Reason::ContainerLimitationMemory),
            oom.message(termination),
        ),
        ((state, reason), _) => (state, reason, termination.message()),
    }
}

/// The kill grace period: the KILL event's policy, else the task's, else 3 s.
pub fn kill_grace(event: Option<&KillPolicy>, task: Option<&KillPolicy>) -> Duration {
    event
        .and_then(|p| p.grace_period)
        .or_else(|| task.and_then(|p| p.grace_period))
        .map(|d| d.to_std())
        .unwrap_or(DEFAULT_KILL_GRACE)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Outcome = (TaskState, Option<Reason>, &'static str);

    fn check(kill: Option<KillCause>, termination: Termination, oom: bool, expected: Outcome) {
        let oom = oom.then_some(OomKill {
            memory_limit_bytes: Some(32 << 20),
        });
        let (state, reason, message) = terminal_update(kill, termination, oom);
        assert_eq!(
            (state, reason, message.as_str()),
            expected,
            "{kill:?} {termination:?} oom={oom:?}"
        );
    }

    #[test]
    fn an_oom_kill_turns_a_failure_into_a_memory_limitation() {
        let killed = Termination::Signaled {
            signal: 9,
            core_dumped: false,
        };
        let oom_message = "Memory limit exceeded: Requested: 32MB (the kernel's OOM killer ended a process of the container; Command terminated with signal Killed)";
        let memory = Some(Reason::ContainerLimitationMemory);
        let by_signal = "Command terminated with signal Killed";
        check(None, killed, true, (TaskState::Failed, memory, oom_message));
        check(None, killed, false, (TaskState::Failed, None, by_signal));
        let exited_1 = "Memory limit exceeded: Requested: 32MB (the kernel's OOM killer ended a process of the container; Command exited with status 1)";
        check(
            None,
            Termination::Exited(1),
            true,
            (TaskState::Failed, memory, exited_1),
        );
        // The task survived the OOM kill of one of its processes and succeeded.
        let ok = "Command exited with status 0";
        check(
            None,
            Termination::Exited(0),
            true,
            (TaskState::Finished, None, ok),
        );
        // A requested kill or a max completion time explains the end better.
        let framework = Some(KillCause::Framework);
        check(
            framework,
            killed,
            true,
            (TaskState::Killed, None, by_signal),
        );
        let expired = Some(KillCause::MaxCompletion);
        let reason = Some(Reason::MaxCompletionTimeReached);
        check(
            expired,
            killed,
            true,
            (TaskState::Failed, reason, by_signal),
        );
    }
}
