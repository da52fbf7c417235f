//! A task's process or container starting and ending: TASK_RUNNING, a kill that waited
//! for the start and the probes on a start (a container's addresses are where its probes
//! go); TASK_FAILED on a failed start; the terminal update on an end, where a Docker
//! container's OOM kill becomes a memory limitation (`task::terminal_update`).

use super::task::{terminal_update, Phase};
use super::{Core, Effect, KillSignal, Started};
use crate::termination::{OomKill, Termination};
use strata_api::{Reason, TaskId, TaskState};

impl Core {
    pub(super) fn on_spawned(&mut self, task_id: &TaskId, result: Result<Started, String>) {
        let now = self.now.mono;
        let Some(task) = self
            .tasks
            .get_mut(task_id)
            .filter(|t| t.phase == Phase::Launching)
        else {
            return tracing::warn!(%task_id, "Spawn result for a task that is not launching");
        };
        let started = match result {
            Ok(started) => started,
            Err(error) => {
                task.phase = Phase::Done;
                let (message, reason) = match task.container.is_some() {
                    true => (
                        format!("Failed to launch container: {error}"),
                        Reason::ContainerLaunchFailed,
                    ),
                    false => (
                        format!("Failed to launch command: {error}"),
                        Reason::CommandExecutorFailed,
                    ),
                };
                self.send_update(task_id, TaskState::Failed, Some(message), Some(reason));
                return self.kill_group_of(task_id);
            }
        };
        task.phase = Phase::Running;
        task.completion_deadline = task
            .info
            .max_completion_time
            .map(|d| now.saturating_add(d.to_std()));
        if let Some(container) = task.container.as_mut() {
            container.ips = started.container_ips;
        }
        // A kill that arrived before the process existed is delivered now.
        let pending_kill = task.kill;
        self.send_update(task_id, TaskState::Running, None, None);
        let Some(kill) = pending_kill else {
            return self.start_probers(task_id);
        };
        self.out.push(Effect::Signal {
            task_id: task_id.clone(),
            signal: KillSignal::Term,
        });
        if kill.escalate_at.is_none() {
            self.out.push(Effect::Signal {
                task_id: task_id.clone(),
                signal: KillSignal::Kill,
            });
        }
    }

    pub(super) fn on_exited(
        &mut self,
        task_id: &TaskId,
        termination: Termination,
        oom: Option<OomKill>,
    ) {
        let Some(task) = self
            .tasks
            .get_mut(task_id)
            .filter(|t| t.phase != Phase::Done)
        else {
            return tracing::warn!(%task_id, "Exit of a task that is not running");
        };
        task.phase = Phase::Done;
        let (state, reason, message) =
            terminal_update(task.kill.map(|k| k.cause), termination, oom);
        self.stop_probers(task_id);
        tracing::info!(%task_id, state = %state, message, oom = oom.is_some(), "Task process ended");
        self.send_update(task_id, state, Some(message), reason);
        if matches!(state, TaskState::Failed | TaskState::Killed) {
            self.kill_group_of(task_id);
        }
    }
}
