//! An executor process ends: agent-made terminal updates for its unfinished tasks and
//! EXECUTOR_EXITED to the master.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_agent_core::Input;
use strata_api::agent_link::{ExecutorExited, ToMaster};
use strata_api::{Reason, TaskState};

fn exited_msgs(h: &Harness) -> Vec<ExecutorExited> {
    h.to_master()
        .into_iter()
        .filter_map(|m| match m {
            ToMaster::ExecutorExited(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[test]
fn custom_executor_exit_fails_its_live_and_queued_tasks() {
    let mut h = Harness::registered();
    let fw = plain();
    h.run(&fw, Some(custom_executor("e1")), exec_task("t1"));
    h.started("e1", 31);
    let conn = h.subscribe("e1");
    h.run(&fw, Some(custom_executor("e1")), exec_task("t2")); // launched, STAGING
    h.update("e1", "t1", TaskState::Running, 1);
    h.ack("t1", &uuid(1));
    h.update("e1", "t3-unknown", TaskState::Running, 2); // not a task of the agent
    h.ack("t3-unknown", &uuid(2));
    h.close_stream("e1");
    h.run(&fw, Some(custom_executor("e1")), exec_task("t4")); // queued (no stream)
    assert!(
        h.out.is_empty(),
        "queued for a disconnected executor: {:#?}",
        h.out
    );

    h.at(T0 + 3.0);
    h.exited("e1", 9);
    assert!(h.closed().is_empty(), "stream already gone (was {conn:?})");
    let mut sent = h.sent();
    sent.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sent,
        [
            ("t1".into(), TaskState::Failed),
            ("t2".into(), TaskState::Failed),
            ("t4".into(), TaskState::Failed)
        ]
    );
    for t in ["t1", "t2", "t4"] {
        let s = h.sent_for(t);
        assert_agent_status(
            &s,
            TaskState::Failed,
            Reason::ExecutorTerminated,
            "Executor terminated",
        );
        assert_eq!(s.executor_id, Some(eid("e1")));
        assert_eq!(s.timestamp, Some(T0 + 3.0));
    }
    assert_eq!(
        exited_msgs(&h),
        [ExecutorExited {
            framework_id: fid(),
            executor_id: eid("e1"),
            status: 9,
            command_executor: false,
        }]
    );
    assert_eq!(h.metric("tasks_failed"), 3.0);
    assert_eq!(h.metric("executors_terminated"), 1.0);
    // Terminal but unacknowledged: the executor stays until every ack arrives.
    assert!(h.executor_state("executors", "e1").is_some());
    for t in ["t1", "t2"] {
        let s =
            h.a.hello()
                .tasks
                .into_iter()
                .find(|x| x.task_id.as_str() == t)
                .unwrap();
        assert_eq!(s.state, TaskState::Failed);
        h.ack(t, s.status_update_uuid.as_deref().unwrap());
    }
    assert!(h.executor_state("executors", "e1").is_some());
    let s =
        h.a.hello()
            .tasks
            .into_iter()
            .find(|x| x.task_id.as_str() == "t4")
            .unwrap();
    h.ack("t4", s.status_update_uuid.as_deref().unwrap());
    assert!(
        h.fw_state("frameworks").is_none(),
        "all acknowledged: completed"
    );
}

#[test]
fn command_executor_exit_is_reported_as_such() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Running, 1);
    h.ack("t1", &uuid(1));
    h.exited("t1", 137 << 8);
    let s = h.sent_for("t1");
    assert_agent_status(
        &s,
        TaskState::Failed,
        Reason::ExecutorTerminated,
        "Executor terminated",
    );
    let e = exited_msgs(&h);
    assert_eq!(e.len(), 1);
    assert!(e[0].command_executor);
    assert_eq!(e[0].status, 137 << 8);
    assert_eq!(h.closed().len(), 1, "its stream is closed");
}

#[test]
fn default_executor_exit_fails_the_whole_group() {
    let mut h = Harness::registered();
    h.run_group(
        &plain(),
        default_executor("d1"),
        vec![exec_task("g1"), exec_task("g2")],
    );
    h.subscribe("d1");
    h.exited("d1", 1);
    assert_eq!(h.sent().len(), 2);
    let e = exited_msgs(&h);
    assert!(
        !e[0].command_executor,
        "the default executor is not a command executor"
    );
}

#[test]
fn launch_failure_fails_the_task_with_the_reason() {
    let mut h = Harness::registered();
    h.run(&plain(), None, task("t1"));
    h.failed("t1", "fetch of http://x failed");
    let s = h.sent_for("t1");
    assert_agent_status(
        &s,
        TaskState::Failed,
        Reason::ContainerLaunchFailed,
        "Failed to launch container: fetch of http://x failed",
    );
    assert_eq!(h.metric("container_launch_errors"), 1.0);
    assert_eq!(exited_msgs(&h).len(), 1);
    // Its reliable update goes through the usual stream.
    h.ack_sent("t1");
    assert!(h.fw_state("frameworks").is_none());
}

#[test]
fn agent_made_update_queues_behind_the_unacknowledged_one() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Running, 1);
    h.exited("t1", 1);
    assert!(h.status_updates().is_empty(), "RUNNING is still in flight");
    h.ack("t1", &uuid(1));
    let s = h.sent_for("t1");
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.source, Some(strata_api::Source::Agent));
}

#[test]
fn exit_of_an_unknown_container_is_ignored() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.exited("t1", 0);
    h.clear_log();
    // The same container reported twice.
    h.exited("t1", 0);
    assert!(h.out.is_empty(), "{:#?}", h.out);
}

#[test]
fn a_failed_update_explained_by_a_container_limit_carries_the_limitation() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Running, 1);
    h.ack("t1", &uuid(1));
    // The OOM-killed command: the executor reports a plain failure first...
    h.update("t1", "t1", TaskState::Failed, 2);
    assert!(
        h.sent().is_empty(),
        "a built-in executor's TASK_FAILED waits for its container: {:#?}",
        h.out
    );
    // ...then the shell finds the limit and the container exits.
    let container_id = h.container("t1");
    let message = "Memory limit exceeded: Requested: 96MB Maximum Used: 96MB".to_string();
    h.step(Input::ContainerLimited {
        container_id,
        reason: Reason::ContainerLimitationMemory,
        message: message.clone(),
    });
    h.exited("t1", 0);
    let s = h.sent_for("t1");
    assert_eq!(
        (s.state, s.reason, s.message.as_deref()),
        (
            TaskState::Failed,
            Some(Reason::ContainerLimitationMemory),
            Some(message.as_str())
        )
    );
    assert_eq!(
        s.uuid,
        Some(uuid(2)),
        "the executor's own update, explained"
    );
}

#[test]
fn a_held_failed_update_is_released_if_the_container_lingers() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Running, 1);
    h.ack("t1", &uuid(1));
    h.update("t1", "t1", TaskState::Failed, 2);
    assert!(h.sent().is_empty());
    let later = h.now + 10.0;
    h.tick_at(later);
    let s = h.sent_for("t1");
    assert_eq!((s.state, s.reason), (TaskState::Failed, None));
}
