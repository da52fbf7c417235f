//! The agent's `/state` and `/metrics/snapshot` views.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_api::TaskState;

#[test]
fn state_lists_frameworks_executors_and_their_tasks() {
    let mut h = Harness::registered();
    let s = h.state();
    assert_eq!(s["id"], AGENT_ID);
    assert_eq!(s["pid"], format!("slave(1)@{ADDRESS}"));
    assert_eq!(s["hostname"], "agent7.test");
    assert_eq!(s["resources"]["cpus"], 4.0);
    assert_eq!(s["frameworks"].as_array().unwrap().len(), 0);

    h.run(&plain(), None, task("t1"));
    let spec = h.launch();
    let fw = h.fw_state("frameworks").expect("framework listed");
    assert_eq!(fw["name"], "fw");
    assert_eq!(fw["user"], "alice");
    assert_eq!(fw["checkpoint"], false);
    let ex = &fw["executors"][0];
    assert_eq!(ex["id"], "t1");
    assert_eq!(ex["container"], spec.container_id.as_str());
    assert_eq!(ex["directory"], sandbox("t1", &spec.container_id));
    assert_eq!(ex["directory"], spec.directory.as_str());
    assert_eq!(ex["source"], "t1");
    let queued = &ex["queued_tasks"][0];
    assert_eq!(queued["id"], "t1");
    assert_eq!(queued["state"], "TASK_STAGING");
    assert_eq!(queued["executor_id"], "", "command tasks name no executor");
    assert_eq!(queued["framework_id"], FW);
    assert_eq!(queued["slave_id"], AGENT_ID);
    assert_eq!(ex["tasks"].as_array().unwrap().len(), 0);

    h.subscribe("t1");
    h.at(T0 + 2.0);
    h.update("t1", "t1", TaskState::Running, 1);
    let ex = h.executor_state("executors", "t1").unwrap();
    assert_eq!(ex["queued_tasks"].as_array().unwrap().len(), 0);
    let t = &ex["tasks"][0];
    assert_eq!(t["id"], "t1");
    assert_eq!(t["state"], "TASK_RUNNING");
    assert_eq!(t["resources"]["cpus"], 0.5);
    assert_eq!(t["statuses"][0]["state"], "TASK_RUNNING");
    assert_eq!(t["statuses"][0]["timestamp"], T0 + 2.0);
    assert_eq!(
        t["statuses"][0]["container_status"]["container_id"]["value"],
        spec.container_id.as_str(),
        "the Mesos CLI reads statuses[0].container_status.container_id"
    );
    // Custom executors name themselves in their tasks.
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t2"));
    let ex = h.executor_state("executors", "e1").unwrap();
    assert_eq!(ex["queued_tasks"][0]["executor_id"], "e1");
}

#[test]
fn finished_work_moves_to_the_completed_lists() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    h.update("t1", "t1", TaskState::Finished, 1);
    h.ack("t1", &uuid(1));
    h.exited("t1", 0);
    let s = h.state();
    assert_eq!(s["frameworks"].as_array().unwrap().len(), 0);
    let fw = &s["completed_frameworks"][0];
    assert_eq!(fw["id"], FW);
    assert_eq!(fw["executors"].as_array().unwrap().len(), 0);
    let ex = &fw["completed_executors"][0];
    assert_eq!(ex["id"], "t1");
    assert_eq!(ex["tasks"].as_array().unwrap().len(), 0);
    assert_eq!(ex["completed_tasks"][0]["id"], "t1");
    assert_eq!(ex["completed_tasks"][0]["state"], "TASK_FINISHED");
    assert!(ex["directory"].as_str().unwrap().starts_with(WORK_DIR));
}

#[test]
fn metrics_count_tasks_by_state() {
    let mut h = Harness::registered();
    let fw = plain();
    assert_eq!(h.metric("registered"), 1.0);
    assert_eq!(h.metric("uptime_secs"), 0.0);
    h.run(&fw, Some(custom_executor("e1")), exec_task("a"));
    h.run(&fw, Some(custom_executor("e1")), exec_task("b"));
    h.run(&fw, Some(custom_executor("e1")), exec_task("c"));
    h.run(&fw, None, task("d"));
    assert_eq!(h.metric("tasks_staging"), 4.0, "queued tasks are staging");
    assert_eq!(h.metric("executors_registering"), 2.0);
    assert_eq!(h.metric("executors_running"), 0.0);
    assert_eq!(h.metric("frameworks_active"), 1.0);
    h.subscribe("e1");
    assert_eq!(h.metric("tasks_staging"), 4.0, "launched but not started");
    assert_eq!(h.metric("executors_registering"), 1.0);
    assert_eq!(h.metric("executors_running"), 1.0);
    h.update("e1", "a", TaskState::Starting, 1);
    h.update("e1", "b", TaskState::Running, 2);
    h.update("e1", "c", TaskState::Running, 3);
    h.update("e1", "c", TaskState::Killing, 4);
    assert_eq!(h.metric("tasks_staging"), 1.0);
    assert_eq!(h.metric("tasks_starting"), 1.0);
    assert_eq!(h.metric("tasks_running"), 1.0);
    assert_eq!(h.metric("tasks_killing"), 1.0);
    h.update("e1", "a", TaskState::Finished, 5);
    h.update("e1", "b", TaskState::Failed, 6);
    h.update("e1", "c", TaskState::Killed, 7);
    assert_eq!(h.metric("tasks_starting"), 0.0);
    assert_eq!(h.metric("tasks_running"), 0.0);
    assert_eq!(h.metric("tasks_killing"), 0.0);
    assert_eq!(h.metric("tasks_finished"), 1.0);
    assert_eq!(h.metric("tasks_failed"), 1.0);
    assert_eq!(h.metric("tasks_killed"), 1.0);
    assert_eq!(h.metric("valid_status_updates"), 7.0);
    // Resources in use: e1's own (its tasks are over) plus queued `d`'s (a command
    // executor has none of its own), as Mesos' `Executor::allocatedResources`.
    assert!(
        (h.metric("cpus_used") - 0.6).abs() < 1e-9,
        "{}",
        h.metric("cpus_used")
    );
    assert!(
        (h.metric("mem_used") - 96.0).abs() < 1e-9,
        "{}",
        h.metric("mem_used")
    );
    let d = h.executor_state("executors", "d").unwrap();
    assert_eq!(d["resources"]["cpus"], 0.5, "queued task counted: {d}");
    assert_eq!(h.metric("cpus_total"), 4.0);
    assert_eq!(h.metric("mem_total"), 4096.0);
    h.at(T0 + 30.0);
    assert_eq!(h.metric("uptime_secs"), 30.0);
}
