//! Shared persistent volumes (SHARED_RESOURCES) through the master core: several tasks of
//! one ACCEPT on one offered volume, the volume offered again while in use (to capable
//! frameworks only), DESTROY refused until every task on it has ended. The harness checks
//! after every step that the allocator holds exactly what tasks and offers use.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use strata_api::scheduler::{Operation, Reserve, Volumes};
use strata_api::{AgentId, FrameworkId, FrameworkInfo, Offer, TaskState};
use strata_master_core::{Input, OperatorInput, Reply};
use strata_resources::{Reservation, Resource, Resources, WireFormat};

const ROLE: &str = "eng";

fn eng(name: &str, shared: bool) -> FrameworkInfo {
    let mut info = fw_info(name);
    info.role = Some(ROLE.into());
    info.principal = Some("ops".into());
    if shared {
        info = with_caps(info, &["SHARED_RESOURCES"]);
    }
    info
}

fn reserved_disk(mb: f64) -> Resource {
    Resource::scalar("disk", mb).reserved(Reservation::dynamic(ROLE, Some("ops".into())))
}

fn shared_volume() -> Resource {
    let mut v = reserved_disk(100.0);
    v.disk = Some(Box::new(
        json!({"persistence": {"id": "v1", "principal": "ops"},
                         "volume": {"mode": "RW", "container_path": "data"}}),
    ));
    v.shared = true;
    v
}

fn wire(r: &Resource) -> Vec<strata_resources::WireResource> {
    Resources::from(r.clone()).to_wire(WireFormat::PreRefinement)
}

fn on_volume(id: &str, aid: &AgentId) -> strata_api::TaskInfo {
    let mut t = task(id, aid, "cpus:0.5;mem:64");
    t.resources.extend(wire(&shared_volume()));
    t
}

fn has_volume(o: &Offer) -> bool {
    Resources::from_wire(&o.resources)
        .unwrap()
        .iter()
        .any(|r| r.shared && r.persistence_id() == Some("v1"))
}

fn destroy(h: &mut Harness, aid: &AgentId) -> u16 {
    let op = Operation {
        kind: "DESTROY".into(),
        destroy: Some(Volumes {
            volumes: Resources::from(shared_volume()).to_wire(WireFormat::PostRefinement),
        }),
        ..Default::default()
    };
    match h.step(Input::Operator(OperatorInput::ResourceOperation {
        agent_id: aid.clone(),
        operation: Box::new(op),
    })) {
        Reply::Error(e) => {
            assert!(e.message.contains("in use"), "{}", e.message);
            e.status
        }
        _ => 202,
    }
}

/// f1 reserves disk, creates the shared volume and starts two tasks on it in one ACCEPT.
fn two_tasks_on_a_new_volume() -> (Harness, FrameworkId, AgentId) {
    let mut h = Harness::new();
    let f1 = h.subscribe(eng("f1", true));
    let aid = h.add_agent("a1", "cpus:4;mem:4096;disk:1000");
    h.allocate();
    let offer = h.offers(&f1).pop().unwrap();
    let ops = vec![
        Operation {
            kind: "RESERVE".into(),
            reserve: Some(Reserve {
                source: Vec::new(),
                resources: wire(&reserved_disk(100.0)),
            }),
            ..Default::default()
        },
        Operation {
            kind: "CREATE".into(),
            create: Some(Volumes {
                volumes: wire(&shared_volume()),
            }),
            ..Default::default()
        },
        launch_op(vec![on_volume("t1", &aid), on_volume("t2", &aid)]),
    ];
    let reply = h.accept(&f1, vec![offer.id.clone()], ops, refuse(0.0));
    assert_eq!(reply, Reply::Accepted);
    assert_eq!(
        h.agent_kinds(&aid),
        [
            "CHECKPOINT_RESOURCES",
            "CHECKPOINT_RESOURCES",
            "RUN_TASK",
            "RUN_TASK"
        ],
        "{:#?}",
        h.out
    );
    h.status(&aid, &f1, "t1", TaskState::Running, Some(1));
    h.status(&aid, &f1, "t2", TaskState::Running, Some(2));
    (h, f1, aid)
}

