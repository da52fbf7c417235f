//! Reservation and volume transcripts: RESERVE / UNRESERVE / CREATE / DESTROY / GROW /
//! SHRINK in ACCEPT (applied in order on the offered pool, invalid ones dropped), the
//! operator calls (202 / 400 / 409, offers rescinded to make room), what the agent is
//! told (`CHECKPOINT_RESOURCES`), what the registry records, and re-registration. The
//! harness checks after every step that the allocator's totals are the master's.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use strata_api::agent_link::{CheckpointResources, ToAgent};
use strata_api::operator::OperatorCallType;
use strata_api::scheduler::{GrowVolume, Operation, Reserve, ShrinkVolume, Unreserve, Volumes};
use strata_api::{AgentId, FrameworkId, FrameworkInfo, Offer, TaskState};
use strata_master_core::{Input, OperatorInput, Reply};
use strata_registry::Op;
use strata_resources::wire::WireScalar;
use strata_resources::{Reservation, Resource, Resources, WireFormat, WireResource};

const ROLE: &str = "eng";

fn eng_info(name: &str) -> FrameworkInfo {
    let mut info = fw_info(name);
    info.role = Some(ROLE.into());
    info.principal = Some("ops".into());
    info
}

/// `amount` of `name` dynamically reserved for `role` by principal `ops`.
fn dynamic(name: &str, amount: f64, role: &str) -> Resource {
    Resource::scalar(name, amount).reserved(Reservation::dynamic(role, Some("ops".into())))
}

fn volume(mb: f64, id: &str, path: &str) -> Resource {
    let mut v = dynamic("disk", mb, ROLE);
    v.disk = Some(Box::new(
        json!({"persistence": {"id": id, "principal": "ops"},
                         "volume": {"mode": "RW", "container_path": path}}),
    ));
    v
}

/// Wire form as a framework without RESERVATION_REFINEMENT sends it.
fn pre(rs: &[Resource]) -> Vec<WireResource> {
    Resources::from_vec(rs.to_vec()).to_wire(WireFormat::PreRefinement)
}

fn reserve_op(rs: &[Resource]) -> Operation {
    Operation {
        kind: "RESERVE".into(),
        reserve: Some(Reserve {
            source: Vec::new(),
            resources: pre(rs),
        }),
        ..Default::default()
    }
}

fn unreserve_op(rs: &[Resource]) -> Operation {
    Operation {
        kind: "UNRESERVE".into(),
        unreserve: Some(Unreserve { resources: pre(rs) }),
        ..Default::default()
    }
}

fn volumes_op(kind: &str, vs: &[Resource]) -> Operation {
    let v = Some(Volumes { volumes: pre(vs) });
    let mut op = Operation {
        kind: kind.into(),
        ..Default::default()
    };
    if kind == "CREATE" {
        op.create = v;
    } else {
        op.destroy = v;
    }
    op
}

/// One `eng` framework with a principal, one agent with disk, one offer of it all.
fn setup() -> (Harness, FrameworkId, AgentId, Offer) {
    let mut h = Harness::new();
    let fid = h.subscribe(eng_info("fw"));
    let aid = h.add_agent("a1", "cpus:4;mem:4096;disk:1000");
    h.allocate();
    let offer = h.offers(&fid).pop().unwrap();
    (h, fid, aid, offer)
}

fn total(h: &Harness, aid: &AgentId) -> Resources {
    h.m.agent_total(aid).unwrap().clone()
}

/// The CHECKPOINT_RESOURCES messages sent to `aid` in the last step.
fn checkpoints(h: &Harness, aid: &AgentId) -> Vec<Resources> {
    h.agent_msgs(aid)
        .into_iter()
        .filter_map(|m| match m {
            ToAgent::CheckpointResources(CheckpointResources { resources }) => {
                Some(Resources::from_wire(&resources).unwrap())
            }
            _ => None,
        })
        .collect()
}

fn offered(o: &Offer) -> Resources {
    Resources::from_wire(&o.resources).unwrap()
}

