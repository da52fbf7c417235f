//! Framework lifecycle transcripts: SUBSCRIBE, caller checks, failover, failover timeout,
//! TEARDOWN.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::scheduler::{Command, Decline, Event, Reconcile};
use strata_api::{FrameworkId, Reason, Source, TaskState};
use strata_master_core::{CallError, Effect, Reply};
use strata_registry::Op;

fn fid_n(n: u32) -> FrameworkId {
    FrameworkId::new(format!("{MASTER_ID}-{n:04}"))
}

#[test]
fn subscribe_persists_before_subscribed_then_heartbeat() {
    let mut h = Harness::new();
    let (conn, _stream, reply) = h.subscribe_raw(fw_info("one"));
    assert_eq!(reply, Reply::Stream);
    let fid = fid_n(0);

    // Exactly: Persist(PutFramework), SUBSCRIBED, HEARTBEAT, in that order.
    assert_eq!(h.out.len(), 3, "{:#?}", h.out);
    let Effect::Persist(ops) = &h.out[0] else {
        panic!("first effect must persist: {:#?}", h.out)
    };
    let mut expected = fw_info("one");
    expected.id = Some(fid.clone());
    assert_eq!(
        ops,
        &vec![Op::PutFramework {
            id: fid.to_string(),
            info: expected
        }]
    );
    let events = h.events_on(conn);
    let Event::Subscribed(s) = &events[0] else {
        panic!("{events:#?}")
    };
    assert_eq!(s.framework_id, fid);
    assert_eq!(s.heartbeat_interval_seconds, Some(15.0));
    let mi = s.master_info.as_ref().unwrap();
    assert_eq!(mi.id, MASTER_ID);
    // 10.0.0.1 in network byte order read as a little-endian u32.
    assert_eq!(mi.ip, 0x0100_000A);
    assert_eq!(mi.pid.as_deref(), Some("master@10.0.0.1:5050"));
    assert_eq!(events[1], Event::Heartbeat);

    // The counter is per master run and zero-padded to four digits.
    let second = h.subscribe(fw_info("two"));
    assert_eq!(second, fid_n(1));
    assert_eq!(h.persisted().len(), 1);

    let state = h.fw_state(&fid);
    assert_eq!(state["active"], true);
    assert_eq!(state["role"], "*");
    assert_eq!(state["recovered"], false);
}

#[test]
fn subscribe_with_invalid_framework_info_gets_error_event_and_close() {
    let mut h = Harness::new();
    let mut info = multi_role("bad", &["web"]);
    info.role = Some("web".into());
    let (conn, _, reply) = h.subscribe_raw(info);
    assert_eq!(
        reply,
        Reply::Stream,
        "the HTTP answer is still 200 + stream"
    );
    assert_eq!(
        h.events_on(conn),
        [Event::Error(strata_api::scheduler::ErrorEvent {
            message:
                "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
                    .into()
        })]
    );
    assert_eq!(h.closed_fw_conns(), [conn]);
    assert!(h.persisted().is_empty());
    assert_eq!(h.state()["frameworks"].as_array().unwrap().len(), 0);

    let mut info = fw_info("bad");
    info.failover_timeout = -1.0;
    let (conn, _, _) = h.subscribe_raw(info);
    assert_eq!(
        h.events_on(conn),
        [Event::Error(strata_api::scheduler::ErrorEvent {
            message: "The framework failover_timeout (-1) is invalid".into()
        })]
    );
}

#[test]
fn caller_checks_stream_id_and_subscription() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    let reconcile = || Command::Reconcile(Reconcile::default());

    let r = h.call_raw(&fid, None, reconcile());
    assert_eq!(
        r,
        Reply::Error(CallError {
            status: 400,
            message: "All non-subscribe calls should include the 'Mesos-Stream-Id' header".into()
        })
    );
    assert!(h.out.is_empty());

    let r = h.call_raw(&fid, Some("bogus".into()), reconcile());
    assert_eq!(
        r,
        Reply::Error(CallError {
            status: 400,
            message: format!(
                "The stream ID 'bogus' included in this request didn't match the stream ID currently associated with framework ID {fid}"
            ),
        })
    );

    let r = h.call_raw(&FrameworkId::new("nope"), Some("bogus".into()), reconcile());
    assert_eq!(
        r,
        Reply::Error(CallError {
            status: 400,
            message: "Framework cannot be found".into()
        })
    );

    // The right stream id works.
    assert_eq!(h.call(&fid, reconcile()), Reply::Accepted);

    // Disconnected (failover timeout pending): 403, even with the old stream id.
    h.close_fw(&fid);
    let r = h.call(&fid, reconcile());
    assert_eq!(
        r,
        Reply::Error(CallError {
            status: 403,
            message: "Framework is not subscribed".into()
        })
    );
    assert!(h.out.is_empty());
}

