//! Operation feedback transcripts: a RESERVE with an `id` is answered with a reliable
//! OPERATION_FINISHED (resent on re-subscription until acknowledged), an invalid one with
//! OPERATION_ERROR; RECONCILE_OPERATIONS answers known and unknown operations;
//! GET_OPERATIONS lists what is unacknowledged; operations without `id` stay silent.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use strata_api::scheduler::{Command, Event, Operation, Reserve};
use strata_api::{FrameworkId, FrameworkInfo, Offer};
use strata_resources::{Reservation, Resource, Resources, WireFormat};

fn eng_info() -> FrameworkInfo {
    let mut info = fw_info("ops-feedback");
    info.role = Some("eng".into());
    info
}

fn reserve(id: Option<&str>, cpus: f64, role: &str) -> Operation {
    let r = Resource::scalar("cpus", cpus).reserved(Reservation::dynamic(role, None));
    Operation {
        kind: "RESERVE".into(),
        id: id.map(|i| json!({ "value": i })),
        reserve: Some(Reserve {
            source: Vec::new(),
            resources: Resources::from(r).to_wire(WireFormat::PreRefinement),
        }),
        ..Default::default()
    }
}

fn setup() -> (Harness, FrameworkId, Offer) {
    let mut h = Harness::new();
    let fid = h.subscribe(eng_info());
    h.add_agent("a1", "cpus:4;mem:4096");
    h.allocate();
    let offer = h.offers(&fid).pop().unwrap();
    (h, fid, offer)
}

/// The `status` objects of the UPDATE_OPERATION_STATUS events of the last step.
fn statuses(h: &Harness, fid: &FrameworkId) -> Vec<Value> {
    h.events(fid)
        .into_iter()
        .filter_map(|e| match e {
            Event::UpdateOperationStatus(v) => Some(v["status"].clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_reserve_with_an_id_finishes_reliably() {
    let (mut h, fid, offer) = setup();
    h.accept(
        &fid,
        vec![offer.id.clone()],
        vec![reserve(Some("r1"), 1.0, "eng")],
        refuse(0.0),
    );
    let s = statuses(&h, &fid);
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["state"], "OPERATION_FINISHED");
    assert_eq!(s[0]["operation_id"]["value"], "r1");
    assert_eq!(s[0]["agent_id"]["value"], offer.agent_id.as_str());
    assert_eq!(s[0]["converted_resources"][0]["name"], "cpus");
    let uuid = s[0]["uuid"]["value"].as_str().unwrap().to_string();
    // Listed until acknowledged; resent when the framework subscribes again.
    assert_eq!(
        h.m.operations_json()["operations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let mut info = eng_info();
    info.id = Some(fid.clone());
    h.close_fw(&fid);
    h.subscribe(info);
    let again = statuses(&h, &fid);
    assert_eq!(again.len(), 1, "resent: {again:?}");
    assert_eq!(again[0]["uuid"]["value"], uuid.as_str());
    let ack = json!({"agent_id": offer.agent_id, "operation_id": {"value": "r1"}, "uuid": {"value": uuid}});
    h.call(&fid, Command::AcknowledgeOperationStatus(ack));
    assert!(h.m.operations_json()["operations"]
        .as_array()
        .unwrap()
        .is_empty());
    // Reconciling it now: unknown.
    let rec = json!({"operations": [{"operation_id": {"value": "r1"}}]});
    h.call(&fid, Command::ReconcileOperations(rec));
    let s = statuses(&h, &fid);
    assert_eq!(s[0]["state"], "OPERATION_UNKNOWN", "{s:?}");
}

#[test]
fn an_invalid_operation_with_an_id_is_an_error_and_one_without_stays_silent() {
    let (mut h, fid, offer) = setup();
    let ops = vec![
        reserve(Some("bad"), 1.0, "other-role"),
        reserve(None, 1.0, "other-role"),
    ];
    h.accept(&fid, vec![offer.id.clone()], ops, refuse(0.0));
    let s = statuses(&h, &fid);
    assert_eq!(s.len(), 1, "only the one with an id: {s:?}");
    assert_eq!(s[0]["state"], "OPERATION_ERROR");
    assert!(
        s[0]["message"].as_str().unwrap().contains("Invalid"),
        "{s:?}"
    );
    assert!(s[0].get("uuid").is_none(), "errors need no acknowledgement");
    assert!(h.m.operations_json()["operations"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn reconciliation_answers_every_known_operation_without_uuid() {
    let (mut h, fid, offer) = setup();
    h.accept(
        &fid,
        vec![offer.id.clone()],
        vec![
            reserve(Some("a"), 1.0, "eng"),
            reserve(Some("b"), 1.0, "eng"),
        ],
        refuse(0.0),
    );
    assert_eq!(statuses(&h, &fid).len(), 2);
    h.call(
        &fid,
        Command::ReconcileOperations(json!({"operations": []})),
    );
    let s = statuses(&h, &fid);
    let ids: Vec<&str> = s
        .iter()
        .map(|x| x["operation_id"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(s
        .iter()
        .all(|x| x.get("uuid").is_none() && x["state"] == "OPERATION_FINISHED"));
}
