//! Oversubscription in the agent core: estimates reported to the master when they
//! change, the QoS correction evicting the newest revocable containers the estimate no
//! longer covers, and their tasks ending with REASON_CONTAINER_PREEMPTED.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_agent_core::Input;
use strata_api::agent_link::ToMaster;
use strata_api::{Reason, TaskInfo, TaskState};
use strata_resources::{Resources, WireFormat};

fn revocable(flag: &str) -> Resources {
    Resources::parse_flag(flag, "*")
        .unwrap()
        .map(|r| r.revocable = true)
}

/// A command task on revocable `cpus` and plain memory.
fn revocable_task(id: &str, cpus: f64) -> TaskInfo {
    let mut t = task(id);
    t.resources = revocable(&format!("cpus:{cpus}")).to_wire(WireFormat::PostRefinement);
    t.resources.extend(wire("mem:32"));
    t
}

fn estimate(h: &mut Harness, flag: &str) {
    h.step(Input::ResourceEstimate {
        revocable: revocable(flag),
    });
}

/// The oversubscribed totals sent to the master in the last step.
fn reports(h: &Harness) -> Vec<Resources> {
    h.to_master()
        .into_iter()
        .filter_map(|m| match m {
            ToMaster::UpdateOversubscribed(u) => Some(Resources::from_wire(&u.resources).unwrap()),
            _ => None,
        })
        .collect()
}

fn start(h: &mut Harness, t: TaskInfo, at: f64) {
    h.at(at);
    let id = t.task_id.to_string();
    h.run(&plain(), None, t);
    h.started(&id, 4000);
    h.subscribe(&id);
}

#[test]
fn a_changed_estimate_is_reported_once() {
    let mut h = Harness::registered();
    estimate(&mut h, "cpus:2;mem:256");
    assert_eq!(reports(&h), [revocable("cpus:2;mem:256")]);
    estimate(&mut h, "cpus:2;mem:256");
    assert!(reports(&h).is_empty(), "{:#?}", h.out);
    assert_eq!(h.metric("cpus_revocable_total"), 2.0);
    assert_eq!(h.a.hello().oversubscribed_resources.len(), 2);
}

#[test]
fn allocations_show_which_containers_are_revocable() {
    let mut h = Harness::registered();
    start(&mut h, task("plain"), T0);
    start(&mut h, revocable_task("lent", 1.0), T0 + 1.0);
    let mut allocs = h.a.container_allocations();
    allocs.sort_by(|a, b| a.cpus.total_cmp(&b.cpus));
    // Tasks' resources plus the command executor's 0.1 cpu / 32 MB.
    let seen: Vec<_> = allocs
        .iter()
        .map(|a| (a.cpus, a.mem_mb, a.revocable))
        .collect();
    assert_eq!(seen, [(0.6, 96.0, false), (1.1, 64.0, true)]);
}

#[test]
fn a_shrinking_estimate_evicts_the_newest_revocable_containers_only() {
    let mut h = Harness::registered();
    estimate(&mut h, "cpus:2;mem:256");
    start(&mut h, task("owner"), T0);
    start(&mut h, revocable_task("old", 1.0), T0 + 1.0);
    start(&mut h, revocable_task("new", 1.0), T0 + 2.0);
    let new_container = h.container("new");

    estimate(&mut h, "cpus:1.5");
    assert_eq!(h.destroys(), [new_container]);
    // Until it has exited, the evicted container still counts in the report.
    assert_eq!(reports(&h), [revocable("cpus:2")]);
    assert_eq!(h.metric("executors_preempted"), 1.0);

    h.exited("new", 9);
    let s = h.sent_for("new");
    assert_agent_status(
        &s,
        TaskState::Killed,
        Reason::ContainerPreempted,
        "Container preempted by QoS correction: the agent's revocable estimate cpus:1.5 no longer covers the cpus:2 revocable containers hold",
    );
    // Nothing more to evict, and the non-revocable owner is never touched; the report
    // now covers the estimate and what the surviving container holds.
    estimate(&mut h, "cpus:1.5");
    assert!(h.destroys().is_empty());
    assert_eq!(reports(&h), [revocable("cpus:1.5")]);
    estimate(&mut h, "");
    assert_eq!(h.destroys(), [h.container("old")]);
    h.exited("old", 9);
    estimate(&mut h, "");
    assert_eq!(reports(&h), [Resources::new()]);
}

#[test]
fn partition_aware_frameworks_see_their_preempted_tasks_killed_too() {
    let mut h = Harness::registered();
    let fw = framework(false, &["PARTITION_AWARE"]);
    h.run(&fw, None, revocable_task("t1", 0.5));
    h.started("t1", 4000);
    estimate(&mut h, "");
    h.exited("t1", 9);
    let s = h.sent_for("t1");
    assert_eq!(
        (s.state, s.reason),
        (TaskState::Killed, Some(Reason::ContainerPreempted))
    );
}

#[test]
fn the_hello_covers_what_revocable_containers_hold_before_any_estimate() {
    let mut h = Harness::registered();
    start(&mut h, revocable_task("t1", 1.0), T0);
    let hello = h.a.hello();
    let reported = Resources::from_wire(&hello.oversubscribed_resources).unwrap();
    assert_eq!(reported, revocable("cpus:1"));
}

#[test]
fn an_estimate_made_before_registration_is_sent_once_registered() {
    let mut h = Harness::new();
    estimate(&mut h, "cpus:2");
    assert!(reports(&h).is_empty(), "not connected yet");
    h.register();
    assert_eq!(reports(&h), [revocable("cpus:2")]);
}

#[test]
fn without_an_estimator_registration_reports_nothing() {
    let mut h = Harness::new();
    h.register();
    assert!(reports(&h).is_empty(), "{:#?}", h.out);
}