fn accept(h: &mut Harness, fid: &FrameworkId, offer: &Offer, ops: Vec<Operation>) {
    let reply = h.accept(fid, vec![offer.id.clone()], ops, refuse(0.0));
    assert_eq!(reply, Reply::Accepted);
}

fn next_offer(h: &mut Harness, fid: &FrameworkId) -> Offer {
    h.allocate();
    h.offers(fid)
        .pop()
        .unwrap_or_else(|| panic!("no offer: {:#?}", h.out))
}

#[test]
fn reserve_in_accept_is_offered_back_to_the_role_then_unreserved() {
    let (mut h, fid, aid, offer) = setup();
    let original = total(&h, &aid);
    let want = [dynamic("cpus", 1.0, ROLE), dynamic("mem", 128.0, ROLE)];
    accept(&mut h, &fid, &offer, vec![reserve_op(&want)]);
    let reserved = Resources::from_vec(want.to_vec());
    assert_eq!(checkpoints(&h, &aid), std::slice::from_ref(&reserved));
    let persisted = h.persisted();
    assert!(
        matches!(&persisted[..], [Op::SetAgentResources { id, resources }]
            if id == aid.as_str() && Resources::from_wire(resources).unwrap() == reserved),
        "{persisted:#?}"
    );
    assert_eq!(h.slave_state(&aid)["reserved_resources"][ROLE]["cpus"], 1.0);
    assert_eq!(h.slave_state(&aid)["unreserved_resources"]["cpus"], 3.0);
    assert_eq!(
        h.slave_state(&aid)["reserved_resources_full"][ROLE][0]["role"],
        ROLE
    );

    let second = next_offer(&mut h, &fid);
    let got = offered(&second);
    assert!(got.contains(&reserved), "{got}");
    assert_eq!(got.cpus().as_f64(), 4.0);
    assert_eq!(
        second
            .resources
            .iter()
            .find(|r| r.role.as_deref() == Some(ROLE))
            .and_then(|r| r.reservation.clone())
            .and_then(|r| r.principal),
        Some("ops".into()),
        "pre-refinement offers carry role and reservation"
    );
    accept(&mut h, &fid, &second, vec![unreserve_op(&want)]);
    assert_eq!(checkpoints(&h, &aid), [Resources::new()]);
    assert_eq!(
        total(&h, &aid),
        original,
        "reserve/unreserve leaves the total as it was"
    );
    let third = next_offer(&mut h, &fid);
    assert!(offered(&third).reserved().is_empty());
}

#[test]
fn reserved_resources_are_offered_to_their_role_only() {
    let (mut h, fid, aid, offer) = setup();
    accept(
        &mut h,
        &fid,
        &offer,
        vec![reserve_op(&[dynamic("cpus", 2.0, ROLE)])],
    );
    let mut other = fw_info("other");
    other.role = Some("web".into());
    let web = h.subscribe(other);
    h.close_fw(&fid);
    h.allocate();
    let offers = h.offers(&web);
    assert!(!offers.is_empty(), "{:#?}", h.out);
    for o in offers {
        assert!(offered(&o).reserved().is_empty(), "web got {}", offered(&o));
        assert_eq!(offered(&o).cpus().as_f64(), 2.0);
    }
    assert_eq!(h.slave_state(&aid)["reserved_resources"][ROLE]["cpus"], 2.0);
}

/// An invalid RESERVE is dropped: nothing is checkpointed and the offered resources
/// come back whole in the next offer.
fn expect_dropped(op: Operation, mut info: FrameworkInfo) {
    let mut h = Harness::new();
    info.role = info.role.or(Some(ROLE.into()));
    let fid = h.subscribe(info);
    let aid = h.add_agent("a1", "cpus:4;mem:4096;disk:1000");
    h.allocate();
    let offer = h.offers(&fid).pop().unwrap();
    let before = total(&h, &aid);
    accept(&mut h, &fid, &offer, vec![op]);
    assert!(checkpoints(&h, &aid).is_empty(), "{:#?}", h.out);
    assert!(h.persisted().is_empty());
    assert_eq!(total(&h, &aid), before);
    let again = next_offer(&mut h, &fid);
    assert_eq!(offered(&again), offered(&offer));
}

