//! Master restart transcripts: a master built from a registry holding agents and
//! frameworks; agents re-registering with their tasks; frameworks resubscribing.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::scheduler::{Command, Event, Reconcile, ReconcileTask};
use strata_api::{AgentId, FrameworkId, FrameworkInfo, Reason, TaskId, TaskState};
use strata_master_core::Reply;
use strata_registry::{AgentRecord, Op, RegistryState};

const OLD: &str = "0ld0ld00-0000-4000-8000-000000000000";

fn old_agent(n: u32) -> AgentId {
    AgentId::new(format!("{OLD}-S{n}"))
}

fn old_fw() -> FrameworkId {
    FrameworkId::new(format!("{OLD}-0000"))
}

fn registered_info() -> FrameworkInfo {
    let mut info = with_caps(fw_info("survivor"), &["PARTITION_AWARE"]);
    info.id = Some(old_fw());
    info.checkpoint = true;
    info
}

/// Registry of a previous master run: agents a1 and a2 admitted, framework "survivor".
fn registry() -> RegistryState {
    let mut reg = RegistryState::default();
    for (n, host) in [(0, "a1"), (1, "a2")] {
        let mut h = hello(host, &format!("10.0.2.{n}"), AGENT_RES);
        h.agent_info.id = Some(old_agent(n));
        reg.apply(&Op::AdmitAgent {
            id: old_agent(n).to_string(),
            record: AgentRecord {
                info: h.agent_info,
                address: h.address,
                unreachable_since: None,
                gone: false,
                checkpointed_resources: Vec::new(),
            },
        });
    }
    reg.apply(&Op::PutFramework {
        id: old_fw().to_string(),
        info: registered_info(),
    });
    reg
}

/// The Hello agent `n` sends to re-register after the master restart.
fn rehello(n: u32, host: &str, tasks: Vec<strata_api::Task>) -> strata_api::agent_link::Hello {
    let mut h = hello(host, &format!("10.0.2.{n}"), AGENT_RES);
    h.agent_info.id = Some(old_agent(n));
    h.tasks = tasks;
    h.frameworks = vec![registered_info()];
    h
}

#[test]
fn registry_agents_are_recovered_not_registered() {
    let h = Harness::with_registry(registry());
    let s = h.state();
    assert!(s["slaves"].as_array().unwrap().is_empty());
    let recovered: Vec<_> = s["recovered_slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        recovered,
        [old_agent(0).to_string(), old_agent(1).to_string()]
    );
    let fw = h.fw_state(&old_fw());
    assert_eq!(fw["recovered"], true);
    assert_eq!(fw["active"], false);
    let agents = strata_master_core::views::operator::get_agents(&h.m);
    assert_eq!(agents["recovered_agents"].as_array().unwrap().len(), 2);
}

#[test]
fn reregistering_agent_rebuilds_tasks_without_updates() {
    let mut h = Harness::with_registry(registry());
    let fid = h.subscribe(registered_info());
    assert_eq!(fid, old_fw());
    assert!(
        h.persisted().is_empty(),
        "same FrameworkInfo: nothing to persist"
    );
    assert_eq!(h.fw_state(&fid)["recovered"], false);
    assert_eq!(h.kinds(&fid), ["SUBSCRIBED", "HEARTBEAT"]);

    h.advance(2.0);
    let t1 = reported_task(
        &fid,
        &old_agent(0),
        "t1",
        "cpus:1;mem:128",
        "*",
        TaskState::Running,
    );
    let (reply, aid) = h.connect_agent(rehello(0, "a1", vec![t1]));
    assert_eq!(reply, Reply::Stream);
    assert_eq!(aid, Some(old_agent(0)));
    assert!(
        h.updates(&fid).is_empty(),
        "no updates for tasks rebuilt after a master failover: {:#?}",
        h.out
    );
    assert!(
        h.persisted().is_empty(),
        "unchanged agent info is not re-admitted"
    );
    assert_eq!(h.agent_kinds(&old_agent(0)), ["REGISTERED"]);
    assert_eq!(
        h.task_states(&fid, "tasks"),
        [("t1".to_string(), "TASK_RUNNING".to_string())]
    );
    let s = h.state();
    assert_eq!(s["slaves"].as_array().unwrap().len(), 1);
    assert_eq!(s["recovered_slaves"].as_array().unwrap().len(), 1);
    assert_eq!(h.slave_state(&old_agent(0))["used_resources"]["cpus"], 1.0);

    // The rest of the agent is offered; the task can be killed and acked as usual.
    h.allocate();
    let offers = h.offers(&fid);
    assert_eq!(offers.len(), 1);
    assert_eq!(scalar(&offers[0].resources, "cpus"), 3.0);
    h.call(
        &fid,
        Command::Kill(strata_api::scheduler::Kill {
            task_id: TaskId::new("t1"),
            agent_id: None,
            kill_policy: None,
        }),
    );
    assert_eq!(h.agent_kinds(&old_agent(0)), ["KILL_TASK"]);
}

