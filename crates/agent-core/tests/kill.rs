//! KILL_TASK: queued tasks, launched tasks with and without a stream, unknown tasks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_api::executor::{Event, Subscribe};
use strata_api::{Reason, TaskState};

#[test]
fn killing_a_queued_task_kills_it_and_shuts_the_idle_executor_down() {
    let mut h = Harness::registered();
    h.run(&plain(), None, task("t1"));
    let container = h.launch().container_id;
    h.at(T0 + 1.0);
    h.kill("t1", None);
    let s = h.sent_for("t1");
    assert_agent_status(
        &s,
        TaskState::Killed,
        Reason::TaskKilledDuringLaunch,
        "Killed before delivery to the executor",
    );
    assert_eq!(s.executor_id, Some(eid("t1")));
    assert_eq!(h.metric("tasks_killed"), 1.0);
    assert!(h.task_list("t1", "queued_tasks").is_empty());
    // The executor has nothing to do: its container is destroyed by the end of the grace
    // period (at once, since it has no stream to hear SHUTDOWN on).
    let mut destroyed = h.destroys();
    h.tick_at(T0 + 1.0 + GRACE);
    destroyed.extend(h.destroys());
    assert_eq!(destroyed, [container]);
    // It never gets the task if it subscribes after all.
    let (conn, _) = h.subscribe_with("t1", Subscribe::default());
    assert!(
        !h.kinds(conn).iter().any(|k| k == "LAUNCH"),
        "{:?}",
        h.kinds(conn)
    );
    h.exited("t1", 9);
    assert!(
        h.status_updates().is_empty(),
        "no second update: {:#?}",
        h.out
    );
}

#[test]
fn killing_one_task_of_a_queued_group_kills_the_group() {
    let mut h = Harness::registered();
    h.run_group(
        &plain(),
        default_executor("d1"),
        vec![exec_task("g1"), exec_task("g2")],
    );
    h.kill("g2", None);
    let mut sent = h.sent();
    sent.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        sent,
        [
            ("g1".into(), TaskState::Killed),
            ("g2".into(), TaskState::Killed)
        ]
    );
    for t in ["g1", "g2"] {
        assert_agent_status(
            &h.sent_for(t),
            TaskState::Killed,
            Reason::TaskKilledDuringLaunch,
            "A task within the task group was killed before delivery to the executor",
        );
    }
    assert_eq!(h.destroys(), [h.container("d1")], "idle executor shut down");
}

#[test]
fn killing_a_queued_task_keeps_an_executor_that_has_other_work() {
    let mut h = Harness::registered();
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t1"));
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t2"));
    h.kill("t1", None);
    assert_eq!(h.sent(), [("t1".into(), TaskState::Killed)]);
    assert!(h.destroys().is_empty());
    let conn = h.subscribe("e1");
    assert_eq!(h.kinds(conn), ["SUBSCRIBED", "LAUNCH"]);
    let Event::Launch(l) = &h.events(conn)[1] else {
        unreachable!()
    };
    assert_eq!(l.task.task_id, tid("t2"));
}

#[test]
fn launched_task_gets_a_kill_event_with_the_policy() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    let conn = h.conn("t1");
    h.kill("t1", Some(kill_policy(7.0)));
    match h.events(conn).as_slice() {
        [Event::Kill(k)] => {
            assert_eq!(k.task_id, tid("t1"));
            assert_eq!(k.kill_policy, Some(kill_policy(7.0)));
        }
        other => panic!("expected one KILL: {other:#?}"),
    }
    assert!(
        h.to_master().is_empty(),
        "the executor answers: {:#?}",
        h.out
    );
    // Every KILL from the master is passed on.
    h.kill("t1", None);
    assert_eq!(h.kinds(conn), ["KILL"]);
}

#[test]
fn kill_for_a_disconnected_executor_is_sent_when_it_subscribes_again() {
    let mut h = Harness::registered();
    h.run(
        &framework(true, &[]),
        Some(custom_executor("e1")),
        exec_task("t1"),
    );
    h.subscribe("e1");
    h.update("e1", "t1", TaskState::Running, 1);
    h.close_stream("e1");
    h.kill("t1", Some(kill_policy(2.0)));
    assert!(h.all_events().is_empty(), "{:#?}", h.out);
    assert!(h.to_master().is_empty());
    let conn = h.subscribe("e1");
    assert_eq!(h.kinds(conn), ["SUBSCRIBED", "KILL"], "no second LAUNCH");
    let Event::Kill(k) = &h.events(conn)[1] else {
        unreachable!()
    };
    assert_eq!(k.task_id, tid("t1"));
    assert_eq!(k.kill_policy, Some(kill_policy(2.0)));
    // Only once.
    let conn = h.subscribe("e1");
    assert_eq!(h.kinds(conn), ["SUBSCRIBED"]);
}

#[test]
fn unknown_task_is_lost_or_dropped_with_cannot_find_executor() {
    for (caps, state) in [
        (&[][..], TaskState::Lost),
        (&["PARTITION_AWARE"][..], TaskState::Dropped),
    ] {
        let mut h = Harness::registered();
        let fw = framework(false, caps);
        h.run(&fw, None, task("t1")); // the framework is known here
        h.kill("ghost", None);
        let s = h.sent_for("ghost");
        assert_agent_status(
            &s,
            state,
            Reason::ExecutorTerminated,
            "Cannot find executor",
        );
        // Reliable: retried until acknowledged.
        h.tick_at(T0 + RETRY_INITIAL);
        assert_eq!(h.sent(), [("ghost".into(), state)]);
        h.ack("ghost", s.uuid.as_deref().unwrap());
        h.tick_at(T0 + 1000.0);
        assert!(h.status_updates().is_empty());
    }
}

#[test]
fn kill_of_a_task_whose_terminal_update_is_in_flight_does_nothing() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Finished, 1);
    h.kill("t1", None);
    assert!(h.out.is_empty(), "{:#?}", h.out);
}
