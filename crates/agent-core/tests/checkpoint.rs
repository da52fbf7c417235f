//! Checkpoint effects of checkpointing frameworks: what is written, in which order, and
//! before which effect that depends on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_agent_core::checkpoint::{CheckpointOp, ExecutorRecord};
use strata_agent_core::ExecutorKind;
use strata_api::TaskState;

#[test]
fn framework_executor_and_task_are_written_before_the_launch() {
    let mut h = Harness::registered();
    let fw = framework(true, &[]);
    h.run(&fw, Some(custom_executor("e1")), exec_task("t1"));
    assert_eq!(
        h.kinds_all(),
        [
            "checkpoint:Framework",
            "checkpoint:Executor",
            "checkpoint:Task",
            "launch"
        ]
    );
    let spec = h.launch();
    let ops = h.checkpoints();
    assert_eq!(ops[0], CheckpointOp::Framework { info: fw.clone() });
    let CheckpointOp::Executor {
        framework_id,
        record,
    } = &ops[1]
    else {
        unreachable!()
    };
    assert_eq!(framework_id, &fid());
    assert_eq!(
        record,
        &ExecutorRecord {
            info: custom_executor("e1"),
            kind: ExecutorKind::Custom(custom_executor("e1").command.unwrap()),
            container_id: spec.container_id.clone(),
            directory: spec.directory.clone(),
        }
    );
    assert_eq!(
        ops[2],
        CheckpointOp::Task {
            framework_id: fid(),
            executor_id: eid("e1"),
            task: exec_task("t1"),
        }
    );

    // A queued task: its Task record, no Framework record (unchanged).
    h.run(&fw, Some(custom_executor("e1")), exec_task("t2"));
    assert_eq!(h.kinds_all(), ["checkpoint:Task"]);
    // A task for the running executor: Task record before the LAUNCH event.
    h.subscribe("e1");
    h.run(&fw, Some(custom_executor("e1")), exec_task("t3"));
    assert_eq!(h.kinds_all(), ["checkpoint:Task", "executor:LAUNCH"]);
    // A changed FrameworkInfo is written again before anything else.
    let mut fw2 = fw.clone();
    fw2.name = "renamed".into();
    h.run(&fw2, Some(custom_executor("e1")), exec_task("t4"));
    assert_eq!(
        h.kinds_all(),
        ["checkpoint:Framework", "checkpoint:Task", "executor:LAUNCH"]
    );
}

#[test]
fn updates_are_written_before_they_are_acknowledged_or_forwarded() {
    let mut h = Harness::registered();
    h.running_command_task(&framework(true, &[]), "t1");
    h.update("t1", "t1", TaskState::Running, 1);
    assert_eq!(
        h.kinds_all(),
        [
            "checkpoint:Updates",
            "master:STATUS_UPDATE",
            "executor:ACKNOWLEDGED"
        ]
    );
    let CheckpointOp::Updates {
        framework_id,
        executor_id,
        task_id,
        latest,
        pending,
    } = &h.checkpoints()[0]
    else {
        unreachable!()
    };
    assert_eq!(
        (framework_id, executor_id, task_id),
        (&fid(), &eid("t1"), &tid("t1"))
    );
    assert_eq!(latest.as_ref().map(|s| s.state), Some(TaskState::Running));
    let uuids: Vec<_> = pending.iter().map(|s| s.uuid.clone().unwrap()).collect();
    assert_eq!(uuids, [uuid(1)]);

    // A second update queues behind the first: written (both pending) before the ack.
    h.update("t1", "t1", TaskState::Finished, 2);
    assert_eq!(
        h.kinds_all(),
        ["blackbox:t1", "checkpoint:Updates", "executor:ACKNOWLEDGED"]
    );
    let CheckpointOp::Updates {
        latest, pending, ..
    } = &h.checkpoints()[0]
    else {
        unreachable!()
    };
    assert_eq!(latest.as_ref().map(|s| s.state), Some(TaskState::Finished));
    let uuids: Vec<_> = pending.iter().map(|s| s.uuid.clone().unwrap()).collect();
    assert_eq!(uuids, [uuid(1), uuid(2)]);

    // The ack of the first: the rest of the stream is written again.
    h.ack("t1", &uuid(1));
    let CheckpointOp::Updates { pending, .. } = &h.checkpoints()[0] else {
        panic!("{:#?}", h.out)
    };
    let uuids: Vec<_> = pending.iter().map(|s| s.uuid.clone().unwrap()).collect();
    assert_eq!(uuids, [uuid(2)]);
    assert_eq!(h.sent(), [("t1".into(), TaskState::Finished)]);

    // The ack of the terminal update removes the task.
    h.ack("t1", &uuid(2));
    assert_eq!(
        h.checkpoints(),
        [CheckpointOp::RemoveTask {
            framework_id: fid(),
            executor_id: eid("t1"),
            task_id: tid("t1"),
        }]
    );
    // The executor exits: its record goes, then the framework's.
    h.exited("t1", 0);
    assert_eq!(
        h.checkpoints(),
        [
            CheckpointOp::RemoveExecutor {
                framework_id: fid(),
                executor_id: eid("t1"),
            },
            CheckpointOp::RemoveFramework {
                framework_id: fid()
            },
        ]
    );
    let ex = h.pos("checkpoint:RemoveExecutor");
    assert!(ex < h.pos("checkpoint:RemoveFramework"));
}

