//! Maintenance with real processes: a schedule sends inverse offers and offers with
//! unavailability, answers show in the maintenance status, machine DOWN ends the agent's
//! tasks and machine UP lets it back; agent draining, deactivation, the offer timeout,
//! fault domains in offers, 400s for bad calls, and the schedule surviving a master
//! restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use strata_api::scheduler::{Command, Event};
use strata_api::{AgentId, OfferId, Reason, TaskState};
use strata_testkit::framework::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// POSTs `body` to `path` on the master; returns the status and the body as text.
async fn post(c: &Cluster, path: &str, body: &Value) -> (u16, String) {
    let url = format!("http://{}{path}", c.master.addr);
    let reply = c
        .client
        .post_json(&url, &[], body)
        .await
        .expect("master answers");
    (
        reply.status,
        String::from_utf8_lossy(&reply.body).into_owned(),
    )
}

/// A v1 operator call that must succeed; returns the JSON body (Null when empty).
async fn operator_ok(c: &Cluster, body: Value) -> Value {
    let (status, text) = post(c, "/api/v1", &body).await;
    assert_eq!(status, 200, "{body}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn schedule(host: &str) -> Value {
    json!({"windows": [{"machine_ids": [{"hostname": host}], "unavailability": {
        "start": {"nanoseconds": 2_000_000_000_000_000_000i64}, "duration": {"nanoseconds": 3_600_000_000_000i64}}}]})
}

/// An agent entry of GET_AGENTS.
async fn agent_entry(c: &Cluster, aid: &AgentId) -> Value {
    let v = operator_ok(c, json!({"type": "GET_AGENTS"})).await;
    v["get_agents"]["agents"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|x| x["agent_info"]["id"]["value"] == aid.as_str())
        })
        .cloned()
        .unwrap_or(Value::Null)
}

