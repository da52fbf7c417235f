//! ACCEPT transcripts: a valid LAUNCH, and every validation error with Mesos' message,
//! state and reason (mesos-research.md §7). None of them is an HTTP error.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::agent_link::ToAgent;
use strata_api::scheduler::{Command, Operation};
use strata_api::{
    AgentId, FrameworkId, Offer, OfferId, Reason, Source, TaskInfo, TaskState, TaskStatus,
};
use strata_master_core::Reply;

/// One framework (`caps`), one agent, one outstanding offer.
fn setup(caps: &[&str]) -> (Harness, FrameworkId, AgentId, Offer) {
    let mut h = Harness::new();
    let fid = h.subscribe(with_caps(fw_info("fw"), caps));
    let aid = h.add_agent("a1", AGENT_RES);
    h.allocate();
    let offer = h.offers(&fid).pop().unwrap();
    (h, fid, aid, offer)
}

/// The one UPDATE of the last step, checked to be master-made (no uuid, SOURCE_MASTER).
fn master_update(h: &Harness, fid: &FrameworkId) -> TaskStatus {
    let u = h.update(fid);
    assert_eq!(u.source, Some(Source::Master));
    assert!(u.uuid.is_none(), "master-made updates carry no uuid: {u:?}");
    assert!(u.timestamp.is_some());
    u
}

/// Launches `t` on the offer and expects TASK_ERROR / REASON_TASK_INVALID with `message`;
/// nothing is recorded and nothing reaches the agent.
fn expect_task_error(t: TaskInfo, message: &str) {
    let (mut h, fid, aid, offer) = setup(&[]);
    let tid = t.task_id.clone();
    assert_eq!(h.launch(&fid, &offer, vec![t]), Reply::Accepted);
    let u = master_update(&h, &fid);
    assert_eq!(
        (u.task_id, u.state, u.reason),
        (tid, TaskState::Error, Some(Reason::TaskInvalid))
    );
    assert_eq!(u.message.as_deref(), Some(message));
    assert!(h.agent_msgs(&aid).is_empty());
    assert!(h.fw_state(&fid)["tasks"].as_array().unwrap().is_empty());
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 0.0);
}

#[test]
fn valid_launch_sends_run_task_and_records_staging_task() {
    let (mut h, fid, aid, offer) = setup(&[]);
    assert_eq!(
        h.launch(
            &fid,
            &offer,
            vec![task("t1", &aid, "cpus:1;mem:128;ports:[31000-31000]")]
        ),
        Reply::Accepted
    );
    assert!(
        h.events(&fid).is_empty(),
        "no update for a good launch: {:#?}",
        h.out
    );
    let msgs = h.agent_msgs(&aid);
    assert_eq!(msgs.len(), 1);
    let ToAgent::RunTask(run) = &msgs[0] else {
        panic!("{msgs:#?}")
    };
    assert_eq!(run.framework.id.as_ref(), Some(&fid));
    assert_eq!(run.framework.name, "fw");
    assert!(run.executor.is_none());
    assert_eq!(run.task.task_id.as_str(), "t1");
    assert_eq!(run.task.agent_id.as_ref(), Some(&aid));
    // The master copies the offer's allocation role into the task's resources.
    assert!(run.task.resources.iter().all(|r| r
        .allocation_info
        .as_ref()
        .and_then(|a| a.role.as_deref())
        == Some("*")));
    assert_eq!(scalar(&run.task.resources, "cpus"), 1.0);

    assert_eq!(
        h.task_states(&fid, "tasks"),
        [("t1".to_string(), "TASK_STAGING".to_string())]
    );
    let t = &h.fw_state(&fid)["tasks"][0];
    assert_eq!(t["slave_id"], aid.as_str());
    assert_eq!(
        t["statuses"],
        serde_json::json!([]),
        "no statuses before the first update"
    );
    assert_eq!(t["resources"]["cpus"], 1.0);
    assert_eq!(t["resources"]["ports"], "[31000-31000]");
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 1.0);
    assert_eq!(
        h.fw_state(&fid)["offers"].as_array().unwrap().len(),
        0,
        "the offer is used up"
    );
    assert_eq!(h.metric("master/tasks_staging"), 1.0);
}

