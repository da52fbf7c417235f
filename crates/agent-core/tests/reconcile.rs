//! RECONCILE_TASKS after re-registration: tasks the master has and the agent does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_api::{Reason, TaskState};

const MESSAGE: &str = "Reconciliation: task unknown to the agent";

#[test]
fn unknown_tasks_get_a_reliable_lost_or_dropped() {
    for (caps, state) in [
        (&[][..], TaskState::Lost),
        (&["PARTITION_AWARE"][..], TaskState::Dropped),
    ] {
        let mut h = Harness::registered();
        // The agent never heard of the framework.
        h.reconcile(&framework(false, caps), &["a", "b"]);
        let mut sent = h.sent();
        sent.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(sent, [("a".into(), state), ("b".into(), state)]);
        let a = h.sent_for("a");
        let b = h.sent_for("b");
        assert_agent_status(&a, state, Reason::Reconciliation, MESSAGE);
        assert_agent_status(&b, state, Reason::Reconciliation, MESSAGE);
        assert_ne!(a.uuid, b.uuid, "fresh uuids");
        // Retried until acknowledged.
        h.tick_at(T0 + RETRY_INITIAL);
        assert_eq!(h.sent().len(), 2);
        h.ack("a", a.uuid.as_deref().unwrap());
        h.ack("b", b.uuid.as_deref().unwrap());
        h.tick_at(T0 + 1000.0);
        assert!(h.out.is_empty(), "{:#?}", h.out);
        // Asking again is answered again.
        h.reconcile(&framework(false, caps), &["a"]);
        assert_eq!(h.sent(), [("a".into(), state)]);
    }
}

#[test]
fn known_tasks_get_nothing() {
    let mut h = Harness::registered();
    let fw = plain();
    h.running_command_task(&fw, "launched");
    h.run(&fw, Some(custom_executor("e1")), exec_task("queued"));
    h.running_command_task(&fw, "done");
    h.update("done", "done", TaskState::Finished, 1); // terminal, unacknowledged
    h.reconcile(&fw, &["launched", "queued", "done", "ghost"]);
    assert_eq!(
        h.sent(),
        [("ghost".into(), TaskState::Lost)],
        "only the unknown task"
    );
}