#[test]
fn invalid_reservations_are_dropped() {
    expect_dropped(reserve_op(&[dynamic("cpus", 1.0, "web")]), eng_info("fw"));
    expect_dropped(reserve_op(&[Resource::scalar("cpus", 1.0)]), eng_info("fw"));
    let mut nobody = dynamic("cpus", 1.0, ROLE);
    nobody.reservations[0].principal = Some("mallory".into());
    expect_dropped(reserve_op(&[nobody]), eng_info("fw"));
    expect_dropped(reserve_op(&[dynamic("cpus", 5.0, ROLE)]), eng_info("fw"));
    expect_dropped(unreserve_op(&[dynamic("cpus", 1.0, ROLE)]), eng_info("fw"));
    expect_dropped(
        volumes_op("CREATE", &[volume(100.0, "v1", "data")]),
        eng_info("fw"),
    );
    let missing = Operation {
        kind: "RESERVE".into(),
        ..Default::default()
    };
    expect_dropped(missing, eng_info("fw"));
}

#[test]
fn reserve_create_launch_in_one_accept_then_destroy_when_unused() {
    let (mut h, fid, aid, offer) = setup();
    let original = total(&h, &aid);
    let vol = volume(100.0, "v1", "data");
    let mut t = task("t1", &aid, "cpus:1;mem:128");
    t.resources.extend(pre(std::slice::from_ref(&vol)));
    let ops = vec![
        reserve_op(&[dynamic("disk", 100.0, ROLE)]),
        volumes_op("CREATE", std::slice::from_ref(&vol)),
        launch_op(vec![t]),
    ];
    accept(&mut h, &fid, &offer, ops);
    assert_eq!(
        h.agent_kinds(&aid),
        ["CHECKPOINT_RESOURCES", "CHECKPOINT_RESOURCES", "RUN_TASK"],
        "{:#?}",
        h.out
    );
    assert_eq!(
        checkpoints(&h, &aid).last(),
        Some(&Resources::from(vol.clone()))
    );
    let run = h.agent_msgs(&aid).pop().unwrap();
    let ToAgent::RunTask(run) = run else {
        panic!("{run:?}")
    };
    let task_res = Resources::from_wire(&run.task.resources).unwrap();
    assert_eq!(
        task_res.iter().find_map(Resource::persistence_id),
        Some("v1"),
        "the task carries its volume"
    );
    h.status(&aid, &fid, "t1", TaskState::Running, Some(1));

    let second = next_offer(&mut h, &fid);
    assert!(
        offered(&second).iter().all(|r| !r.is_persistent_volume()),
        "in use, not offered"
    );
    accept(
        &mut h,
        &fid,
        &second,
        vec![volumes_op("DESTROY", std::slice::from_ref(&vol))],
    );
    assert!(
        checkpoints(&h, &aid).is_empty(),
        "a volume in use is not destroyed"
    );

    h.status(&aid, &fid, "t1", TaskState::Finished, Some(2));
    let third = next_offer(&mut h, &fid);
    assert!(offered(&third)
        .iter()
        .any(|r| r.persistence_id() == Some("v1")));
    accept(
        &mut h,
        &fid,
        &third,
        vec![
            volumes_op("DESTROY", std::slice::from_ref(&vol)),
            unreserve_op(&[dynamic("disk", 100.0, ROLE)]),
        ],
    );
    assert_eq!(checkpoints(&h, &aid).last(), Some(&Resources::new()));
    assert_eq!(total(&h, &aid), original);
}