/// Waits for an OFFERS event with an offer on `aid`; returns that offer as JSON.
async fn offer_on(fw: &mut Fw, aid: &AgentId) -> Value {
    fw.expect(&format!("an offer on {aid}"), |e| match e {
        Event::Offers(o) => o
            .offers
            .iter()
            .find(|o| &o.agent_id == aid)
            .map(|o| serde_json::to_value(o).unwrap()),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_machine_drains_goes_down_and_comes_back_up() {
    let mut c = Cluster::start_with(BIN.as_ref(), 0, &[], &[]).await;
    c.add_agent(&["--hostname", "node1"]).await;
    let a1 = AgentId::new(c.wait_agent_registered(0).await);
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("maint", 60.0, false, false)).await;
    let (cmd, _marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;

    let (status, text) = post(&c, "/maintenance/schedule", &schedule("node1")).await;
    assert_eq!(status, 200, "{text}");
    // One allocation sends the offer (with unavailability) and the inverse offer.
    let (mut inverse, mut offer) = (None, None);
    while inverse.is_none() || offer.is_none() {
        let what = "an inverse offer and an offer with unavailability for node1";
        match fw.expect(what, |e| Some(e.clone())).await {
            Event::InverseOffers(v) => {
                inverse = v["inverse_offers"].as_array().unwrap().first().cloned()
            }
            Event::Offers(o) => {
                let on = o
                    .offers
                    .iter()
                    .find(|o| o.agent_id == a1 && o.unavailability.is_some());
                offer = on.map(|o| serde_json::to_value(o).unwrap()).or(offer);
            }
            _ => {}
        }
    }
    let (inverse, offer) = (inverse.unwrap(), offer.unwrap());
    assert_eq!(inverse["agent_id"]["value"], a1.as_str());
    assert_eq!(
        offer["unavailability"]["duration"]["nanoseconds"],
        3_600_000_000_000i64
    );

    let id = OfferId::new(inverse["id"]["value"].as_str().unwrap());
    let accept = json!({"inverse_offer_ids": [id], "filters": {"refuse_seconds": 3600}});
    fw.call(Command::AcceptInverseOffers(accept)).await;
    let status = operator_ok(&c, json!({"type": "GET_MAINTENANCE_STATUS"})).await;
    let machine = &status["get_maintenance_status"]["status"]["draining_machines"][0];
    assert_eq!(machine["id"], json!({"hostname": "node1"}));
    assert_eq!(machine["statuses"][0]["status"], "ACCEPT", "{status}");
    assert_eq!(
        machine["statuses"][0]["framework_id"]["value"],
        fw.id().as_str()
    );

    let (status, text) = post(&c, "/machine/down", &json!([{"hostname": "node1"}])).await;
    assert_eq!(status, 200, "{text}");
    let lost = fw.state("t1", TaskState::Lost).await;
    assert_eq!(lost.reason, Some(Reason::AgentRemoved));
    let gone = c.agents[0]
        .proc
        .signal_and_wait(nix::sys::signal::Signal::SIGCONT);
    assert_eq!(gone, Some(2), "the agent exits when its machine goes DOWN");
    let status = c.get("/maintenance/status").await.unwrap();
    assert_eq!(status, json!({"down_machines": [{"hostname": "node1"}]}));

    let up = json!({"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [{"hostname": "node1"}]}});
    operator_ok(&c, up).await;
    c.agents[0].restart();
    assert_eq!(c.wait_agent_registered(0).await, a1.as_str());
    let offer = offer_on(&mut fw, &a1).await;
    assert!(offer.get("unavailability").is_none(), "{offer}");
    assert_eq!(c.get("/maintenance/schedule").await.unwrap(), json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn draining_an_agent_kills_its_tasks_then_it_is_drained() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("drain", 60.0, false, false)).await;
    let (cmd, marker) = sleeper();
    let aid = fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    wait_alive(&marker).await;

    let drain = json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": aid.as_str()},
        "max_grace_period": {"seconds": 1}}});
    operator_ok(&c, drain).await;
    let killed = fw.state("t1", TaskState::Killed).await;
    assert_eq!(killed.reason, Some(Reason::AgentDraining));
    wait_gone(&marker).await;
    let entry = wait_until(LONG, "the agent to be DRAINED", async || {
        let e = agent_entry(&c, &aid).await;
        (e["drain_info"]["state"] == "DRAINED").then_some(e)
    })
    .await;
    assert_eq!(entry["deactivated"], true);
    assert_eq!(
        entry["drain_info"]["config"]["max_grace_period"]["nanoseconds"],
        1_000_000_000i64
    );
    let state = c.get("/master/state").await.unwrap();
    assert_eq!(state["slaves"][0]["drain_info"]["state"], "DRAINED");

    let reactivate = json!({"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": aid.as_str()}}});
    operator_ok(&c, reactivate).await;
    offer_on(&mut fw, &aid).await;
    assert_eq!(agent_entry(&c, &aid).await["deactivated"], false);
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivation_rescinds_offers_until_reactivation_and_offers_carry_the_domain() {
    let domain = r#"{"fault_domain":{"region":{"name":"r1"},"zone":{"name":"z1"}}}"#;
    let c = Cluster::start_with(
        BIN.as_ref(),
        1,
        &["--domain", domain],
        &["--domain", domain],
    )
    .await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("deact", 60.0, false, false)).await;
    let offer = offer_on(&mut fw, &aid).await;
    assert_eq!(offer["domain"]["fault_domain"]["zone"]["name"], "z1");
    let state = c.get("/master/state").await.unwrap();
    assert_eq!(
        state["slaves"][0]["domain"]["fault_domain"]["region"]["name"],
        "r1"
    );

    let deactivate = json!({"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": aid.as_str()}}});
    operator_ok(&c, deactivate).await;
    let offer_id = offer["id"]["value"].as_str().unwrap().to_string();
    fw.expect("the offer to be rescinded", |e| match e {
        Event::Rescind(r) if r.offer_id.as_str() == offer_id => Some(()),
        _ => None,
    })
    .await;
    let entry = agent_entry(&c, &aid).await;
    assert_eq!(
        (entry["deactivated"].clone(), entry["active"].clone()),
        (json!(true), json!(false))
    );

    let reactivate = json!({"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": aid.as_str()}}});
    operator_ok(&c, reactivate).await;
    offer_on(&mut fw, &aid).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_offer_is_rescinded_after_the_offer_timeout() {
    let c = Cluster::start_with(BIN.as_ref(), 1, &["--offer_timeout", "1"], &[]).await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("slow", 60.0, false, false)).await;
    let offer = offer_on(&mut fw, &aid).await;
    let offer_id = offer["id"]["value"].as_str().unwrap().to_string();
    fw.expect("the held offer to be rescinded", |e| match e {
        Event::Rescind(r) if r.offer_id.as_str() == offer_id => Some(()),
        _ => None,
    })
    .await;
    let again = offer_on(&mut fw, &aid).await;
    assert_ne!(again["id"]["value"], offer_id.as_str());
    let flags = c.get("/master/flags").await.unwrap();
    assert_eq!(flags["flags"]["offer_timeout"], "1secs");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_maintenance_calls_are_400_and_the_schedule_survives_a_restart() {
    let mut c = Cluster::start(BIN.as_ref(), 1).await;
    let aid = c.wait_agent_registered(0).await;
    let cases = [
        (
            "/machine/down",
            json!([{"hostname": "nowhere"}]),
            r#"Machine '{"hostname":"nowhere"}' is not part of a maintenance schedule"#,
        ),
        ("/machine/up", json!([]), "List of machines is empty"),
        (
            "/machine/up",
            json!({"hostname": "x"}),
            "Expecting a JSON array",
        ),
        (
            "/maintenance/schedule",
            json!({"windows": [{"machine_ids": [], "unavailability": {"start": {"nanoseconds": 0}}}]}),
            "List of machines in the maintenance window is empty",
        ),
        (
            "/maintenance/schedule",
            json!({"windows": [{"machine_ids": [{"ip": "300.1.1.1"}], "unavailability": {"start": {"nanoseconds": 0}}}]}),
            "Failed to parse IP address",
        ),
        (
            "/api/v1",
            json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "nope"}}}),
            "Unknown agent",
        ),
        (
            "/api/v1",
            json!({"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": aid}}}),
            "Agent is not deactivated",
        ),
        (
            "/api/v1",
            json!({"type": "START_MAINTENANCE"}),
            "Expecting 'start_maintenance' to be present",
        ),
        (
            "/api/v1",
            json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": aid}, "max_grace_period": "soon"}}),
            "max_grace_period",
        ),
    ];
    for (path, body, message) in cases {
        let (status, text) = post(&c, path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {text}");
        assert!(text.contains(message), "{path} {body}: {text}");
    }
    let update = json!({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": schedule("node9")}});
    operator_ok(&c, update).await;
    let deactivate =
        json!({"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": aid}}});
    operator_ok(&c, deactivate).await;

    c.master.restart();
    let got = wait_until(LONG, "the restarted master", async || {
        let v = c.get("/maintenance/schedule").await.ok()?;
        Some(v)
    })
    .await;
    assert_eq!(got, schedule("node9"));
    let v = operator_ok(&c, json!({"type": "GET_MAINTENANCE_SCHEDULE"})).await;
    assert_eq!(v["get_maintenance_schedule"]["schedule"], schedule("node9"));
    let entry = wait_until(LONG, "the agent to re-register", async || {
        let e = agent_entry(&c, &AgentId::new(aid.as_str())).await;
        (!e.is_null()).then_some(e)
    })
    .await;
    assert_eq!(entry["deactivated"], true, "{entry}");
}
