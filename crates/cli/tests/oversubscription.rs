//! Oversubscription with real processes: an agent lending a fixed amount read from a
//! file offers revocable resources to REVOCABLE_RESOURCES frameworks only, a task runs on
//! them, and shrinking the file makes the agent's QoS correction preempt the task; the
//! usage-based estimator lends the idle cpus of a sleeping task and evicts its borrower
//! when the owner starts using them; priority preemption; lent quota headroom taken back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use strata_api::scheduler::{Accept, Command, Event, Launch, Operation};
use strata_api::{Capability, CommandInfo, Filters, Offer, Reason, Source, TaskId, TaskInfo};
use strata_api::{FrameworkInfo, TaskState};
use strata_resources::{Resources, WireFormat};
use strata_testkit::framework::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

fn capable_info(name: &str) -> FrameworkInfo {
    let mut info = framework_info(name, 60.0, false, false);
    info.capabilities.push(Capability {
        kind: "REVOCABLE_RESOURCES".into(),
    });
    info
}

fn revocable(flag: &str) -> Resources {
    Resources::parse_flag(flag, "*")
        .unwrap()
        .map(|r| r.revocable = true)
}

fn offered_revocable(o: &Offer) -> Resources {
    Resources::from_wire(&o.resources).unwrap().revocable()
}

/// Waits for an offer holding `need` among its revocable resources and takes it.
async fn revocable_offer(fw: &mut Fw, need: &Resources) -> Offer {
    loop {
        let fit =
            fw.s.session
                .offers()
                .find(|o| offered_revocable(o).contains(need))
                .map(|o| o.id.clone());
        if let Some(id) = fit {
            return fw.s.session.take_offer(&id).expect("outstanding");
        }
        let is_offers = |e: &Event| matches!(e, Event::Offers(_)).then_some(());
        fw.expect("an offer with revocable resources", is_offers)
            .await;
    }
}

async fn launch_on(fw: &Fw, offer: Offer, task: &str, cmd: &str, res: &Resources) {
    let info = TaskInfo::command(
        task,
        TaskId::new(task),
        offer.agent_id.clone(),
        res.to_wire(WireFormat::PreRefinement),
        CommandInfo::shell(cmd),
    );
    let op = Operation {
        kind: "LAUNCH".into(),
        launch: Some(Launch {
            task_infos: vec![info],
        }),
        ..Default::default()
    };
    let accept = Accept {
        offer_ids: vec![offer.id],
        operations: vec![op],
        filters: Some(Filters {
            refuse_seconds: Some(0.0),
        }),
    };
    fw.call(Command::Accept(accept)).await;
}

/// Offers the framework got until the master answers a reconciliation of `marker`.
async fn offers_until_marker(fw: &mut Fw, marker: &str) -> Vec<Offer> {
    fw.reconcile(marker, None).await;
    let mut offers = Vec::new();
    fw.expect(&format!("the answer for {marker}"), |e| match e {
        Event::Update(u) if u.status.task_id.as_str() == marker => Some(()),
        Event::Offers(o) => {
            offers.extend(o.offers.iter().cloned());
            None
        }
        _ => None,
    })
    .await;
    offers
}

async fn metric(c: &Cluster, name: &str) -> Option<f64> {
    c.get("/metrics/snapshot").await.ok()?[name].as_f64()
}

