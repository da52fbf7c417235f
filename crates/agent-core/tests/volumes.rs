//! CHECKPOINT_RESOURCES on the agent: the new total, the checkpoint written first, volume
//! directories created and removed, links into sandboxes for tasks that use a volume,
//! what the Hello reports, and the checkpoint read back after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use strata_agent_core::checkpoint::CheckpointOp;
use strata_agent_core::volumes::VolumeOp;
use strata_agent_core::{Agent, Effect};
use strata_api::agent_link::{CheckpointResources, ToAgent};
use strata_resources::{Reservation, Resource, Resources, WireFormat, WireResource};

fn volume(role: &str, id: &str, path: &str) -> Resource {
    let mut v = Resource::scalar("disk", 100.0).reserved(Reservation::dynamic(role, None));
    v.disk = Some(Box::new(
        json!({"persistence": {"id": id}, "volume": {"mode": "RW", "container_path": path}}),
    ));
    v
}

fn cpus_eng() -> Resource {
    Resource::scalar("cpus", 1.0).reserved(Reservation::dynamic("eng", None))
}

fn to_wire(rs: &[Resource]) -> Vec<WireResource> {
    Resources::from_vec(rs.to_vec()).to_wire(WireFormat::PostRefinement)
}

fn checkpoint(h: &mut Harness, rs: &[Resource]) {
    h.master(ToAgent::CheckpointResources(CheckpointResources {
        resources: to_wire(rs),
    }));
}

