//! Agent transcripts: registration, health pings, unreachability and return, stream loss,
//! re-registration of a known agent.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::agent_link::{ToAgent, ToMaster};
use strata_api::scheduler::{Event, Failure};
use strata_api::{AgentId, FrameworkId, Reason, Source, TaskState, TimeInfo};
use strata_master_core::{Effect, Reply};
use strata_registry::{AgentRecord, Op};

#[test]
fn registration_persists_then_registered() {
    let mut h = Harness::new();
    let hello = hello("a1", "10.0.1.5", AGENT_RES);
    let (reply, aid) = h.connect_agent(hello.clone());
    assert_eq!(reply, Reply::Stream);
    let aid = aid.unwrap();
    assert_eq!(aid.as_str(), format!("{MASTER_ID}-S0"));
    assert_eq!(h.out.len(), 2, "{:#?}", h.out);
    let mut info = hello.agent_info.clone();
    info.id = Some(aid.clone());
    let record = AgentRecord {
        info,
        address: "10.0.1.5:5051".into(),
        unreachable_since: None,
        gone: false,
        checkpointed_resources: Vec::new(),
    };
    assert!(
        matches!(&h.out[0], Effect::Persist(ops) if ops == &vec![Op::AdmitAgent { id: aid.to_string(), record: record.clone() }])
    );
    let msgs = h.agent_msgs(&aid);
    let ToAgent::Registered(r) = &msgs[0] else {
        panic!("{msgs:#?}")
    };
    assert_eq!(r.ping_interval_seconds, 10.0);
    assert_eq!(r.master_info.id, MASTER_ID);
    let s = h.slave_state(&aid);
    assert_eq!(s["pid"], "slave(1)@10.0.1.5:5051");
    assert_eq!(s["active"], true);
    assert_eq!(s["resources"]["cpus"], 4.0);
    assert_eq!(h.state()["activated_slaves"], 1);

    let second = h.add_agent("a2", AGENT_RES);
    assert_eq!(second.as_str(), format!("{MASTER_ID}-S1"));
}

#[test]
fn wrong_protocol_or_address_is_refused_with_400() {
    let mut h = Harness::new();
    let mut bad = hello("a1", "10.0.1.5", AGENT_RES);
    bad.protocol = 99;
    let (reply, aid) = h.connect_agent(bad);
    assert!(matches!(
        reply,
        Reply::Error(strata_master_core::CallError { status: 400, .. })
    ));
    assert!(aid.is_none() && h.out.is_empty());
    let mut bad = hello("a1", "10.0.1.5", AGENT_RES);
    bad.address = "nowhere".into();
    let (reply, _) = h.connect_agent(bad);
    assert!(matches!(
        reply,
        Reply::Error(strata_master_core::CallError { status: 400, .. })
    ));
}

#[test]
fn ticks_ping_connected_agents_on_the_interval() {
    let mut h = Harness::new();
    let aid = h.add_agent("a1", AGENT_RES);
    h.advance(5.0);
    h.tick();
    assert!(h.out.is_empty());
    h.advance(5.0);
    h.tick();
    assert_eq!(h.agent_msgs(&aid), [ToAgent::Ping]);
    h.advance(1.0);
    h.tick();
    assert!(h.out.is_empty(), "one ping per interval");
    h.agent_send(&aid, ToMaster::Pong);
    h.advance(9.0);
    h.tick();
    assert_eq!(h.agent_msgs(&aid), [ToAgent::Ping]);
}

#[test]
fn answering_agents_stay_registered() {
    let mut h = Harness::new();
    let aid = h.add_agent("a1", AGENT_RES);
    for _ in 0..20 {
        h.advance(10.0);
        h.tick();
        h.agent_send(&aid, ToMaster::Pong);
    }
    assert!(h.persisted().is_empty());
    assert_eq!(h.slave_state(&aid)["active"], true);
}

/// A PARTITION_AWARE framework and a plain one, each with a RUNNING task on agent a1;
/// the plain one also holds an offer on it.
fn two_frameworks_on_one_agent() -> (Harness, FrameworkId, FrameworkId, AgentId) {
    let mut h = Harness::new();
    let pa = h.subscribe(with_caps(fw_info("pa"), &["PARTITION_AWARE"]));
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&pa, &aid, "p1", "cpus:1;mem:128");
    let plain = h.subscribe(fw_info("plain"));
    h.allocate();
    let o = h.offers(&plain).pop().unwrap();
    h.launch(&plain, &o, vec![task("q1", &aid, "cpus:1;mem:128")]);
    h.status(&aid, &pa, "p1", TaskState::Running, Some(1));
    h.status(&aid, &plain, "q1", TaskState::Running, Some(2));
    h.call(
        &pa,
        strata_api::scheduler::Command::Revive(Default::default()),
    );
    h.call(
        &plain,
        strata_api::scheduler::Command::Revive(Default::default()),
    );
    h.allocate();
    assert_eq!(
        h.all_offers().values().flatten().count(),
        1,
        "the rest of a1 is offered: {:#?}",
        h.out
    );
    (h, pa, plain, aid)
}