async fn wait_metric(c: &Cluster, name: &str, want: f64) {
    wait_until(LONG, &format!("{name} = {want}"), async || {
        metric(c, name)
            .await
            .filter(|v| (v - want).abs() < 1e-6)
            .map(|_| ())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_estimate_lends_revocable_cpus_and_a_shrinking_one_preempts() {
    let dir = tempfile::tempdir().unwrap();
    let lend = dir.path().join("lend");
    std::fs::write(&lend, "cpus:2;mem:256").unwrap();
    let source = format!("file://{}", lend.display());
    let agent_flags = [
        "--oversubscribed_resources",
        &source,
        "--oversubscribed_resources_interval",
        "0.3",
    ];
    let c = Cluster::start_with(BIN.as_ref(), 1, &[], &agent_flags).await;
    let mut plain =
        Fw::subscribe(&c.master.addr, framework_info("plain", 60.0, false, false)).await;
    let mut fw = Fw::subscribe(&c.master.addr, capable_info("capable")).await;

    let need = revocable("cpus:1;mem:32");
    let offer = revocable_offer(&mut fw, &need).await;
    let (cmd, marker) = sleeper();
    launch_on(&fw, offer, "rev1", &cmd, &need).await;
    fw.state("rev1", TaskState::Running).await;
    wait_metric(&c, "master/cpus_revocable_total", 2.0).await;
    wait_metric(&c, "master/cpus_revocable_used", 1.0).await;
    let state = c.get("/master/state").await.unwrap();
    assert_eq!(state["slaves"][0]["resources"]["cpus_revocable"], 2.0);
    assert_eq!(state["slaves"][0]["used_resources"]["cpus_revocable"], 1.0);

    // The operator takes the spare capacity back: the revocable task is preempted.
    std::fs::write(&lend, "cpus:0.5;mem:256").unwrap();
    let status = fw.terminal("rev1").await;
    assert_eq!(status.state, TaskState::Killed, "{status:?}");
    assert_eq!(
        status.reason,
        Some(Reason::ContainerPreempted),
        "{status:?}"
    );
    assert_eq!(status.source, Some(Source::Agent), "{status:?}");
    let message = status.message.unwrap_or_default();
    assert!(message.contains("preempted by QoS correction"), "{message}");
    wait_gone(&marker).await;
    wait_metric(&c, "master/cpus_revocable_total", 0.5).await;

    let seen = offers_until_marker(&mut plain, "end-of-test").await;
    assert!(
        seen.iter().all(|o| offered_revocable(o).is_empty()),
        "a framework without REVOCABLE_RESOURCES got revocable resources: {seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_usage_estimator_lends_the_idle_cpus_of_a_sleeping_task() {
    if !strata_testkit::is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the cgroups tests as root"
        );
        eprintln!("SKIPPED: measuring container usage needs cgroups (root)");
        return;
    }
    let agent_flags = [
        "--oversubscription",
        "usage",
        "--oversubscribed_resources_interval",
        "0.3",
    ];
    let c = Cluster::start_with(BIN.as_ref(), 1, &[], &agent_flags).await;
    assert_eq!(metric(&c, "master/cpus_revocable_total").await, Some(0.0));
    let mut owner =
        Fw::subscribe(&c.master.addr, framework_info("owner", 60.0, false, false)).await;
    let (cmd, _marker) = sleeper();
    owner
        .launch_with("owner1", &cmd, |t| {
            t.resources = Resources::parse_flag("cpus:1;mem:128", "*")
                .unwrap()
                .to_wire(WireFormat::PreRefinement);
        })
        .await;
    owner.state("owner1", TaskState::Running).await;
    // 1.1 cpus allocated (with the executor's 0.1), nearly none used: 0.9 lent.
    let lent = wait_until(
        LONG,
        "the sleeping task's idle cpus to be lent",
        async || {
            let state = c.get("/master/state").await.ok()?;
            let cpus = state["slaves"][0]["resources"]["cpus_revocable"].as_f64()?;
            (cpus >= 0.8).then_some(cpus)
        },
    )
    .await;
    assert!(lent <= 1.0, "{lent}");
    let mut fw = Fw::subscribe(&c.master.addr, capable_info("borrower")).await;
    let offer = revocable_offer(&mut fw, &revocable("cpus:0.8")).await;
    assert!(offered_revocable(&offer).cpus().as_f64() >= 0.8);
}

/// Priority preemption with real processes: a low-priority framework runs a task on the
/// agent's 2 revocable cpus; a priority-10 framework asks (REQUEST) for 1 revocable cpu.
/// The low one is warned with an inverse offer, its task is evicted after the grace
/// period (REASON_CONTAINER_PREEMPTED), and the high one is offered the revocable cpus.
#[tokio::test(flavor = "multi_thread")]
async fn higher_priority_demand_preempts_lower_priority_revocable_work() {
    let agent_flags = [
        "--oversubscribed_resources",
        "cpus:2;mem:64",
        "--oversubscribed_resources_interval",
        "0.3",
    ];
    let master_flags = ["--preemption_grace_period", "1"];
    let c = Cluster::start_with(BIN.as_ref(), 1, &master_flags, &agent_flags).await;
    let mut low = Fw::subscribe(&c.master.addr, capable_info("low")).await;
    let lent = revocable("cpus:2;mem:32");
    let offer = revocable_offer(&mut low, &lent).await;
    let (cmd, marker) = sleeper();
    launch_on(&low, offer, "victim", &cmd, &lent).await;
    low.state("victim", TaskState::Running).await;
    wait_alive(&marker).await;

    let mut info = capable_info("high");
    info.labels = Some(strata_api::Labels {
        labels: vec![strata_api::Label {
            key: "strata.priority".into(),
            value: Some("10".into()),
        }],
    });
    let mut high = Fw::subscribe(&c.master.addr, info).await;
    let want = revocable("cpus:1").to_wire(WireFormat::PostRefinement);
    let req = serde_json::json!({"requests": [{"resources": want}]});
    high.call(Command::Request(req)).await;

    let warned = low
        .expect("an inverse offer", |e| match e {
            Event::InverseOffers(v) => Some(v.clone()),
            _ => None,
        })
        .await;
    assert_eq!(warned["inverse_offers"][0]["resources"][0]["name"], "cpus");
    let s = low.terminal("victim").await;
    assert_eq!(s.state, TaskState::Killed, "{s:?}");
    assert_eq!(s.reason, Some(Reason::ContainerPreempted), "{s:?}");
    assert_eq!(s.source, Some(Source::Agent), "{s:?}");
    assert!(
        s.message
            .as_deref()
            .unwrap_or("")
            .contains("higher-priority"),
        "{s:?}"
    );
    wait_gone(&marker).await;
    let got = revocable_offer(&mut high, &revocable("cpus:1")).await;
    assert!(offered_revocable(&got).cpus().as_f64() >= 1.0);
}

/// Capacity held back for a quota guarantee nobody can use yet is lent as revocable
/// cpus; when a framework of the guaranteed role subscribes, the borrower is warned, its
/// task is evicted after the grace period, and the guaranteed role gets the cpus.
#[tokio::test(flavor = "multi_thread")]
async fn lent_guarantee_capacity_is_taken_back_for_the_guaranteed_role() {
    let master_flags = ["--preemption_grace_period", "1"];
    let c = Cluster::start_with(BIN.as_ref(), 1, &master_flags, &[]).await;
    let quota = serde_json::json!({"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [
        {"role": "ops", "guarantees": {"cpus": {"value": 3}}}]}});
    let url = format!("http://{}/api/v1", c.master.addr);
    let r = c.client.post_json(&url, &[], &quota).await.unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let mut info = capable_info("borrower");
    info.role = Some("dev".into());
    let mut dev = Fw::subscribe(&c.master.addr, info).await;
    // The lent cpus come in their own offer (lent after the fair pass); the memory for
    // the task in the other offer of the same agent: both are accepted together.
    let lent = revocable("cpus:3");
    let with_lent = revocable_offer(&mut dev, &lent).await;
    let mem = Resources::parse_flag("mem:32", "*").unwrap();
    let with_mem = loop {
        let fit = dev
            .s
            .session
            .offers()
            .find(|o| Resources::from_wire(&o.resources).unwrap().contains(&mem))
            .map(|o| o.id.clone());
        if let Some(id) = fit {
            break dev.s.session.take_offer(&id).expect("outstanding");
        }
        let is_offers = |e: &Event| matches!(e, Event::Offers(_)).then_some(());
        dev.expect("an offer with memory", is_offers).await;
    };
    let (cmd, marker) = sleeper();
    let res = lent.clone() + mem;
    let info = TaskInfo::command(
        "borrower-task",
        TaskId::new("borrower-task"),
        with_lent.agent_id.clone(),
        res.to_wire(WireFormat::PreRefinement),
        CommandInfo::shell(&cmd),
    );
    let op = Operation {
        kind: "LAUNCH".into(),
        launch: Some(Launch {
            task_infos: vec![info],
        }),
        ..Default::default()
    };
    let accept = Accept {
        offer_ids: vec![with_lent.id, with_mem.id],
        operations: vec![op],
        filters: Some(Filters {
            refuse_seconds: Some(0.0),
        }),
    };
    dev.call(Command::Accept(accept)).await;
    dev.state("borrower-task", TaskState::Running).await;
    wait_alive(&marker).await;

    let mut owner = framework_info("owner", 60.0, false, false);
    owner.role = Some("ops".into());
    let ops = Fw::subscribe(&c.master.addr, owner).await;
    dev.expect("an inverse offer", |e| {
        matches!(e, Event::InverseOffers(_)).then_some(())
    })
    .await;
    let s = dev.terminal("borrower-task").await;
    assert_eq!(s.reason, Some(Reason::ContainerPreempted), "{s:?}");
    assert!(
        s.message
            .as_deref()
            .unwrap_or("")
            .contains("quota guarantee"),
        "{s:?}"
    );
    wait_gone(&marker).await;
    // ops now holds (in offers) the 3 guaranteed cpus, none of them lent any more.
    wait_metric(
        &c,
        "allocator/mesos/quota/roles/ops/resources/cpus/consumed",
        3.0,
    )
    .await;
    wait_metric(&c, "allocator/mesos/roles/ops/resources/cpus/offered", 3.0).await;
    drop(ops);
}

