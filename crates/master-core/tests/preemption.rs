//! Priority preemption transcripts: a high-priority REVOCABLE_RESOURCES framework whose
//! stated demand for revocable resources fits nowhere gets lower-priority revocable tasks
//! evicted — their framework is warned with an inverse offer naming the resources, the
//! agent is told PREEMPT_TASKS after the grace period — and never tasks of equal or
//! higher priority.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::agent_link::{ToAgent, ToMaster, UpdateOversubscribed};
use strata_api::scheduler::{Command, Event};
use strata_api::{AgentId, FrameworkId, FrameworkInfo, Label, Labels, TaskState};
use strata_master_core::{Reply, PRIORITY_LABEL};
use strata_resources::{Resources, WireFormat};

fn revocable(flag: &str) -> Resources {
    res(flag).map(|r| r.revocable = true)
}

fn capable(name: &str, priority: Option<i64>) -> FrameworkInfo {
    let mut info = with_caps(fw_info(name), &["REVOCABLE_RESOURCES"]);
    info.checkpoint = true;
    info.labels = priority.map(|p| Labels {
        labels: vec![Label {
            key: PRIORITY_LABEL.into(),
            value: Some(p.to_string()),
        }],
    });
    info
}

/// One agent lending 2 revocable cpus, a low-priority framework running a task on both.
fn setup(low_priority: Option<i64>) -> (Harness, AgentId, FrameworkId) {
    let mut h = Harness::new();
    let aid = h.add_agent("a1", AGENT_RES);
    let low = h.subscribe(capable("low", low_priority));
    let update = UpdateOversubscribed {
        resources: revocable("cpus:2;mem:64").to_wire(WireFormat::PostRefinement),
    };
    assert_eq!(
        h.agent_send(&aid, ToMaster::UpdateOversubscribed(update)),
        Reply::Accepted
    );
    h.allocate();
    let offer = h.outstanding_offer(&low, &aid).unwrap();
    let mut t = task("victim", &aid, "mem:32");
    t.resources = revocable("cpus:2;mem:32").to_wire(WireFormat::PreRefinement);
    assert_eq!(h.launch(&low, &offer, vec![t]), Reply::Accepted);
    h.status(&aid, &low, "victim", TaskState::Running, Some(1));
    (h, aid, low)
}

fn request_revocable(h: &mut Harness, fid: &FrameworkId, flag: &str) {
    let want = revocable(flag).to_wire(WireFormat::PostRefinement);
    let req = serde_json::json!({"requests": [{"resources": want}]});
    assert_eq!(h.call(fid, Command::Request(req)), Reply::Accepted);
}

fn preempt_msgs(h: &Harness, aid: &AgentId) -> Vec<Vec<String>> {
    h.agent_msgs(aid)
        .into_iter()
        .filter_map(|m| match m {
            ToAgent::PreemptTasks(p) => Some(p.task_ids.iter().map(|t| t.to_string()).collect()),
            _ => None,
        })
        .collect()
}

#[test]
fn higher_priority_demand_preempts_lower_priority_revocable_work_after_a_warning() {
    let (mut h, aid, low) = setup(None);
    let high = h.subscribe(capable("high", Some(10)));
    request_revocable(&mut h, &high, "cpus:1");
    h.allocate();
    let warned: Vec<_> = h
        .events(&low)
        .into_iter()
        .filter_map(|e| match e {
            Event::InverseOffers(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(warned.len(), 1, "{:#?}", h.out);
    let io = &warned[0]["inverse_offers"][0];
    assert_eq!(io["agent_id"]["value"], aid.as_str());
    assert_eq!(io["resources"][0]["name"], "cpus");
    assert_eq!(io["resources"][0]["revocable"], serde_json::json!({}));
    assert!(
        preempt_msgs(&h, &aid).is_empty(),
        "not before the grace period"
    );
    h.advance(6.0);
    h.tick();
    assert_eq!(preempt_msgs(&h, &aid), [["victim"]]);
    // Nothing is asked twice while the victim ends.
    h.allocate();
    h.advance(6.0);
    h.tick();
    assert!(preempt_msgs(&h, &aid).is_empty());
}

#[test]
fn equal_priority_or_fitting_demand_preempts_nothing() {
    let (mut h, aid, _low) = setup(Some(10));
    let high = h.subscribe(capable("peer", Some(10)));
    request_revocable(&mut h, &high, "cpus:1");
    h.allocate();
    h.advance(6.0);
    h.tick();
    assert!(
        preempt_msgs(&h, &aid).is_empty(),
        "same priority: {:#?}",
        h.out
    );

    let (mut h, aid, _low) = setup(None);
    let high = h.subscribe(capable("high", Some(10)));
    request_revocable(&mut h, &high, "mem:16");
    h.allocate();
    h.advance(6.0);
    h.tick();
    assert!(
        preempt_msgs(&h, &aid).is_empty(),
        "32 MB revocable still free"
    );
}

#[test]
fn an_unreadable_request_changes_no_demand() {
    let (mut h, _aid, low) = setup(None);
    request_revocable(&mut h, &low, "cpus:1");
    let garbage = serde_json::json!({"requests": [{"resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}]}, {"resources": "x"}]});
    assert_eq!(h.call(&low, Command::Request(garbage)), Reply::Accepted);
    assert_eq!(
        h.call(&low, Command::Request(serde_json::json!({"requests": 7}))),
        Reply::Accepted
    );
    let why =
        h.m.allocator()
            .explain_framework(&low, &Default::default(), &[])
            .unwrap()
            .0;
    assert!(
        why.iter()
            .any(|w| w.contains("its request cpus(*):1") || w.contains("its request")),
        "{why:?}"
    );
}
