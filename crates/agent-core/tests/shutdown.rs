//! SHUTDOWN_FRAMEWORK, SHUTDOWN_EXECUTOR and the executor registration timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_api::executor::Subscribe;
use strata_api::{Reason, TaskState};

#[test]
fn shutdown_framework_shuts_executors_down_and_drops_their_updates() {
    let mut h = Harness::registered();
    let fw = plain();
    h.running_command_task(&fw, "t1");
    h.run(&fw, Some(custom_executor("e1")), exec_task("t2"));
    h.subscribe("e1");
    h.update("t1", "t1", TaskState::Running, 1); // in flight, never acknowledged
    h.at(T0 + 1.0);
    h.shutdown_framework();
    let mut shut: Vec<_> = h
        .all_events()
        .into_iter()
        .map(|(c, e)| (c, kind_of_event(&e)))
        .collect();
    shut.sort();
    let mut want = vec![
        (h.conn("t1"), "SHUTDOWN".to_string()),
        (h.conn("e1"), "SHUTDOWN".to_string()),
    ];
    want.sort();
    assert_eq!(shut, want);
    assert!(h.destroys().is_empty(), "the grace period first");
    assert!(h.to_master().is_empty());

    // An executor's update now goes nowhere: no ACKNOWLEDGED, nothing to the master.
    let before = h.metric("invalid_status_updates");
    h.update("t1", "t1", TaskState::Killed, 2);
    assert!(h.out.is_empty(), "{:#?}", h.out);
    assert_eq!(h.metric("invalid_status_updates"), before + 1.0);
    // Containers are destroyed when the grace period ends.
    h.tick_at(T0 + 1.0 + GRACE - 0.1);
    assert!(h.destroys().is_empty());
    h.tick_at(T0 + 1.0 + GRACE);
    let mut destroyed = h.destroys();
    destroyed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let mut want = vec![h.container("t1"), h.container("e1")];
    want.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(destroyed, want);

    // Nor is the pending RUNNING retried or resent.
    h.tick_at(T0 + RETRY_INITIAL + 0.5);
    assert!(h.status_updates().is_empty(), "{:#?}", h.out);
    h.disconnect();
    h.register();
    assert!(h.out.is_empty(), "{:#?}", h.out);
    // A task for the terminating framework is ignored, without an update (as Mesos: the
    // framework could not acknowledge it).
    h.run(&fw, Some(custom_executor("e3")), exec_task("t3"));
    assert!(h.out.is_empty(), "{:#?}", h.out);

    h.tick_at(T0 + 100.0);
    assert!(h.destroys().is_empty(), "destroyed once");

    // Exits send no task updates for a terminating framework.
    h.exited("t1", 9);
    assert!(h.status_updates().is_empty(), "{:#?}", h.out);
    assert!(h.fw_state("frameworks").is_some(), "e1 still runs");
    h.exited("e1", 9);
    assert!(h.status_updates().is_empty(), "{:#?}", h.out);
    assert!(h.fw_state("frameworks").is_none());
    assert!(h.fw_state("completed_frameworks").is_some());
}

#[test]
fn shutdown_executor_waits_for_its_grace_period_then_fails_what_is_left() {
    let mut h = Harness::registered();
    let fw = plain();
    let mut ex = custom_executor("e1");
    ex.shutdown_grace_period = grace(2.0);
    h.run(&fw, Some(ex.clone()), exec_task("t1"));
    h.subscribe("e1");
    h.run(&fw, Some(custom_executor("e2")), exec_task("t2"));
    h.subscribe("e2");
    h.update("e1", "t1", TaskState::Running, 1);
    h.ack("t1", &uuid(1));
    h.at(T0 + 10.0);
    h.shutdown_executor("e1");
    assert_eq!(h.kinds(h.conn("e1")), ["SHUTDOWN"]);
    assert!(
        h.events(h.conn("e2")).is_empty(),
        "other executors untouched"
    );
    h.tick_at(T0 + 11.9);
    assert!(h.destroys().is_empty());
    h.tick_at(T0 + 12.0);
    assert_eq!(h.destroys(), [h.container("e1")]);
    // A second SHUTDOWN changes nothing.
    h.shutdown_executor("e1");
    assert!(h.out.is_empty());
    // The executor died without a terminal update: as Mesos, TASK_FAILED.
    h.exited("e1", 9);
    let s = h.sent_for("t1");
    assert_agent_status(
        &s,
        TaskState::Failed,
        Reason::ExecutorTerminated,
        "Executor terminated",
    );
    // Updates of the framework still flow.
    h.update("e2", "t2", TaskState::Running, 2);
    assert_eq!(h.sent(), [("t2".into(), TaskState::Running)]);
}

