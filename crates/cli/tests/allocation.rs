//! Quota, weights and "why pending?" with real master and agent processes: a quota
//! limit caps a role's offers and `strata why` says so; a guarantee of a role without
//! frameworks holds capacity back from others; bad quota requests get 400s and change
//! nothing; weights over HTTP; per-role allocator metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use strata_api::scheduler::Event;
use strata_api::FrameworkInfo;
use strata_resources::Resources;
use strata_testkit::framework::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

fn in_role(name: &str, role: &str) -> FrameworkInfo {
    let mut info = framework_info(name, 0.0, false, false);
    info.role = Some(role.into());
    info
}

async fn operator(c: &Cluster, body: &Value) -> (u16, String) {
    let url = format!("http://{}/api/v1", c.master.addr);
    let r = c.client.post_json(&url, &[], body).await.unwrap();
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

fn update_quota(configs: Value, force: bool) -> Value {
    json!({"type": "UPDATE_QUOTA", "update_quota": {"force": force, "quota_configs": configs}})
}

fn cpus(v: f64) -> Value {
    json!({"cpus": {"value": v}})
}

/// The cpus of the next offer the framework receives (it keeps the offer).
async fn next_offer_cpus(fw: &mut Fw) -> f64 {
    fw.expect("an offer", |e| match e {
        Event::Offers(o) => o
            .offers
            .first()
            .map(|o| Resources::from_wire(&o.resources).unwrap().cpus().as_f64()),
        _ => None,
    })
    .await
}

async fn why(c: &Cluster, query: &str) -> Value {
    c.get(&format!("/master/why?{query}")).await.unwrap()
}

fn hints(v: &Value) -> String {
    v["hints"].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quota_limit_caps_offers_and_why_explains_it() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (status, body) = operator(
        &c,
        &update_quota(json!([{"role": "eng", "limits": cpus(1.0)}]), false),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut fw = Fw::subscribe(&c.master.addr, in_role("limited", "eng")).await;
    assert_eq!(
        next_offer_cpus(&mut fw).await,
        1.0,
        "offers stop at the limit"
    );
    // The offer is held: the next full cycles find eng at its limit.
    let v = wait_until(LONG, "why to report the limit", async || {
        let v = why(&c, "role=eng").await;
        v["outcomes"]["quota_limit"]
            .as_u64()
            .is_some_and(|n| n > 0)
            .then_some(v)
    })
    .await;
    assert!(
        hints(&v).contains("reached its quota limit on cpus: 1 of 1"),
        "{v}"
    );
    assert_eq!(v["quota"]["limit"]["cpus"]["value"], 1.0, "{v}");
    assert_eq!(v["quota"]["consumed"]["cpus"]["value"], 1.0, "{v}");
    // The CLI says the same for the role and for the framework.
    let (code, out, err) = c.cli(&["why", "eng"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("reached its quota limit on cpus"), "{out}");
    let (code, out, err) = c.cli(&["why", fw.id().as_str()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Why framework"), "{out}");
    assert!(out.contains("reached its quota limit on cpus"), "{out}");
    // GET_QUOTA, /quota and the metrics show it.
    let (status, body) = operator(&c, &json!({"type": "GET_QUOTA"})).await;
    assert_eq!(status, 200, "{body}");
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        got["get_quota"]["status"]["configs"][0]["limits"]["cpus"]["value"], 1.0,
        "{got}"
    );
    let legacy = c.get("/quota").await.unwrap();
    assert_eq!(legacy["configs"][0]["role"], "eng", "{legacy}");
    let m = c.get("/metrics/snapshot").await.unwrap();
    assert_eq!(
        m["allocator/mesos/quota/roles/eng/resources/cpus/limit"],
        1.0
    );
    assert_eq!(
        m["allocator/mesos/quota/roles/eng/resources/cpus/consumed"],
        1.0
    );
    assert!(
        m["allocator/mesos/roles/eng/shares/dominant"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        m["allocator/mesos/roles/eng/resources/cpus/offered"], 1.0,
        "the held offer: {m}"
    );
    assert_eq!(m["allocator/mesos/roles/eng/resources/cpus/allocated"], 0.0);
    // Raising the limit lets the rest through.
    let (status, _) = operator(
        &c,
        &update_quota(json!([{"role": "eng", "limits": cpus(4.0)}]), false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(next_offer_cpus(&mut fw).await, 3.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guarantee_holds_capacity_back_from_other_roles() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    // ops has no framework yet: 3 of the 4 cpus are held for it.
    let (status, body) = operator(
        &c,
        &update_quota(json!([{"role": "ops", "guarantees": cpus(3.0)}]), false),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut dev = Fw::subscribe(&c.master.addr, in_role("dev", "dev")).await;
    assert_eq!(next_offer_cpus(&mut dev).await, 1.0);
    let v = wait_until(LONG, "why to report the headroom", async || {
        let v = why(&c, "role=dev").await;
        v["outcomes"]["quota_headroom"]
            .as_u64()
            .is_some_and(|n| n > 0)
            .then_some(v)
    })
    .await;
    assert!(
        hints(&v).contains("unmet guarantee of role 'ops' (cpus:3"),
        "{v}"
    );
    // The guaranteed role gets its share when its framework arrives.
    let mut ops = Fw::subscribe(&c.master.addr, in_role("ops", "ops")).await;
    assert_eq!(next_offer_cpus(&mut ops).await, 3.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_quota_requests_are_refused_and_change_nothing() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let cases = [
        (
            json!([{"role": "eng", "guarantees": cpus(-1.0)}]),
            false,
            "Negative",
        ),
        (
            json!([{"role": "eng", "guarantees": cpus(3.0), "limits": cpus(2.0)}]),
            false,
            "above the limit",
        ),
        (
            json!([{"role": "eng", "guarantees": cpus(5.0)}]),
            false,
            "exceed cluster capacity",
        ),
        (
            json!([{"role": "*", "limits": cpus(1.0)}]),
            false,
            "Invalid role",
        ),
        (
            json!([{"role": "a/../b", "limits": cpus(1.0)}]),
            false,
            "invalid path segment",
        ),
        (
            json!([{"role": "eng", "guarantees": cpus(1.0)}, {"role": "eng/web", "guarantees": cpus(2.0)}]),
            false,
            "children",
        ),
        (json!([{"guarantees": cpus(1.0)}]), false, "needs a 'role'"),
    ];
    for (configs, force, needle) in cases {
        let (status, body) = operator(&c, &update_quota(configs.clone(), force)).await;
        assert_eq!(status, 400, "{configs}: {body}");
        assert!(body.contains(needle), "{configs}: {body}");
    }
    let (status, _) = operator(&c, &json!({"type": "UPDATE_QUOTA"})).await;
    assert_eq!(status, 400);
    let legacy = c.get("/quota").await.unwrap();
    assert_eq!(legacy["configs"], json!([]), "nothing changed: {legacy}");
    // force skips the capacity check; DELETE removes the quota.
    let (status, body) = operator(
        &c,
        &update_quota(json!([{"role": "eng", "guarantees": cpus(5.0)}]), true),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let url = format!("http://{}/quota/eng", c.master.addr);
    let r = reqwest::Client::new().delete(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let legacy = c.get("/quota").await.unwrap();
    assert_eq!(legacy["configs"], json!([]), "{legacy}");
    let r = c.get("/master/why").await;
    assert!(r.is_err(), "why needs a role or framework");
}

#[tokio::test(flavor = "multi_thread")]
async fn weights_over_http() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let body = json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "eng/web", "weight": 2.5}]}});
    let (status, text) = operator(&c, &body).await;
    assert_eq!(status, 200, "{text}");
    let (status, text) = operator(&c, &json!({"type": "GET_WEIGHTS"})).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v["get_weights"]["weight_infos"],
        json!([{"role": "eng/web", "weight": 2.5}])
    );
    let url = format!("http://{}/weights", c.master.addr);
    let put = |body: Value| {
        let url = url.clone();
        async move {
            let r = reqwest::Client::new()
                .put(&url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, text) = put(json!([{"role": "ops", "weight": -1}])).await;
    assert_eq!(status, 400, "negative weight refused: {text}");
    let (status, text) = put(json!([{"role": "*", "weight": 1}])).await;
    assert_eq!(status, 400, "invalid role refused: {text}");
    let (status, text) = put(json!([{"role": "ops", "weight": 3}])).await;
    assert_eq!(status, 200, "{text}");
    let w = c.get("/weights").await.unwrap();
    assert_eq!(
        w,
        json!([{"role": "eng/web", "weight": 2.5}, {"role": "ops", "weight": 3.0}])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_and_weights_survive_a_master_restart() {
    let mut c = Cluster::start(BIN.as_ref(), 1).await;
    let configs = json!([{"role": "eng", "guarantees": cpus(1.0), "limits": cpus(2.0)}]);
    let (status, body) = operator(&c, &update_quota(configs, false)).await;
    assert_eq!(status, 200, "{body}");
    let body = json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "eng", "weight": 3.0}]}});
    assert_eq!(operator(&c, &body).await.0, 200);
    c.master.restart();
    let q = wait_until(LONG, "the restarted master", async || {
        c.get("/quota").await.ok()
    })
    .await;
    assert_eq!(
        q["configs"],
        json!([{"role": "eng", "guarantees": cpus(1.0), "limits": cpus(2.0)}]),
        "{q}"
    );
    let w = c.get("/weights").await.unwrap();
    assert_eq!(w, json!([{"role": "eng", "weight": 3.0}]));
    // Removing the quota is persisted too.
    let (status, _) = operator(&c, &update_quota(json!([{"role": "eng"}]), false)).await;
    assert_eq!(status, 200);
    c.master.restart();
    let q = wait_until(LONG, "the restarted master", async || {
        c.get("/quota").await.ok()
    })
    .await;
    assert_eq!(q["configs"], json!([]), "{q}");
}

#[tokio::test(flavor = "multi_thread")]
async fn why_measures_a_framework_request_against_the_free_resources() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, in_role("needy", "eng")).await;
    next_offer_cpus(&mut fw).await;
    // The agent has 4 cpus; this framework needs 6 for one task.
    let want = json!([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 6}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 128}}]);
    let req = serde_json::from_value(json!({"requests": [{"resources": want}]})).unwrap();
    fw.call(strata_api::scheduler::Command::Request(req)).await;
    let v = wait_until(LONG, "why to show the request", async || {
        let v = why(&c, &format!("framework={}", fw.id())).await;
        hints(&v).contains("its request").then_some(v)
    })
    .await;
    assert!(hints(&v).contains("fits on no agent"), "{v}");
    assert!(hints(&v).contains("is 2 cpus short"), "{v}");
    let (code, out, _) = c.cli(&["why", fw.id().as_str()]).await;
    assert_eq!(code, 0);
    assert!(out.contains("is 2 cpus short"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn why_measures_a_constrained_request_on_the_agents_it_may_use() {
    // Zone a has 4 cpus free; zone b has an agent of 1 cpu.
    let mut c = Cluster::start_with(BIN.as_ref(), 1, &[], &["--attributes", "zone:a"]).await;
    c.add_agent(&["--attributes", "zone:b", "--resources", "cpus:1;mem:1024"])
        .await;
    let mut fw = Fw::subscribe(&c.master.addr, in_role("picky", "eng")).await;
    next_offer_cpus(&mut fw).await;
    let want = json!([{"name": "cpus", "type": "SCALAR", "scalar": {"value": 3}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": 128}}]);
    let req = json!({"requests": [
        {"resources": want, "constraints": [["zone", "IS", "b"]]},
        {"resources": want, "constraints": [["rack", "LIKE", "r.*"]]},
        {"resources": want, "constraints": [["zone", "LIKE", "a"]]},
    ]});
    fw.call(strata_api::scheduler::Command::Request(
        serde_json::from_value(req).unwrap(),
    ))
    .await;
    let v = wait_until(LONG, "why to show the requests", async || {
        let v = why(&c, &format!("framework={}", fw.id())).await;
        hints(&v).contains("zone LIKE a").then_some(v)
    })
    .await;
    let text = hints(&v);
    assert!(
        text.contains("fits on no agent where zone IS b: the closest")
            && text.contains("is 2 cpus short"),
        "{v}"
    );
    assert!(
        text.contains("cannot be placed: no active agent where rack LIKE r.*"),
        "{v}"
    );
    assert!(
        text.contains("(on agents where zone LIKE a) fits in the free resources of 1 agent(s)"),
        "{v}"
    );
    let (code, out, _) = c.cli(&["why", fw.id().as_str()]).await;
    assert_eq!(code, 0);
    assert!(out.contains("zone IS b"), "{out}");

    // A constraint that does not parse leaves the previous demand in place.
    let bad = json!({"requests": [{"resources": want, "constraints": [["zone", "NEAR", "b"]]}]});
    fw.call(strata_api::scheduler::Command::Request(
        serde_json::from_value(bad).unwrap(),
    ))
    .await;
    let v = why(&c, &format!("framework={}", fw.id())).await;
    assert!(hints(&v).contains("zone IS b"), "{v}");
}
