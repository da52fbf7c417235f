//! Agent restart: `recover` from checkpointed state, re-registration, executors that
//! re-subscribe and those that do not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_agent_core::checkpoint::{
    CheckpointOp, ExecutorRecord, RecoveredExecutor, RecoveredFramework, RecoveredState,
    RecoveredTask,
};
use strata_agent_core::ExecutorKind;
use strata_api::agent_link::ToMaster;
use strata_api::executor::{Event, Subscribe, UnacknowledgedUpdate};
use strata_api::{ContainerId, Reason, TaskState, TaskStatus};

const LIVE_CONTAINER: &str = "old-1";
const DEAD_CONTAINER: &str = "old-2";

fn executor_status(task: &str, executor: &str, state: TaskState, n: u8) -> TaskStatus {
    let mut s = status(task, state, n);
    s.executor_id = Some(eid(executor));
    s.agent_id = Some(aid());
    s.timestamp = Some(T0 - 100.0);
    s
}

/// A checkpointing framework with a live custom executor `live` (pid 4242) running
/// `t-run` (RUNNING, its RUNNING update unacknowledged) and holding never-started
/// `t-new`; and a dead command executor `t-dead` whose task was RUNNING, next to a
/// finished task `t-done` whose FINISHED is unacknowledged.
fn checkpointed(caps: &[&str]) -> RecoveredState {
    let live_cid = ContainerId::new(LIVE_CONTAINER);
    let dead_cid = ContainerId::new(DEAD_CONTAINER);
    let live = custom_executor("live");
    let mut dead = custom_executor("t-dead");
    dead.command = Some(strata_api::CommandInfo::shell("strata executor"));
    let running = executor_status("t-run", "live", TaskState::Running, 1);
    let done = executor_status("t-done", "t-dead", TaskState::Finished, 4);
    RecoveredState {
        frameworks: vec![RecoveredFramework {
            info: framework(true, caps),
            executors: vec![
                RecoveredExecutor {
                    record: ExecutorRecord {
                        kind: ExecutorKind::Custom(live.command.clone().unwrap()),
                        info: live,
                        directory: sandbox("live", &live_cid),
                        container_id: live_cid,
                    },
                    tasks: vec![
                        RecoveredTask {
                            info: exec_task("t-run"),
                            latest: Some(running.clone()),
                            pending: vec![running],
                        },
                        RecoveredTask {
                            info: exec_task("t-new"),
                            latest: None,
                            pending: Vec::new(),
                        },
                    ],
                    pid: Some(4242),
                },
                RecoveredExecutor {
                    record: ExecutorRecord {
                        info: dead,
                        kind: ExecutorKind::Command,
                        directory: sandbox("t-dead", &dead_cid),
                        container_id: dead_cid,
                    },
                    tasks: vec![
                        RecoveredTask {
                            info: task("t-dead"),
                            latest: Some(executor_status(
                                "t-dead",
                                "t-dead",
                                TaskState::Running,
                                3,
                            )),
                            pending: Vec::new(),
                        },
                        RecoveredTask {
                            info: task("t-done"),
                            latest: Some(done.clone()),
                            pending: vec![done],
                        },
                    ],
                    pid: None,
                },
            ],
        }],
    }
}

fn recovered(caps: &[&str]) -> Harness {
    let mut h = Harness::recovered(checkpointed(caps));
    h.containers
        .insert("live".into(), ContainerId::new(LIVE_CONTAINER));
    h.containers
        .insert("t-dead".into(), ContainerId::new(DEAD_CONTAINER));
    h
}

