//! Allocation transcripts: OFFERS shape per framework capabilities, DRF sharing, DECLINE
//! and ACCEPT refusal filters.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::scheduler::{Command, Decline, Event, Roles};
use strata_api::{OfferId, WireResource};
use strata_master_core::Reply;

fn offers_event(h: &Harness, fid: &strata_api::FrameworkId) -> serde_json::Value {
    let events = h.events(fid);
    assert_eq!(events.len(), 1, "one OFFERS event: {events:#?}");
    assert!(matches!(events[0], Event::Offers(_)));
    serde_json::to_value(&events[0]).unwrap()
}

fn decline(
    h: &mut Harness,
    fid: &strata_api::FrameworkId,
    ids: Vec<OfferId>,
    seconds: Option<f64>,
) {
    let filters = seconds.and_then(refuse);
    assert_eq!(
        h.call(
            fid,
            Command::Decline(Decline {
                offer_ids: ids,
                filters
            })
        ),
        Reply::Accepted
    );
}

#[test]
fn offer_to_plain_framework_is_pre_refinement_without_allocation_info() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("plain"));
    let aid = h.add_agent("a1", AGENT_RES);
    h.allocate();
    let offers = h.offers(&fid);
    assert_eq!(offers.len(), 1);
    let o = &offers[0];
    assert_eq!(o.id.as_str(), format!("{MASTER_ID}-O0"));
    assert_eq!(o.agent_id, aid);
    assert_eq!(o.framework_id, fid);
    assert!(o.allocation_info.is_none());
    for r in &o.resources {
        assert_eq!(r.role.as_deref(), Some("*"), "{r:?}");
        assert!(r.allocation_info.is_none(), "{r:?}");
    }
    insta::assert_json_snapshot!("offers_plain", offers_event(&h, &fid));
}

#[test]
fn offer_to_multi_role_framework_carries_allocation_info() {
    let mut h = Harness::new();
    let fid = h.subscribe(multi_role("multi", &["web"]));
    h.add_agent("a1", AGENT_RES);
    h.allocate();
    let offers = h.offers(&fid);
    assert_eq!(offers.len(), 1);
    assert_eq!(
        offers[0]
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.as_deref()),
        Some("web")
    );
    for r in &offers[0].resources {
        assert_eq!(r.role.as_deref(), Some("*"), "still pre-refinement: {r:?}");
        assert_eq!(
            r.allocation_info.as_ref().and_then(|a| a.role.as_deref()),
            Some("web")
        );
    }
    insta::assert_json_snapshot!("offers_multi_role", offers_event(&h, &fid));
}

#[test]
fn offer_to_reservation_refinement_framework_has_no_role_field() {
    let mut h = Harness::new();
    let fid = h.subscribe(with_caps(fw_info("refined"), &["RESERVATION_REFINEMENT"]));
    h.add_agent("a1", AGENT_RES);
    h.allocate();
    let offers = h.offers(&fid);
    let r: &WireResource = &offers[0].resources[0];
    assert!(
        r.role.is_none() && r.reservations.is_empty() && r.allocation_info.is_none(),
        "{r:?}"
    );
}

#[test]
fn two_frameworks_share_agents_by_drf() {
    let mut h = Harness::new();
    let a = h.subscribe(fw_info("a"));
    let b = h.subscribe(fw_info("b"));
    let agents: Vec<_> = (0..4)
        .map(|i| h.add_agent(&format!("n{i}"), AGENT_RES))
        .collect();
    h.allocate();
    let all = h.all_offers();
    assert_eq!(all.len(), 2, "both frameworks get offers: {all:#?}");
    assert_eq!(all[&a].len(), 2);
    assert_eq!(all[&b].len(), 2);
    let mut used: Vec<_> = all.values().flatten().map(|o| o.agent_id.clone()).collect();
    used.sort();
    assert_eq!(used, agents, "each agent offered exactly once");

    // A is now far ahead (two agents' worth of tasks); a freed agent goes to B.
    for o in all[&a].clone() {
        let aid = o.agent_id.clone();
        assert_eq!(
            h.launch(
                &a,
                &o,
                vec![task(&format!("t-{aid}"), &aid, "cpus:4;mem:4096")]
            ),
            Reply::Accepted
        );
    }
    let b_offer = all[&b][0].clone();
    decline(&mut h, &b, vec![b_offer.id.clone()], Some(0.0));
    h.allocate();
    let again = h.all_offers();
    assert_eq!(again.keys().collect::<Vec<_>>(), [&b], "{again:#?}");
    assert_eq!(again[&b][0].agent_id, b_offer.agent_id);
}