#[test]
fn silent_agent_becomes_unreachable() {
    let (mut h, pa, plain, aid) = two_frameworks_on_one_agent();
    let holder = h.all_offers().into_keys().next().unwrap();
    let offer = h.all_offers()[&holder][0].clone();
    let agent_conn = h.agent_conn(&aid);

    // Ping timeout = 10 s x 3 = 30 s after the last message (the status updates at T0).
    h.at(T0 + 10.0);
    h.tick();
    h.at(T0 + 30.0);
    h.tick();
    assert!(h.persisted().is_empty(), "not past the timeout yet");
    h.at(T0 + 30.5);
    h.tick();

    // Persisted first, before anything is said to anyone.
    assert!(
        matches!(&h.out[0], Effect::Persist(ops) if ops == &vec![Op::MarkUnreachable { id: aid.to_string(), time: T0 + 30.5 }]),
        "{:#?}",
        h.out
    );
    let ns = TimeInfo {
        nanoseconds: ((T0 + 30.5) * 1e9) as i64,
    };

    let u = h.updates(&pa);
    assert_eq!(u.len(), 1);
    assert_eq!(
        (u[0].task_id.as_str(), u[0].state, u[0].reason),
        ("p1", TaskState::Unreachable, Some(Reason::AgentRemoved))
    );
    assert_eq!(u[0].message.as_deref(), Some("health check timed out"));
    assert_eq!(u[0].unreachable_time, Some(ns));
    assert_eq!(u[0].source, Some(Source::Master));
    assert!(u[0].uuid.is_none());

    let u = h.updates(&plain);
    assert_eq!(u.len(), 1);
    assert_eq!(
        (u[0].task_id.as_str(), u[0].state, u[0].reason),
        ("q1", TaskState::Lost, Some(Reason::AgentRemoved))
    );
    assert_eq!(
        u[0].unreachable_time,
        Some(ns),
        "unreachable_time set for LOST too"
    );

    for fid in [&pa, &plain] {
        let failures: Vec<_> = h
            .events(fid)
            .into_iter()
            .filter(|e| matches!(e, Event::Failure(_)))
            .collect();
        assert_eq!(
            failures,
            [Event::Failure(Failure {
                agent_id: Some(aid.clone()),
                executor_id: None,
                status: None
            })]
        );
    }
    let rescinds: Vec<_> = h
        .events(&holder)
        .into_iter()
        .filter(|e| matches!(e, Event::Rescind(_)))
        .collect();
    assert_eq!(
        rescinds,
        [Event::Rescind(strata_api::scheduler::Rescind {
            offer_id: offer.id.clone()
        })]
    );
    assert_eq!(h.closed_agent_conns(), [agent_conn]);

    // Views: the agent is gone from slaves; tasks live in unreachable_tasks, as
    // TASK_UNREACHABLE for the partition-aware framework and TASK_LOST for the other.
    let s = h.state();
    assert_eq!(s["unreachable_slaves"], 1);
    assert!(s["slaves"].as_array().unwrap().is_empty());
    assert!(h.task_states(&pa, "tasks").is_empty());
    assert_eq!(
        h.task_states(&pa, "unreachable_tasks"),
        [("p1".to_string(), "TASK_UNREACHABLE".to_string())]
    );
    assert_eq!(
        h.task_states(&plain, "unreachable_tasks"),
        [("q1".to_string(), "TASK_LOST".to_string())]
    );
    assert_eq!(h.metric("master/tasks_unreachable"), 1.0);
    assert_eq!(h.metric("master/tasks_lost"), 1.0);
    assert_eq!(h.metric("master/slave_removals"), 1.0);

    // Explicit reconciliation naming the unreachable agent.
    h.call(
        &pa,
        strata_api::scheduler::Command::Reconcile(strata_api::scheduler::Reconcile {
            tasks: vec![strata_api::scheduler::ReconcileTask {
                task_id: "p1".into(),
                agent_id: Some(aid.clone()),
            }],
        }),
    );
    let r = h.update(&pa);
    assert_eq!(r.state, TaskState::Unreachable);
    assert_eq!(
        r.message.as_deref(),
        Some("Reconciliation: Task is unreachable")
    );
    assert_eq!(r.unreachable_time, Some(ns));

    // Its old session is dead.
    let r = h.agent_send(&aid, ToMaster::Pong);
    assert!(matches!(
        r,
        Reply::Error(strata_master_core::CallError { status: 409, .. })
    ));
}

