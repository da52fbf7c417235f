//! Maintenance transcripts: schedules (DRAINING machines, offers with unavailability,
//! inverse offers and their answers), START/STOP_MAINTENANCE, agent draining and
//! deactivation, offer timeout, fault-domain regions, validation errors and recovery.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use strata_api::agent_link::ToAgent;
use strata_api::maintenance::{DrainConfig, MachineId, Schedule};
use strata_api::scheduler::{Command, Event};
use strata_api::{AgentId, DurationInfo, FrameworkId, OfferId, Reason, TaskState};
use strata_master_core::views::{maintenance as mview, operator as oview};
use strata_master_core::{Effect, Input, Master, OperatorInput, Reply};
use strata_registry::{MemoryRegistry, Op, Registry};

const START_NS: i64 = 2_000_000_000_000_000_000;
const HOUR_NS: i64 = 3_600_000_000_000;

fn machine(hostname: &str) -> MachineId {
    MachineId {
        hostname: Some(hostname.into()),
        ip: None,
    }
}

fn schedule_for(hosts: &[&str]) -> Schedule {
    let ids: Vec<Value> = hosts.iter().map(|h| json!({"hostname": h})).collect();
    serde_json::from_value(json!({"windows": [{"machine_ids": ids, "unavailability":
        {"start": {"nanoseconds": START_NS}, "duration": {"nanoseconds": HOUR_NS}}}]}))
    .unwrap()
}

fn operator(h: &mut Harness, op: OperatorInput) -> Reply {
    h.step(Input::Operator(op))
}

fn post_schedule(h: &mut Harness, hosts: &[&str]) -> Reply {
    operator(
        h,
        OperatorInput::UpdateMaintenanceSchedule {
            schedule: schedule_for(hosts),
        },
    )
}

fn bad_request(reply: Reply) -> String {
    match reply {
        Reply::Error(e) if e.status == 400 => e.message,
        other => panic!("expected 400, got {other:?}"),
    }
}