#[test]
fn rejected_calls_have_no_effect() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    h.add_agent("a1", AGENT_RES);
    h.allocate();
    let offer = h.offers(&fid).pop().unwrap();
    let decline = Command::Decline(Decline {
        offer_ids: vec![offer.id.clone()],
        filters: refuse(100.0),
    });
    assert!(matches!(
        h.call_raw(&fid, Some("stale".into()), decline),
        Reply::Error(CallError { status: 400, .. })
    ));
    assert_eq!(
        h.fw_state(&fid)["offers"].as_array().unwrap().len(),
        1,
        "offer still outstanding"
    );
}

#[test]
fn failover_moves_the_stream_and_drops_offers_without_rescind() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    let aid = h.add_agent("a1", AGENT_RES);
    h.allocate();
    let old_offer = h.offers(&fid).pop().unwrap();
    let old = h.fws[&fid].clone();

    h.advance(1.0);
    let mut info = fw_info("one");
    info.id = Some(fid.clone());
    let again = h.subscribe(info);
    assert_eq!(again, fid);

    // Old stream: ERROR then close, nothing else (no RESCIND anywhere).
    assert_eq!(
        h.events_on(old.conn),
        [Event::Error(strata_api::scheduler::ErrorEvent {
            message: "Framework failed over".into()
        })]
    );
    assert_eq!(h.closed_fw_conns(), [old.conn]);
    let err_at = h
        .position(|e| matches!(e, Effect::Framework { conn, .. } if *conn == old.conn))
        .unwrap();
    let close_at = h
        .position(|e| matches!(e, Effect::CloseFramework { .. }))
        .unwrap();
    assert!(err_at < close_at);
    assert_eq!(h.kinds(&fid), ["SUBSCRIBED", "HEARTBEAT"]);
    assert!(
        h.persisted().is_empty(),
        "unchanged FrameworkInfo is not re-persisted"
    );
    assert_eq!(h.fw_state(&fid)["offers"].as_array().unwrap().len(), 0);
    assert!(h.fw_state(&fid)["reregistered_time"].as_f64().is_some());

    // The old stream id is stale now.
    let r = h.call_raw(
        &fid,
        Some(old.stream.clone()),
        Command::Reconcile(Reconcile::default()),
    );
    assert!(
        matches!(r, Reply::Error(CallError { status: 400, .. })),
        "{r:?}"
    );

    // The old offer is gone: using it is an invalid-offers launch.
    assert_eq!(
        h.launch(&fid, &old_offer, vec![task("t1", &aid, "cpus:1;mem:128")]),
        Reply::Accepted
    );
    let u = h.update(&fid);
    assert_eq!(u.state, TaskState::Lost);
    assert_eq!(u.reason, Some(Reason::InvalidOffers));

    // The old stream ending later changes nothing.
    assert_eq!(
        h.step(strata_master_core::Input::FrameworkStreamClosed { conn: old.conn }),
        Reply::None
    );
    assert!(h.out.is_empty());
    assert_eq!(h.fw_state(&fid)["active"], true);

    // Its resources are offered again, on the new stream.
    h.allocate();
    let offers = h.offers(&fid);
    assert_eq!(offers.len(), 1);
    assert_eq!(scalar(&offers[0].resources, "cpus"), 4.0);
    assert_ne!(offers[0].id, old_offer.id);
}

#[test]
fn changed_framework_info_on_resubscribe_is_persisted_but_user_is_kept() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    let mut info = fw_info("renamed");
    info.id = Some(fid.clone());
    info.user = "mallory".into();
    h.subscribe(info);
    let ops = h.persisted();
    assert_eq!(ops.len(), 1);
    let Op::PutFramework { id, info } = &ops[0] else {
        panic!("{ops:?}")
    };
    assert_eq!(id, fid.as_str());
    assert_eq!(info.name, "renamed");
    assert_eq!(info.user, "alice", "user silently keeps its old value");
}

