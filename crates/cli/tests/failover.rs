//! Framework lifecycle tests with real `strata` processes and the Rust SDK: failover
//! within `failover_timeout` (and the old stream's "Framework failed over"), expiry of the
//! timeout, immediate teardown with the default timeout of 0, TEARDOWN, implicit and
//! explicit reconciliation, KILL, SUPPRESS/REVIVE and DECLINE filters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_api::scheduler::{Command, Event};
use strata_api::scheduler::{Reconcile, Roles};
use strata_api::{AgentId, FrameworkInfo};
use strata_api::{Reason, Source, TaskState, TaskStatus};
use strata_sdk::{Scheduler, SchedulerError};
use strata_testkit::framework::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// Runs a task, drops the scheduler's stream, and checks the framework is removed with its
/// task killed (TASK_KILLED, REASON_FRAMEWORK_REMOVED) and the process gone.
async fn dropped_stream_removes_framework(failover_timeout: f64) {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let info = framework_info("drop-stream", failover_timeout, false, false);
    let mut fw = Fw::subscribe(&c.master.addr, info.clone()).await;
    let fid = fw.id();
    let (cmd, marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    wait_alive(&marker).await;

    drop(fw);
    wait_task_listed(&c, &fid, "completed_tasks", "t1", "TASK_KILLED").await;
    let (completed, _) = framework_state(&c, &fid).await.unwrap();
    assert!(completed, "the framework moved to completed_frameworks");
    let task = operator_task(&c, "t1").await.unwrap();
    let last = task["statuses"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["reason"], "REASON_FRAMEWORK_REMOVED", "{task}");
    wait_gone(&marker).await;
    wait_framework_processes_gone(&fid).await;
    let err = Scheduler::subscribe(
        &c.master.addr,
        FrameworkInfo {
            id: Some(fid),
            ..info
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, SchedulerError::Error(m) if m == "Framework has been removed"),
        "{err}"
    );
}

// ----- tests -----

#[tokio::test(flavor = "multi_thread")]
async fn failover_within_timeout_keeps_tasks_and_fails_over_the_old_stream() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let addr = c.master.addr.clone();
    let info = framework_info("failover", 30.0, false, false);
    let mut first = Fw::subscribe(&addr, info.clone()).await;
    let fid = first.id();
    let (cmd, marker) = sleeper();
    first.launch("t1", &cmd).await;
    first.state("t1", TaskState::Running).await;
    let pids = wait_alive(&marker).await;

    // A second subscription with the same id while the first stream is open.
    let second = Fw::resubscribe(&addr, info.clone(), &fid).await;
    let error = first
        .expect("ERROR on the old stream", |e| match e {
            Event::Error(e) => Some(e.message.clone()),
            _ => None,
        })
        .await;
    assert_eq!(error, "Framework failed over");
    assert!(first.next().await.is_none(), "the old stream ends");

    // The stream drops; the framework waits (disconnected) for its failover.
    drop(second);
    wait_until(LONG, "the framework to be disconnected", async || {
        let (completed, fw) = framework_state(&c, &fid).await?;
        assert!(!completed, "removed within its failover_timeout");
        (fw["connected"] == false && fw["active"] == false).then_some(())
    })
    .await;
    let third = Fw::resubscribe(&addr, info, &fid).await;
    let (completed, fw) = framework_state(&c, &fid).await.unwrap();
    assert!(!completed);
    assert_eq!(fw["active"], true);
    assert_eq!(task_in(&fw, "tasks", "t1").as_deref(), Some("TASK_RUNNING"));
    assert_eq!(pids_with(&marker), pids, "the task was not touched");
    drop(third);
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_timeout_expiry_removes_the_framework() {
    dropped_stream_removes_framework(1.0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn default_failover_timeout_tears_down_when_the_stream_drops() {
    dropped_stream_removes_framework(0.0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn teardown_kills_tasks_and_forbids_the_id() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let info = framework_info("teardown", 3600.0, false, false);
    let mut fw = Fw::subscribe(&c.master.addr, info.clone()).await;
    let fid = fw.id();
    let (cmd, marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    wait_alive(&marker).await;

    fw.call(Command::Teardown).await;
    while fw.next().await.is_some() {} // the master closes the stream
    wait_task_listed(&c, &fid, "completed_tasks", "t1", "TASK_KILLED").await;
    let (completed, _) = framework_state(&c, &fid).await.unwrap();
    assert!(completed);
    wait_gone(&marker).await;
    wait_framework_processes_gone(&fid).await;
    let info = FrameworkInfo {
        id: Some(fid),
        ..info
    };
    let err = Scheduler::subscribe(&c.master.addr, info)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SchedulerError::Error(m) if m == "Framework has been removed"),
        "{err}"
    );
}

fn assert_reconciled(s: &TaskStatus, state: TaskState, message: &str) {
    assert_eq!(s.state, state, "{s:?}");
    assert_eq!(s.reason, Some(Reason::Reconciliation), "{s:?}");
    assert_eq!(s.source, Some(Source::Master), "{s:?}");
    assert_eq!(s.message.as_deref(), Some(message), "{s:?}");
    assert!(
        s.uuid.is_none(),
        "reconciliation answers carry no uuid: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciliation_implicit_and_explicit() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let addr = c.master.addr.clone();
    let mut plain = Fw::subscribe(&addr, framework_info("reconcile", 60.0, false, false)).await;
    let (cmd1, _) = sleeper();
    let (cmd2, _) = sleeper();
    let aid = plain.launch("t1", &cmd1).await;
    plain.state("t1", TaskState::Running).await;
    plain.launch("t2", &cmd2).await;
    plain.state("t2", TaskState::Running).await;
    // Subscribed only now, so that it does not hold the offers the first one needs.
    let mut pa = Fw::subscribe(&addr, framework_info("reconcile-pa", 60.0, false, true)).await;

    plain
        .call(Command::Reconcile(Reconcile { tasks: vec![] }))
        .await;
    let mut answers = std::collections::BTreeMap::new();
    plain
        .expect("implicit answers for t1 and t2", |e| {
            if let Event::Update(u) = e {
                answers.insert(u.status.task_id.to_string(), u.status.clone());
            }
            (answers.len() == 2).then_some(())
        })
        .await;
    for task in ["t1", "t2"] {
        let latest = "Reconciliation: Latest task state";
        assert_reconciled(&answers[task], TaskState::Running, latest);
    }

    plain.reconcile("t1", Some(&aid)).await;
    let s = plain.next_update("t1").await;
    assert_reconciled(&s, TaskState::Running, "Reconciliation: Latest task state");

    let unknown_here = "Reconciliation: Task is unknown to the agent";
    plain.reconcile("ghost", Some(&aid)).await;
    assert_reconciled(
        &plain.next_update("ghost").await,
        TaskState::Lost,
        unknown_here,
    );
    pa.reconcile("ghost", Some(&aid)).await;
    assert_reconciled(
        &pa.next_update("ghost").await,
        TaskState::Gone,
        unknown_here,
    );

    let nowhere = AgentId::new("no-such-agent");
    plain.reconcile("ghost", Some(&nowhere)).await;
    let unknown = "Reconciliation: Task is unknown";
    assert_reconciled(&plain.next_update("ghost").await, TaskState::Lost, unknown);
    pa.reconcile("ghost", Some(&nowhere)).await;
    assert_reconciled(&pa.next_update("ghost").await, TaskState::Unknown, unknown);
}

/// Framework B in its own task: declines every offer at once (no filter) and counts
/// them, until `stop` is set.
struct Decliner {
    count: Arc<AtomicUsize>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Decliner {
    fn start(mut b: Fw) -> Self {
        let count = Arc::new(AtomicUsize::new(0));
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let seen = count.clone();
        let task = tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    e = b.s.next_event() => e.unwrap(),
                    _ = &mut stopped => break,
                };
                let Some(event) = event else { break };
                if let Event::Offers(o) = event {
                    let ids = o.offers.iter().map(|o| o.id.clone()).collect();
                    b.decline(ids, 0.0).await;
                    seen.fetch_add(o.offers.len(), Ordering::SeqCst);
                }
            }
        });
        Self { count, stop, task }
    }

    /// Stops the task and re-raises its panic, if any.
    async fn finish(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// Waits until B has been offered the agent `more` more times.
async fn wait_offers_to_b(count: &AtomicUsize, more: usize) {
    let target = count.load(Ordering::SeqCst) + more;
    let what = format!("{more} more offers to B (the allocator must skip A)");
    wait_until(LONG, &what, async || {
        (count.load(Ordering::SeqCst) >= target).then_some(())
    })
    .await
}

fn no_offers(events: &[String]) {
    let offers: Vec<_> = events.iter().filter(|e| e.starts_with("OFFERS")).collect();
    assert!(offers.is_empty(), "unexpected offers: {events:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_suppress_revive_and_decline_filters() {
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let addr = c.master.addr.clone();
    let mut a = Fw::subscribe(&addr, framework_info("offers-a", 60.0, false, false)).await;
    let (cmd, marker) = sleeper();
    a.launch("t1", &cmd).await;
    a.state("t1", TaskState::Running).await;
    wait_alive(&marker).await;
    a.kill("t1").await;
    let killed = a.state("t1", TaskState::Killed).await;
    assert!(killed.uuid.is_some(), "the executor's update is reliable");
    wait_gone(&marker).await;
    wait_framework_processes_gone(&a.id()).await;
    a.kill("no-such-task").await;
    let s = a.next_update("no-such-task").await;
    assert_reconciled(&s, TaskState::Lost, "Reconciliation: Task is unknown");

    // DECLINE for 60 s: A (first in the DRF order on ties) is skipped while B gets offers.
    let offer = a.full_offer().await;
    a.decline(vec![offer.id], 60.0).await;
    let b = Fw::subscribe(&addr, framework_info("offers-b", 60.0, false, false)).await;
    let b = Decliner::start(b);
    wait_offers_to_b(&b.count, 10).await;
    no_offers(&a.events_until_marker("m-declined").await);

    // REVIVE clears the filter.
    a.call(Command::Revive(Roles::default())).await;
    let is_offers = |e: &Event| matches!(e, Event::Offers(_)).then_some(());
    a.expect("an offer after REVIVE", is_offers).await;

    // SUPPRESS: offers made before it are returned; none come afterwards.
    a.call(Command::Suppress(Roles::default())).await;
    a.events_until_marker("m-suppress").await;
    a.decline_all().await;
    wait_offers_to_b(&b.count, 10).await;
    no_offers(&a.events_until_marker("m-suppressed").await);

    a.call(Command::Revive(Roles::default())).await;
    a.expect("an offer after REVIVE", is_offers).await;
    b.finish().await;
}
