//! One task as the executor core sees it: its launch phase, kill progress, deadlines and
//! probes, plus the pure rules for the terminal state and the kill grace period.

use super::probe::Prober;
use super::updates::Uuid;
use crate::termination::Termination;
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
    /// The task runs in a Docker container.
    pub docker: bool,
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
            docker: false,
        }
    }

    /// Whether the process may still be running (spawn requested and not reaped).
    pub fn is_live(&self) -> bool {
        self.phase != Phase::Done
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

/// The kill grace period: the KILL event's policy, else the task's, else 3 s.
pub fn kill_grace(event: Option<&KillPolicy>, task: Option<&KillPolicy>) -> Duration {
    event
        .and_then(|p| p.grace_period)
        .or_else(|| task.and_then(|p| p.grace_period))
        .map(|d| d.to_std())
        .unwrap_or(DEFAULT_KILL_GRACE)
}
