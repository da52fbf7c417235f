//! The task black box: for every task that ends on this agent, a small record of how it
//! ended (state, reason, message, exit code or signal, OOM) that the shell completes with
//! the tail of the task's output and keeps after the sandbox is garbage-collected.

use crate::agent::Agent;
use crate::io::Effect;
use serde::{Deserialize, Serialize};
use strata_api::{ExecutorId, FrameworkId, Reason, TaskId, TaskState, TaskStatus};

/// How a task ended. `stdout_tail` / `stderr_tail` are filled in by the shell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlackBox {
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub task_id: TaskId,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal name, e.g. `Killed`, when the command was ended by a signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// The container was killed for exceeding its memory.
    pub oom: bool,
    /// The container could not be launched (fetch, image pull, isolation…).
    pub launch_failed: bool,
    pub timestamp: f64,
    /// Host sandbox of the task (may be gone by the time the record is read).
    pub directory: String,
    #[serde(default)]
    pub stdout_tail: String,
    #[serde(default)]
    pub stderr_tail: String,
}

/// Exit code and signal from the command executor's messages ("Command exited with
/// status N", "Command terminated with signal X").
pub fn parse_exit(message: &str) -> (Option<i32>, Option<String>) {
    if let Some(n) = message.strip_prefix("Command exited with status ") {
        return (n.trim().parse().ok(), None);
    }
    if let Some(sig) = message.strip_prefix("Command terminated with signal ") {
        return (
            None,
            Some(sig.trim_end_matches(" (core dumped)").to_string()),
        );
    }
    (None, None)
}

impl BlackBox {
    /// The record of a terminal status (without output tails).
    pub fn from_status(
        fid: &FrameworkId,
        eid: &ExecutorId,
        directory: &str,
        s: &TaskStatus,
        now: f64,
    ) -> Self {
        let message = s.message.clone();
        let (exit_code, signal) = message.as_deref().map(parse_exit).unwrap_or((None, None));
        Self {
            framework_id: fid.clone(),
            executor_id: eid.clone(),
            task_id: s.task_id.clone(),
            state: s.state,
            reason: s.reason,
            message,
            exit_code,
            signal,
            oom: s.reason == Some(Reason::ContainerLimitationMemory),
            launch_failed: s.reason == Some(Reason::ContainerLaunchFailed),
            timestamp: s.timestamp.unwrap_or(now),
            directory: directory.to_string(),
            stdout_tail: String::new(),
            stderr_tail: String::new(),
        }
    }
}

impl Agent {
    /// Emits the black-box record of a terminal status of a task this agent knows.
    pub(crate) fn record_black_box(
        &self,
        fid: &FrameworkId,
        status: &TaskStatus,
        now: f64,
        out: &mut Vec<Effect>,
    ) {
        if !status.state.is_terminal() {
            return;
        }
        let found = self.frameworks.get(fid).and_then(|f| {
            f.executors
                .iter()
                .find(|(_, e)| e.has_task(&status.task_id))
                .map(|(eid, e)| (eid.clone(), e.directory.clone()))
        });
        let Some((eid, directory)) = found else {
            return;
        };
        let record = BlackBox::from_status(fid, &eid, &directory, status, now);
        out.push(Effect::BlackBox(Box::new(record)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exits_and_signals_are_parsed() {
        type Expected<'a> = (Option<i32>, Option<&'a str>);
        let cases: &[(&str, Expected)] = &[
            ("Command exited with status 7", (Some(7), None)),
            (
                "Command terminated with signal Killed",
                (None, Some("Killed")),
            ),
            (
                "Command terminated with signal Segmentation fault (core dumped)",
                (None, Some("Segmentation fault")),
            ),
            ("Executor terminated", (None, None)),
        ];
        for (m, (code, sig)) in cases {
            let (c, s) = parse_exit(m);
            assert_eq!((c, s.as_deref()), (*code, *sig), "{m}");
        }
    }
}
