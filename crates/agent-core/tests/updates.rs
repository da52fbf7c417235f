//! Reliable status updates: ACKNOWLEDGED to the executor, one update in flight per task,
//! retries with capped doubling, resend on re-registration, duplicates, completion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_api::agent_link::StatusUpdate;
use strata_api::executor::Event;
use strata_api::{Source, TaskState};

#[test]
fn update_is_acknowledged_to_the_executor_and_forwarded_to_the_master() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    let conn = h.conn("t1");
    h.at(T0 + 1.0);
    h.update("t1", "t1", TaskState::Running, 1);
    match h.events(conn).as_slice() {
        [Event::Acknowledged(a)] => {
            assert_eq!(a.task_id, tid("t1"));
            assert_eq!(a.uuid, uuid(1));
        }
        other => panic!("expected ACKNOWLEDGED: {other:#?}"),
    }
    let ups = h.status_updates();
    assert_eq!(ups.len(), 1, "{:#?}", h.out);
    let StatusUpdate {
        framework_id,
        status,
        latest_state,
    } = &ups[0];
    assert_eq!(framework_id, &fid());
    assert_eq!(latest_state, &Some(TaskState::Running));
    assert_eq!(status.state, TaskState::Running);
    assert_eq!(status.uuid.as_deref(), Some(uuid(1).as_str()));
    assert_eq!(status.source, Some(Source::Executor));
    assert_eq!(status.agent_id, Some(aid()));
    assert_eq!(status.executor_id, Some(eid("t1")));
    assert_eq!(
        status.timestamp,
        Some(T0 + 1.0),
        "stamped when the executor did not"
    );
    let cs = status.container_status.as_ref().expect("container_status");
    assert_eq!(cs.container_id, Some(h.container("t1")));
    assert_eq!(cs.executor_pid, Some(4000));
    assert_eq!(h.metric("valid_status_updates"), 1.0);
}

#[test]
fn one_update_in_flight_per_task_until_the_ack() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    let conn = h.conn("t1");
    h.update("t1", "t1", TaskState::Running, 1);
    assert_eq!(h.sent(), [("t1".into(), TaskState::Running)]);
    h.update("t1", "t1", TaskState::Finished, 2);
    // The executor hears at once; the master waits for the first ack.
    assert_eq!(h.kinds(conn), ["ACKNOWLEDGED"]);
    assert!(h.status_updates().is_empty(), "{:#?}", h.out);
    // A retry of the head now says how far the task got.
    h.tick_at(T0 + RETRY_INITIAL);
    let ups = h.status_updates();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].status.state, TaskState::Running);
    assert_eq!(ups[0].latest_state, Some(TaskState::Finished));
    // An ack for another uuid changes nothing.
    h.ack("t1", &uuid(2));
    assert!(h.out.is_empty(), "{:#?}", h.out);
    h.ack("t1", &uuid(1));
    let next = h.sent_for("t1");
    assert_eq!(next.state, TaskState::Finished);
    assert_eq!(next.uuid.as_deref(), Some(uuid(2).as_str()));
    // Streams of different tasks are independent.
    h.run(&plain(), None, task("t2"));
    h.subscribe("t2");
    h.update("t2", "t2", TaskState::Running, 3);
    assert_eq!(h.sent(), [("t2".into(), TaskState::Running)]);
}

#[test]
fn retries_double_up_to_the_cap() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Running, 1);
    // Sent at T0; then after 10, 20, 40 (cap), 40… seconds.
    let mut t = T0;
    for gap in [10.0, 20.0, 40.0, 40.0, 40.0] {
        h.tick_at(t + gap - 0.5);
        assert!(
            h.out.is_empty(),
            "no retry before {}: {:#?}",
            t + gap,
            h.out
        );
        h.tick_at(t + gap);
        assert_eq!(
            h.sent(),
            [("t1".into(), TaskState::Running)],
            "retry at {}",
            t + gap
        );
        assert_eq!(h.sent_for("t1").uuid.as_deref(), Some(uuid(1).as_str()));
        t += gap;
    }
    // After the ack nothing is retried, and the next update starts at the initial interval.
    h.ack("t1", &uuid(1));
    h.tick_at(t + 100.0);
    assert!(h.out.is_empty(), "{:#?}", h.out);
    t += 100.0;
    h.update("t1", "t1", TaskState::Finished, 2);
    assert_eq!(h.sent(), [("t1".into(), TaskState::Finished)]);
    h.tick_at(t + RETRY_INITIAL - 0.5);
    assert!(h.out.is_empty());
    h.tick_at(t + RETRY_INITIAL);
    assert_eq!(h.sent(), [("t1".into(), TaskState::Finished)]);
}

