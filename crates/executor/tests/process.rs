//! Real-process tests of the shell pieces that need no agent: exit statuses, signal
//! names, SIGTERM→SIGKILL escalation and process-group kills reaching grandchildren.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use strata_executor::core::KillSignal;
use strata_executor::process::{self, LaunchSpec, Output};
use strata_executor::termination::Termination;

fn shell(script: &str, cwd: &Path) -> LaunchSpec {
    LaunchSpec {
        program: "/bin/sh".into(),
        arg0: Some("sh".into()),
        args: vec!["-c".into(), script.into()],
        env: vec![("MESOS_TASK_ID".into(), "t".into())],
        cwd: cwd.to_path_buf(),
        ids: None,
        output: Output::Inherit,
    }
}

async fn wait(child: &mut tokio::process::Child) -> Termination {
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    Termination::from_status(status)
}

/// Polls until `path` exists and holds a line; returns its trimmed content.
async fn read_when_ready(path: &PathBuf) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text.trim().to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// True once `pid` no longer runs (gone, or a zombie nobody reaps in this container).
fn is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn exit_status_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = process::spawn(&shell("exit 3", tmp.path())).unwrap();
    let termination = wait(&mut child).await;
    assert_eq!(termination, Termination::Exited(3));
    assert_eq!(termination.message(), "Command exited with status 3");
}

#[tokio::test]
async fn environment_and_working_directory_reach_the_task() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = shell(
        r#"test "$MESOS_TASK_ID" = t && test "$(pwd -P)" = "$EXPECTED""#,
        tmp.path(),
    );
    spec.env.push((
        "EXPECTED".into(),
        tmp.path().canonicalize().unwrap().display().to_string(),
    ));
    let mut child = process::spawn(&spec).unwrap();
    assert_eq!(wait(&mut child).await, Termination::Exited(0));
}

#[tokio::test]
async fn spawn_failure_names_the_program() {
    let tmp = tempfile::tempdir().unwrap();
    let mut spec = shell("", tmp.path());
    spec.program = "/nonexistent/program".into();
    let error = process::spawn(&spec).unwrap_err().to_string();
    assert!(error.starts_with("/nonexistent/program: "), "{error}");
}

#[tokio::test]
async fn signal_kill_is_named_like_strsignal() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = process::spawn(&shell("sleep 30", tmp.path())).unwrap();
    process::signal_group(child.id().unwrap(), KillSignal::Kill).unwrap();
    let termination = wait(&mut child).await;
    assert!(
        matches!(termination, Termination::Signaled { signal: 9, .. }),
        "{termination:?}"
    );
    assert_eq!(
        termination.message(),
        "Command terminated with signal Killed"
    );
}

#[tokio::test]
async fn term_then_kill_escalation_ends_a_process_that_ignores_term() {
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    let script = format!(r#"trap "" TERM; echo ok > {}; sleep 30"#, ready.display());
    let mut child = process::spawn(&shell(&script, tmp.path())).unwrap();
    read_when_ready(&ready).await;
    let pgid = child.id().unwrap();
    let grace = Duration::from_millis(500);
    let started = Instant::now();
    process::signal_group(pgid, KillSignal::Term).unwrap();
    assert!(
        tokio::time::timeout(grace, child.wait()).await.is_err(),
        "TERM is trapped, so the task survives the grace"
    );
    process::signal_group(pgid, KillSignal::Kill).unwrap();
    let termination = wait(&mut child).await;
    assert!(
        started.elapsed() < grace + Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        termination.message(),
        "Command terminated with signal Killed"
    );
}

#[tokio::test]
async fn group_kill_reaches_grandchildren() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("grandchild");
    let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let mut child = process::spawn(&shell(&script, tmp.path())).unwrap();
    let grandchild = read_when_ready(&pidfile).await;
    assert!(!is_dead(&grandchild));
    let pgid = child.id().unwrap();
    process::signal_group(pgid, KillSignal::Term).unwrap();
    assert_eq!(
        wait(&mut child).await.message(),
        "Command terminated with signal Terminated"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_dead(&grandchild) {
        assert!(
            Instant::now() < deadline,
            "grandchild {grandchild} survived the group kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Signalling a group that no longer exists is not an error.
    process::signal_group(pgid, KillSignal::Kill).unwrap();
}