#[test]
fn several_tasks_in_one_launch_share_the_offer() {
    let (mut h, fid, aid, offer) = setup(&[]);
    let tasks = vec![
        task("t1", &aid, "cpus:2;mem:1024"),
        task("t2", &aid, "cpus:2;mem:1024"),
        task("t3", &aid, "cpus:1;mem:1"),
    ];
    assert_eq!(h.launch(&fid, &offer, tasks), Reply::Accepted);
    assert_eq!(h.agent_kinds(&aid), ["RUN_TASK", "RUN_TASK"]);
    let u = master_update(&h, &fid);
    assert_eq!((u.task_id.as_str(), u.state), ("t3", TaskState::Error));
    let msg = u.message.unwrap();
    assert!(
        msg.starts_with("Total resources ")
            && msg.contains(" required by task and its executor is more than available "),
        "{msg}"
    );
}

#[test]
fn unknown_offer_gives_task_lost_for_plain_framework() {
    let (mut h, fid, aid, _offer) = setup(&[]);
    let bogus = Offer {
        id: OfferId::new("nope"),
        ..h.seen_offers[0].clone()
    };
    assert_eq!(
        h.launch(&fid, &bogus, vec![task("t1", &aid, "cpus:1;mem:128")]),
        Reply::Accepted
    );
    let u = master_update(&h, &fid);
    assert_eq!(u.state, TaskState::Lost);
    assert_eq!(u.reason, Some(Reason::InvalidOffers));
    assert_eq!(
        u.message.as_deref(),
        Some("Task launched with invalid offers: Offer nope is no longer valid")
    );
    assert_eq!(u.agent_id.as_ref(), Some(&aid));
    assert!(h.agent_msgs(&aid).is_empty());
    assert!(h.fw_state(&fid)["tasks"].as_array().unwrap().is_empty());
}

#[test]
fn unknown_offer_gives_task_dropped_for_partition_aware_framework() {
    let (mut h, fid, aid, _offer) = setup(&["PARTITION_AWARE"]);
    let bogus = Offer {
        id: OfferId::new("nope"),
        ..h.seen_offers[0].clone()
    };
    h.launch(
        &fid,
        &bogus,
        vec![
            task("t1", &aid, "cpus:1;mem:128"),
            task("t2", &aid, "cpus:1;mem:128"),
        ],
    );
    let updates = h.updates(&fid);
    assert_eq!(updates.len(), 2, "one update per task");
    for u in updates {
        assert_eq!(u.state, TaskState::Dropped);
        assert_eq!(u.reason, Some(Reason::InvalidOffers));
        assert_eq!(
            u.message.as_deref(),
            Some("Task launched with invalid offers: Offer nope is no longer valid")
        );
    }
}

#[test]
fn invalid_offer_list_discards_the_valid_offers_without_filter() {
    let (mut h, fid, aid, offer) = setup(&[]);
    let r = h.accept(
        &fid,
        vec![offer.id.clone(), OfferId::new("nope")],
        vec![launch_op(vec![task("t1", &aid, "cpus:1;mem:128")])],
        refuse(1000.0),
    );
    assert_eq!(r, Reply::Accepted);
    assert_eq!(master_update(&h, &fid).state, TaskState::Lost);
    assert!(
        h.fw_state(&fid)["offers"].as_array().unwrap().is_empty(),
        "the valid offer was discarded"
    );
    // Discarded, not declined: offered again at the next allocation despite refuse_seconds.
    h.allocate();
    let again = h.offers(&fid);
    assert_eq!(again.len(), 1);
    assert_eq!(scalar(&again[0].resources, "cpus"), 4.0);
}

