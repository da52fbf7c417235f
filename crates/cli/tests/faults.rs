//! Fault tests with real `strata` processes: an agent killed (-9) and restarted (see also
//! recovery.rs for checkpoint recovery), including one that lost its checkpoints; an agent that stops answering (SIGSTOP) and comes
//! back; a master killed and restarted on its registry; and a status update whose
//! acknowledgement was lost in a master crash. Each test asserts what the framework sees
//! (through the Rust SDK), what the master's endpoints say, and which task processes live.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use strata_api::scheduler::Event;
use strata_api::AgentId;
use strata_api::{Reason, Source, TaskState, TaskStatus};
use strata_testkit::framework::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

// ----- tests -----

#[tokio::test(flavor = "multi_thread")]
async fn agent_kill9_loses_tasks_of_frameworks_without_checkpointing() {
    let mut c = Cluster::start(BIN.as_ref(), 1).await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let info = framework_info("faults-no-checkpoint", 0.0, false, false);
    let mut fw = Fw::subscribe(&c.master.addr, info).await;
    let (cmd, marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    let task_pids = wait_alive(&marker).await;
    let all = framework_pids(&fw.id());
    assert!(all.len() > task_pids.len(), "the executor too: {all:?}");

    c.agents[0].proc.kill9();
    let lost = fw.next_update("t1").await;
    assert_eq!(lost.state, TaskState::Lost, "{lost:?}");
    assert_eq!(lost.reason, Some(Reason::AgentDisconnected));
    assert_eq!(lost.source, Some(Source::Master));
    assert!(lost.uuid.is_none(), "master-made updates carry no uuid");

    c.agents[0].restart();
    assert_eq!(
        c.wait_agent_registered(0).await,
        aid.as_str(),
        "same agent id"
    );
    let (completed, state) = framework_state(&c, &fw.id()).await.unwrap();
    assert!(!completed);
    assert_eq!(task_in(&state, "tasks", "t1"), None);
    assert_eq!(
        task_in(&state, "completed_tasks", "t1").as_deref(),
        Some("TASK_LOST")
    );
    // The executor lost its agent and, without checkpointing, killed the task and exited.
    wait_gone(&marker).await;
    wait_framework_processes_gone(&fw.id()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_restarted_without_its_checkpoints_reconciles_after_reregistration() {
    // A long re-registration timeout: the agent must come back as "disconnected", not
    // unreachable, however slow this machine is.
    let mut c =
        Cluster::start_with(BIN.as_ref(), 1, &["--agent_reregister_timeout", "120"], &[]).await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let addr = c.master.addr.clone();
    let mut plain = Fw::subscribe(&addr, framework_info("ckpt", 60.0, true, false)).await;
    let mut pa = Fw::subscribe(&addr, framework_info("ckpt-pa", 60.0, true, true)).await;
    let (cmd1, marker1) = sleeper();
    let (cmd2, marker2) = sleeper();
    plain.launch("plain", &cmd1).await;
    plain.state("plain", TaskState::Running).await;
    pa.launch("pa", &cmd2).await;
    pa.state("pa", TaskState::Running).await;
    wait_alive(&marker1).await;
    wait_alive(&marker2).await;

    c.agents[0].proc.kill9();
    let what = "the master to see the agent disconnected";
    wait_until(LONG, what, async || {
        (agent_active(&c, &aid).await == Some(false)).then_some(())
    })
    .await;
    // Nothing happens at once to checkpointing frameworks' tasks.
    assert_eq!(c.task_state("plain").await.as_deref(), Some("TASK_RUNNING"));
    assert_eq!(c.task_state("pa").await.as_deref(), Some("TASK_RUNNING"));

    // The agent comes back with its id but without its checkpoints (as after a disk
    // problem): it knows nothing of the tasks, and the master must reconcile them.
    for dir in ["meta/frameworks", "meta/containers"] {
        let _ = std::fs::remove_dir_all(c.agents[0].work_dir.join(dir));
    }
    c.agents[0].restart();
    assert_eq!(
        c.wait_agent_registered(0).await,
        aid.as_str(),
        "same agent id"
    );
    for (fw, task, state) in [
        (&mut plain, "plain", TaskState::Lost),
        (&mut pa, "pa", TaskState::Dropped),
    ] {
        // The first update since the kill: the agent's answer to the master's reconciliation.
        let s = fw.next_update(task).await;
        assert_eq!(s.state, state, "{s:?}");
        assert_eq!(s.reason, Some(Reason::Reconciliation));
        assert_eq!(s.source, Some(Source::Agent));
        assert_eq!(
            s.message.as_deref(),
            Some("Reconciliation: task unknown to the agent")
        );
        assert!(
            s.uuid.is_some(),
            "a reliable update (acknowledged by next())"
        );
        let listed = state.as_str();
        wait_task_listed(&c, &fw.id(), "completed_tasks", task, listed).await;
    }
    // The old executors found an agent that does not know them and killed their tasks.
    wait_gone(&marker1).await;
    wait_gone(&marker2).await;
    wait_framework_processes_gone(&plain.id()).await;
    wait_framework_processes_gone(&pa.id()).await;
}

/// Reads one framework's events until it has the update of `task` and a FAILURE for `aid`.
async fn update_and_failure(fw: &mut Fw, task: &str, aid: &AgentId) -> TaskStatus {
    let (mut update, mut failure) = (None, false);
    fw.expect("an update and a FAILURE", |e| {
        match e {
            Event::Update(u) if u.status.task_id.as_str() == task => {
                update = Some(u.status.clone())
            }
            Event::Failure(f) => {
                assert_eq!(f.agent_id.as_ref(), Some(aid), "{f:?}");
                assert!(f.executor_id.is_none(), "agent lost: only agent_id");
                failure = true;
            }
            _ => {}
        }
        update.clone().filter(|_| failure)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn frozen_agent_becomes_unreachable_and_its_tasks_come_back() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let addr = c.master.addr.clone();
    let mut pa = Fw::subscribe(&addr, framework_info("freeze-pa", 60.0, false, true)).await;
    let mut plain = Fw::subscribe(&addr, framework_info("freeze", 60.0, false, false)).await;
    let (cmd1, marker1) = sleeper();
    let (cmd2, marker2) = sleeper();
    pa.launch("pa", &cmd1).await;
    pa.state("pa", TaskState::Running).await;
    plain.launch("plain", &cmd2).await;
    plain.state("plain", TaskState::Running).await;
    let pids = [wait_alive(&marker1).await, wait_alive(&marker2).await];

    c.agents[0].proc.freeze();
    let s = update_and_failure(&mut pa, "pa", &aid).await;
    assert_eq!(s.state, TaskState::Unreachable, "{s:?}");
    assert_eq!(s.reason, Some(Reason::AgentRemoved));
    assert!(s.unreachable_time.is_some());
    assert!(s.uuid.is_none());
    let s = update_and_failure(&mut plain, "plain", &aid).await;
    assert_eq!(s.state, TaskState::Lost, "{s:?}");
    assert_eq!(s.reason, Some(Reason::AgentRemoved));
    let state = c.get("/master/state").await.unwrap();
    assert_eq!(state["unreachable_slaves"], 1);

    c.agents[0].proc.thaw();
    assert_eq!(
        c.wait_agent_registered(0).await,
        aid.as_str(),
        "same agent id"
    );
    for (fw, task) in [(&mut pa, "pa"), (&mut plain, "plain")] {
        let s = fw.next_update(task).await;
        assert_eq!(s.state, TaskState::Running, "{s:?}");
        assert_eq!(s.reason, Some(Reason::AgentReregistered));
        let dbg = c
            .get(&format!("/master/tasks?task_id={task}"))
            .await
            .unwrap();
        assert_eq!(
            c.task_state(task).await.as_deref(),
            Some("TASK_RUNNING"),
            "{dbg:#}"
        );
    }
    let state = c.get("/master/state").await.unwrap();
    assert_eq!(state["unreachable_slaves"], 0);
    assert_eq!(pids, [pids_with(&marker1), pids_with(&marker2)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn master_kill9_and_restart_keeps_running_tasks() {
    let mut c = Cluster::start(BIN.as_ref(), 1).await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let info = framework_info("faults-master", 3600.0, true, false);
    let mut fw = Fw::subscribe(&c.master.addr, info.clone()).await;
    let fid = fw.id();
    let (cmd, marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    let pids = wait_alive(&marker).await;

    c.master.restart();
    drop(fw);
    // The registry kept the framework: it is known, as "recovered", before it re-subscribes.
    let f = c.get("/master/frameworks").await.unwrap();
    let entry = f["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == fid.as_str());
    let entry = entry.expect("framework recovered from the registry");
    assert_eq!(entry["recovered"], true, "{entry}");
    assert_eq!(entry["active"], false, "{entry}");

    assert_eq!(
        c.wait_agent_registered(0).await,
        aid.as_str(),
        "same agent id"
    );
    wait_until(LONG, "t1 rebuilt from the agent", async || {
        (c.task_state("t1").await.as_deref() == Some("TASK_RUNNING")).then_some(())
    })
    .await;
    let mut fw = Fw::resubscribe(&c.master.addr, info, &fid).await;
    let (completed, state) = framework_state(&c, &fid).await.unwrap();
    assert!(!completed);
    assert_eq!(
        (&state["active"], &state["recovered"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(pids_with(&marker), pids, "the task process survived");

    fw.reconcile("t1", Some(&aid)).await;
    let s = fw.next_update("t1").await;
    assert_eq!(s.state, TaskState::Running, "{s:?}");
    assert_eq!(s.reason, Some(Reason::Reconciliation));
    assert!(s.uuid.is_none());

    fw.kill("t1").await;
    fw.state("t1", TaskState::Killed).await;
    wait_gone(&marker).await;
    wait_framework_processes_gone(&fw.id()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_update_survives_a_lost_acknowledgement() {
    let mut c = Cluster::start(BIN.as_ref(), 1).await;
    let info = framework_info("faults-ack", 3600.0, true, false);
    let mut fw = Fw::subscribe(&c.master.addr, info.clone()).await;
    let fid = fw.id();
    let trigger = c.dir.path().join("finish-t1");
    let cmd = format!("while [ ! -e '{}' ]; do sleep 0.1; done", trigger.display());
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;

    fw.auto_ack = false;
    std::fs::write(&trigger, b"").unwrap();
    let finished = fw.state("t1", TaskState::Finished).await;
    let uuid = finished.uuid.clone().expect("a reliable update");
    // The master dies before the framework acknowledges.
    c.master.restart();
    drop(fw);

    let mut fw = Fw::resubscribe(&c.master.addr, info, &fid).await;
    fw.auto_ack = false;
    let again = fw.state("t1", TaskState::Finished).await;
    assert_eq!(
        again.uuid.as_deref(),
        Some(uuid.as_str()),
        "the same update, retried"
    );
    fw.s.acknowledge(&again).await.unwrap();
    wait_task_listed(&c, &fid, "completed_tasks", "t1", "TASK_FINISHED").await;
}
