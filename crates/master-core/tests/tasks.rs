//! Task traffic transcripts: status updates and acknowledgements, KILL, RECONCILE.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strata_api::agent_link::{StatusUpdate, ToAgent, ToMaster};
use strata_api::scheduler::{Acknowledge, Command, Kill, Reconcile, ReconcileTask};
use strata_api::{AgentId, FrameworkId, KillPolicy, Reason, Source, TaskId, TaskState, TaskStatus};
use strata_master_core::Reply;

/// One framework with `caps`, one agent, task t1 launched (STAGING).
fn running(caps: &[&str]) -> (Harness, FrameworkId, AgentId) {
    let mut h = Harness::new();
    let fid = h.subscribe(with_caps(fw_info("fw"), caps));
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "t1", "cpus:1;mem:128");
    (h, fid, aid)
}

fn ack(h: &mut Harness, fid: &FrameworkId, aid: &AgentId, tid: &str, n: u8) -> Reply {
    h.call(
        fid,
        Command::Acknowledge(Acknowledge {
            agent_id: aid.clone(),
            task_id: TaskId::new(tid),
            uuid: uuid(n),
        }),
    )
}

fn reconcile(
    h: &mut Harness,
    fid: &FrameworkId,
    tasks: &[(&str, Option<&AgentId>)],
) -> Vec<TaskStatus> {
    let tasks = tasks
        .iter()
        .map(|(t, a)| ReconcileTask {
            task_id: TaskId::new(*t),
            agent_id: a.cloned(),
        })
        .collect();
    assert_eq!(
        h.call(fid, Command::Reconcile(Reconcile { tasks })),
        Reply::Accepted
    );
    h.updates(fid)
}

fn assert_reconciliation(s: &TaskStatus, state: TaskState, message: &str) {
    assert_eq!(s.state, state, "{s:?}");
    assert_eq!(s.message.as_deref(), Some(message));
    assert_eq!(s.reason, Some(Reason::Reconciliation));
    assert_eq!(s.source, Some(Source::Master));
    assert!(
        s.uuid.is_none(),
        "reconciliation replies carry no uuid: {s:?}"
    );
}

#[test]
fn status_update_is_forwarded_with_its_uuid_and_ack_is_relayed() {
    let (mut h, fid, aid) = running(&[]);
    h.advance(1.0);
    assert_eq!(
        h.status(&aid, &fid, "t1", TaskState::Running, Some(1)),
        Reply::Accepted
    );
    let u = h.update(&fid);
    assert_eq!(u.state, TaskState::Running);
    assert_eq!(u.uuid, Some(uuid(1)));
    assert_eq!(u.source, Some(Source::Executor));
    assert_eq!(u.agent_id.as_ref(), Some(&aid), "the master fills agent_id");
    assert_eq!(
        h.task_states(&fid, "tasks"),
        [("t1".to_string(), "TASK_RUNNING".to_string())]
    );
    let statuses = h.fw_state(&fid)["tasks"][0]["statuses"].clone();
    assert_eq!(
        statuses,
        serde_json::json!([{"state": "TASK_RUNNING", "timestamp": T0 + 1.0}])
    );

    assert_eq!(ack(&mut h, &fid, &aid, "t1", 1), Reply::Accepted);
    let msgs = h.agent_msgs(&aid);
    assert_eq!(msgs.len(), 1);
    let ToAgent::StatusAck(a) = &msgs[0] else {
        panic!("{msgs:#?}")
    };
    assert_eq!(
        (&a.framework_id, a.task_id.as_str(), a.uuid.as_str()),
        (&fid, "t1", uuid(1).as_str())
    );
    assert!(h.events(&fid).is_empty());
    assert_eq!(
        h.task_states(&fid, "tasks").len(),
        1,
        "a non-terminal ack keeps the task"
    );
}