#[test]
fn offer_list_errors_have_mesos_messages_in_validator_order() {
    let (mut h, fid, aid, offer) = setup(&[]);
    let launch = |aid: &AgentId| vec![launch_op(vec![task("t1", aid, "cpus:1;mem:128")])];

    h.accept(&fid, vec![], launch(&aid), None);
    assert_eq!(
        master_update(&h, &fid).message.as_deref(),
        Some("Task launched with invalid offers: No offers specified")
    );

    // Duplicates are checked before existence.
    h.accept(
        &fid,
        vec![OfferId::new("nope"), OfferId::new("nope")],
        launch(&aid),
        None,
    );
    assert_eq!(
        master_update(&h, &fid).message.as_deref(),
        Some("Task launched with invalid offers: Duplicate offer nope in offer list")
    );

    // Another framework's offer.
    let other = h.subscribe(fw_info("other"));
    let aid2 = h.add_agent("a2", AGENT_RES);
    h.allocate();
    let foreign = h.offers(&other).pop().unwrap();
    assert_eq!(foreign.agent_id, aid2);
    h.accept(&fid, vec![foreign.id.clone()], launch(&aid2), None);
    assert_eq!(
        master_update(&h, &fid).message,
        Some(format!("Task launched with invalid offers: Offer {} has invalid framework {other} while framework {fid} is expected", foreign.id))
    );
    assert_eq!(
        h.fw_state(&other)["offers"].as_array().unwrap().len(),
        1,
        "another framework's offer is left alone"
    );

    // Existence is checked for every offer before ownership: a foreign offer first and a
    // stale one second still report the stale one.
    h.accept(
        &fid,
        vec![foreign.id.clone(), OfferId::new("gone")],
        launch(&aid2),
        None,
    );
    assert_eq!(
        master_update(&h, &fid).message.as_deref(),
        Some("Task launched with invalid offers: Offer gone is no longer valid")
    );

    // Offers from two agents.
    let _ = offer;
    h.call(&fid, Command::Revive(Default::default()));
    h.call(&other, Command::Suppress(Default::default()));
    h.call(
        &other,
        Command::Decline(strata_api::scheduler::Decline {
            offer_ids: vec![foreign.id.clone()],
            filters: refuse(1000.0),
        }),
    );
    h.allocate();
    let mut mine = h.offers(&fid);
    mine.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let held = h.outstanding_offer(&fid, &aid).unwrap();
    let on2 = h.outstanding_offer(&fid, &aid2).unwrap();
    h.accept(
        &fid,
        vec![held.id.clone(), on2.id.clone()],
        launch(&aid),
        None,
    );
    assert_eq!(
        master_update(&h, &fid).message,
        Some(format!(
            "Task launched with invalid offers: Aggregated offers must belong to one single agent. Offer {} uses agent {aid2} and agent {aid}",
            on2.id
        ))
    );
}

#[test]
fn offers_of_two_roles_cannot_be_aggregated() {
    let mut h = Harness::new();
    let fid = h.subscribe(multi_role("multi", &["a", "b"]));
    let aid = h.add_agent("a1", "cpus:4;mem:4096;cpus(b):2;mem(b):512");
    h.allocate();
    let offers = h.offers(&fid);
    assert_eq!(offers.len(), 2, "one offer per role: {offers:#?}");
    let role = |o: &Offer| o.allocation_info.as_ref().unwrap().role.clone().unwrap();
    h.accept(
        &fid,
        vec![offers[0].id.clone(), offers[1].id.clone()],
        vec![launch_op(vec![task("t1", &aid, "cpus:1;mem:128")])],
        None,
    );
    // Unbalanced quotes exactly as Mesos prints them.
    assert_eq!(
        master_update(&h, &fid).message,
        Some(format!(
            "Task launched with invalid offers: Aggregated offers must be allocated to the same role. Offer {} uses role '{} but another is using role '{}",
            offers[1].id,
            role(&offers[1]),
            role(&offers[0])
        ))
    );
}

#[test]
fn duplicate_task_id_is_task_error() {
    let (mut h, fid, aid, offer) = setup(&[]);
    h.launch(
        &fid,
        &offer,
        vec![
            task("t1", &aid, "cpus:1;mem:128"),
            task("t1", &aid, "cpus:1;mem:128"),
        ],
    );
    assert_eq!(h.agent_kinds(&aid), ["RUN_TASK"], "the first t1 launches");
    let u = master_update(&h, &fid);
    assert_eq!(
        (u.state, u.reason),
        (TaskState::Error, Some(Reason::TaskInvalid))
    );
    assert_eq!(u.message.as_deref(), Some("Task has duplicate ID: t1"));
    assert_eq!(
        h.task_states(&fid, "tasks"),
        [("t1".to_string(), "TASK_STAGING".to_string())]
    );
}