fn volume_ops(h: &Harness) -> Vec<VolumeOp> {
    h.out
        .iter()
        .filter_map(|e| match e {
            Effect::Volume(op) => Some(op.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn checkpointed_resources_change_the_total_and_volume_directories() {
    let mut h = Harness::registered();
    let vol = volume("eng/dev", "v1", "data");
    checkpoint(&mut h, &[cpus_eng(), vol.clone()]);
    assert!(
        matches!(&h.out[0], Effect::Checkpoint(op) if matches!(op.as_ref(), CheckpointOp::Resources { .. })),
        "persisted first: {:#?}",
        h.out
    );
    let path = format!("{WORK_DIR}/volumes/roles/eng dev/v1");
    assert_eq!(volume_ops(&h), [VolumeOp::Create { path: path.clone() }]);
    let total = h.a.total().clone();
    assert_eq!(total.cpus().as_f64(), 4.0);
    assert_eq!(total.reserved_for("eng").cpus().as_f64(), 1.0);
    assert_eq!(total.unreserved().disk_mb().as_f64(), 9900.0);
    let hello = h.a.hello();
    assert_eq!(
        Resources::from_wire(&hello.checkpointed_resources).unwrap(),
        Resources::from_vec(vec![cpus_eng(), vol])
    );
    assert_eq!(
        hello.agent_info.resources,
        wire("cpus:4;mem:4096;disk:10000"),
        "configured"
    );

    checkpoint(&mut h, &[cpus_eng()]);
    assert_eq!(volume_ops(&h), [VolumeOp::Destroy { path }]);
    assert_eq!(h.a.total().disk_mb().as_f64(), 10000.0);
}

#[test]
fn tasks_using_a_volume_get_a_link_before_launch() {
    let mut h = Harness::registered();
    let vol = volume("eng", "v1", "data/vol");
    checkpoint(&mut h, std::slice::from_ref(&vol));
    let mut t = task("t1");
    t.resources.extend(to_wire(&[vol.allocated("eng")]));
    h.run(&plain(), None, t);
    let kinds = h.kinds_all();
    assert_eq!(kinds, ["volume:link", "launch"], "linked before the launch");
    let spec = h.launch();
    assert_eq!(
        volume_ops(&h),
        [VolumeOp::Link {
            source: format!("{WORK_DIR}/volumes/roles/eng/v1"),
            sandbox: spec.directory.clone(),
            container_path: "data/vol".into(),
            read_only: false,
        }]
    );
}

#[test]
fn with_bind_volumes_a_new_container_gets_mount_points_and_binds() {
    let mut cfg = config();
    cfg.bind_volumes = true;
    let mut h = Harness::from_agent(Agent::new(cfg, None, T0));
    h.register();
    let mut ro = volume("eng", "v2", "ro");
    ro.disk = Some(Box::new(
        json!({"persistence": {"id": "v2"}, "volume": {"mode": "RO", "container_path": "ro"}}),
    ));
    let rw = volume("eng", "v1", "data");
    checkpoint(&mut h, &[rw.clone(), ro.clone()]);
    let mut t = task("t1");
    t.resources
        .extend(to_wire(&[rw.allocated("eng"), ro.allocated("eng")]));
    h.run(&plain(), None, t);
    assert_eq!(
        h.kinds_all(),
        ["volume:mount point", "volume:mount point", "launch"]
    );
    let spec = h.launch();
    let binds: Vec<(String, bool)> = spec
        .binds
        .iter()
        .map(|b| (b.target.clone(), b.read_only))
        .collect();
    let dir = &spec.directory;
    assert_eq!(
        binds,
        [(format!("{dir}/data"), false), (format!("{dir}/ro"), true)]
    );
    assert_eq!(
        spec.binds[0].source,
        format!("{WORK_DIR}/volumes/roles/eng/v1")
    );
}

#[test]
fn with_bind_volumes_tasks_for_a_running_container_are_mounted_into_it() {
    let mut cfg = config();
    cfg.bind_volumes = true;
    let mut h = Harness::from_agent(Agent::new(cfg, None, T0));
    h.register();
    let rw = volume("eng", "v1", "data");
    checkpoint(&mut h, std::slice::from_ref(&rw));
    let exec = custom_executor("e1");
    h.run(&plain(), Some(exec.clone()), task("t1"));
    // Not started yet: a second task's volume can only be linked.
    let mut t2 = task("t2");
    t2.resources.extend(to_wire(&[rw.clone().allocated("eng")]));
    h.out.clear();
    h.run(&plain(), Some(exec.clone()), t2);
    assert!(
        matches!(volume_ops(&h).as_slice(), [VolumeOp::Link { .. }]),
        "{:#?}",
        volume_ops(&h)
    );
    h.started("e1", 4242);
    h.subscribe("e1");
    let mut t3 = task("t3");
    t3.resources.extend(to_wire(&[rw.allocated("eng")]));
    h.out.clear();
    h.run(&plain(), Some(exec), t3);
    match volume_ops(&h).as_slice() {
        [VolumeOp::MountInto {
            pid: 4242,
            source,
            container_path,
            read_only: false,
            ..
        }] => {
            assert_eq!(source, &format!("{WORK_DIR}/volumes/roles/eng/v1"));
            assert_eq!(container_path, "data");
        }
        other => panic!("{other:#?}"),
    }
}

#[test]
fn a_destroyed_volume_in_use_keeps_its_directory() {
    let mut h = Harness::registered();
    let vol = volume("eng", "v1", "data");
    checkpoint(&mut h, std::slice::from_ref(&vol));
    let mut t = task("t1");
    t.resources.extend(to_wire(std::slice::from_ref(&vol)));
    h.run(&plain(), None, t);
    checkpoint(&mut h, &[]);
    assert!(volume_ops(&h).is_empty(), "{:#?}", h.out);
}

#[test]
fn a_restarted_agent_reads_its_reservations_back() {
    let mut a = Agent::new(config(), Some(aid()), 0.0);
    a.recover_resources(&to_wire(&[cpus_eng()]));
    assert_eq!(a.total().reserved_for("eng").cpus().as_f64(), 1.0);
    assert_eq!(a.total().cpus().as_f64(), 4.0);
    let mut b = Agent::new(config(), Some(aid()), 0.0);
    let too_much = Resource::scalar("cpus", 9.0).reserved(Reservation::dynamic("eng", None));
    b.recover_resources(&to_wire(&[too_much]));
    assert!(
        b.total().reserved().is_empty(),
        "what no longer fits is dropped"
    );
}