#[test]
fn terminal_update_frees_resources_but_task_stays_until_acked() {
    let (mut h, fid, aid) = running(&[]);
    h.status(&aid, &fid, "t1", TaskState::Running, Some(1));
    ack(&mut h, &fid, &aid, "t1", 1);
    assert_eq!(h.slave_state(&aid)["used_resources"]["cpus"], 1.0);

    h.advance(10.0);
    h.status(&aid, &fid, "t1", TaskState::Finished, Some(2));
    assert_eq!(h.update(&fid).state, TaskState::Finished);
    assert_eq!(
        h.slave_state(&aid)["used_resources"]["cpus"],
        0.0,
        "freed on the terminal update"
    );
    assert!(h.m.wants_allocation());
    assert_eq!(
        h.task_states(&fid, "tasks"),
        [("t1".to_string(), "TASK_FINISHED".to_string())]
    );
    assert!(h.task_states(&fid, "completed_tasks").is_empty());
    assert_eq!(h.metric("master/tasks_finished"), 1.0);

    // Freed resources are offered again (the ACCEPT filter has expired).
    h.allocate();
    let offers = h.offers(&fid);
    assert_eq!(offers.len(), 1);
    assert_eq!(scalar(&offers[0].resources, "cpus"), 4.0);

    // A stale ack (the RUNNING uuid) is relayed but does not complete the task.
    ack(&mut h, &fid, &aid, "t1", 1);
    assert_eq!(h.agent_kinds(&aid), ["STATUS_ACK"]);
    assert_eq!(h.task_states(&fid, "tasks").len(), 1);

    ack(&mut h, &fid, &aid, "t1", 2);
    assert_eq!(h.agent_kinds(&aid), ["STATUS_ACK"]);
    assert!(h.task_states(&fid, "tasks").is_empty());
    assert_eq!(
        h.task_states(&fid, "completed_tasks"),
        [("t1".to_string(), "TASK_FINISHED".to_string())]
    );
    let statuses: Vec<_> = h.fw_state(&fid)["completed_tasks"][0]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["TASK_RUNNING", "TASK_FINISHED"]);
    assert_eq!(h.metric("master/tasks_finished"), 1.0, "counted once");
}

#[test]
fn repeated_state_replaces_the_last_status_entry() {
    let (mut h, fid, aid) = running(&[]);
    h.status(&aid, &fid, "t1", TaskState::Running, Some(1));
    h.advance(5.0);
    h.status(&aid, &fid, "t1", TaskState::Running, Some(2));
    let statuses = h.fw_state(&fid)["tasks"][0]["statuses"].clone();
    assert_eq!(
        statuses,
        serde_json::json!([{"state": "TASK_RUNNING", "timestamp": T0 + 5.0}])
    );
}

#[test]
fn latest_state_runs_ahead_of_the_forwarded_update() {
    let (mut h, fid, aid) = running(&[]);
    let mut status = TaskStatus::new(TaskId::new("t1"), TaskState::Running);
    status.uuid = Some(uuid(1));
    let msg = ToMaster::StatusUpdate(StatusUpdate {
        framework_id: fid.clone(),
        status,
        latest_state: Some(TaskState::Finished),
    });
    h.agent_send(&aid, msg);
    assert_eq!(
        h.update(&fid).state,
        TaskState::Running,
        "the update itself is forwarded as is"
    );
    assert_eq!(
        h.task_states(&fid, "tasks"),
        [("t1".to_string(), "TASK_FINISHED".to_string())]
    );
    assert_eq!(
        h.slave_state(&aid)["used_resources"]["cpus"],
        0.0,
        "resources follow the latest state"
    );

    // Reconciliation reports the state of the last update sent (status_update_state),
    // not the latest one (Mesos `Master::reconcile`).
    let replies = reconcile(&mut h, &fid, &[]);
    assert_eq!(replies.len(), 1);
    assert_reconciliation(
        &replies[0],
        TaskState::Running,
        "Reconciliation: Latest task state",
    );
    let replies = reconcile(&mut h, &fid, &[("t1", None)]);
    assert_reconciliation(
        &replies[0],
        TaskState::Running,
        "Reconciliation: Latest task state",
    );

    // Acking the RUNNING update does not complete it (its update state is not terminal).
    ack(&mut h, &fid, &aid, "t1", 1);
    assert_eq!(h.task_states(&fid, "tasks").len(), 1);
}

#[test]
fn status_update_for_unknown_framework_is_dropped() {
    let (mut h, _fid, aid) = running(&[]);
    let r = h.status(
        &aid,
        &FrameworkId::new("ghost"),
        "t1",
        TaskState::Running,
        Some(1),
    );
    assert_eq!(r, Reply::Accepted);
    assert!(h.out.is_empty());
    assert_eq!(h.metric("master/invalid_status_updates"), 1.0);
}

