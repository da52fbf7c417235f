//! Shared persistent volumes with real master and agent processes: two frameworks with
//! SHARED_RESOURCES run a task each on one shared volume at the same time and each sees
//! the other's writes; DESTROY is refused until both tasks have ended, then removes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use strata_api::scheduler::{Event, Operation, Reserve, Volumes};
use strata_api::TaskState;
use strata_api::{Capability, FrameworkInfo, Offer};
use strata_resources::{Resource, WireResource};
use strata_testkit::framework::*;
use strata_testkit::volumes::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");
const ROLE: &str = "eng";

fn sharing_framework(name: &str) -> FrameworkInfo {
    let mut info = role_framework(name, ROLE);
    info.capabilities.push(Capability {
        kind: "SHARED_RESOURCES".into(),
    });
    info
}

fn shared_volume(mb: f64, id: &str) -> Resource {
    let mut v = volume(ROLE, mb, id, "data", "RW");
    v.shared = true;
    v
}

async fn accept(fw: &Fw, offer: &Offer, operations: Vec<Operation>, refuse_seconds: f64) {
    accept_offers(fw, std::slice::from_ref(offer), operations, refuse_seconds).await;
}

/// Takes the next offer holding volume `id` (declining the others).
async fn offer_with_volume(fw: &mut Fw, id: &str) -> (Offer, WireResource) {
    loop {
        let found =
            fw.s.session
                .offers()
                .find(|o| offered_volume(o, id).is_some())
                .map(|o| o.id.clone());
        if let Some(oid) = found {
            let offer = fw.s.session.take_offer(&oid).expect("outstanding");
            let v = offered_volume(&offer, id).expect("found above");
            return (offer, v);
        }
        fw.decline_all().await;
        let is_offers = |e: &Event| matches!(e, Event::Offers(_)).then_some(());
        fw.expect("an offer with the shared volume", is_offers)
            .await;
    }
}

async fn destroy(c: &Cluster, aid: &str, v: &WireResource) -> (u16, String) {
    let body = json!({"type": "DESTROY_VOLUMES",
                      "destroy_volumes": {"agent_id": {"value": aid}, "volumes": [v]}});
    let url = format!("http://{}/api/v1", c.master.addr);
    let r = c.client.post_json(&url, &[], &body).await.unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// Writes `mine`, waits (bounded) for `theirs`, records what it read, then sleeps; each
/// file appears whole (written aside, then renamed), so a reader never sees it half made.
fn meet(mine: &str, theirs: &str, sleep: &str) -> String {
    format!(
        "echo {mine} > data/{mine}.tmp && mv data/{mine}.tmp data/{mine} && i=0; \
         while [ ! -f data/{theirs} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
         cat data/{theirs} > data/{mine}-saw.tmp && mv data/{mine}-saw.tmp data/{mine}-saw; {sleep}"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn two_frameworks_share_one_volume_and_destroy_waits_for_both() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let aid = c.wait_agent_registered(0).await;
    let mut f1 = Fw::subscribe(&c.master.addr, sharing_framework("sharer-1")).await;
    let offer = f1.full_offer().await;
    let vol = shared_volume(64.0, "sv");
    let (sleep1, _m1) = sleeper();
    let t1 = task_using(
        "t1",
        &offer,
        &meet("one", "two", &sleep1),
        pre(std::slice::from_ref(&vol)),
    );
    let ops = vec![
        Operation {
            kind: "RESERVE".into(),
            reserve: Some(Reserve {
                source: Vec::new(),
                resources: pre(&[reserved("disk", 64.0, ROLE)]),
            }),
            ..Operation::default()
        },
        Operation {
            kind: "CREATE".into(),
            create: Some(Volumes {
                volumes: pre(&[vol]),
            }),
            ..Operation::default()
        },
        launch(vec![t1]),
    ];
    // f1 refuses the rest for long, so the second framework gets it.
    accept(&f1, &offer, ops, 3600.0).await;
    f1.state("t1", TaskState::Running).await;

    // The volume is in use by t1 and still offered to the second framework.
    let mut f2 = Fw::subscribe(&c.master.addr, sharing_framework("sharer-2")).await;
    let (offer2, v) = offer_with_volume(&mut f2, "sv").await;
    assert!(v.shared.is_some(), "offered as shared: {v:?}");
    let (sleep2, _m2) = sleeper();
    let t2 = task_using("t2", &offer2, &meet("two", "one", &sleep2), vec![v.clone()]);
    accept(&f2, &offer2, vec![launch(vec![t2])], 0.0).await;
    f2.state("t2", TaskState::Running).await;

    // Both tasks run at once and each read what the other wrote.
    let dir = c.agents[0]
        .work_dir
        .canonicalize()
        .unwrap()
        .join("volumes/roles/eng/sv");
    wait_until(LONG, "both tasks to see each other's file", async || {
        let one = std::fs::read_to_string(dir.join("one-saw")).ok()?;
        let two = std::fs::read_to_string(dir.join("two-saw")).ok()?;
        Some((one, two))
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(dir.join("one-saw")).unwrap(),
        "two\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("two-saw")).unwrap(),
        "one\n"
    );

    // DESTROY is refused while either task uses the volume.
    let (status, body) = destroy(&c, &aid, &v).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("in use"), "{body}");
    f1.kill("t1").await;
    f1.state("t1", TaskState::Killed).await;
    let (status, body) = destroy(&c, &aid, &v).await;
    assert_eq!(status, 400, "t2 still uses it: {body}");
    assert!(
        dir.join("one").is_file(),
        "a volume in use is not destroyed"
    );
    f2.kill("t2").await;
    f2.state("t2", TaskState::Killed).await;

    let (status, body) = destroy(&c, &aid, &v).await;
    assert_eq!(status, 202, "{body}");
    wait_until(LONG, "the volume's directory removed", async || {
        (!dir.exists()).then_some(())
    })
    .await;
    let slave: Value = c.get("/master/slaves").await.unwrap()["slaves"][0].clone();
    assert!(
        !slave["reserved_resources_full"]
            .to_string()
            .contains("\"sv\""),
        "{slave}"
    );
}