#[test]
fn unreachable_agent_reregisters_and_its_tasks_come_back() {
    let (mut h, pa, plain, aid) = two_frameworks_on_one_agent();
    h.at(T0 + 40.0);
    h.tick();
    assert_eq!(h.persisted().len(), 1);

    h.at(T0 + 50.0);
    let tasks = vec![
        reported_task(&pa, &aid, "p1", "cpus:1;mem:128", "*", TaskState::Running),
        reported_task(
            &plain,
            &aid,
            "q1",
            "cpus:1;mem:128",
            "*",
            TaskState::Running,
        ),
    ];
    assert_eq!(h.reregister(&aid, tasks, vec![]), Reply::Stream);
    let ops = h.persisted();
    assert_eq!(ops.len(), 1);
    assert!(
        matches!(&ops[0], Op::AdmitAgent { id, record } if id == aid.as_str() && record.unreachable_since.is_none())
    );
    assert_eq!(h.agent_kinds(&aid), ["REGISTERED"]);

    // Both frameworks hear the agent-reported state, partition-aware or not.
    for (fid, tid) in [(&pa, "p1"), (&plain, "q1")] {
        let u = h.update(fid);
        assert_eq!((u.task_id.as_str(), u.state), (tid, TaskState::Running));
        assert_eq!(u.reason, Some(Reason::AgentReregistered));
        assert_eq!(
            u.message.as_deref(),
            Some("Unreachable agent re-reregistered")
        );
        assert_eq!(u.source, Some(Source::Master));
        assert!(u.uuid.is_none());
        assert_eq!(
            h.task_states(fid, "tasks"),
            [(tid.to_string(), "TASK_RUNNING".to_string())]
        );
        assert!(h.task_states(fid, "unreachable_tasks").is_empty());
    }
    assert_eq!(h.state()["unreachable_slaves"], 0);
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 2.0);

    // Only the free part is offered.
    h.allocate();
    let offered: f64 = h
        .all_offers()
        .values()
        .flatten()
        .map(|o| scalar(&o.resources, "cpus"))
        .sum();
    assert_eq!(offered, 2.0);
}

#[test]
fn agent_stream_loss_kills_only_non_checkpointing_tasks() {
    let mut h = Harness::new();
    let plain = h.subscribe(fw_info("plain"));
    let mut info = fw_info("ckpt");
    info.checkpoint = true;
    let ckpt = h.subscribe(info);
    let aid = h.add_agent("a1", AGENT_RES);
    h.allocate();
    for (fid, tid) in [(&plain, "q1"), (&ckpt, "c1")] {
        let o = h
            .offers(fid)
            .pop()
            .unwrap_or_else(|| h.outstanding_offer(fid, &aid).unwrap());
        h.accept(
            fid,
            vec![o.id],
            vec![launch_op(vec![task(tid, &aid, "cpus:1;mem:128")])],
            refuse(0.0),
        );
        h.allocate();
    }
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 2.0);
    let outstanding: Vec<_> = h.state()["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["offers"].as_array().unwrap().clone())
        .collect();
    assert_eq!(outstanding.len(), 1);

    h.advance(2.0);
    h.close_agent(&aid);
    assert!(h.persisted().is_empty(), "a disconnect is not persisted");
    let u = h.update(&plain);
    assert_eq!(
        (u.task_id.as_str(), u.state, u.reason),
        ("q1", TaskState::Lost, Some(Reason::AgentDisconnected))
    );
    assert_eq!(u.message.as_deref(), Some("Agent a1 disconnected"));
    assert_eq!(u.source, Some(Source::Master));
    assert!(u.uuid.is_none());
    assert_eq!(
        h.task_states(&plain, "completed_tasks"),
        [("q1".to_string(), "TASK_LOST".to_string())]
    );
    assert!(h.updates(&ckpt).is_empty());
    assert_eq!(
        h.task_states(&ckpt, "tasks"),
        [("c1".to_string(), "TASK_STAGING".to_string())]
    );
    let rescinds = h.out.iter().filter(|e| matches!(e, Effect::Framework { event, .. } if matches!(**event, Event::Rescind(_)))).count();
    assert_eq!(rescinds, 1, "offers on the agent are rescinded");
    let s = h.slave_state(&aid);
    assert_eq!(s["active"], false);
    assert_eq!(s["used_resources"]["cpus"], 1.0);
    assert_eq!(h.state()["deactivated_slaves"], 1);

    // Nothing offered from a disconnected agent.
    h.allocate();
    assert!(h.all_offers().is_empty());
}