#[test]
fn failover_timeout_expiry_removes_framework() {
    let mut h = Harness::new();
    let mut info = fw_info("one");
    info.failover_timeout = 60.0;
    let fid = h.subscribe(info);
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "t1", "cpus:1;mem:128");
    h.status(&aid, &fid, "t1", TaskState::Running, Some(1));
    let conn = h.fw_conn(&fid);

    h.advance(10.0);
    let closed_at = h.now;
    h.close_fw(&fid);
    assert!(
        h.out.is_empty(),
        "nothing to send when the stream closes: {:#?}",
        h.out
    );
    assert_eq!(h.fw_state(&fid)["active"], false);
    assert_eq!(h.fw_state(&fid)["unregistered_time"], closed_at);

    // Not yet.
    h.at(closed_at + 59.0);
    h.step(strata_master_core::Input::AgentMessage {
        session: h.agents[&aid].session.clone(),
        message: Box::new(strata_api::agent_link::ToMaster::Pong),
    });
    h.tick();
    assert!(h.persisted().is_empty());
    assert_eq!(
        h.task_states(&fid, "tasks"),
        [("t1".to_string(), "TASK_RUNNING".to_string())]
    );

    h.at(closed_at + 60.5);
    h.tick();
    assert_eq!(
        h.persisted(),
        [Op::RemoveFramework {
            id: fid.to_string()
        }]
    );
    let shutdowns: Vec<_> = h
        .agent_kinds(&aid)
        .into_iter()
        .filter(|k| k == "SHUTDOWN_FRAMEWORK")
        .collect();
    assert_eq!(shutdowns.len(), 1);
    assert!(h.events_on(conn).is_empty(), "the framework hears nothing");

    // Completed framework holds the task as TASK_KILLED / REASON_FRAMEWORK_REMOVED.
    let s = h.state();
    assert_eq!(s["frameworks"].as_array().unwrap().len(), 0);
    assert_eq!(
        h.task_states(&fid, "completed_tasks"),
        [("t1".to_string(), "TASK_KILLED".to_string())]
    );
    let tasks = strata_master_core::views::operator::get_tasks(&h.m);
    let done = &tasks["completed_tasks"][0];
    let last = done["statuses"].as_array().unwrap().last().unwrap();
    assert_eq!(last["state"], "TASK_KILLED");
    assert_eq!(last["reason"], "REASON_FRAMEWORK_REMOVED");
    assert_eq!(last["source"], "SOURCE_MASTER");
    assert_eq!(last["message"], format!("Framework {fid} removed"));
    assert!(last.get("uuid").is_none());

    // The agent's resources are free again.
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 0.0);
    let other = h.subscribe(fw_info("two"));
    h.allocate();
    let offers = h.offers(&other);
    assert_eq!(offers.len(), 1);
    assert_eq!(scalar(&offers[0].resources, "cpus"), 4.0);

    // The removed id cannot come back.
    let mut info = fw_info("one");
    info.id = Some(fid.clone());
    let (conn, _, _) = h.subscribe_raw(info);
    assert_eq!(
        h.events_on(conn),
        [Event::Error(strata_api::scheduler::ErrorEvent {
            message: "Framework has been removed".into()
        })]
    );
    assert_eq!(h.closed_fw_conns(), [conn]);
}

#[test]
fn resubscribing_within_failover_timeout_keeps_tasks() {
    let mut h = Harness::new();
    let mut info = fw_info("one");
    info.failover_timeout = 60.0;
    let fid = h.subscribe(info.clone());
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "t1", "cpus:1;mem:128");
    h.close_fw(&fid);
    h.advance(30.0);
    info.id = Some(fid.clone());
    h.subscribe(info);
    h.advance(31.0);
    h.agent_send(&aid, strata_api::agent_link::ToMaster::Pong);
    h.tick();
    assert!(
        h.persisted().is_empty(),
        "the failover timer was cancelled: {:#?}",
        h.out
    );
    assert_eq!(
        h.task_states(&fid, "tasks"),
        [("t1".to_string(), "TASK_STAGING".to_string())]
    );
}

#[test]
fn zero_failover_timeout_removes_framework_when_stream_closes() {
    let mut h = Harness::new();
    let mut info = fw_info("one");
    info.failover_timeout = 0.0;
    let fid = h.subscribe(info);
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "t1", "cpus:1;mem:128");
    h.close_fw(&fid);
    assert_eq!(
        h.persisted(),
        [Op::RemoveFramework {
            id: fid.to_string()
        }]
    );
    assert_eq!(h.agent_kinds(&aid), ["SHUTDOWN_FRAMEWORK"]);
    assert_eq!(
        h.task_states(&fid, "completed_tasks"),
        [("t1".to_string(), "TASK_KILLED".to_string())]
    );
    assert_eq!(
        h.state()["completed_frameworks"].as_array().unwrap().len(),
        1
    );
}

#[test]
fn teardown_removes_framework_and_closes_stream() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "t1", "cpus:1;mem:128");
    h.allocate();
    let conn = h.fw_conn(&fid);
    assert_eq!(h.call(&fid, Command::Teardown), Reply::Accepted);
    assert_eq!(h.closed_fw_conns(), [conn]);
    assert_eq!(
        h.persisted(),
        [Op::RemoveFramework {
            id: fid.to_string()
        }]
    );
    assert_eq!(h.agent_kinds(&aid), ["SHUTDOWN_FRAMEWORK"]);
    assert!(
        h.events_on(conn).is_empty(),
        "no UPDATE for killed tasks: {:#?}",
        h.out
    );
    let tasks = strata_master_core::views::operator::get_tasks(&h.m);
    let last = tasks["completed_tasks"][0]["statuses"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["reason"], "REASON_FRAMEWORK_REMOVED");
    assert_eq!(last["source"], serde_json::json!(Source::Master));
    // Calls after teardown: the framework is gone.
    let r = h.call(&fid, Command::Reconcile(Reconcile::default()));
    assert_eq!(
        r,
        Reply::Error(CallError {
            status: 400,
            message: "Framework cannot be found".into()
        })
    );
}