#[test]
fn decline_filter_holds_for_refuse_seconds() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    let aid = h.add_agent("a1", AGENT_RES);
    h.allocate();
    let o = h.offers(&fid).pop().unwrap();
    decline(&mut h, &fid, vec![o.id.clone()], Some(30.0));
    assert_eq!(h.fw_state(&fid)["offers"].as_array().unwrap().len(), 0);

    h.advance(29.0);
    h.allocate();
    assert!(h.offers(&fid).is_empty(), "filtered for 30s: {:#?}", h.out);

    // Another framework is not affected by the filter.
    let other = h.subscribe(fw_info("two"));
    h.allocate();
    let got = h.offers(&other);
    assert_eq!(got.len(), 1);
    decline(&mut h, &other, vec![got[0].id.clone()], Some(1000.0));

    h.advance(1.5);
    h.allocate();
    let again = h.offers(&fid);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].agent_id, aid);
    assert_eq!(scalar(&again[0].resources, "cpus"), 4.0);
}

#[test]
fn decline_without_filters_uses_five_seconds_and_zero_means_none() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    h.add_agent("a1", AGENT_RES);
    h.allocate();
    let o = h.offers(&fid).pop().unwrap();
    decline(&mut h, &fid, vec![o.id], None);
    h.advance(4.9);
    h.allocate();
    assert!(h.offers(&fid).is_empty());
    h.advance(0.2);
    h.allocate();
    let o = h.offers(&fid).pop().expect("re-offered after 5s");

    decline(&mut h, &fid, vec![o.id], Some(0.0));
    h.allocate();
    assert_eq!(
        h.offers(&fid).len(),
        1,
        "refuse_seconds 0: offered again at once"
    );
}

#[test]
fn decline_of_an_unknown_or_foreign_offer_is_ignored() {
    let mut h = Harness::new();
    let a = h.subscribe(fw_info("a"));
    let b = h.subscribe(fw_info("b"));
    h.add_agent("a1", AGENT_RES);
    h.allocate();
    let (holder, other) = if h.offers(&a).is_empty() {
        (b.clone(), a.clone())
    } else {
        (a.clone(), b.clone())
    };
    let o = h.all_offers()[&holder][0].clone();
    decline(
        &mut h,
        &other,
        vec![o.id.clone(), OfferId::new("nope")],
        Some(100.0),
    );
    assert!(h.out.is_empty());
    assert_eq!(h.fw_state(&holder)["offers"][0]["id"], o.id.as_str());
}

#[test]
fn leftover_of_accept_is_reoffered_only_after_the_filter() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    let aid = h.add_agent("a1", AGENT_RES);
    h.allocate();
    let o = h.offers(&fid).pop().unwrap();
    let r = h.accept(
        &fid,
        vec![o.id.clone()],
        vec![launch_op(vec![task("t1", &aid, "cpus:1;mem:128")])],
        refuse(20.0),
    );
    assert_eq!(r, Reply::Accepted);
    assert_eq!(h.agent_kinds(&aid), ["RUN_TASK"]);

    h.advance(19.0);
    h.allocate();
    assert!(h.offers(&fid).is_empty(), "leftover filtered: {:#?}", h.out);

    h.advance(1.5);
    h.allocate();
    let again = h.offers(&fid);
    assert_eq!(again.len(), 1);
    assert_eq!(scalar(&again[0].resources, "cpus"), 3.0);
    assert_eq!(scalar(&again[0].resources, "mem"), 3968.0);
}

#[test]
fn leftover_goes_to_another_framework_at_once() {
    let mut h = Harness::new();
    let a = h.subscribe(fw_info("a"));
    let aid = h.add_agent("a1", AGENT_RES);
    h.allocate();
    let o = h.offers(&a).pop().unwrap();
    let b = h.subscribe(fw_info("b"));
    h.launch(&a, &o, vec![task("t1", &aid, "cpus:1;mem:128")]);
    h.allocate();
    let got = h.all_offers();
    assert_eq!(got.keys().collect::<Vec<_>>(), [&b]);
    assert_eq!(scalar(&got[&b][0].resources, "cpus"), 3.0);
}

#[test]
fn suppress_stops_offers_and_revive_clears_filters() {
    let mut h = Harness::new();
    let fid = h.subscribe(fw_info("one"));
    h.add_agent("a1", AGENT_RES);
    assert_eq!(
        h.call(&fid, Command::Suppress(Roles::default())),
        Reply::Accepted
    );
    h.allocate();
    assert!(h.offers(&fid).is_empty());
    assert_eq!(
        h.call(&fid, Command::Revive(Roles::default())),
        Reply::Accepted
    );
    h.allocate();
    let o = h.offers(&fid).pop().expect("offered after REVIVE");
    decline(&mut h, &fid, vec![o.id], Some(1000.0));
    h.call(&fid, Command::Revive(Roles::default()));
    h.allocate();
    assert_eq!(h.offers(&fid).len(), 1, "REVIVE clears decline filters");
}