#[test]
fn framework_known_only_from_an_agent_is_added_as_recovered() {
    let mut reg = registry();
    reg.frameworks.clear();
    let mut h = Harness::with_registry(reg);
    let t1 = reported_task(
        &old_fw(),
        &old_agent(0),
        "t1",
        "cpus:1;mem:128",
        "*",
        TaskState::Running,
    );
    h.connect_agent(rehello(0, "a1", vec![t1]));
    let ops = h.persisted();
    assert!(
        matches!(&ops[..], [Op::PutFramework { id, .. }] if id == old_fw().as_str()),
        "{ops:?}"
    );
    let fw = h.fw_state(&old_fw());
    assert_eq!(fw["recovered"], true);
    assert_eq!(
        h.task_states(&old_fw(), "tasks"),
        [("t1".to_string(), "TASK_RUNNING".to_string())]
    );
}

#[test]
fn reconciliation_waits_for_recovered_agents() {
    let mut h = Harness::with_registry(registry());
    let fid = h.subscribe(registered_info());
    let ask = |tid: &str, aid: Option<AgentId>| {
        Command::Reconcile(Reconcile {
            tasks: vec![ReconcileTask {
                task_id: TaskId::new(tid),
                agent_id: aid,
            }],
        })
    };
    // Unknown task, no agent named, recovered agents exist: no reply.
    h.call(&fid, ask("t9", None));
    assert!(h.events(&fid).is_empty(), "{:#?}", h.out);
    // Unknown task on a recovered agent: no reply.
    h.call(&fid, ask("t9", Some(old_agent(1))));
    assert!(h.events(&fid).is_empty());

    // a1 comes back, a2 never does.
    h.connect_agent(rehello(0, "a1", vec![]));
    h.call(&fid, ask("t9", Some(old_agent(0))));
    assert_eq!(h.update(&fid).state, TaskState::Gone);
    h.call(&fid, ask("t9", None));
    assert!(h.events(&fid).is_empty(), "a2 is still recovered");

    h.at(T0 + 100.0);
    h.agent_send(&old_agent(0), strata_api::agent_link::ToMaster::Pong);
    h.tick();
    assert!(h.persisted().is_empty(), "within agent_reregister_timeout");
    h.at(T0 + 100.5);
    h.agent_send(&old_agent(0), strata_api::agent_link::ToMaster::Pong);
    h.tick();
    assert_eq!(
        h.persisted(),
        [Op::MarkUnreachable {
            id: old_agent(1).to_string(),
            time: T0 + 100.5
        }]
    );
    // Only FAILURE: no task updates after a master failover.
    let events = h.events(&fid);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert!(
        matches!(&events[0], Event::Failure(f) if f.agent_id.as_ref() == Some(&old_agent(1)) && f.executor_id.is_none())
    );
    assert_eq!(h.state()["unreachable_slaves"], 1);
    assert!(h.state()["recovered_slaves"].as_array().unwrap().is_empty());

    h.call(&fid, ask("t9", Some(old_agent(1))));
    let u = h.update(&fid);
    assert_eq!(u.state, TaskState::Unreachable);
    assert_eq!(u.reason, Some(Reason::Reconciliation));
    assert_eq!(
        u.message.as_deref(),
        Some("Reconciliation: Task is unreachable")
    );
    h.call(&fid, ask("t9", None));
    assert_eq!(h.update(&fid).state, TaskState::Unknown);
}