#[test]
fn persistence_ids_are_unique_per_role_on_an_agent() {
    let (mut h, fid, aid, offer) = setup();
    let ops = vec![
        reserve_op(&[dynamic("disk", 200.0, ROLE)]),
        volumes_op("CREATE", &[volume(100.0, "v1", "a")]),
        volumes_op("CREATE", &[volume(100.0, "v1", "b")]),
    ];
    accept(&mut h, &fid, &offer, ops);
    assert_eq!(
        checkpoints(&h, &aid).len(),
        2,
        "the second CREATE is dropped"
    );
    let cp = strata_resources::operations::checkpointed(&total(&h, &aid));
    assert_eq!(
        cp.filter(Resource::is_persistent_volume).disk_mb().as_f64(),
        100.0
    );
}

#[test]
fn grow_and_shrink_volumes() {
    let (mut h, fid, aid, offer) = setup();
    let vol = volume(100.0, "v1", "data");
    let grow = Operation {
        kind: "GROW_VOLUME".into(),
        grow_volume: Some(GrowVolume {
            volume: pre(std::slice::from_ref(&vol)).remove(0),
            addition: pre(&[dynamic("disk", 50.0, ROLE)]).remove(0),
        }),
        ..Default::default()
    };
    let mut grown = vol.clone();
    grown.value = Resource::scalar("disk", 150.0).value;
    let shrink = Operation {
        kind: "SHRINK_VOLUME".into(),
        shrink_volume: Some(ShrinkVolume {
            volume: pre(std::slice::from_ref(&grown)).remove(0),
            subtract: WireScalar { value: 30.0 },
        }),
        ..Default::default()
    };
    let ops = vec![
        reserve_op(&[dynamic("disk", 200.0, ROLE)]),
        volumes_op("CREATE", &[vol]),
        grow,
        shrink,
    ];
    accept(&mut h, &fid, &offer, ops);
    let cp = checkpoints(&h, &aid).pop().unwrap();
    assert_eq!(
        cp.filter(Resource::is_persistent_volume).disk_mb().as_f64(),
        120.0
    );
    assert_eq!(
        cp.filter(|r| !r.is_persistent_volume()).disk_mb().as_f64(),
        80.0
    );
    assert_eq!(total(&h, &aid).disk_mb().as_f64(), 1000.0);
}

fn operator(
    h: &mut Harness,
    aid: &AgentId,
    kind: OperatorCallType,
    payload: serde_json::Value,
) -> Reply {
    let mut op = Operation::default();
    let resources: Vec<WireResource> =
        serde_json::from_value(payload.get("resources").cloned().unwrap_or(json!([]))).unwrap();
    match kind {
        OperatorCallType::ReserveResources => {
            op.kind = "RESERVE".into();
            op.reserve = Some(Reserve {
                source: Vec::new(),
                resources,
            });
        }
        OperatorCallType::UnreserveResources => {
            op.kind = "UNRESERVE".into();
            op.unreserve = Some(Unreserve { resources });
        }
        OperatorCallType::CreateVolumes => {
            op.kind = "CREATE".into();
            op.create = Some(Volumes { volumes: resources });
        }
        _ => {
            op.kind = "DESTROY".into();
            op.destroy = Some(Volumes { volumes: resources });
        }
    }
    h.step(Input::Operator(OperatorInput::ResourceOperation {
        agent_id: aid.clone(),
        operation: Box::new(op),
    }))
}

fn post(rs: &[Resource]) -> serde_json::Value {
    json!({"resources": Resources::from_vec(rs.to_vec()).to_wire(WireFormat::PostRefinement)})
}

fn status_of(reply: Reply) -> (u16, String) {
    match reply {
        Reply::Error(e) => (e.status, e.message),
        other => (202, format!("{other:?}")),
    }
}