#[test]
fn dead_executors_tasks_fail_and_pending_updates_go_out_after_registration() {
    let mut h = recovered(&[]);
    // Not registered yet: nothing goes to the master but the (best-effort) exit notice.
    assert!(h.status_updates().is_empty(), "{:#?}", h.out);
    let exits: Vec<_> = h
        .to_master()
        .into_iter()
        .filter_map(|m| match m {
            ToMaster::ExecutorExited(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].executor_id, eid("t-dead"));
    assert!(exits[0].command_executor);
    // The agent-made update is durable before it can be sent.
    let failed_written = h.checkpoints().iter().any(|op| {
        matches!(op, CheckpointOp::Updates { task_id, pending, .. }
            if task_id == &tid("t-dead") && pending.iter().any(|s| s.state == TaskState::Failed))
    });
    assert!(failed_written, "{:#?}", h.out);
    assert!(h.destroys().is_empty(), "the live executor is left alone");

    h.at(T0 + 1.0);
    h.register();
    let mut sent = h.sent();
    sent.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sent,
        [
            ("t-dead".into(), TaskState::Failed),
            ("t-done".into(), TaskState::Finished),
            ("t-run".into(), TaskState::Running),
        ]
    );
    assert_eq!(h.sent_for("t-run").uuid.as_deref(), Some(uuid(1).as_str()));
    assert_eq!(h.sent_for("t-done").uuid.as_deref(), Some(uuid(4).as_str()));
    let dead = h.sent_for("t-dead");
    assert_agent_status(
        &dead,
        TaskState::Failed,
        Reason::ExecutorTerminated,
        "Executor terminated while the agent was down",
    );
    assert_eq!(dead.executor_id, Some(eid("t-dead")));
    // The live executor is still waiting to re-subscribe.
    assert!(h.destroys().is_empty());
    assert_eq!(h.metric("executors_registering"), 1.0);
    // Resent pending updates are retried like any other.
    h.tick_at(T0 + 1.0 + RETRY_INITIAL);
    assert_eq!(h.sent().len(), 3);
    // Acks finish the dead executor off.
    h.ack("t-dead", dead.uuid.as_deref().unwrap());
    h.ack("t-done", &uuid(4));
    assert!(h.executor_state("completed_executors", "t-dead").is_some());
    assert!(h.executor_state("executors", "live").is_some());
}

#[test]
fn hello_after_recovery_reports_tasks_and_custom_executors() {
    let h = recovered(&[]);
    let hello = h.a.hello();
    assert_eq!(hello.agent_info.id, Some(aid()), "the kept agent id");
    assert_eq!(hello.frameworks, [framework(true, &[])]);
    let executors: Vec<_> = hello
        .executors
        .iter()
        .map(|e| e.executor_id.to_string())
        .collect();
    assert_eq!(
        executors,
        ["live"],
        "no command executor, no exited executor"
    );
    assert_eq!(hello.executors[0].framework_id, Some(fid()));
    let mut tasks: Vec<_> = hello
        .tasks
        .iter()
        .map(|t| {
            (
                t.task_id.to_string(),
                t.state,
                t.status_update_state,
                t.executor_id.as_ref().map(|e| e.to_string()),
            )
        })
        .collect();
    tasks.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        tasks,
        [
            (
                "t-dead".into(),
                TaskState::Failed,
                Some(TaskState::Failed),
                None
            ),
            (
                "t-done".into(),
                TaskState::Finished,
                Some(TaskState::Finished),
                None
            ),
            (
                "t-new".into(),
                TaskState::Staging,
                None,
                Some("live".into())
            ),
            (
                "t-run".into(),
                TaskState::Running,
                Some(TaskState::Running),
                Some("live".into())
            ),
        ]
    );
    let run = hello
        .tasks
        .iter()
        .find(|t| t.task_id == tid("t-run"))
        .unwrap();
    assert_eq!(run.status_update_uuid.as_deref(), Some(uuid(1).as_str()));
    assert_eq!(run.agent_id, aid());
    assert_eq!(run.container_id, Some(ContainerId::new(LIVE_CONTAINER)));
}

