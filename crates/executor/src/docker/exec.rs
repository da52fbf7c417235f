//! COMMAND health checks and checks of DOCKER tasks, run inside the task's container
//! through Docker's exec API, as Mesos' docker executor runs them with `docker exec`: the
//! exec's command line and environment (`exec_command`, pure), one exec run to its exit
//! code with its output on the executor's stderr (`run`), and the kill of an abandoned
//! one (`kill`), which Mesos leaves running.

use super::engine::Engine;
use super::exit_termination;
use crate::core::ProbeOutcome;
use crate::termination::Termination;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::{Stream, StreamExt};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::time::Duration;
use strata_api::CommandInfo;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

/// How long an exec whose output ended may take to report its exit code.
const EXIT_CODE_WAIT: Duration = Duration::from_secs(5);
/// Pause between two looks at an exec that has not reported its exit code yet.
const EXIT_CODE_POLL: Duration = Duration::from_millis(20);

/// A probe command as an exec: the argv and the `NAME=value` variables added to the
/// container's environment (which already holds the task's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
}

/// Why a probe command cannot run as an exec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("the command has no value to run")]
    NoValue,
}

/// Mesos' `docker exec` form of a command: `/bin/sh -c value` for a shell command,
/// otherwise `value` followed by every argument (as the task's own command runs); the
/// command's VALUE variables (SECRET ones are not supported and skipped).
pub fn exec_command(command: &CommandInfo) -> Result<ExecCommand, ExecError> {
    let value = command.value.clone().filter(|v| !v.is_empty());
    let cmd: Vec<String> = match (command.shell, value) {
        (true, Some(value)) => vec!["/bin/sh".into(), "-c".into(), value],
        (true, None) => return Err(ExecError::NoValue),
        (false, value) => value.into_iter().chain(command.arguments.clone()).collect(),
    };
    if cmd.is_empty() {
        return Err(ExecError::NoValue);
    }
    let vars = command.environment.iter().flat_map(|e| e.variables.iter());
    let env = vars
        .filter(|v| matches!(v.kind.as_deref(), None | Some("VALUE")))
        .map(|v| format!("{}={}", v.name, v.value.as_deref().unwrap_or_default()))
        .collect();
    Ok(ExecCommand { cmd, env })
}

/// Runs `command` in `container` until it exits: its exit code, or an error when it could
/// not run or was killed by a signal. The exec's id goes to `id_tx` once it exists, so
/// that an abandoned probe can be killed.
pub async fn run(
    engine: &Engine,
    container: &str,
    command: &CommandInfo,
    id_tx: watch::Sender<Option<String>>,
) -> ProbeOutcome {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        ProbeOutcome::Error(format!(
            "cannot {what} the probe command in container '{container}': {e}"
        ))
    };
    let exec = match exec_command(command) {
        Ok(exec) => exec,
        Err(e) => return failed("run", &e),
    };
    let options = CreateExecOptions {
        cmd: Some(exec.cmd),
        env: Some(exec.env),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let id = match engine.client().create_exec(container, options).await {
        Ok(created) => created.id,
        Err(e) => return failed("create", &e),
    };
    let _ = id_tx.send(Some(id.clone()));
    match engine.client().start_exec(&id, None).await {
        Ok(StartExecResults::Attached { output, .. }) => copy_to_stderr(output).await,
        Ok(StartExecResults::Detached) => {}
        Err(e) => return failed("start", &e),
    }
    exit_code(engine, &id).await
}

/// The exit code of an exec whose output ended (Docker may record it a moment later).
async fn exit_code(engine: &Engine, id: &str) -> ProbeOutcome {
    let deadline = tokio::time::Instant::now() + EXIT_CODE_WAIT;
    loop {
        let inspect = match engine.client().inspect_exec(id).await {
            Ok(inspect) => inspect,
            Err(e) => return ProbeOutcome::Error(format!("cannot inspect exec {id}: {e}")),
        };
        if inspect.running == Some(false) {
            return match inspect.exit_code.map(exit_termination) {
                Some(Termination::Exited(code)) => ProbeOutcome::Exited(code),
                Some(signaled) => ProbeOutcome::Error(signaled.message()),
                None => ProbeOutcome::Error(format!("exec {id} ended without an exit code")),
            };
        }
        if tokio::time::Instant::now() >= deadline {
            let message =
                format!("exec {id} closed its output but did not end in {EXIT_CODE_WAIT:?}");
            return ProbeOutcome::Error(message);
        }
        tokio::time::sleep(EXIT_CODE_POLL).await;
    }
}

/// Copies an exec's stdout and stderr to the executor's stderr (where Mesos sends the
/// output of probe commands).
async fn copy_to_stderr(mut output: impl Stream<Item = Result<LogOutput, BollardError>> + Unpin) {
    let mut stderr = tokio::io::stderr();
    while let Some(item) = output.next().await {
        let message = match item {
            Ok(LogOutput::StdOut { message })
            | Ok(LogOutput::StdErr { message })
            | Ok(LogOutput::Console { message }) => message,
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => return tracing::debug!(error = %e, "A probe's output stream broke"),
        };
        if let Err(e) = stderr.write_all(&message).await {
            tracing::debug!(error = %e, "Cannot copy a probe's output to stderr");
        }
    }
}

/// Kills the process of an abandoned exec (a timed-out probe, or one of a task being
/// killed): Docker has no API for it, so its host pid gets SIGKILL. Processes it started
/// may outlive it. Best effort: failures are logged.
pub async fn kill(engine: &Engine, id: &str) {
    let inspect = match engine.client().inspect_exec(id).await {
        Ok(inspect) => inspect,
        Err(e) => return tracing::debug!(exec = id, error = %e, "Cannot inspect an abandoned exec"),
    };
    let pid = inspect.pid.and_then(|p| i32::try_from(p).ok());
    let Some(pid) = pid.filter(|p| *p > 0 && inspect.running == Some(true)) else {
        return;
    };
    // The pid was running a moment ago, so it is the exec's own process.
    match nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL) {
        Ok(()) => tracing::info!(exec = id, pid, "Killed an abandoned probe in its container"),
        Err(e) => {
            tracing::warn!(exec = id, pid, error = %e, "Cannot kill an abandoned probe in its container")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(command: serde_json::Value, expected: Result<(&[&str], &[&str]), ExecError>) {
        let info: CommandInfo = serde_json::from_value(command.clone()).unwrap();
        let expected = expected.map(|(cmd, env)| ExecCommand {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
        });
        assert_eq!(exec_command(&info), expected, "{command}");
    }

    #[test]
    fn commands_become_execs_like_mesos_docker_exec() {
        check(
            json!({"value": "test -f /tmp/x"}),
            Ok((&["/bin/sh", "-c", "test -f /tmp/x"], &[])),
        );
        check(
            json!({"shell": false, "value": "/bin/test", "arguments": ["-f", "/tmp/x"]}),
            Ok((&["/bin/test", "-f", "/tmp/x"], &[])),
        );
        check(
            json!({"shell": false, "arguments": ["true"]}),
            Ok((&["true"], &[])),
        );
        check(
            json!({"value": "env", "environment": {"variables": [
                {"name": "A", "value": "1"},
                {"name": "S", "type": "SECRET", "secret": {"type": "VALUE"}},
                {"name": "B", "type": "VALUE", "value": ""}]}}),
            Ok((&["/bin/sh", "-c", "env"], &["A=1", "B="])),
        );
        check(json!({"value": ""}), Err(ExecError::NoValue));
        check(json!({"shell": false}), Err(ExecError::NoValue));
    }
}