#[test]
fn nothing_goes_to_a_disconnected_master_and_registration_resends_every_head() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.run(&plain(), None, task("t2"));
    h.subscribe("t2");
    h.update("t1", "t1", TaskState::Running, 1);
    h.disconnect();
    assert!(h.out.is_empty());
    // Updates still reach the agent (and are acknowledged to the executor)…
    h.update("t1", "t1", TaskState::Finished, 2);
    assert_eq!(h.kinds(h.conn("t1")), ["ACKNOWLEDGED"]);
    h.update("t2", "t2", TaskState::Running, 3);
    assert_eq!(h.kinds(h.conn("t2")), ["ACKNOWLEDGED"]);
    assert!(h.to_master().is_empty(), "{:#?}", h.out);
    // …but neither they nor the retries go to the master.
    for t in [10.0, 30.0, 70.0, 110.0, 150.0, 400.0] {
        h.tick_at(T0 + t);
        assert!(h.to_master().is_empty(), "at +{t}: {:#?}", h.out);
    }
    // Re-registration resends the head of every stream at once, and only the heads.
    let back = T0 + 400.0;
    h.register();
    let mut sent = h.sent();
    sent.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sent,
        [
            ("t1".into(), TaskState::Running),
            ("t2".into(), TaskState::Running)
        ]
    );
    assert_eq!(h.sent_for("t1").uuid.as_deref(), Some(uuid(1).as_str()));
    // The retry interval starts again from the minimum (Mesos `resume()`).
    h.tick_at(back + RETRY_INITIAL - 0.5);
    assert!(h.out.is_empty(), "{:#?}", h.out);
    h.tick_at(back + RETRY_INITIAL);
    assert_eq!(h.sent().len(), 2, "{:#?}", h.out);
}

#[test]
fn registered_message_from_the_master_also_resends() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Running, 1);
    h.disconnect();
    h.master(strata_api::agent_link::ToAgent::Registered(
        strata_api::agent_link::Registered {
            agent_id: aid(),
            session: "s2".into(),
            ping_interval_seconds: 3.0,
            master_info: strata_api::MasterInfo {
                domain: None,
                id: "m".into(),
                ip: 0,
                port: 5050,
                pid: None,
                hostname: None,
                version: None,
                address: None,
                capabilities: Vec::new(),
            },
        },
    ));
    assert_eq!(h.sent(), [("t1".into(), TaskState::Running)]);
    assert!(h.a.master_connected());
}

#[test]
fn duplicate_uuid_is_acknowledged_but_not_queued_twice() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    let conn = h.conn("t1");
    h.update("t1", "t1", TaskState::Running, 1);
    h.update("t1", "t1", TaskState::Running, 1);
    assert_eq!(
        h.kinds(conn),
        ["ACKNOWLEDGED"],
        "the executor may stop resending"
    );
    assert!(h.status_updates().is_empty());
    h.ack("t1", &uuid(1));
    assert!(
        h.status_updates().is_empty(),
        "the duplicate is not a second update: {:#?}",
        h.out
    );
    h.tick_at(T0 + 1000.0);
    assert!(h.out.is_empty());
}

#[test]
fn acknowledged_terminal_update_completes_task_then_executor_then_framework() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Running, 1);
    h.ack("t1", &uuid(1));
    assert_eq!(
        h.task_list("t1", "tasks"),
        [("t1".into(), "TASK_RUNNING".into())]
    );
    h.update("t1", "t1", TaskState::Finished, 2);
    // Terminal but unacknowledged: listed with the completed tasks (as Mesos does).
    assert!(h.task_list("t1", "tasks").is_empty());
    assert_eq!(
        h.task_list("t1", "completed_tasks"),
        [("t1".into(), "TASK_FINISHED".into())]
    );
    assert_eq!(h.metric("tasks_finished"), 1.0);
    h.ack("t1", &uuid(2));
    assert!(h.out.is_empty(), "{:#?}", h.out);
    assert!(
        h.executor_state("executors", "t1").is_some(),
        "still running"
    );
    assert_eq!(
        h.task_list("t1", "completed_tasks"),
        [("t1".into(), "TASK_FINISHED".into())]
    );
    // The command executor exits after its terminal update.
    h.exited("t1", 0);
    assert_eq!(
        h.kinds_all(),
        ["close", "master:EXECUTOR_EXITED"],
        "its stream is closed; no task updates"
    );
    assert!(h.fw_state("frameworks").is_none(), "framework completed");
    let done = h
        .fw_state("completed_frameworks")
        .expect("completed framework");
    assert_eq!(done["completed_executors"][0]["id"], "t1");
    assert_eq!(
        done["completed_executors"][0]["completed_tasks"][0]["state"],
        "TASK_FINISHED"
    );
    assert_eq!(h.metric("frameworks_active"), 0.0);
}

#[test]
fn executor_exiting_before_the_ack_is_kept_until_the_ack() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Finished, 1);
    h.exited("t1", 0);
    assert!(
        h.status_updates().is_empty(),
        "no agent-made update for a terminal task"
    );
    assert!(
        h.executor_state("executors", "t1").is_some(),
        "kept while its terminal update is unacknowledged"
    );
    // The update is still retried.
    h.tick_at(T0 + RETRY_INITIAL);
    assert_eq!(h.sent(), [("t1".into(), TaskState::Finished)]);
    h.ack("t1", &uuid(1));
    assert!(h.fw_state("frameworks").is_none());
    assert!(h.executor_state("completed_executors", "t1").is_some());
}

#[test]
fn an_ack_for_an_unknown_stream_is_ignored() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.ack("t1", &uuid(1));
    h.ack("nope", &uuid(1));
    assert!(h.out.is_empty());
    assert_eq!(
        h.task_list("t1", "tasks"),
        [("t1".into(), "TASK_STAGING".into())]
    );
}