#[test]
fn agent_made_updates_are_written_before_they_are_sent() {
    let mut h = Harness::registered();
    h.running_command_task(&framework(true, &[]), "t1");
    h.exited("t1", 9);
    let w = h.pos("checkpoint:Updates");
    assert!(w < h.pos("master:STATUS_UPDATE"), "{:?}", h.kinds_all());
    let CheckpointOp::Updates { pending, .. } = &h.checkpoints()[0] else {
        unreachable!()
    };
    assert_eq!(pending[0].state, TaskState::Failed);
    // The executor is kept (and its record) until the terminal update is acknowledged.
    assert!(!h
        .checkpoints()
        .iter()
        .any(|op| matches!(op, CheckpointOp::RemoveExecutor { .. })));
    h.ack_sent("t1");
    assert_eq!(
        h.kinds_all(),
        [
            "checkpoint:RemoveTask",
            "checkpoint:RemoveExecutor",
            "checkpoint:RemoveFramework"
        ]
    );
}

#[test]
fn other_executors_keep_the_framework_record() {
    let mut h = Harness::registered();
    let fw = framework(true, &[]);
    h.running_command_task(&fw, "t1");
    h.run(&fw, Some(custom_executor("e1")), exec_task("t2"));
    h.update("t1", "t1", TaskState::Finished, 1);
    h.ack("t1", &uuid(1));
    h.exited("t1", 0);
    assert_eq!(
        h.checkpoints(),
        [CheckpointOp::RemoveExecutor {
            framework_id: fid(),
            executor_id: eid("t1"),
        }]
    );
}

#[test]
fn nothing_is_written_for_frameworks_that_do_not_checkpoint() {
    let mut h = Harness::registered();
    let fw = plain();
    h.running_command_task(&fw, "t1");
    h.run(&fw, Some(custom_executor("e1")), exec_task("t2"));
    h.run(&fw, Some(custom_executor("e1")), exec_task("t3"));
    h.subscribe("e1");
    h.update("t1", "t1", TaskState::Running, 1);
    h.update("t1", "t1", TaskState::Finished, 2);
    h.ack("t1", &uuid(1));
    h.ack("t1", &uuid(2));
    h.exited("t1", 0);
    h.kill("t2", None);
    h.exited("e1", 9);
    h.reconcile(&fw, &["ghost"]);
    h.ack_everything();
    assert!(
        h.fw_state("completed_frameworks").is_some(),
        "the whole life ran"
    );
    assert!(
        checkpoints_in(&h.log).is_empty(),
        "{:#?}",
        checkpoints_in(&h.log)
    );
}