#[test]
fn operator_reserve_rescinds_offers_then_conflicts_when_used() {
    let (mut h, fid, aid, offer) = setup();
    let original = total(&h, &aid);
    let cpus = [dynamic("cpus", 1.0, ROLE)];
    let reply = operator(
        &mut h,
        &aid,
        OperatorCallType::ReserveResources,
        post(&cpus),
    );
    assert_eq!(reply, Reply::Accepted, "{:#?}", h.out);
    assert!(
        h.kinds(&fid).contains(&"RESCIND".to_string()),
        "the offer held the cpus"
    );
    assert!(!h.fw_state(&fid)["offers"]
        .to_string()
        .contains(offer.id.as_str()));
    assert_eq!(checkpoints(&h, &aid), [Resources::from_vec(cpus.to_vec())]);

    h.run_task(&fid, &aid, "t1", "cpus:3;mem:128");
    let more = [dynamic("cpus", 1.0, ROLE)];
    let (status, message) = status_of(operator(
        &mut h,
        &aid,
        OperatorCallType::ReserveResources,
        post(&more),
    ));
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("in use"), "{message}");
    let (status, message) = status_of(operator(
        &mut h,
        &aid,
        OperatorCallType::ReserveResources,
        post(&[dynamic("cpus", 100.0, ROLE)]),
    ));
    assert_eq!(status, 409);
    assert!(message.contains("does not have"), "{message}");

    // The reserved cpu sits in an outstanding offer: rescinded, then unreserved.
    let back = operator(
        &mut h,
        &aid,
        OperatorCallType::UnreserveResources,
        post(&cpus),
    );
    assert_eq!(back, Reply::Accepted);
    assert_eq!(total(&h, &aid), original);
}

#[test]
fn operator_errors() {
    let (mut h, _fid, aid, _offer) = setup();
    let unknown = AgentId::new("nope");
    let check = |reply: Reply, status: u16, text: &str| {
        let (s, m) = status_of(reply);
        assert_eq!(s, status, "{m}");
        assert!(m.contains(text), "{m:?} should contain {text:?}");
    };
    let cpus = [dynamic("cpus", 1.0, ROLE)];
    check(
        operator(
            &mut h,
            &unknown,
            OperatorCallType::ReserveResources,
            post(&cpus),
        ),
        400,
        "No agent found with specified ID nope",
    );
    check(
        operator(
            &mut h,
            &aid,
            OperatorCallType::UnreserveResources,
            post(&[Resource::scalar("cpus", 1.0)]),
        ),
        400,
        "Invalid UNRESERVE operation: Resource cpus:1 is not dynamically reserved",
    );
    check(
        operator(
            &mut h,
            &aid,
            OperatorCallType::ReserveResources,
            post(&[Resource::scalar("cpus", 1.0)]),
        ),
        400,
        "is not dynamically reserved",
    );
    let negative = json!({"resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1.0},
        "reservations": [{"type": "DYNAMIC", "role": "eng"}]}]});
    check(
        operator(&mut h, &aid, OperatorCallType::ReserveResources, negative),
        400,
        "invalid scalar",
    );
    let refine_wrong = Resource::scalar("cpus", 1.0)
        .reserved(Reservation::dynamic("eng", None))
        .reserved(Reservation::dynamic("web/x", None));
    check(
        operator(
            &mut h,
            &aid,
            OperatorCallType::ReserveResources,
            post(&[refine_wrong]),
        ),
        400,
        "does not refine",
    );
    check(
        operator(
            &mut h,
            &aid,
            OperatorCallType::CreateVolumes,
            post(&[volume(10.0, "v", "../x")]),
        ),
        400,
        "must not contain '..'",
    );
    assert!(h.persisted().is_empty());
}

#[test]
fn operator_refines_a_reservation_for_a_child_role() {
    let (mut h, _fid, aid, _offer) = setup();
    let parent = dynamic("cpus", 2.0, ROLE);
    assert_eq!(
        operator(
            &mut h,
            &aid,
            OperatorCallType::ReserveResources,
            post(std::slice::from_ref(&parent))
        ),
        Reply::Accepted
    );
    let child = Resource::scalar("cpus", 1.0)
        .reserved(Reservation::dynamic(ROLE, Some("ops".into())))
        .reserved(Reservation::dynamic("eng/dev", None));
    assert_eq!(
        operator(
            &mut h,
            &aid,
            OperatorCallType::ReserveResources,
            post(std::slice::from_ref(&child))
        ),
        Reply::Accepted
    );
    let cp = checkpoints(&h, &aid).pop().unwrap();
    assert_eq!(cp.reserved_for(ROLE).cpus().as_f64(), 1.0);
    assert_eq!(cp.reserved_for("eng/dev").cpus().as_f64(), 1.0);
    assert_eq!(
        operator(
            &mut h,
            &aid,
            OperatorCallType::UnreserveResources,
            post(&[child])
        ),
        Reply::Accepted
    );
    assert_eq!(
        checkpoints(&h, &aid).pop().unwrap(),
        Resources::from(parent)
    );
}