#[test]
fn several_tasks_and_frameworks_share_one_volume() {
    let (mut h, f1, aid) = two_tasks_on_a_new_volume();
    // In use by two tasks, yet offered to another capable framework of the role.
    let f2 = h.subscribe(eng("f2", true));
    h.allocate();
    let offer = h.offers(&f2).pop().unwrap();
    assert!(has_volume(&offer), "{offer:?}");
    assert_eq!(
        h.launch(&f2, &offer, vec![on_volume("t3", &aid)]),
        Reply::Accepted
    );
    assert_eq!(h.agent_kinds(&aid), ["RUN_TASK"], "{:#?}", h.out);
    h.status(&aid, &f2, "t3", TaskState::Running, Some(1));

    // The agent's views count the volume once, though three tasks use it, and so do
    // the views of f1, whose two tasks use it.
    let slave = h.slave_state(&aid);
    assert_eq!(slave["used_resources"]["disk"], 100.0, "{slave}");
    let state = h.state();
    let fw1 = state["frameworks"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["id"] == f1.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(fw1["used_resources"]["disk"], 100.0, "{fw1}");

    // A framework without SHARED_RESOURCES never sees it.
    let f3 = h.subscribe(eng("f3", false));
    h.allocate();
    let plain = h.offers(&f3);
    assert!(
        !plain.is_empty() && !plain.iter().any(has_volume),
        "{plain:?}"
    );

    // DESTROY is refused while any task uses the volume (400, as for any volume in use).
    assert_eq!(destroy(&mut h, &aid), 400);
    h.status(&aid, &f1, "t1", TaskState::Finished, Some(3));
    h.status(&aid, &f1, "t2", TaskState::Finished, Some(4));
    assert_eq!(destroy(&mut h, &aid), 400, "t3 still uses it");
    h.status(&aid, &f2, "t3", TaskState::Finished, Some(2));
    assert_eq!(destroy(&mut h, &aid), 202, "{:#?}", h.out);
    assert!(!h.m.agent_total(&aid).unwrap().iter().any(|r| r.shared));
}

#[test]
fn a_task_group_shares_one_offered_volume() {
    let mut h = Harness::new();
    let f1 = h.subscribe(eng("f1", true));
    let aid = h.add_agent("a1", "cpus:4;mem:4096;disk:1000");
    // The volume exists already (created by the operator).
    let create = Operation {
        kind: "CREATE".into(),
        create: Some(Volumes {
            volumes: Resources::from(shared_volume()).to_wire(WireFormat::PostRefinement),
        }),
        ..Default::default()
    };
    let reserve = Operation {
        kind: "RESERVE".into(),
        reserve: Some(Reserve {
            source: Vec::new(),
            resources: Resources::from(reserved_disk(100.0)).to_wire(WireFormat::PostRefinement),
        }),
        ..Default::default()
    };
    for op in [reserve, create] {
        let reply = h.step(Input::Operator(OperatorInput::ResourceOperation {
            agent_id: aid.clone(),
            operation: Box::new(op),
        }));
        assert_eq!(reply, Reply::Accepted, "{:#?}", h.out);
    }
    h.allocate();
    let offer = h.offers(&f1).pop().unwrap();
    assert!(has_volume(&offer));
    let executor = strata_api::ExecutorInfo {
        kind: Some(strata_api::ExecutorType::Default),
        ..custom_executor("group", "cpus:0.1;mem:32")
    };
    let mut executor = executor;
    executor.command = None;
    let op = Operation {
        kind: "LAUNCH_GROUP".into(),
        launch_group: Some(strata_api::scheduler::LaunchGroup {
            executor,
            task_group: strata_api::TaskGroupInfo {
                tasks: vec![on_volume("g1", &aid), on_volume("g2", &aid)],
            },
        }),
        ..Default::default()
    };
    assert_eq!(
        h.accept(&f1, vec![offer.id.clone()], vec![op], refuse(0.0)),
        Reply::Accepted
    );
    assert_eq!(h.agent_kinds(&aid), ["RUN_TASK_GROUP"], "{:#?}", h.out);
}