#[test]
fn stale_agent_session_gets_409() {
    let (mut h, _fid, _aid) = running(&[]);
    let r = h.step(strata_master_core::Input::AgentMessage {
        session: "nope".into(),
        message: Box::new(ToMaster::Pong),
    });
    assert!(
        matches!(
            r,
            Reply::Error(strata_master_core::CallError { status: 409, .. })
        ),
        "{r:?}"
    );
}

#[test]
fn kill_known_task_sends_kill_task_every_time() {
    let (mut h, fid, aid) = running(&[]);
    let policy = KillPolicy {
        grace_period: Some(strata_api::DurationInfo::from_millis(2000)),
    };
    let kill = Command::Kill(Kill {
        task_id: TaskId::new("t1"),
        agent_id: Some(aid.clone()),
        kill_policy: Some(policy.clone()),
    });
    for _ in 0..2 {
        assert_eq!(h.call(&fid, kill.clone()), Reply::Accepted);
        let msgs = h.agent_msgs(&aid);
        assert_eq!(msgs.len(), 1);
        let ToAgent::KillTask(k) = &msgs[0] else {
            panic!("{msgs:#?}")
        };
        assert_eq!(
            (&k.framework_id, k.task_id.as_str(), k.kill_policy.as_ref()),
            (&fid, "t1", Some(&policy))
        );
        assert!(h.events(&fid).is_empty());
    }

    // Naming the wrong agent: silently ignored.
    let wrong = Command::Kill(Kill {
        task_id: TaskId::new("t1"),
        agent_id: Some(AgentId::new("elsewhere")),
        kill_policy: None,
    });
    h.call(&fid, wrong);
    assert!(h.out.is_empty(), "{:#?}", h.out);
}

#[test]
fn kill_of_unknown_task_is_an_explicit_reconciliation() {
    for (caps, unknown, gone) in [
        (&[][..], TaskState::Lost, TaskState::Lost),
        (
            &["PARTITION_AWARE"][..],
            TaskState::Unknown,
            TaskState::Gone,
        ),
    ] {
        let (mut h, fid, aid) = running(caps);
        h.call(
            &fid,
            Command::Kill(Kill {
                task_id: TaskId::new("nope"),
                agent_id: None,
                kill_policy: None,
            }),
        );
        assert!(h.agent_msgs(&aid).is_empty());
        let u = h.update(&fid);
        assert_eq!(u.task_id.as_str(), "nope");
        assert_reconciliation(&u, unknown, "Reconciliation: Task is unknown");

        h.call(
            &fid,
            Command::Kill(Kill {
                task_id: TaskId::new("nope"),
                agent_id: Some(aid.clone()),
                kill_policy: None,
            }),
        );
        let u = h.update(&fid);
        assert_reconciliation(&u, gone, "Reconciliation: Task is unknown to the agent");
        assert_eq!(u.agent_id.as_ref(), Some(&aid));
    }
}

#[test]
fn implicit_reconciliation_reports_every_known_task() {
    let (mut h, fid, aid) = running(&[]);
    h.advance(6.0); // past the ACCEPT's default 5 s filter
    h.run_task(&fid, &aid, "t2", "cpus:1;mem:128");
    h.status(&aid, &fid, "t1", TaskState::Running, Some(1));
    h.advance(3.0);
    let mut replies = reconcile(&mut h, &fid, &[]);
    replies.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    assert_eq!(replies.len(), 2);
    assert_reconciliation(
        &replies[0],
        TaskState::Running,
        "Reconciliation: Latest task state",
    );
    assert_reconciliation(
        &replies[1],
        TaskState::Staging,
        "Reconciliation: Latest task state",
    );
    for r in &replies {
        assert_eq!(r.agent_id.as_ref(), Some(&aid));
        assert_eq!(r.timestamp, Some(h.now));
    }
    assert!(h.agent_msgs(&aid).is_empty());
}

