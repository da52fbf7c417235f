//! Transcripts of oversubscription: agents report revocable resources, only
//! REVOCABLE_RESOURCES frameworks are offered them, tasks use them like any other offered
//! resource, and a shrinking report rescinds offers but never drops tasks.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::agent_link::{ToMaster, UpdateOversubscribed};
use strata_api::scheduler::{Command, Event, UpdateFramework};
use strata_api::{AgentId, FrameworkId, Offer, TaskState};
use strata_master_core::Reply;
use strata_resources::{Resources, WireFormat, WireResource};

const REVOCABLE: &str = "REVOCABLE_RESOURCES";

fn revocable(flag: &str) -> Resources {
    res(flag).map(|r| r.revocable = true)
}

fn revocable_wire(flag: &str) -> Vec<WireResource> {
    revocable(flag).to_wire(WireFormat::PreRefinement)
}

fn report(h: &mut Harness, aid: &AgentId, flag: &str) {
    let update = UpdateOversubscribed {
        resources: revocable(flag).to_wire(WireFormat::PostRefinement),
    };
    let reply = h.agent_send(aid, ToMaster::UpdateOversubscribed(update));
    assert_eq!(reply, Reply::Accepted);
}

/// Revocable cpus in every offer `fid` was sent so far.
fn seen_revocable_cpus(h: &Harness, fid: &FrameworkId) -> f64 {
    h.seen_offers
        .iter()
        .filter(|o| &o.framework_id == fid)
        .map(|o| offer_revocable(o).cpus().as_f64())
        .sum()
}

fn offer_revocable(o: &Offer) -> Resources {
    Resources::from_wire(&o.resources).unwrap().revocable()
}

/// A checkpointing framework with REVOCABLE_RESOURCES.
fn capable_info() -> strata_api::FrameworkInfo {
    let mut info = with_caps(fw_info("capable"), &[REVOCABLE]);
    info.checkpoint = true;
    info
}

/// A plain and a revocable-capable framework, and one agent lending `cpus:2;mem:256`.
fn cluster() -> (Harness, AgentId, FrameworkId, FrameworkId) {
    let mut h = Harness::new();
    let aid = h.add_agent("a1", AGENT_RES);
    let plain = h.subscribe(fw_info("plain"));
    let capable = h.subscribe(capable_info());
    report(&mut h, &aid, "cpus:2;mem:256");
    h.allocate();
    (h, aid, plain, capable)
}

#[test]
fn revocable_resources_are_offered_only_to_capable_frameworks() {
    let (h, _, plain, capable) = cluster();
    assert_eq!(seen_revocable_cpus(&h, &plain), 0.0, "{:#?}", h.seen_offers);
    assert_eq!(
        seen_revocable_cpus(&h, &capable),
        2.0,
        "{:#?}",
        h.seen_offers
    );
    let offer = h
        .seen_offers
        .iter()
        .find(|o| !offer_revocable(o).is_empty())
        .unwrap();
    let json = serde_json::to_value(offer).unwrap();
    let entries = json["resources"].as_array().unwrap();
    let cpus = entries
        .iter()
        .find(|r| r["name"] == "cpus" && r.get("revocable").is_some())
        .unwrap();
    assert_eq!(cpus["revocable"], serde_json::json!({}));
    assert_eq!(cpus["scalar"]["value"], 2.0);
}

#[test]
fn state_and_metrics_show_revocable_resources() {
    let (h, aid, _, _) = cluster();
    assert_eq!(h.metric("master/cpus_revocable_total"), 2.0);
    assert_eq!(h.metric("master/mem_revocable_total"), 256.0);
    assert_eq!(h.metric("master/cpus_revocable_used"), 0.0);
    assert_eq!(h.metric("master/cpus_total"), 4.0);
    let slave = h.slave_state(&aid);
    assert_eq!(slave["resources"]["cpus_revocable"], 2.0);
    assert_eq!(slave["resources"]["cpus"], 4.0);
}

/// Launches `tid` on 1 revocable cpu and 32 revocable MB from the capable framework's
/// offer (the plain framework holds the agent's other resources).
fn launch_revocable(h: &mut Harness, aid: &AgentId, fid: &FrameworkId, tid: &str) {
    let offer = h
        .outstanding_offer(fid, aid)
        .filter(|o| offer_revocable(o).cpus().as_f64() >= 1.0)
        .expect("a revocable offer");
    let mut t = task(tid, aid, "mem:32");
    t.resources = revocable_wire("cpus:1;mem:32");
    assert_eq!(h.launch(fid, &offer, vec![t]), Reply::Accepted);
    assert_eq!(h.agent_kinds(aid), ["RUN_TASK"], "{:#?}", h.out);
}

#[test]
fn tasks_launch_on_revocable_resources_and_count_as_revocable_used() {
    let (mut h, aid, _, capable) = cluster();
    launch_revocable(&mut h, &aid, &capable, "t1");
    h.status(&aid, &capable, "t1", TaskState::Running, Some(1));
    assert_eq!(h.metric("master/cpus_revocable_used"), 1.0);
    assert_eq!(h.metric("master/cpus_revocable_percent"), 0.5);
    assert_eq!(h.metric("master/mem_revocable_used"), 32.0);
    assert_eq!(h.metric("master/cpus_used"), 0.0);
    assert_eq!(h.metric("master/mem_used"), 0.0);
}

