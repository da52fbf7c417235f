//! Persistent volumes bind-mounted into process (non-Docker) tasks with `--isolation
//! filesystem/linux` (real master and agent, as root): an RW volume written by one task
//! is read by the next; a task cannot write to an RO volume (EROFS) while the host's
//! directory stays as it was.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use strata_api::scheduler::{Event, Operation, Reserve, Volumes};
use strata_api::{FrameworkInfo, Offer, TaskInfo, TaskState};
use strata_resources::{Resource, WireResource};
use strata_testkit::framework::*;
use strata_testkit::volumes::{self, *};
use strata_testkit::Cluster;

const BIN: &str = env!("CARGO_BIN_EXE_strata");
const ROLE: &str = "eng";

/// Mount namespaces need root and util-linux `unshare`; under CI=true they must be
/// available, elsewhere the test is skipped with the reason.
fn namespaces_available() -> bool {
    let ok = strata_testkit::is_root() && strata_containerizer::namespaces::probe().is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the filesystem/linux tests: run as root with util-linux unshare"
        );
        eprintln!("SKIPPED: filesystem/linux needs root and util-linux unshare");
    }
    ok
}

fn eng_framework(name: &str) -> FrameworkInfo {
    role_framework(name, ROLE)
}

fn reserved_disk(mb: f64) -> Resource {
    reserved("disk", mb, ROLE)
}

fn volume(id: &str, path: &str, mode: &str) -> Resource {
    volumes::volume(ROLE, 32.0, id, path, mode)
}

async fn accept(fw: &Fw, offers: &[Offer], operations: Vec<Operation>) {
    accept_offers(fw, offers, operations, 0.0).await;
}