#[test]
fn recovered_agent_past_the_timeout_is_marked_unreachable_then_readmitted() {
    let mut h = Harness::with_registry(registry());
    let fid = h.subscribe(registered_info());
    h.connect_agent(rehello(0, "a1", vec![]));
    h.at(T0 + 101.0);
    h.agent_send(&old_agent(0), strata_api::agent_link::ToMaster::Pong);
    h.tick();
    assert_eq!(
        h.persisted(),
        [Op::MarkUnreachable {
            id: old_agent(1).to_string(),
            time: T0 + 101.0
        }]
    );
    assert!(h.updates(&fid).is_empty());

    // a2 returns later: an unreachable agent re-registering, with update notices.
    h.advance(10.0);
    let t2 = reported_task(
        &fid,
        &old_agent(1),
        "t2",
        "cpus:2;mem:256",
        "*",
        TaskState::Running,
    );
    h.connect_agent(rehello(1, "a2", vec![t2]));
    assert!(
        matches!(&h.persisted()[..], [Op::AdmitAgent { id, .. }] if id == old_agent(1).as_str())
    );
    let u = h.update(&fid);
    assert_eq!(
        (u.state, u.reason),
        (TaskState::Running, Some(Reason::AgentReregistered))
    );
    assert_eq!(
        u.message.as_deref(),
        Some("Unreachable agent re-reregistered")
    );
}

#[test]
fn unknown_framework_id_is_accepted_and_persisted() {
    let mut h = Harness::new();
    let mut info = fw_info("from-before");
    info.id = Some(FrameworkId::new("someone-else-0007"));
    let fid = h.subscribe(info.clone());
    assert_eq!(fid.as_str(), "someone-else-0007");
    assert_eq!(
        h.persisted(),
        [Op::PutFramework {
            id: fid.to_string(),
            info
        }]
    );
    assert_eq!(h.kinds(&fid), ["SUBSCRIBED", "HEARTBEAT"]);
}

#[test]
fn registry_round_trip_through_persisted_ops() {
    // Everything a master persisted rebuilds an equivalent master.
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    let aid = h.add_agent("a1", AGENT_RES);
    let gone = h.add_agent("a2", AGENT_RES);
    let teardown = h.subscribe(fw_info("two"));
    h.call(&teardown, Command::Teardown);
    h.close_agent(&gone);
    h.at(T0 + 200.0);
    h.agent_send(&aid, strata_api::agent_link::ToMaster::Pong);
    h.tick();
    let mut reg = RegistryState::default();
    for e in &h.log {
        if let strata_master_core::Effect::Persist(ops) = e {
            for op in ops {
                reg.apply(op);
            }
        }
    }
    assert_eq!(
        reg.frameworks.keys().cloned().collect::<Vec<_>>(),
        [fid.to_string()]
    );
    assert_eq!(reg.agents[aid.as_str()].unreachable_since, None);
    assert_eq!(
        reg.agents[gone.as_str()].unreachable_since,
        Some(T0 + 200.0)
    );

    let h2 = Harness::from_master(strata_master_core::Master::new(config(), reg, T0 + 300.0));
    let s = h2.state();
    assert_eq!(s["recovered_slaves"][0]["id"], aid.as_str());
    assert_eq!(s["unreachable_slaves"], 1);
    assert_eq!(h2.fw_state(&fid)["recovered"], true);
}