#[test]
fn a_task_mixing_revocable_and_plain_cpus_is_an_error() {
    let (mut h, aid, _, capable) = cluster();
    let offer = h.outstanding_offer(&capable, &aid).unwrap();
    let mut t = task("mixed", &aid, "cpus:0.5;mem:32");
    t.resources.extend(revocable_wire("cpus:0.5"));
    assert_eq!(h.launch(&capable, &offer, vec![t]), Reply::Accepted);
    let u = h.update(&capable);
    assert_eq!(u.state, TaskState::Error);
    assert_eq!(
        u.message.as_deref(),
        Some("Task mixes revocable and non-revocable resources: Cannot use both revocable and non-revocable 'cpus' at the same time")
    );
}

#[test]
fn more_revocable_than_offered_is_refused_like_any_resource() {
    let (mut h, aid, _, capable) = cluster();
    let offer = h.outstanding_offer(&capable, &aid).unwrap();
    let mut t = task("greedy", &aid, "mem:32");
    t.resources.extend(revocable_wire("cpus:3"));
    assert_eq!(h.launch(&capable, &offer, vec![t]), Reply::Accepted);
    let u = h.update(&capable);
    assert_eq!(u.state, TaskState::Error);
    assert!(
        u.message
            .as_deref()
            .unwrap()
            .contains("more than available"),
        "{u:?}"
    );
}

#[test]
fn a_shrinking_report_rescinds_revocable_offers_but_keeps_tasks() {
    let (mut h, aid, _, capable) = cluster();
    launch_revocable(&mut h, &aid, &capable, "t1");
    h.status(&aid, &capable, "t1", TaskState::Running, Some(1));
    h.advance(10.0);
    h.allocate();
    let spare = h.outstanding_offer(&capable, &aid).unwrap();
    assert_eq!(offer_revocable(&spare).cpus().as_f64(), 1.0);

    report(&mut h, &aid, "cpus:0.5;mem:256");
    let rescinded: Vec<_> = h
        .events(&capable)
        .into_iter()
        .filter_map(|e| match e {
            Event::Rescind(r) => Some(r.offer_id),
            _ => None,
        })
        .collect();
    assert_eq!(rescinded, [spare.id]);
    assert!(h.agent_kinds(&aid).is_empty(), "the master kills nothing");
    // The task's revocable cpu stays counted until the agent evicts it.
    assert_eq!(h.metric("master/cpus_revocable_total"), 1.0);
    assert_eq!(h.metric("master/cpus_revocable_used"), 1.0);

    h.status(&aid, &capable, "t1", TaskState::Killed, Some(2));
    report(&mut h, &aid, "cpus:0.5;mem:256");
    assert_eq!(h.metric("master/cpus_revocable_total"), 0.5);
    assert_eq!(h.metric("master/cpus_revocable_used"), 0.0);
}

#[test]
fn an_unchanged_report_rescinds_nothing() {
    let (mut h, aid, _, capable) = cluster();
    assert!(h.outstanding_offer(&capable, &aid).is_some());
    report(&mut h, &aid, "cpus:2;mem:256");
    assert!(h.events(&capable).is_empty(), "{:#?}", h.out);
}

#[test]
fn dropping_the_capability_rescinds_revocable_offers() {
    let (mut h, aid, _, capable) = cluster();
    let held = h.outstanding_offer(&capable, &aid).unwrap();
    assert!(!offer_revocable(&held).is_empty());
    let mut info = capable_info();
    info.capabilities.clear();
    info.id = Some(capable.clone());
    let update = UpdateFramework {
        framework_info: info,
        suppressed_roles: Vec::new(),
        offer_constraints: None,
    };
    assert_eq!(
        h.call(&capable, Command::UpdateFramework(update)),
        Reply::Ok
    );
    assert!(h
        .events(&capable)
        .iter()
        .any(|e| matches!(e, Event::Rescind(r) if r.offer_id == held.id)));
    h.advance(10.0);
    h.allocate();
    assert_eq!(
        seen_revocable_cpus(&h, &capable),
        2.0,
        "no new revocable offers"
    );
}

#[test]
fn a_reregistering_agent_reports_its_revocable_resources_in_the_hello() {
    let (mut h, aid, _, capable) = cluster();
    launch_revocable(&mut h, &aid, &capable, "t1");
    h.close_agent(&aid);
    let mut hello = h.agents[&aid].hello.clone();
    hello.oversubscribed_resources = revocable("cpus:1;mem:32").to_wire(WireFormat::PostRefinement);
    h.agents.get_mut(&aid).unwrap().hello = hello;
    let mut task = reported_task(&capable, &aid, "t1", "mem:32", "*", TaskState::Running);
    task.resources = revocable("cpus:1;mem:32")
        .with_allocation_role("*")
        .to_wire(WireFormat::PostRefinement);
    let mut info = capable_info();
    info.id = Some(capable.clone());
    h.reregister(&aid, vec![task], vec![info]);
    assert_eq!(h.metric("master/cpus_revocable_total"), 1.0);
    assert_eq!(h.metric("master/cpus_revocable_used"), 1.0);
}
