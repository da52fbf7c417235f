//! End-to-end tests of the executor, run in-process against the minimal test agent of
//! `common` (axum, serving `/api/v1/executor`: a SUBSCRIBE stream with SUBSCRIBED, then
//! scripted events, and UPDATE posts, each answered with ACKNOWLEDGED on the stream).
#![allow(clippy::unwrap_used)]

mod common;

use common::{close_stream_when, push, run_against, run_with, states, task, when_ready};
use common::{Agent, AgentState, Outcome};
use serde_json::json;
use std::time::{Duration, Instant};
use strata_api::Source;
use strata_executor::core::decode_uuid;

#[tokio::test]
async fn command_task_reports_starting_running_finished_and_exits_zero() {
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH", "launch": {"task": task("t", "echo hello")}})],
        ..Default::default()
    };
    let Outcome { code, updates, .. } = run_against(state).await;
    assert_eq!(code, 0);
    assert_eq!(
        states(&updates),
        ["t TASK_STARTING", "t TASK_RUNNING", "t TASK_FINISHED"]
    );
    for (_, status) in &updates {
        assert!(
            status.uuid.as_deref().and_then(decode_uuid).is_some(),
            "uuid is base64 of 16 bytes: {:?}",
            status.uuid
        );
        assert_eq!(status.source, Some(Source::Executor));
        assert_eq!(status.executor_id.as_ref().map(|e| e.as_str()), Some("ex"));
        assert!(status.timestamp.is_some_and(|t| t > 1e9));
    }
    assert_eq!(
        updates[2].1.message.as_deref(),
        Some("Command exited with status 0")
    );
}

#[tokio::test]
async fn kill_escalates_to_sigkill_within_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    let script = format!("trap '' TERM; echo ok > {}; sleep 30", ready.display());
    let kill = json!({"type": "KILL", "kill": {"task_id": {"value": "t"}, "kill_policy": {"grace_period": {"nanoseconds": 500_000_000}}}});
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH", "launch": {"task": task("t", &script)}})],
        ..Default::default()
    };
    let Outcome { code, updates, .. } = run_with(
        state,
        false,
        when_ready(ready, move |state| push(state, &kill)),
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        states(&updates),
        [
            "t TASK_STARTING",
            "t TASK_RUNNING",
            "t TASK_KILLING",
            "t TASK_KILLED"
        ]
    );
    assert_eq!(
        updates[3].1.message.as_deref(),
        Some("Command terminated with signal Killed")
    );
    let took = updates[3].0 - updates[2].0;
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1_500),
        "kill took {took:?}"
    );
}

#[tokio::test]
async fn task_group_failure_kills_the_other_tasks() {
    let group = json!({"tasks": [task("a", "echo \"$MESOS_SANDBOX\"; sleep 0.2; exit 1"), task("b", "sleep 30")]});
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH_GROUP", "launch_group": {"task_group": group}})],
        ..Default::default()
    };
    let Outcome {
        code,
        updates,
        sandbox,
        ..
    } = run_against(state).await;
    assert_eq!(code, 0);
    assert_eq!(
        states(&updates),
        [
            "a TASK_STARTING",
            "b TASK_STARTING",
            "a TASK_RUNNING",
            "b TASK_RUNNING",
            "a TASK_FAILED",
            "b TASK_KILLING",
            "b TASK_KILLED"
        ]
    );
    assert_eq!(
        updates[4].1.message.as_deref(),
        Some("Command exited with status 1")
    );
    assert_eq!(
        updates[6].1.message.as_deref(),
        Some("Command terminated with signal Terminated")
    );
    let task_dir = sandbox.path().join("tasks/a");
    let stdout = std::fs::read_to_string(task_dir.join("stdout")).unwrap();
    assert_eq!(stdout.trim(), task_dir.display().to_string());
    assert!(sandbox.path().join("tasks/b/stderr").is_file());
}

#[tokio::test]
async fn lost_stream_without_checkpointing_kills_the_task_and_exits_one() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("pid");
    let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH", "launch": {"task": task("t", &script)}})],
        ..Default::default()
    };
    let started = Instant::now();
    let Outcome { code, updates, .. } =
        run_with(state, false, close_stream_when(pidfile.clone())).await;
    assert_eq!(code, 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(states(&updates), ["t TASK_STARTING", "t TASK_RUNNING"]);
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        if stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "task process {pid} survived the executor"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn lost_stream_with_checkpointing_resubscribes_and_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    let release = tmp.path().join("release");
    // The task runs until the test has seen the executor resubscribe.
    let script = format!(
        "echo ok > {}; while [ ! -e {} ]; do sleep 0.05; done",
        ready.display(),
        release.display()
    );
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH", "launch": {"task": task("t", &script)}})],
        ..Default::default()
    };
    let hook = move |agent: Agent| {
        close_stream_when(ready)(agent.clone());
        tokio::spawn(async move {
            while agent.lock().unwrap().subscribes.len() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            std::fs::write(release, "go").unwrap();
        });
    };
    let Outcome {
        code,
        updates,
        subscribes,
        ..
    } = run_with(state, true, hook).await;
    assert_eq!(code, 0);
    assert_eq!(
        states(&updates),
        ["t TASK_STARTING", "t TASK_RUNNING", "t TASK_FINISHED"]
    );
    assert_eq!(subscribes.len(), 2);
    assert!(
        subscribes[0].unacknowledged_tasks.is_empty()
            && subscribes[0].unacknowledged_updates.is_empty()
    );
    // STARTING and RUNNING were acknowledged before the stream dropped: nothing to resend.
    assert!(
        subscribes[1].unacknowledged_tasks.is_empty()
            && subscribes[1].unacknowledged_updates.is_empty()
    );
}