/// Outstanding offers that together hold the volumes `ids` (declining those holding none),
/// and the volumes as offered.
async fn offers_with(fw: &mut Fw, ids: &[&str]) -> (Vec<Offer>, Vec<WireResource>) {
    loop {
        let offers: Vec<Offer> = fw.s.session.offers().cloned().collect();
        let found: Vec<WireResource> = ids
            .iter()
            .filter_map(|id| offers.iter().find_map(|o| offered_volume(o, id)))
            .collect();
        let holding = |o: &Offer| ids.iter().any(|id| offered_volume(o, id).is_some());
        if found.len() == ids.len() {
            let offers: Vec<Offer> = offers.into_iter().filter(holding).collect();
            for o in &offers {
                fw.s.session.take_offer(&o.id).expect("outstanding");
            }
            return (offers, found);
        }
        // Offers holding a volume are kept until the other one comes.
        let others: Vec<_> = offers
            .iter()
            .filter(|o| !holding(o))
            .map(|o| o.id.clone())
            .collect();
        for id in &others {
            fw.s.session.take_offer(id).expect("outstanding");
        }
        if !others.is_empty() {
            fw.decline(others, 0.0).await;
        }
        let is_offers = |e: &Event| matches!(e, Event::Offers(_)).then_some(());
        fw.expect("an offer with the volumes", is_offers).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn volumes_are_bind_mounted_and_read_only_ones_cannot_be_written() {
    if !namespaces_available() {
        return;
    }
    let c = Cluster::start_with(BIN.as_ref(), 1, &[], &["--isolation", "filesystem/linux"]).await;
    let mut fw = Fw::subscribe(&c.master.addr, eng_framework("mounts")).await;
    let offer = fw.full_offer().await;
    let (rw, ro) = (volume("rw", "data", "RW"), volume("ro", "ro", "RO"));
    // A mount point, not a link; the write lands in the volume.
    let writer = task_using(
        "writer",
        &offer,
        "test -d data && test ! -L data && echo hello > data/f",
        pre(std::slice::from_ref(&rw)),
    );
    let ops = vec![
        Operation {
            kind: "RESERVE".into(),
            reserve: Some(Reserve {
                source: Vec::new(),
                resources: pre(&[reserved_disk(64.0)]),
            }),
            ..Operation::default()
        },
        Operation {
            kind: "CREATE".into(),
            create: Some(Volumes {
                volumes: pre(&[rw, ro]),
            }),
            ..Operation::default()
        },
        launch(vec![writer]),
    ];
    accept(&fw, std::slice::from_ref(&offer), ops).await;
    let status = fw.terminal("writer").await;
    assert_eq!(status.state, TaskState::Finished, "{status:?}");
    let volumes = c.agents[0]
        .work_dir
        .canonicalize()
        .unwrap()
        .join("volumes/roles/eng");
    assert_eq!(
        std::fs::read_to_string(volumes.join("rw/f")).unwrap(),
        "hello\n"
    );
    std::fs::write(volumes.join("ro/seed"), "from the host\n").unwrap();

    let (offers, found) = offers_with(&mut fw, &["rw", "ro"]).await;
    let reader = task_using(
        "reader",
        &offers[0],
        r#"test "$(cat data/f)" = hello"#,
        vec![found[0].clone()],
    );
    let ro_user = task_using(
        "ro-user",
        &offers[0],
        "grep -q 'from the host' ro/seed && ! touch ro/x 2> err && grep -q 'Read-only file system' err",
        vec![found[1].clone()],
    );
    accept(&fw, &offers, vec![launch(vec![reader, ro_user])]).await;
    for (t, status) in fw.terminals(&["reader", "ro-user"]).await {
        assert_eq!(status.state, TaskState::Finished, "{t}: {status:?}");
    }
    assert!(!volumes.join("ro/x").exists(), "the RO volume was written");
    assert_eq!(
        std::fs::read_to_string(volumes.join("ro/seed")).unwrap(),
        "from the host\n"
    );
    // The host was never mounted on: the volumes are plain directories here.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains("/volumes/roles/eng"), "{mountinfo}");
}

/// A LAUNCH_GROUP operation on the default executor `pod` (0.1 cpus, 32 MB).
fn launch_group(offer: &Offer, tasks: Vec<TaskInfo>) -> Operation {
    let executor = json!({"type": "DEFAULT", "executor_id": {"value": "pod"},
        "resources": pre(&[Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)]),
        "framework_id": {"value": ""}});
    let mut executor = executor;
    executor["framework_id"] = json!(offer.framework_id);
    serde_json::from_value(json!({"type": "LAUNCH_GROUP", "launch_group": {
        "executor": executor, "task_group": {"tasks": tasks}}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_given_to_a_running_executor_get_their_volumes_mounted_into_it() {
    if !namespaces_available() {
        return;
    }
    let c = Cluster::start_with(BIN.as_ref(), 1, &[], &["--isolation", "filesystem/linux"]).await;
    let mut fw = Fw::subscribe(&c.master.addr, eng_framework("late-mounts")).await;
    let offer = fw.full_offer().await;
    let ro = volume("late", "ro", "RO");
    let keeper = task_using("keeper", &offer, "sleep 600", Vec::new());
    let ops = vec![
        Operation {
            kind: "RESERVE".into(),
            reserve: Some(Reserve {
                source: Vec::new(),
                resources: pre(&[reserved_disk(32.0)]),
            }),
            ..Operation::default()
        },
        Operation {
            kind: "CREATE".into(),
            create: Some(Volumes {
                volumes: pre(&[ro]),
            }),
            ..Operation::default()
        },
        launch_group(&offer, vec![keeper]),
    ];
    accept(&fw, std::slice::from_ref(&offer), ops).await;
    fw.state("keeper", TaskState::Running).await;
    let volumes = c.agents[0]
        .work_dir
        .canonicalize()
        .unwrap()
        .join("volumes/roles/eng");
    std::fs::write(volumes.join("late/seed"), "from the host\n").unwrap();

    // The executor's container already runs: the volume is mounted into its namespace.
    let (offers, found) = offers_with(&mut fw, &["late"]).await;
    let late = task_using(
        "late",
        &offers[0],
        "test -d ro && test ! -L ro && grep -q 'from the host' ro/seed \
         && ! touch ro/x 2> err && grep -q 'Read-only file system' err",
        vec![found[0].clone()],
    );
    accept(&fw, &offers, vec![launch_group(&offers[0], vec![late])]).await;
    let status = fw.terminal("late").await;
    assert_eq!(status.state, TaskState::Finished, "{status:?}");
    assert!(
        !volumes.join("late/x").exists(),
        "the RO volume was written"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains("/volumes/roles/eng"), "{mountinfo}");
    fw.kill("keeper").await;
    fw.terminal("keeper").await;
}
