//! The POSIX backend: a plain child process in its own process group, with stdout and
//! stderr appended to files in the sandbox.

use crate::namespaces::Wrap;
use crate::{kill_tree, ContainerError, Containerizer, Gate, Launched, ProcessSpec};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use std::fs::OpenOptions;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::Stdio;

/// Runs containers as ordinary processes, optionally in their own pid and mount
/// namespaces.
#[derive(Debug, Default, Clone)]
pub struct PosixContainerizer {
    wrap: Option<Wrap>,
}

impl PosixContainerizer {
    /// Plain processes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every container in new pid and mount namespaces, through `strata ns-init` of the
    /// binary `strata` (see [`crate::namespaces`]).
    pub fn with_pid_namespace(strata: PathBuf) -> Self {
        Self {
            wrap: Some(Wrap { strata, pid: true }),
        }
    }

    /// Every container in a new mount namespace (no pid namespace), where its volumes
    /// are bind-mounted (`filesystem/linux`; see [`crate::mounts`]).
    pub fn with_mount_namespace(strata: PathBuf) -> Self {
        Self {
            wrap: Some(Wrap { strata, pid: false }),
        }
    }
}

fn open_log(spec: &ProcessSpec, name: &str) -> Result<std::fs::File, ContainerError> {
    let path = spec.sandbox.join(name);
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|source| ContainerError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// The command that starts the container: the program itself, or the namespace gate
/// around it (which switches users inside the namespace, as unshare must run as root).
fn build(spec: &ProcessSpec, wrap: Option<&Wrap>) -> Result<std::process::Command, ContainerError> {
    let mut ids = None;
    let mut user_env = Vec::new();
    if let Some(user) = spec.user.as_deref() {
        if nix::unistd::geteuid().is_root() {
            let u = nix::unistd::User::from_name(user)
                .ok()
                .flatten()
                .ok_or_else(|| ContainerError::NoSuchUser(user.to_string()))?;
            if !u.uid.is_root() {
                chown_sandbox(spec, u.uid, u.gid);
                ids = Some((u.uid.as_raw(), u.gid.as_raw()));
                user_env = vec![
                    ("USER".to_string(), user.to_string()),
                    ("HOME".to_string(), u.dir.display().to_string()),
                ];
            }
        }
    }
    let (program, args) = match wrap {
        Some(w) => w.command_line(&spec.program, &spec.args, ids),
        None => (spec.program.clone(), spec.args.clone()),
    };
    let mut cmd = std::process::Command::new(&program);
    cmd.args(&args)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(user_env)
        .current_dir(&spec.sandbox)
        .stdin(if wrap.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(open_log(spec, "stdout")?)
        .stderr(open_log(spec, "stderr")?)
        .process_group(0);
    if let (Some((uid, gid)), None) = (ids, wrap) {
        cmd.uid(uid).gid(gid);
    }
    Ok(cmd)
}

/// Gives the sandbox to the user the container runs as.
fn chown_sandbox(spec: &ProcessSpec, uid: nix::unistd::Uid, gid: nix::unistd::Gid) {
    for p in [
        spec.sandbox.clone(),
        spec.sandbox.join("stdout"),
        spec.sandbox.join("stderr"),
    ] {
        if let Err(e) = nix::unistd::chown(&p, Some(uid), Some(gid)) {
            tracing::warn!(path = %p.display(), error = %e, "cannot chown sandbox");
        }
    }
}

impl Containerizer for PosixContainerizer {
    fn launch(&self, spec: ProcessSpec) -> BoxFuture<'_, Result<Launched, ContainerError>> {
        async move {
            let cmd = build(&spec, self.wrap.as_ref())?;
            let mut child = tokio::process::Command::from(cmd)
                .kill_on_drop(false)
                .spawn()
                .map_err(|source| ContainerError::Spawn {
                    program: spec.program.display().to_string(),
                    source,
                })?;
            let pid = child.id().unwrap_or(0);
            let gate = Gate(child.stdin.take());
            let (tx, rx) = tokio::sync::oneshot::channel();
            tokio::spawn(async move {
                let status = match child.wait().await {
                    Ok(s) => s.into_raw(),
                    Err(_) => -1,
                };
                let _ = tx.send(status);
            });
            Ok(Launched {
                pid,
                exit: rx,
                gate,
            })
        }
        .boxed()
    }

    fn destroy(&self, pid: u32) -> BoxFuture<'_, ()> {
        async move {
            if pid > 1 {
                kill_tree(pid);
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(dir: &std::path::Path, script: &str) -> ProcessSpec {
        ProcessSpec {
            id: "c1".into(),
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("GREETING".into(), "hi".into())],
            sandbox: dir.to_path_buf(),
            user: None,
        }
    }

    #[tokio::test]
    async fn runs_in_sandbox_with_env_and_logs() {
        let dir = tempfile::tempdir().unwrap();
        let c = PosixContainerizer::new();
        let l = c
            .launch(spec(
                dir.path(),
                "echo $GREETING; echo oops >&2; pwd; exit 3",
            ))
            .await
            .unwrap();
        let status = l.exit.await.unwrap();
        assert_eq!(
            nix::sys::wait::WaitStatus::from_raw(nix::unistd::Pid::from_raw(1), status).ok(),
            Some(nix::sys::wait::WaitStatus::Exited(
                nix::unistd::Pid::from_raw(1),
                3
            ))
        );
        let out = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
        assert!(out.starts_with("hi\n"), "{out}");
        assert!(out.contains(&dir.path().display().to_string()));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stderr")).unwrap(),
            "oops\n"
        );
    }

    #[tokio::test]
    async fn destroy_reaches_other_process_groups() {
        let dir = tempfile::tempdir().unwrap();
        let c = PosixContainerizer::new();
        // The grandchild starts its own process group with setsid-like behaviour via `sh -m`.
        let script = "(set -m; sleep 300 & echo $! > grandchild; wait) & wait";
        let l = c.launch(spec(dir.path(), script)).await.unwrap();
        let path = dir.path().join("grandchild");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !path.exists() || std::fs::read_to_string(&path).unwrap().trim().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "grandchild never started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let gc: i32 = std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        c.destroy(l.pid).await;
        let status = tokio::time::timeout(Duration::from_secs(5), l.exit)
            .await
            .unwrap()
            .unwrap();
        assert!(libc_signaled(status), "status {status}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{gc}/stat")).exists()
            && !std::fs::read_to_string(format!("/proc/{gc}/stat"))
                .unwrap_or_default()
                .contains(") Z")
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "grandchild {gc} survived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn libc_signaled(status: i32) -> bool {
        matches!(
            nix::sys::wait::WaitStatus::from_raw(nix::unistd::Pid::from_raw(1), status),
            Ok(nix::sys::wait::WaitStatus::Signaled(..))
        )
    }

    #[tokio::test]
    async fn spawn_failure_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "true");
        s.program = "/nonexistent/program".into();
        let err = PosixContainerizer::new().launch(s).await.unwrap_err();
        assert!(err.to_string().contains("/nonexistent/program"), "{err}");
    }
}