/// Inverse offers sent to `fid` in the last step.
fn inverse_offers(h: &Harness, fid: &FrameworkId) -> Vec<Value> {
    h.events(fid)
        .into_iter()
        .filter_map(|e| match e {
            Event::InverseOffers(v) => Some(v["inverse_offers"].as_array().unwrap().clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn inverse_id(v: &Value) -> OfferId {
    OfferId::new(v["id"]["value"].as_str().unwrap())
}

fn answer(h: &mut Harness, fid: &FrameworkId, id: &OfferId, accept: bool) {
    let payload = json!({"inverse_offer_ids": [id], "filters": {"refuse_seconds": 0}});
    let cmd = if accept {
        Command::AcceptInverseOffers(payload)
    } else {
        Command::DeclineInverseOffers(payload)
    };
    assert_eq!(h.call(fid, cmd), Reply::Accepted);
}

/// A framework running task `t1` on agent `node1`, plus an idle agent `node2`.
fn cluster() -> (Harness, FrameworkId, AgentId, AgentId) {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("web"));
    let a1 = h.add_agent("node1", "cpus:2;mem:1024");
    let a2 = h.add_agent("node2", "cpus:2;mem:1024");
    h.run_task(&fid, &a1, "t1", "cpus:1;mem:128");
    h.status(&a1, &fid, "t1", TaskState::Running, Some(1));
    // Past the launch's refusal filter: the framework holds offers on both agents.
    h.advance(6.0);
    h.allocate();
    assert!(h.outstanding_offer(&fid, &a1).is_some());
    (h, fid, a1, a2)
}

#[test]
fn a_schedule_drains_machines_with_unavailability_and_inverse_offers() {
    let (mut h, fid, a1, a2) = cluster();
    assert_eq!(post_schedule(&mut h, &["NODE1"]), Reply::Ok);
    assert!(matches!(h.persisted()[..], [Op::SetMaintenance { .. }]));
    // The outstanding offer on node1 goes back so it can return with unavailability.
    assert!(
        h.kinds(&fid).contains(&"RESCIND".to_string()),
        "{:?}",
        h.kinds(&fid)
    );
    h.allocate();
    let offers = h.offers(&fid);
    assert_eq!(offers.len(), 1, "node1 offered again: {offers:#?}");
    assert_eq!(offers[0].agent_id, a1);
    assert_eq!(
        offers[0].unavailability,
        Some(json!({"start": {"nanoseconds": START_NS}, "duration": {"nanoseconds": HOUR_NS}}))
    );
    assert_eq!(h.outstanding_offer(&fid, &a2).unwrap().unavailability, None);
    let inverse = inverse_offers(&h, &fid);
    assert_eq!(inverse.len(), 1, "{inverse:#?}");
    assert_eq!(inverse[0]["agent_id"]["value"], a1.as_str());
    assert_eq!(inverse[0]["framework_id"]["value"], fid.as_str());
    assert_eq!(
        inverse[0]["unavailability"]["start"]["nanoseconds"],
        START_NS
    );
    assert_eq!(inverse[0]["url"]["path"], "/slave(1)");
    // One outstanding inverse offer per framework and agent: none on the next cycle.
    h.allocate();
    assert!(inverse_offers(&h, &fid).is_empty());
    let status = mview::status(&h.m);
    assert_eq!(
        status,
        json!({"draining_machines": [{"id": {"hostname": "NODE1"}, "statuses": [
            {"status": "UNKNOWN", "framework_id": {"value": fid.as_str()}, "timestamp": {"nanoseconds": 1_006_000_000_000i64}}]}]})
    );
}

#[test]
fn answers_to_inverse_offers_show_in_the_maintenance_status() {
    let (mut h, fid, a1, _) = cluster();
    let other = h.subscribe(fw_info("batch"));
    let held = h.outstanding_offer(&fid, &a1).unwrap();
    let decline = strata_api::scheduler::Decline {
        offer_ids: vec![held.id],
        filters: refuse(100.0),
    };
    h.call(&fid, Command::Decline(decline));
    h.run_task(&other, &a1, "b1", "cpus:0.5;mem:64");
    post_schedule(&mut h, &["node1"]);
    h.allocate();
    let mine = inverse_id(&inverse_offers(&h, &fid)[0]);
    let theirs = inverse_id(&inverse_offers(&h, &other)[0]);
    h.advance(1.0);
    answer(&mut h, &fid, &mine, true);
    // Someone else's inverse offer id is ignored, as Mesos ignores stale ids.
    answer(&mut h, &fid, &theirs, false);
    answer(&mut h, &other, &theirs, false);
    let statuses = mview::status(&h.m)["draining_machines"][0]["statuses"].clone();
    let by_fw = |f: &FrameworkId| {
        statuses
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["framework_id"]["value"] == f.as_str())
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(by_fw(&fid), "ACCEPT");
    assert_eq!(by_fw(&other), "DECLINE");
    // With no filter the framework is asked again on the next cycle; its answer stays.
    h.allocate();
    assert_eq!(inverse_offers(&h, &fid).len(), 1);
    assert_eq!(by_fw(&fid), "ACCEPT");
}

#[test]
fn declining_with_a_filter_holds_off_new_inverse_offers() {
    let (mut h, fid, _, _) = cluster();
    post_schedule(&mut h, &["node1"]);
    h.allocate();
    let id = inverse_id(&inverse_offers(&h, &fid)[0]);
    let payload = json!({"inverse_offer_ids": [id], "filters": {"refuse_seconds": 30}});
    assert_eq!(
        h.call(&fid, Command::DeclineInverseOffers(payload)),
        Reply::Accepted
    );
    h.advance(10.0);
    h.allocate();
    assert!(inverse_offers(&h, &fid).is_empty());
    h.advance(21.0);
    h.allocate();
    assert_eq!(inverse_offers(&h, &fid).len(), 1);
}

#[test]
fn removing_a_machine_from_the_schedule_rescinds_its_inverse_offers() {
    let (mut h, fid, a1, _) = cluster();
    post_schedule(&mut h, &["node1"]);
    h.allocate();
    let id = inverse_id(&inverse_offers(&h, &fid)[0]);
    let empty = OperatorInput::UpdateMaintenanceSchedule {
        schedule: Schedule::default(),
    };
    assert_eq!(operator(&mut h, empty), Reply::Ok);
    let rescinded: Vec<Value> = h
        .events(&fid)
        .into_iter()
        .filter_map(|e| match e {
            Event::RescindInverseOffer(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(rescinded, [json!({"inverse_offer_id": id})]);
    assert_eq!(mview::status(&h.m), json!({}));
    h.allocate();
    let offer = h.outstanding_offer(&fid, &a1).unwrap();
    assert_eq!(offer.unavailability, None);
}

#[test]
fn machine_down_removes_its_agents_and_refuses_them_until_up() {
    let (mut h, fid, a1, a2) = cluster();
    post_schedule(&mut h, &["node1"]);
    let reply = operator(
        &mut h,
        OperatorInput::StartMaintenance {
            machines: vec![machine("node1")],
        },
    );
    assert_eq!(reply, Reply::Ok);
    let ops = h.persisted();
    assert!(matches!(ops[0], Op::SetMaintenance { .. }), "{ops:?}");
    assert_eq!(ops[1], Op::RemoveAgent { id: a1.to_string() });
    let update = h.update(&fid);
    assert_eq!(update.state, TaskState::Lost);
    assert_eq!(update.reason, Some(Reason::AgentRemoved));
    assert_eq!(
        update.message.as_deref(),
        Some("Operator initiated 'Machine DOWN'")
    );
    assert!(h.kinds(&fid).contains(&"FAILURE".to_string()));
    let sent = h.msgs_on(h.agent_conn(&a1));
    assert!(
        matches!(&sent[..], [ToAgent::Shutdown(s)] if s.message == "Operator initiated 'Machine DOWN'")
    );
    assert!(h.slave_state(&a1).is_null());
    assert_eq!(
        mview::status(&h.m),
        json!({"down_machines": [{"hostname": "node1"}]})
    );
    // The agent may not come back while its machine is DOWN.
    let mut hello = h.agents[&a1].hello.clone();
    hello.agent_info.id = Some(a1.clone());
    let (reply, got) = h.connect_agent(hello.clone());
    assert_eq!((reply, got), (Reply::Stream, None));
    assert!(h
        .out
        .iter()
        .any(|e| matches!(e, Effect::Agent { message, .. } if matches!(message.as_ref(), ToAgent::Shutdown(s) if s.message == "Machine is `DOWN`"))));
    // Machine UP: it leaves the schedule and the agent registers again.
    let up = OperatorInput::StopMaintenance {
        machines: vec![machine("node1")],
    };
    assert_eq!(operator(&mut h, up), Reply::Ok);
    assert_eq!(mview::schedule(&h.m), json!({}));
    let (reply, got) = h.connect_agent(hello);
    assert_eq!((reply, got), (Reply::Stream, Some(a1.clone())));
    h.allocate();
    assert!(h.outstanding_offer(&fid, &a1).is_some());
    assert!(h.outstanding_offer(&fid, &a2).is_some());
}

#[test]
fn partition_aware_tasks_of_a_down_machine_are_gone_by_operator() {
    let mut h = Harness::new();
    let fid = h.subscribe(with_caps(fw_info("pa"), &["PARTITION_AWARE"]));
    let a1 = h.add_agent("node1", AGENT_RES);
    h.run_task(&fid, &a1, "t1", "cpus:1;mem:128");
    post_schedule(&mut h, &["node1"]);
    let machines = vec![machine("node1")];
    operator(&mut h, OperatorInput::StartMaintenance { machines });
    let update = h.update(&fid);
    assert_eq!(update.state, TaskState::GoneByOperator);
    assert_eq!(update.reason, Some(Reason::AgentRemovedByOperator));
}

#[test]
fn maintenance_calls_are_validated_like_mesos() {
    let (mut h, _, _, _) = cluster();
    let down = |m: &str| OperatorInput::StartMaintenance {
        machines: vec![machine(m)],
    };
    let up = |m: &str| OperatorInput::StopMaintenance {
        machines: vec![machine(m)],
    };
    assert_eq!(
        bad_request(operator(&mut h, down("node1"))),
        r#"Machine '{"hostname":"node1"}' is not part of a maintenance schedule"#
    );
    post_schedule(&mut h, &["node1", "node2"]);
    assert_eq!(
        bad_request(operator(&mut h, up("node1"))),
        r#"Machine '{"hostname":"node1"}' is not in DOWN mode and cannot be brought up"#
    );
    assert_eq!(operator(&mut h, down("node1")), Reply::Ok);
    assert_eq!(
        bad_request(operator(&mut h, down("node1"))),
        r#"Machine '{"hostname":"node1"}' is not in DRAINING mode and cannot be brought down"#
    );
    assert_eq!(
        bad_request(post_schedule(&mut h, &["node2"])),
        r#"Machine '{"hostname":"node1"}' is deactivated and cannot be removed from the schedule"#
    );
    assert_eq!(
        bad_request(post_schedule(&mut h, &["node1", "Node1"])),
        r#"Machine '{"hostname":"Node1"}' appears more than once in the schedule"#
    );
    let empty = OperatorInput::StartMaintenance { machines: vec![] };
    assert_eq!(
        bad_request(operator(&mut h, empty)),
        "List of machines is empty"
    );
    assert!(h.persisted().is_empty());
}

#[test]
fn draining_kills_tasks_with_capped_grace_then_the_agent_is_drained() {
    let (mut h, fid, a1, _) = cluster();
    let config = DrainConfig {
        max_grace_period: Some(DurationInfo {
            nanoseconds: 2_000_000_000,
        }),
        mark_gone: false,
    };
    let reply = operator(
        &mut h,
        OperatorInput::DrainAgent {
            agent_id: a1.clone(),
            config,
        },
    );
    assert_eq!(reply, Reply::Ok);
    assert!(
        matches!(&h.persisted()[..], [Op::DeactivateAgent { id, record }] if id == a1.as_str() && record.drain.is_some())
    );
    assert_eq!(h.kinds(&fid), ["RESCIND"]);
    let kills = h.agent_msgs(&a1);
    let [ToAgent::KillTask(kill)] = &kills[..] else {
        panic!("one kill: {kills:?}");
    };
    assert_eq!(kill.task_id.as_str(), "t1");
    let grace = kill.kill_policy.as_ref().and_then(|p| p.grace_period);
    assert_eq!(
        grace,
        Some(DurationInfo {
            nanoseconds: 2_000_000_000
        })
    );
    let agents = oview::get_agents(&h.m);
    let entry = &agents["agents"].as_array().unwrap()[0];
    assert_eq!(entry["deactivated"], true);
    assert_eq!(entry["active"], false);
    assert_eq!(entry["drain_info"]["state"], "DRAINING");
    assert_eq!(
        entry["drain_info"]["config"]["max_grace_period"]["nanoseconds"],
        2_000_000_000i64
    );
    // No offers for a draining agent.
    h.allocate();
    assert!(h.outstanding_offer(&fid, &a1).is_none());
    // The KILLED update is tagged with the drain reason; the ack completes the drain.
    h.status(&a1, &fid, "t1", TaskState::Killed, Some(2));
    let update = h.update(&fid);
    assert_eq!(update.reason, Some(Reason::AgentDraining));
    assert!(
        h.persisted().is_empty(),
        "DRAINED only once the update is acknowledged"
    );
    let ack = strata_api::scheduler::Acknowledge {
        agent_id: a1.clone(),
        task_id: strata_api::TaskId::new("t1"),
        uuid: uuid(2),
    };
    assert_eq!(h.call(&fid, Command::Acknowledge(ack)), Reply::Accepted);
    assert!(
        matches!(&h.persisted()[..], [Op::DeactivateAgent { record, .. }]
        if record.drain.map(|d| d.state) == Some(strata_api::maintenance::DrainState::Drained))
    );
    assert_eq!(h.slave_state(&a1)["drain_info"]["state"], "DRAINED");
    // A drained agent is reactivated by the operator; offers resume.
    let reply = operator(
        &mut h,
        OperatorInput::ReactivateAgent {
            agent_id: a1.clone(),
        },
    );
    assert_eq!(reply, Reply::Ok);
    h.allocate();
    assert!(h.outstanding_offer(&fid, &a1).is_some());
    assert_eq!(h.slave_state(&a1)["deactivated"], false);
}

#[test]
fn draining_with_mark_gone_ends_with_the_agent_gone() {
    let mut h = Harness::new();
    let fid = h.subscribe(with_caps(fw_info("pa"), &["PARTITION_AWARE"]));
    let a1 = h.add_agent("node1", AGENT_RES);
    h.run_task(&fid, &a1, "t1", "cpus:1;mem:128");
    let config = DrainConfig {
        max_grace_period: None,
        mark_gone: true,
    };
    operator(
        &mut h,
        OperatorInput::DrainAgent {
            agent_id: a1.clone(),
            config,
        },
    );
    let kills = h.agent_msgs(&a1);
    assert!(matches!(&kills[..], [ToAgent::KillTask(k)] if k.kill_policy.is_none()));
    assert_eq!(
        bad_request(operator(
            &mut h,
            OperatorInput::ReactivateAgent {
                agent_id: a1.clone()
            }
        )),
        "Agent is still in the DRAINING state"
    );
    h.status(&a1, &fid, "t1", TaskState::Killed, Some(2));
    let update = h.update(&fid);
    assert_eq!(update.state, TaskState::GoneByOperator);
    assert_eq!(update.reason, Some(Reason::AgentDraining));
    let ack = strata_api::scheduler::Acknowledge {
        agent_id: a1.clone(),
        task_id: strata_api::TaskId::new("t1"),
        uuid: uuid(2),
    };
    h.call(&fid, Command::Acknowledge(ack));
    assert!(h.persisted().contains(&Op::MarkGone { id: a1.to_string() }));
    assert!(h.slave_state(&a1).is_null());
}

#[test]
fn an_idle_agent_drains_at_once_and_draining_checks_its_target() {
    let (mut h, _, _, a2) = cluster();
    let unknown = OperatorInput::DrainAgent {
        agent_id: AgentId::new("nope"),
        config: DrainConfig::default(),
    };
    assert_eq!(bad_request(operator(&mut h, unknown)), "Unknown agent");
    let drain = |aid: &AgentId| OperatorInput::DrainAgent {
        agent_id: aid.clone(),
        config: DrainConfig::default(),
    };
    assert_eq!(operator(&mut h, drain(&a2)), Reply::Ok);
    assert_eq!(h.slave_state(&a2)["drain_info"]["state"], "DRAINED");
    post_schedule(&mut h, &["node1"]);
    let a1 = h.agents.keys().find(|a| **a != a2).unwrap().clone();
    assert_eq!(
        bad_request(operator(&mut h, drain(&a1))),
        format!(
            r#"Agent {a1} is part of a maintenance schedule under Machine {{"hostname":"node1"}}"#
        )
    );
    let reactivate = OperatorInput::ReactivateAgent { agent_id: a1 };
    assert_eq!(
        bad_request(operator(&mut h, reactivate)),
        "Agent is not deactivated"
    );
}

#[test]
fn deactivation_stops_offers_until_reactivation_and_survives_reconnects() {
    let (mut h, fid, a1, a2) = cluster();
    h.allocate();
    let reply = operator(
        &mut h,
        OperatorInput::DeactivateAgent {
            agent_id: a2.clone(),
        },
    );
    assert_eq!(reply, Reply::Ok);
    assert_eq!(h.kinds(&fid), ["RESCIND"]);
    assert_eq!(h.state()["deactivated_slaves"], 1);
    h.allocate();
    assert!(h.outstanding_offer(&fid, &a2).is_none());
    // A reconnecting agent stays deactivated.
    h.close_agent(&a2);
    h.reregister(&a2, vec![], vec![]);
    h.allocate();
    assert!(h.outstanding_offer(&fid, &a2).is_none());
    assert!(h.outstanding_offer(&fid, &a1).is_some());
    operator(
        &mut h,
        OperatorInput::ReactivateAgent {
            agent_id: a2.clone(),
        },
    );
    h.allocate();
    assert!(h.outstanding_offer(&fid, &a2).is_some());
}

#[test]
fn schedule_and_deactivation_survive_a_master_restart() {
    let (mut h, _, _, a2) = cluster();
    post_schedule(&mut h, &["node1", "node9"]);
    let machines = vec![machine("node9")];
    operator(&mut h, OperatorInput::StartMaintenance { machines });
    operator(
        &mut h,
        OperatorInput::DrainAgent {
            agent_id: a2.clone(),
            config: DrainConfig::default(),
        },
    );
    let reg = registry_of(&h);
    let state = reg.load().unwrap();
    let m = Master::new(config(), state, T0 + 100.0);
    assert_eq!(
        mview::status(&m),
        json!({"draining_machines": [{"id": {"hostname": "node1"}}], "down_machines": [{"hostname": "node9"}]})
    );
    assert_eq!(
        mview::schedule(&m),
        json!(schedule_for(&["node1", "node9"]))
    );
    let agents = oview::get_agents(&m);
    let recovered = agents["recovered_agents"].as_array().unwrap();
    assert_eq!(recovered.len(), 2, "{agents:#}");
    let (drain, _) = m.drain_info(&a2).expect("the drain survives the restart");
    assert_eq!(drain.state, strata_api::maintenance::DrainState::Drained);
}

/// A registry holding every operation the harness persisted.
fn registry_of(h: &Harness) -> MemoryRegistry {
    let ops: Vec<Op> = h
        .log
        .iter()
        .filter_map(|e| match e {
            Effect::Persist(ops) => Some(ops.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut reg = MemoryRegistry::default();
    reg.apply(&ops).unwrap();
    reg
}

#[test]
fn held_offers_and_inverse_offers_are_rescinded_after_the_offer_timeout() {
    let (mut h, fid, a1, _) = cluster();
    post_schedule(&mut h, &["node1"]);
    h.allocate();
    let offer = h.outstanding_offer(&fid, &a1).unwrap();
    assert_eq!(inverse_offers(&h, &fid).len(), 1);
    let rescinded = |h: &Harness| -> Vec<OfferId> {
        h.events(&fid)
            .into_iter()
            .filter_map(|e| match e {
                Event::Rescind(r) => Some(r.offer_id),
                _ => None,
            })
            .collect()
    };
    let a2 = h.agents.keys().find(|a| **a != a1).unwrap().clone();
    // The agents stay healthy meanwhile.
    let tick_at = |h: &mut Harness, secs: f64| {
        h.advance(secs);
        for aid in [&a1, &a2] {
            h.agent_send(aid, strata_api::agent_link::ToMaster::Pong);
        }
        h.tick();
    };
    for _ in 0..5 {
        tick_at(&mut h, 11.0);
    }
    tick_at(&mut h, 4.0);
    assert!(!rescinded(&h).contains(&offer.id));
    tick_at(&mut h, 1.0);
    assert!(rescinded(&h).contains(&offer.id), "{:?}", h.kinds(&fid));
    let kinds = h.kinds(&fid);
    assert!(
        kinds.contains(&"RESCIND_INVERSE_OFFER".to_string()),
        "{kinds:?}"
    );
    // The resources and the inverse offer come back on the next cycle.
    h.allocate();
    assert!(h.outstanding_offer(&fid, &a1).is_some());
    assert_eq!(inverse_offers(&h, &fid).len(), 1);
}

#[test]
fn agents_in_another_region_are_offered_only_to_region_aware_frameworks() {
    let domain = |r: &str| json!({"fault_domain": {"region": {"name": r}, "zone": {"name": "z"}}});
    let mut cfg = config();
    cfg.domain = Some(domain("home"));
    let mut h = Harness::from_master(Master::new(cfg, Default::default(), T0));
    let plain = h.subscribe(fw_info("plain"));
    let mut hello = hello("far", "10.0.9.1", AGENT_RES);
    hello.agent_info.domain = Some(domain("away"));
    let (_, far) = h.connect_agent(hello);
    let far = far.unwrap();
    h.allocate();
    assert!(h.offers(&plain).is_empty());
    let aware = h.subscribe(with_caps(fw_info("aware"), &["REGION_AWARE"]));
    h.allocate();
    h.allocate();
    let offer = h
        .outstanding_offer(&aware, &far)
        .expect("offered to the region-aware framework");
    assert_eq!(offer.domain, Some(domain("away")));
    assert!(h.outstanding_offer(&plain, &far).is_none());
}

#[test]
fn an_agent_with_a_domain_needs_a_master_with_one() {
    let mut h = Harness::new();
    let mut hello = hello("far", "10.0.9.1", AGENT_RES);
    hello.agent_info.domain =
        Some(json!({"fault_domain": {"region": {"name": "r"}, "zone": {"name": "z"}}}));
    let (reply, aid) = h.connect_agent(hello);
    assert!(matches!(reply, Reply::Error(e) if e.status == 400 && e.message.contains("--domain")));
    assert_eq!(aid, None);
}