#[test]
fn known_agent_reregistering_without_a_task_gets_reconcile_tasks_after_registered() {
    let mut h = Harness::new();
    let mut info = fw_info("ckpt");
    info.checkpoint = true;
    let fid = h.subscribe(info);
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "c1", "cpus:1;mem:128");
    h.advance(6.0);
    h.run_task(&fid, &aid, "c2", "cpus:1;mem:128");
    h.status(&aid, &fid, "c1", TaskState::Running, Some(1));
    h.close_agent(&aid);

    h.advance(10.0);
    let c1 = reported_task(&fid, &aid, "c1", "cpus:1;mem:128", "*", TaskState::Running);
    h.reregister(&aid, vec![c1], vec![]);
    assert!(
        h.updates(&fid).is_empty(),
        "the master does not change c2 itself"
    );
    let msgs = h.agent_msgs(&aid);
    assert_eq!(
        msgs.iter().map(kind_of_msg).collect::<Vec<_>>(),
        ["REGISTERED", "RECONCILE_TASKS"]
    );
    let ToAgent::ReconcileTasks(rt) = &msgs[1] else {
        unreachable!()
    };
    assert_eq!(rt.framework.id.as_ref(), Some(&fid));
    assert_eq!(
        rt.task_ids.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        ["c2"]
    );
    assert_eq!(h.task_states(&fid, "tasks").len(), 2);
    assert_eq!(h.slave_state(&aid)["active"], true);

    // The agent answers with a reliable TASK_LOST for c2: it completes normally.
    h.status(&aid, &fid, "c2", TaskState::Lost, Some(9));
    assert_eq!(h.update(&fid).state, TaskState::Lost);
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 1.0);
}

#[test]
fn disconnected_agent_not_back_in_time_becomes_unreachable() {
    let mut h = Harness::new();
    let mut info = fw_info("ckpt");
    info.checkpoint = true;
    let fid = h.subscribe(with_caps(info, &["PARTITION_AWARE"]));
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "c1", "cpus:1;mem:128");
    h.close_agent(&aid);
    h.at(T0 + 100.0);
    h.tick();
    assert!(h.persisted().is_empty());
    h.at(T0 + 100.5);
    h.tick();
    assert_eq!(
        h.persisted(),
        [Op::MarkUnreachable {
            id: aid.to_string(),
            time: T0 + 100.5
        }]
    );
    let u = h.update(&fid);
    assert_eq!(u.state, TaskState::Unreachable);
    assert_eq!(
        u.message.as_deref(),
        Some("agent did not reregister within 100secs after disconnecting")
    );
}

#[test]
fn reregistration_with_another_hostname_is_refused() {
    let mut h = Harness::new();
    let aid = h.add_agent("a1", AGENT_RES);
    let mut hello = h.agents[&aid].hello.clone();
    hello.agent_info.hostname = "impostor".into();
    let (reply, got) = h.connect_agent(hello);
    assert_eq!(reply, Reply::Stream);
    assert!(got.is_none());
    let conn = strata_master_core::ConnId(h.agent_conn(&aid).0 + 1);
    assert_eq!(
        h.msgs_on(conn),
        [ToAgent::Shutdown(strata_api::agent_link::ShutdownAgent {
            message: "Agent attempted to reregister with different IP / hostname".into()
        })]
    );
    assert_eq!(h.closed_agent_conns(), [conn]);
    assert_eq!(
        h.slave_state(&aid)["active"],
        true,
        "the registered agent is untouched"
    );
}

#[test]
fn disconnect_after_an_unacked_terminal_update_keeps_the_terminal_state() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("plain"));
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "t1", "cpus:1;mem:128");
    h.status(&aid, &fid, "t1", TaskState::Finished, Some(1));
    h.close_agent(&aid);
    // Mesos forwards TASK_LOST for every task still on the agent, but a terminal state is
    // never overwritten in the master's record.
    let u = h.update(&fid);
    assert_eq!(
        (u.state, u.reason),
        (TaskState::Lost, Some(Reason::AgentDisconnected))
    );
    assert_eq!(
        h.task_states(&fid, "completed_tasks"),
        [("t1".to_string(), "TASK_FINISHED".to_string())]
    );
    assert_eq!(h.metric("master/tasks_finished"), 1.0);
    assert_eq!(h.metric("master/tasks_lost"), 0.0);
}