#[test]
fn insufficient_resources_is_task_error() {
    let aid = AgentId::new(format!("{MASTER_ID}-S0"));
    expect_task_error(
        task("big", &aid, "cpus:8;mem:128"),
        "Total resources cpus(allocated: *):8; mem(allocated: *):128 required by task and its executor is more than available \
         cpus(allocated: *):4; mem(allocated: *):4096; ports(allocated: *):[31000-32000]",
    );
}

#[test]
fn missing_command_and_executor_is_task_error() {
    let aid = AgentId::new(format!("{MASTER_ID}-S0"));
    let mut t = task("t1", &aid, "cpus:1;mem:128");
    t.command = None;
    expect_task_error(
        t,
        "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
    );
    let mut t = task("t1", &aid, "cpus:1;mem:128");
    t.executor = Some(custom_executor("e1", "cpus:0.1;mem:32"));
    expect_task_error(
        t,
        "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
    );
}

#[test]
fn bad_task_id_is_task_error() {
    let aid = AgentId::new(format!("{MASTER_ID}-S0"));
    expect_task_error(
        task("", &aid, "cpus:1;mem:128"),
        "Task has an invalid TaskID: ID must not be empty",
    );
}

#[test]
fn wrong_agent_is_task_error() {
    let other = AgentId::new("some-other-agent");
    let aid = AgentId::new(format!("{MASTER_ID}-S0"));
    expect_task_error(
        task("t1", &other, "cpus:1;mem:128"),
        &format!("Task uses invalid agent some-other-agent while agent {aid} is expected"),
    );
}

#[test]
fn task_without_resources_is_task_error() {
    let aid = AgentId::new(format!("{MASTER_ID}-S0"));
    let mut t = task("t1", &aid, "cpus:1");
    t.resources.clear();
    expect_task_error(t, "Task uses no resources");
}

#[test]
fn operation_id_on_launch_is_task_error() {
    let (mut h, fid, aid, offer) = setup(&[]);
    let mut op: Operation = launch_op(vec![task("t1", &aid, "cpus:1;mem:128")]);
    op.id = Some(serde_json::json!({"value": "op1"}));
    h.accept(&fid, vec![offer.id], vec![op], None);
    let u = master_update(&h, &fid);
    assert_eq!(
        (u.state, u.reason),
        (TaskState::Error, Some(Reason::TaskInvalid))
    );
    assert_eq!(
        u.message.as_deref(),
        Some("The `id` field cannot be set on LAUNCH operations")
    );
    assert!(h.agent_msgs(&aid).is_empty());
}

#[test]
fn custom_executor_is_charged_once_and_listed_in_later_offers() {
    let (mut h, fid, aid, offer) = setup(&[]);
    let mut t = task("t1", &aid, "cpus:1;mem:128");
    t.command = None;
    t.executor = Some(custom_executor("ex", "cpus:0.5;mem:64"));
    h.accept(&fid, vec![offer.id], vec![launch_op(vec![t])], refuse(0.0));
    let msgs = h.agent_msgs(&aid);
    let ToAgent::RunTask(run) = &msgs[0] else {
        panic!("{msgs:#?}")
    };
    assert_eq!(
        run.executor.as_ref().map(|e| e.executor_id.as_str()),
        Some("ex")
    );
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 1.5);
    h.allocate();
    let o = h.offers(&fid).pop().unwrap();
    assert_eq!(
        o.executor_ids
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>(),
        ["ex"]
    );
    assert_eq!(scalar(&o.resources, "cpus"), 2.5);
    // A second task on the same executor does not pay for it again.
    let mut t2 = task("t2", &aid, "cpus:1;mem:128");
    t2.command = None;
    t2.executor = Some(custom_executor("ex", "cpus:0.5;mem:64"));
    h.launch(&fid, &o, vec![t2]);
    assert_eq!(h.agent_kinds(&aid), ["RUN_TASK"], "{:#?}", h.out);
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 2.5);
}

#[test]
fn invalid_health_check_is_task_error() {
    let aid = AgentId::new(format!("{MASTER_ID}-S0"));
    let mut t = task("t1", &aid, "cpus:1");
    t.health_check = Some(serde_json::from_str("{}").unwrap());
    let expected = format!(
        "Task uses invalid health check: {}",
        t.health_check.as_ref().unwrap().validate().unwrap_err()
    );
    assert!(expected.contains("type"), "{expected}");
    expect_task_error(t, &expected);
}