#[test]
fn explicit_reconciliation_cases() {
    for pa in [false, true] {
        let caps: &[&str] = if pa { &["PARTITION_AWARE"] } else { &[] };
        let (mut h, fid, aid) = running(caps);
        let lost_or = |s: TaskState| if pa { s } else { TaskState::Lost };

        // Known task: its latest state, even when another agent is named (Mesos does
        // not check the agent for known tasks).
        let r = reconcile(
            &mut h,
            &fid,
            &[("t1", None), ("t1", Some(&AgentId::new("x")))],
        );
        assert_eq!(r.len(), 2);
        for s in &r {
            assert_reconciliation(s, TaskState::Staging, "Reconciliation: Latest task state");
            assert_eq!(s.agent_id.as_ref(), Some(&aid));
        }

        // Unknown task on a registered agent: GONE.
        let r = reconcile(&mut h, &fid, &[("t9", Some(&aid))]);
        assert_reconciliation(
            &r[0],
            lost_or(TaskState::Gone),
            "Reconciliation: Task is unknown to the agent",
        );

        // Unknown agent: UNKNOWN.
        let r = reconcile(&mut h, &fid, &[("t9", Some(&AgentId::new("never-seen")))]);
        assert_reconciliation(
            &r[0],
            lost_or(TaskState::Unknown),
            "Reconciliation: Task is unknown",
        );
        let r = reconcile(&mut h, &fid, &[("t9", None)]);
        assert_reconciliation(
            &r[0],
            lost_or(TaskState::Unknown),
            "Reconciliation: Task is unknown",
        );
    }
}

#[test]
fn kill_on_disconnected_agent_is_retried_after_reregistration() {
    let mut h = Harness::new();
    let mut info = fw_info("ckpt");
    info.checkpoint = true;
    let fid = h.subscribe(info);
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "t1", "cpus:1;mem:128");
    h.status(&aid, &fid, "t1", TaskState::Running, Some(1));
    h.close_agent(&aid);
    assert!(
        h.updates(&fid).is_empty(),
        "checkpointing framework keeps its tasks"
    );

    h.call(
        &fid,
        Command::Kill(Kill {
            task_id: TaskId::new("t1"),
            agent_id: None,
            kill_policy: None,
        }),
    );
    assert!(
        h.out.is_empty(),
        "nothing sent while the agent is away: {:#?}",
        h.out
    );

    h.advance(5.0);
    let running = reported_task(&fid, &aid, "t1", "cpus:1;mem:128", "*", TaskState::Running);
    h.reregister(&aid, vec![running], vec![]);
    let kinds = h.agent_kinds(&aid);
    assert_eq!(kinds, ["REGISTERED", "KILL_TASK"], "{:#?}", h.out);
}

#[test]
fn ack_while_the_agent_is_disconnected_is_dropped() {
    let mut h = Harness::new();
    let mut info = fw_info("ckpt");
    info.checkpoint = true;
    let fid = h.subscribe(info);
    let aid = h.add_agent("a1", AGENT_RES);
    h.run_task(&fid, &aid, "t1", "cpus:1;mem:128");
    h.status(&aid, &fid, "t1", TaskState::Finished, Some(2));
    h.close_agent(&aid);

    assert_eq!(ack(&mut h, &fid, &aid, "t1", 2), Reply::Accepted);
    assert!(h.out.is_empty());
    assert_eq!(
        h.task_states(&fid, "tasks"),
        [("t1".to_string(), "TASK_FINISHED".to_string())],
        "not completed by a lost ack"
    );
    assert_eq!(
        h.metric("master/invalid_status_update_acknowledgements"),
        1.0
    );

    // Back: the agent resends the unacknowledged update; this time the ack lands.
    let mut t1 = reported_task(&fid, &aid, "t1", "cpus:1;mem:128", "*", TaskState::Finished);
    t1.status_update_state = Some(TaskState::Finished);
    t1.status_update_uuid = Some(uuid(2));
    h.reregister(&aid, vec![t1], vec![]);
    assert_eq!(h.agent_kinds(&aid), ["REGISTERED"]);
    h.status(&aid, &fid, "t1", TaskState::Finished, Some(2));
    assert_eq!(h.update(&fid).uuid, Some(uuid(2)));
    ack(&mut h, &fid, &aid, "t1", 2);
    assert_eq!(h.agent_kinds(&aid), ["STATUS_ACK"]);
    assert_eq!(
        h.task_states(&fid, "completed_tasks"),
        [("t1".to_string(), "TASK_FINISHED".to_string())]
    );
}
