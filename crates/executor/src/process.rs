//! Task processes: turning a `TaskInfo` into a launch spec (argv, environment, working
//! directory, user, output files), spawning it in its own process group, and signalling
//! that group.

use crate::core::KillSignal;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use strata_api::ids::validate_id;
use strata_api::{CommandInfo, TaskInfo};

/// Why a task could not be started (reported as "Failed to launch command: <error>").
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("task {0} has no command")]
    NoCommand(String),
    #[error("the command has no value to run")]
    NoValue,
    #[error("user '{0}' does not exist on this host")]
    UnknownUser(String),
    #[error("cannot look up user '{user}': {source}")]
    UserLookup { user: String, source: nix::Error },
    #[error("task id '{id}' cannot name a sandbox directory: {source}")]
    BadTaskId {
        id: String,
        source: strata_api::ids::IdError,
    },
    #[error("cannot prepare task sandbox {path}: {source}")]
    Sandbox {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("volume: {0}")]
    Volume(String),
    #[error("{program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}

/// Where the task's stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The executor's own stdout/stderr (the agent points them at the sandbox files).
    Inherit,
    /// Files (a default-executor task's `stdout`/`stderr` in its own sandbox).
    Files { stdout: PathBuf, stderr: PathBuf },
    /// Both to the executor's stderr (health check and check commands, as in Mesos).
    Stderr,
}

/// Everything needed to start one task process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    pub program: String,
    /// `argv[0]` when it differs from `program`.
    pub arg0: Option<String>,
    /// `argv[1..]`.
    pub args: Vec<String>,
    /// Added to the executor's own environment.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// `(uid, gid)` to switch to, if any.
    pub ids: Option<(u32, u32)>,
    pub output: Output,
}

/// The program and argv of a command: `/bin/sh -c value` for a shell command; otherwise
/// `value` with `arguments` as the whole argv (`arguments[0]` is argv[0]).
pub fn command_line(
    command: &CommandInfo,
) -> Result<(String, Option<String>, Vec<String>), LaunchError> {
    let value = command
        .value
        .clone()
        .filter(|v| !v.is_empty())
        .ok_or(LaunchError::NoValue)?;
    if command.shell {
        return Ok((
            "/bin/sh".to_string(),
            Some("sh".to_string()),
            vec!["-c".to_string(), value],
        ));
    }
    match command.arguments.split_first() {
        Some((arg0, rest)) => Ok((value, Some(arg0.clone()), rest.to_vec())),
        None => Ok((value, None, Vec::new())),
    }
}

/// Variables added for a task: the sandbox paths, `MESOS_TASK_ID`, then the command's
/// VALUE variables (later entries win). SECRET variables are not supported and skipped.
pub fn task_env(task: &TaskInfo, directory: &Path, sandbox: &Path) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "MESOS_DIRECTORY".to_string(),
            directory.display().to_string(),
        ),
        ("MESOS_SANDBOX".to_string(), sandbox.display().to_string()),
        ("MESOS_TASK_ID".to_string(), task.task_id.to_string()),
    ];
    let vars = task
        .command
        .as_ref()
        .and_then(|c| c.environment.as_ref())
        .map(|e| e.variables.as_slice())
        .unwrap_or_default();
    for var in vars {
        match (var.kind.as_deref(), &var.value) {
            (None | Some("VALUE"), Some(value)) => env.push((var.name.clone(), value.clone())),
            (None | Some("VALUE"), None) => env.push((var.name.clone(), String::new())),
            (Some(kind), _) => {
                tracing::warn!(task_id = %task.task_id, name = %var.name, kind, "Skipping unsupported environment variable type")
            }
        }
    }
    env
}

/// The uid/gid to run as. Only root can switch users: as root, an unknown user is an
/// error and the executor's own user needs no switch; otherwise the task runs as the
/// current user and `warned` makes the warning appear once.
pub fn resolve_user(
    user: Option<&str>,
    warned: &mut bool,
) -> Result<Option<(u32, u32)>, LaunchError> {
    let Some(name) = user else { return Ok(None) };
    let euid = nix::unistd::geteuid();
    let found = User::from_name(name).map_err(|source| LaunchError::UserLookup {
        user: name.to_string(),
        source,
    });
    if !euid.is_root() {
        if !*warned && !matches!(&found, Ok(Some(u)) if u.uid == euid) {
            tracing::warn!(
                user = name,
                "The executor is not running as root; tasks run as the executor's user"
            );
            *warned = true;
        }
        return Ok(None);
    }
    match found? {
        None => Err(LaunchError::UnknownUser(name.to_string())),
        Some(u) if u.uid == euid => Ok(None),
        Some(u) => Ok(Some((u.uid.as_raw(), u.gid.as_raw()))),
    }
}

