//! The shape of /master/state after a short transcript (snapshot: exact JSON matters to
//! the tools that scrape it).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::TaskState;

#[test]
fn master_state_after_a_launch() {
    let mut h = Harness::new();
    let fid = h.subscribe(multi_role("web-fw", &["web"]));
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "t1", "cpus:1;mem:128;ports:[31000-31001]");
    h.advance(1.0);
    h.status(&aid, &fid, "t1", TaskState::Running, Some(1));
    h.advance(5.0);
    h.allocate();
    assert_eq!(h.offers(&fid).len(), 1);
    let state = h.state();
    // HTTP frameworks have no libprocess pid: Mesos omits the field (not null).
    assert!(state["frameworks"][0].get("pid").is_none());
    insta::assert_json_snapshot!("master_state", state);
}