#[test]
fn a_reregistering_agent_gets_the_masters_view_and_a_restarted_master_the_agents() {
    let (mut h, _fid, aid, _offer) = setup();
    let cpus = [dynamic("cpus", 1.0, ROLE)];
    assert_eq!(
        operator(
            &mut h,
            &aid,
            OperatorCallType::ReserveResources,
            post(&cpus)
        ),
        Reply::Accepted
    );
    let reserved = total(&h, &aid);
    // The agent restarted without having written the reservation: the master resends it.
    h.close_agent(&aid);
    assert_eq!(h.reregister(&aid, Vec::new(), Vec::new()), Reply::Stream);
    assert_eq!(checkpoints(&h, &aid), [Resources::from_vec(cpus.to_vec())]);
    assert_eq!(total(&h, &aid), reserved);

    // A master restarted from the registry knows the reservation before the agent is back.
    let mut reg = strata_registry::RegistryState::default();
    for op in h
        .log
        .iter()
        .filter_map(|e| match e {
            strata_master_core::Effect::Persist(ops) => Some(ops.clone()),
            _ => None,
        })
        .flatten()
    {
        reg.apply(&op);
    }
    let mut h2 = Harness::with_registry(reg);
    assert_eq!(h2.m.agent_total(&aid).unwrap().clone(), reserved);
    let mut hello = h.agents[&aid].hello.clone();
    hello.checkpointed_resources =
        Resources::from_vec(cpus.to_vec()).to_wire(WireFormat::PostRefinement);
    let (reply, got) = h2.connect_agent(hello);
    assert_eq!((reply, got.as_ref()), (Reply::Stream, Some(&aid)));
    assert_eq!(h2.m.agent_total(&aid).unwrap().clone(), reserved);
    assert!(
        checkpoints(&h2, &aid).is_empty(),
        "the agent's view is taken as it is"
    );
}

#[test]
fn a_child_role_refines_its_parents_reservation_in_accept() {
    let mut h = Harness::new();
    let aid = h.add_agent("a1", "cpus:4;mem:4096;disk:1000");
    let parent = dynamic("cpus", 2.0, ROLE);
    let reply = operator(
        &mut h,
        &aid,
        OperatorCallType::ReserveResources,
        post(std::slice::from_ref(&parent)),
    );
    assert_eq!(reply, Reply::Accepted);
    let mut info = with_caps(fw_info("dev"), &["RESERVATION_REFINEMENT"]);
    info.role = Some("eng/dev".into());
    let fid = h.subscribe(info);
    h.allocate();
    let offer = h.offers(&fid).pop().unwrap();
    assert_eq!(
        offered(&offer).reserved_for(ROLE).cpus().as_f64(),
        2.0,
        "the parent's reservation is offered"
    );
    let refined = Resource::scalar("cpus", 1.0)
        .reserved(Reservation::dynamic(ROLE, Some("ops".into())))
        .reserved(Reservation::dynamic("eng/dev", None));
    let op = Operation {
        kind: "RESERVE".into(),
        reserve: Some(Reserve {
            source: Vec::new(),
            resources: Resources::from(refined.clone()).to_wire(WireFormat::PostRefinement),
        }),
        ..Default::default()
    };
    accept(&mut h, &fid, &offer, vec![op]);
    let cp = checkpoints(&h, &aid).pop().unwrap();
    assert_eq!(cp.reserved_for("eng/dev"), Resources::from(refined));
    assert_eq!(cp.reserved_for(ROLE).cpus().as_f64(), 1.0);
}