/// A default-executor task's sandbox `<directory>/tasks/<task_id>/`, created (and given
/// to the task's user) with empty `stdout` and `stderr` files.
pub fn prepare_task_sandbox(
    directory: &Path,
    task_id: &str,
    ids: Option<(u32, u32)>,
) -> Result<PathBuf, LaunchError> {
    validate_id(task_id).map_err(|source| LaunchError::BadTaskId {
        id: task_id.to_string(),
        source,
    })?;
    let dir = directory.join("tasks").join(task_id);
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Sandbox { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(fail(&dir))?;
    for name in ["stdout", "stderr"] {
        let file = dir.join(name);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .map_err(fail(&file))?;
    }
    if let Some((uid, gid)) = ids {
        for path in [dir.clone(), dir.join("stdout"), dir.join("stderr")] {
            let owner = (
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            );
            nix::unistd::chown(&path, owner.0, owner.1).map_err(|e| fail(&path)(e.into()))?;
        }
    }
    Ok(dir)
}

/// Starts the process in a new process group (its pgid is its pid).
pub fn spawn(spec: &LaunchSpec) -> Result<tokio::process::Child, LaunchError> {
    let mut cmd = tokio::process::Command::new(&spec.program);
    if let Some(arg0) = &spec.arg0 {
        cmd.arg0(arg0);
    }
    cmd.args(&spec.args)
        .envs(spec.env.iter().cloned())
        .current_dir(&spec.cwd)
        .process_group(0)
        .stdin(Stdio::null());
    if let Some((uid, gid)) = spec.ids {
        // std drops supplementary groups (setgroups(0)) before setuid when switching users.
        cmd.gid(gid).uid(uid);
    }
    let spawn_error = |source| LaunchError::Spawn {
        program: spec.program.clone(),
        source,
    };
    match &spec.output {
        Output::Inherit => {}
        Output::Files { stdout, stderr } => {
            let open = |p: &PathBuf| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(p)
                    .map_err(spawn_error)
            };
            cmd.stdout(open(stdout)?).stderr(open(stderr)?);
        }
        Output::Stderr => {
            let stderr = || {
                use std::os::fd::AsFd;
                std::io::stderr()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(spawn_error)
            };
            cmd.stdout(stderr()?).stderr(stderr()?);
        }
    }
    cmd.spawn().map_err(spawn_error)
}

/// Sends `signal` to the process group `pgid`; a group that is already gone is not an error.
pub fn signal_group(pgid: u32, signal: KillSignal) -> Result<(), nix::Error> {
    let pgid = i32::try_from(pgid).map_err(|_| nix::Error::EINVAL)?;
    let signal = match signal {
        KillSignal::Term => Signal::SIGTERM,
        KillSignal::Kill => Signal::SIGKILL,
    };
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The command of a task, or why it has none.
pub fn task_command(task: &TaskInfo) -> Result<&CommandInfo, LaunchError> {
    task.command
        .as_ref()
        .ok_or_else(|| LaunchError::NoCommand(task.task_id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_argv(command: serde_json::Value, expected: Option<(&str, Option<&str>, &[&str])>) {
        let command: CommandInfo = serde_json::from_value(command).unwrap();
        let got = command_line(&command).ok();
        let expected = expected.map(|(p, a0, args)| {
            (
                p.to_string(),
                a0.map(str::to_string),
                args.iter().map(|s| s.to_string()).collect(),
            )
        });
        assert_eq!(got, expected);
    }

    #[test]
    fn argv_follows_mesos() {
        check_argv(
            json!({"value": "echo hi"}),
            Some(("/bin/sh", Some("sh"), &["-c", "echo hi"])),
        );
        check_argv(
            json!({"shell": false, "value": "/bin/echo", "arguments": ["echo", "a", "b"]}),
            Some(("/bin/echo", Some("echo"), &["a", "b"])),
        );
        check_argv(
            json!({"shell": false, "value": "/bin/true"}),
            Some(("/bin/true", None, &[])),
        );
        check_argv(json!({"shell": true}), None);
        check_argv(json!({"value": ""}), None);
    }

    #[test]
    fn environment_adds_task_values_only() {
        let task: TaskInfo = serde_json::from_value(json!({
            "name": "t", "task_id": {"value": "t1"},
            "command": {"value": "true", "environment": {"variables": [
                {"name": "A", "value": "1"},
                {"name": "B", "type": "VALUE", "value": "2"},
                {"name": "S", "type": "SECRET", "secret": {"type": "VALUE"}},
                {"name": "MESOS_SANDBOX", "value": "override"},
            ]}}
        }))
        .unwrap();
        let env = task_env(&task, Path::new("/d"), Path::new("/s"));
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("MESOS_DIRECTORY", "/d"),
                ("MESOS_SANDBOX", "/s"),
                ("MESOS_TASK_ID", "t1"),
                ("A", "1"),
                ("B", "2"),
                ("MESOS_SANDBOX", "override")
            ]
        );
    }

    #[test]
    fn task_sandbox_is_created_with_output_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = prepare_task_sandbox(tmp.path(), "task-1", None).unwrap();
        assert_eq!(dir, tmp.path().join("tasks/task-1"));
        assert!(dir.join("stdout").is_file() && dir.join("stderr").is_file());
        assert!(prepare_task_sandbox(tmp.path(), "..", None).is_err());
        assert!(prepare_task_sandbox(tmp.path(), "a/b", None).is_err());
    }

    #[test]
    fn no_user_means_no_switch() {
        let mut warned = false;
        assert_eq!(resolve_user(None, &mut warned).unwrap(), None);
        assert!(!warned);
    }
}