/// The usage estimator's QoS correction: a borrower runs on the idle cpus of a sleeping
/// owner task; when the owner starts burning its cpu, the estimate shrinks and the agent
/// evicts the borrower (REASON_CONTAINER_PREEMPTED). Needs cgroups (root); CI runs it.
#[tokio::test(flavor = "multi_thread")]
async fn rising_owner_usage_evicts_revocable_work() {
    if !strata_testkit::is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the cgroups tests as root"
        );
        eprintln!("SKIPPED: measuring container usage needs cgroups (root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trigger = dir.path().join("burn");
    let agent_flags = [
        "--oversubscription",
        "usage",
        "--oversubscribed_resources_interval",
        "0.3",
    ];
    let c = Cluster::start_with(BIN.as_ref(), 1, &[], &agent_flags).await;
    let mut owner =
        Fw::subscribe(&c.master.addr, framework_info("owner", 60.0, false, false)).await;
    let burner = format!(
        "while [ ! -e {} ]; do sleep 0.1; done; while :; do :; done",
        trigger.display()
    );
    owner
        .launch_with("owner1", &burner, |t| {
            t.resources = Resources::parse_flag("cpus:1;mem:128", "*")
                .unwrap()
                .to_wire(WireFormat::PreRefinement);
        })
        .await;
    owner.state("owner1", TaskState::Running).await;
    let mut fw = Fw::subscribe(&c.master.addr, capable_info("borrower")).await;
    // Idle memory is lent too: the borrower runs entirely on revocable resources.
    let need = revocable("cpus:0.5;mem:32");
    let offer = revocable_offer(&mut fw, &need).await;
    let (cmd, marker) = sleeper();
    launch_on(&fw, offer, "borrower1", &cmd, &need).await;
    fw.state("borrower1", TaskState::Running).await;
    wait_alive(&marker).await;
    // Revocable work runs at low CPU priority: 0.6 cpus (with the executor's 0.1) get
    // cpu.shares 6, not 614 (cgroups v1, as on the CI machines).
    let v1 = std::path::Path::new("/sys/fs/cgroup/cpu/strata-test");
    if v1.exists() {
        let shares =
            |d: &std::path::Path| std::fs::read_to_string(d.join("cpu.shares")).unwrap_or_default();
        let found = wait_until(LONG, "a container with cpu.shares 6", async || {
            let roots = std::fs::read_dir(v1).ok()?;
            roots
                .flatten()
                .flat_map(|r| std::fs::read_dir(r.path()).into_iter().flatten().flatten())
                .find(|c| shares(&c.path()).trim() == "6")
                .map(|c| c.path())
        })
        .await;
        assert!(found.exists());
    }

    std::fs::write(&trigger, "").unwrap();
    let s = fw.terminal("borrower1").await;
    assert_eq!(s.reason, Some(Reason::ContainerPreempted), "{s:?}");
    assert!(
        s.message
            .as_deref()
            .unwrap_or("")
            .contains("QoS correction"),
        "{s:?}"
    );
    wait_gone(&marker).await;
    owner.kill("owner1").await;
}
