//! The v1 executor API's answers: UPDATE validation (400), unknown framework or executor
//! (400), calls before SUBSCRIBE (403), MESSAGE and HEARTBEAT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_agent_core::Reply;
use strata_api::agent_link::ToMaster;
use strata_api::executor::{CallBody, Message, Subscribe};
use strata_api::{Source, TaskState};

fn error(reply: Reply) -> (u16, String) {
    match reply {
        Reply::Error(code, msg) => (code, msg),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn invalid_updates_are_400_and_go_nowhere() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    let conn = h.conn("t1");

    let mut no_uuid = status("t1", TaskState::Running, 1);
    no_uuid.uuid = None;
    let mut short_uuid = status("t1", TaskState::Running, 1);
    short_uuid.uuid = Some("AAAAAAAAAAA=".into()); // 8 bytes
    let mut not_base64 = status("t1", TaskState::Running, 1);
    not_base64.uuid = Some("not a uuid!".into());
    let staging = status("t1", TaskState::Staging, 2);
    let mut other_executor = status("t1", TaskState::Running, 3);
    other_executor.executor_id = Some(eid("someone-else"));
    let mut agent_source = status("t1", TaskState::Running, 4);
    agent_source.source = Some(Source::Agent);
    let mut no_source = status("t1", TaskState::Running, 5);
    no_source.source = None;

    let cases = [
        (no_uuid, "Expecting 'uuid' to be present"),
        (short_uuid, "Not a valid UUID"),
        (not_base64, "Not a valid UUID"),
        (staging, &format!("Received TASK_STAGING from executor t1 of framework {FW} which is not allowed")),
        (
            other_executor,
            "ExecutorID in Call: t1 does not match ExecutorID in TaskStatus: someone-else",
        ),
        (
            agent_source,
            &format!("Received Call from executor t1 of framework {FW} with invalid source, expecting 'SOURCE_EXECUTOR'"),
        ),
        (
            no_source,
            &format!("Received Call from executor t1 of framework {FW} with invalid source, expecting 'SOURCE_EXECUTOR'"),
        ),
    ];
    let n = cases.len();
    for (s, why) in cases {
        let (code, msg) = error(h.update_raw("t1", s.clone()));
        assert_eq!(code, 400, "{s:?}");
        assert_eq!(msg, format!("Failed to validate Executor::Call: {why}"));
        assert!(h.out.is_empty(), "nothing sent for {s:?}: {:#?}", h.out);
    }
    assert_eq!(h.metric("invalid_status_updates"), n as f64);
    assert_eq!(h.metric("valid_status_updates"), 0.0);
    // The task did not move.
    assert_eq!(
        h.task_list("t1", "tasks"),
        [("t1".into(), "TASK_STAGING".into())]
    );
    // A valid one goes through, and naming its own executor is fine.
    let mut ok = status("t1", TaskState::Running, 9);
    ok.executor_id = Some(eid("t1"));
    assert_eq!(h.update_raw("t1", ok), Reply::Accepted);
    assert_eq!(h.kinds(conn), ["ACKNOWLEDGED"]);
    assert_eq!(h.metric("valid_status_updates"), 1.0);
}

#[test]
fn unknown_framework_or_executor_is_400() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    let other = strata_api::FrameworkId::new("nope");

    let (code, msg) = error(h.call_as(&other, "t1", CallBody::Heartbeat));
    assert_eq!(code, 400);
    assert!(msg.contains("nope"), "{msg}");
    let (code, _) = error(h.call("ghost", CallBody::Heartbeat));
    assert_eq!(code, 400);
    let (code, _) = error(h.update_raw("ghost", status("t1", TaskState::Running, 1)));
    assert_eq!(code, 400);

    let (_, reply) = h.subscribe_as(&other, "t1", Subscribe::default());
    assert_eq!(error(reply).0, 400);
    let (_, reply) = h.subscribe_with("ghost", Subscribe::default());
    assert_eq!(error(reply).0, 400);
    assert!(
        h.out.is_empty(),
        "no events for a refused stream: {:#?}",
        h.out
    );
}

#[test]
fn calls_before_subscribe_are_403() {
    let mut h = Harness::registered();
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t1"));
    h.started("e1", 77);
    for body in [
        CallBody::Update(strata_api::executor::Update {
            status: status("t1", TaskState::Running, 1),
        }),
        CallBody::Message(Message {
            data: "aGk=".into(),
        }),
    ] {
        let (code, msg) = error(h.call("e1", body));
        assert_eq!(code, 403);
        assert_eq!(msg, "Executor is not subscribed");
        assert!(h.out.is_empty());
    }
    assert_eq!(h.metric("valid_status_updates"), 0.0);
    // Once subscribed the same update is accepted.
    h.subscribe("e1");
    h.update("e1", "t1", TaskState::Running, 1);
}

#[test]
fn message_goes_to_the_master_and_heartbeat_is_202() {
    let mut h = Harness::registered();
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t1"));
    h.subscribe("e1");
    assert_eq!(h.call("e1", CallBody::Heartbeat), Reply::Accepted);
    assert!(h.out.is_empty());
    let reply = h.call(
        "e1",
        CallBody::Message(Message {
            data: "aGk=".into(),
        }),
    );
    assert_eq!(reply, Reply::Accepted);
    match h.to_master().as_slice() {
        [ToMaster::ExecutorMessage(m)] => {
            assert_eq!(m.framework_id, fid());
            assert_eq!(m.executor_id, eid("e1"));
            assert_eq!(m.data, "aGk=");
        }
        other => panic!("expected one EXECUTOR_MESSAGE: {other:#?}"),
    }
    // And a framework message reaches the executor.
    h.master(strata_api::agent_link::ToAgent::FrameworkMessage(
        strata_api::agent_link::FrameworkMessage {
            framework_id: fid(),
            executor_id: eid("e1"),
            data: "eW8=".into(),
        },
    ));
    assert_eq!(h.kinds(h.conn("e1")), ["MESSAGE"]);
    assert_eq!(h.metric("valid_framework_messages"), 1.0);
}

#[test]
fn an_exited_executor_cannot_subscribe() {
    let mut h = Harness::registered();
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t1"));
    h.run(&plain(), Some(custom_executor("e2")), exec_task("t2"));
    h.exited("e1", 9);
    // Still known (its task's TASK_FAILED is not acknowledged yet), but exited.
    assert!(h.executor_state("executors", "e1").is_some());
    let (_, reply) = h.subscribe_with("e1", Subscribe::default());
    let (code, msg) = error(reply);
    assert_eq!(code, 400);
    assert!(msg.contains("terminated"), "{msg}");
    assert!(h.out.is_empty(), "{:#?}", h.out);
}