#[test]
fn removing_a_framework_kills_its_unreachable_tasks() {
    let (mut h, pa, plain, aid) = two_frameworks_on_one_agent();
    h.at(T0 + 40.0);
    h.tick();
    assert_eq!(
        h.task_states(&plain, "unreachable_tasks"),
        [("q1".to_string(), "TASK_LOST".to_string())]
    );
    for fid in [&pa, &plain] {
        h.call(fid, strata_api::scheduler::Command::Teardown);
        assert!(h.task_states(fid, "unreachable_tasks").is_empty());
        let done = h.task_states(fid, "completed_tasks");
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].1, "TASK_KILLED");
    }
    let _ = aid;
}

#[test]
fn reregistering_on_a_new_stream_replaces_the_old_one() {
    let mut h = Harness::new();
    let aid = h.add_agent("a1", AGENT_RES);
    let old = h.agent_conn(&aid);
    let old_session = h.agents[&aid].session.clone();
    h.advance(1.0);
    h.reregister(&aid, vec![], vec![]);
    assert_eq!(h.closed_agent_conns(), [old]);
    assert_eq!(h.agent_kinds(&aid), ["REGISTERED"]);
    // The old stream ending later is ignored; the old session is stale.
    h.step(strata_master_core::Input::AgentStreamClosed { conn: old });
    assert!(h.out.is_empty());
    assert_eq!(h.slave_state(&aid)["active"], true);
    let r = h.step(strata_master_core::Input::AgentMessage {
        session: old_session,
        message: Box::new(ToMaster::Pong),
    });
    assert!(matches!(
        r,
        Reply::Error(strata_master_core::CallError { status: 409, .. })
    ));
}

#[test]
fn returning_agent_is_told_to_shut_down_removed_frameworks() {
    let (mut h, pa, plain, aid) = two_frameworks_on_one_agent();
    h.at(T0 + 40.0);
    h.tick();
    h.call(&plain, strata_api::scheduler::Command::Teardown);
    h.advance(1.0);
    let tasks = vec![
        reported_task(&pa, &aid, "p1", "cpus:1;mem:128", "*", TaskState::Running),
        reported_task(
            &plain,
            &aid,
            "q1",
            "cpus:1;mem:128",
            "*",
            TaskState::Running,
        ),
    ];
    h.reregister(&aid, tasks, vec![]);
    let msgs = h.agent_msgs(&aid);
    assert_eq!(
        msgs.iter().map(kind_of_msg).collect::<Vec<_>>(),
        ["REGISTERED", "SHUTDOWN_FRAMEWORK"]
    );
    assert!(matches!(&msgs[1], ToAgent::ShutdownFramework(s) if s.framework_id == plain));
    assert_eq!(
        h.task_states(&pa, "tasks"),
        [("p1".to_string(), "TASK_RUNNING".to_string())]
    );
    assert_eq!(
        h.slave_state(&aid)["used_resources"]["cpus"],
        1.0,
        "the removed framework's task is not re-added"
    );
}

#[test]
fn reregister_timeout_is_printed_like_a_stout_duration() {
    for (timeout, text) in [
        (600.0, "10mins"),
        (100.0, "100secs"),
        (5400.0, "90mins"),
        (129_600.0, "36hrs"),
        (100_000.0, "1.15740740740741days"),
        (7200.0, "2hrs"),
    ] {
        let mut cfg = config();
        cfg.agent_reregister_timeout = timeout;
        let mut h =
            Harness::from_master(strata_master_core::Master::new(cfg, Default::default(), T0));
        let mut info = with_caps(fw_info("pa"), &["PARTITION_AWARE"]);
        info.checkpoint = true;
        info.failover_timeout = 1e9;
        let fid = h.subscribe(info);
        let aid = h.add_agent("a1", AGENT_RES);
        h.run_task(&fid, &aid, "t1", "cpus:1;mem:128");
        h.close_agent(&aid);
        h.advance(timeout + 1.0);
        h.tick();
        let u = h.update(&fid);
        assert_eq!(
            u.message,
            Some(format!(
                "agent did not reregister within {text} after disconnecting"
            ))
        );
    }
}