#[test]
fn shutdown_of_an_executor_that_never_subscribed() {
    let mut h = Harness::registered();
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t1"));
    h.shutdown_executor("e1");
    let mut destroyed = h.destroys();
    h.tick_at(T0 + GRACE);
    destroyed.extend(h.destroys());
    assert_eq!(
        destroyed,
        [h.container("e1")],
        "destroyed by the end of the grace period"
    );
    // If it subscribes meanwhile it is told to shut down, and gets no task.
    let (conn, _) = h.subscribe_with("e1", Subscribe::default());
    assert_eq!(h.kinds(conn), ["SUBSCRIBED", "SHUTDOWN"]);
}

#[test]
fn task_for_a_terminating_executor_is_lost_or_dropped() {
    for (caps, state) in [
        (&[][..], TaskState::Lost),
        (&["PARTITION_AWARE"][..], TaskState::Dropped),
    ] {
        let mut h = Harness::registered();
        let fw = framework(false, caps);
        h.run(&fw, Some(custom_executor("e1")), exec_task("t1"));
        h.subscribe("e1");
        h.shutdown_executor("e1");
        h.run(&fw, Some(custom_executor("e1")), exec_task("t2"));
        assert!(h.launches().is_empty());
        assert!(h.all_events().is_empty(), "not delivered: {:#?}", h.out);
        let s = h.sent_for("t2");
        assert_agent_status(
            &s,
            state,
            Reason::ExecutorTerminated,
            "Executor terminating",
        );
    }
}

#[test]
fn registration_timeout_destroys_the_container_and_fails_its_tasks() {
    let mut h = Harness::registered();
    h.run(&plain(), None, task("t1"));
    h.started("t1", 55);
    h.tick_at(T0 + REGISTRATION_TIMEOUT - 0.5);
    assert!(h.out.is_empty());
    h.tick_at(T0 + REGISTRATION_TIMEOUT);
    assert_eq!(h.kinds_all(), ["destroy"]);
    assert_eq!(h.destroys(), [h.container("t1")]);
    assert!(h.status_updates().is_empty(), "updates come with the exit");
    h.tick_at(T0 + 2.0 * REGISTRATION_TIMEOUT);
    assert!(h.out.is_empty(), "destroyed once");
    h.exited("t1", 9);
    let s = h.sent_for("t1");
    assert_agent_status(
        &s,
        TaskState::Failed,
        Reason::ExecutorRegistrationTimeout,
        "Executor did not register within 1mins",
    );
    assert_eq!(s.executor_id, Some(eid("t1")));
}

#[test]
fn subscribing_in_time_cancels_the_registration_timeout() {
    let mut h = Harness::registered();
    h.run(&plain(), None, task("t1"));
    h.tick_at(T0 + REGISTRATION_TIMEOUT - 1.0);
    h.subscribe("t1");
    h.tick_at(T0 + 10.0 * REGISTRATION_TIMEOUT);
    assert!(h.out.is_empty(), "{:#?}", h.out);
    assert_eq!(h.metric("executors_running"), 1.0);
    assert_eq!(h.metric("executors_registering"), 0.0);
}