#[test]
fn resubscribing_executor_is_not_sent_the_tasks_it_already_holds() {
    let mut h = recovered(&[]);
    h.register();
    h.at(T0 + 2.0);
    let sub = Subscribe {
        unacknowledged_tasks: vec![exec_task("t-new")],
        unacknowledged_updates: Vec::new(),
    };
    let (conn, reply) = h.subscribe_with("live", sub);
    assert_eq!(reply, strata_agent_core::Reply::Stream);
    assert_eq!(h.kinds(conn), ["SUBSCRIBED"], "no second LAUNCH of t-new");
    let Event::Subscribed(s) = &h.events(conn)[0] else {
        unreachable!()
    };
    assert_eq!(s.container_id, Some(ContainerId::new(LIVE_CONTAINER)));
    assert_eq!(s.framework_info.id, Some(fid()));
    assert!(h.task_list("live", "queued_tasks").is_empty());
    let mut tasks = h.task_list("live", "tasks");
    tasks.sort();
    assert_eq!(
        tasks,
        [
            ("t-new".into(), "TASK_STAGING".into()),
            ("t-run".into(), "TASK_RUNNING".into())
        ]
    );
    // It stays past the re-registration timeout.
    h.tick_at(T0 + 10.0 * REREGISTRATION_TIMEOUT);
    assert!(h.destroys().is_empty(), "{:#?}", h.out);
    assert_eq!(h.metric("executors_running"), 1.0);
    // Its updates flow as before.
    h.update("live", "t-new", TaskState::Running, 7);
    assert_eq!(h.kinds(conn), ["ACKNOWLEDGED"]);
    assert_eq!(h.sent(), [("t-new".into(), TaskState::Running)]);
}

#[test]
fn resent_unacknowledged_updates_are_ingested_on_subscribe() {
    let mut h = recovered(&[]);
    h.register();
    let sub = Subscribe {
        unacknowledged_tasks: Vec::new(),
        unacknowledged_updates: vec![UnacknowledgedUpdate {
            framework_id: Some(fid()),
            status: executor_status("t-new", "live", TaskState::Running, 8),
        }],
    };
    let (conn, _) = h.subscribe_with("live", sub);
    assert_eq!(
        h.kinds(conn),
        ["SUBSCRIBED", "ACKNOWLEDGED"],
        "t-new is running already"
    );
    let Event::Acknowledged(a) = &h.events(conn)[1] else {
        unreachable!()
    };
    assert_eq!(a.uuid, uuid(8));
    assert_eq!(h.sent(), [("t-new".into(), TaskState::Running)]);
    assert_eq!(
        h.task_list("live", "tasks")
            .into_iter()
            .find(|t| t.0 == "t-new"),
        Some(("t-new".into(), "TASK_RUNNING".into()))
    );
}

#[test]
fn kill_before_resubscription_is_delivered_on_subscribe() {
    let mut h = recovered(&[]);
    h.register();
    h.kill("t-run", Some(kill_policy(1.0)));
    assert!(h.all_events().is_empty());
    let sub = Subscribe {
        unacknowledged_tasks: vec![exec_task("t-new")],
        unacknowledged_updates: Vec::new(),
    };
    let (conn, _) = h.subscribe_with("live", sub);
    assert_eq!(h.kinds(conn), ["SUBSCRIBED", "KILL"]);
    let Event::Kill(k) = &h.events(conn)[1] else {
        unreachable!()
    };
    assert_eq!(k.task_id, tid("t-run"));
}

#[test]
fn executor_that_does_not_resubscribe_is_destroyed_and_its_tasks_lost_or_gone() {
    for (caps, state) in [
        (&[][..], TaskState::Lost),
        (&["PARTITION_AWARE"][..], TaskState::Gone),
    ] {
        let mut h = recovered(caps);
        h.register();
        h.ack("t-run", &uuid(1));
        h.tick_at(T0 + REREGISTRATION_TIMEOUT - 0.1);
        assert!(h.destroys().is_empty());
        h.tick_at(T0 + REREGISTRATION_TIMEOUT);
        assert_eq!(h.destroys(), [ContainerId::new(LIVE_CONTAINER)]);
        assert!(h
            .status_updates()
            .iter()
            .all(|u| u.status.task_id != tid("t-run")));
        h.tick_at(T0 + 3.0 * REREGISTRATION_TIMEOUT);
        assert!(h.destroys().is_empty(), "destroyed once");
        h.exited("live", 9);
        let mut sent = h.sent();
        sent.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(sent, [("t-new".into(), state), ("t-run".into(), state)]);
        for t in ["t-new", "t-run"] {
            assert_agent_status(
                &h.sent_for(t),
                state,
                Reason::ExecutorReregistrationTimeout,
                "Executor did not reregister within 5secs",
            );
        }
        assert_eq!(h.metric("executors_registering"), 0.0);
    }
}
