//! RUN_TASK / RUN_TASK_GROUP: the container spec, queuing until SUBSCRIBE, SUBSCRIBED and
//! LAUNCH / LAUNCH_GROUP events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_agent_core::{ExecutorKind, Reply};
use strata_api::executor::{Event, Subscribe};
use strata_api::{EnvVar, Environment, TaskState};

#[test]
fn command_task_gets_one_container_with_the_mesos_environment() {
    let mut h = Harness::registered();
    h.run(&plain(), None, task("t1"));
    assert_eq!(h.kinds_all(), ["launch"], "nothing but the Launch");
    let spec = h.launch();
    assert_eq!(spec.kind, ExecutorKind::Command);
    assert_eq!(spec.framework_id, fid());
    assert_eq!(spec.executor_id, eid("t1"), "executor id = task id");
    assert_eq!(spec.task_id, Some(tid("t1")));
    assert!(!spec.checkpoint);
    assert_eq!(spec.user.as_deref(), Some("alice"), "the framework's user");
    let dir = sandbox("t1", &spec.container_id);
    assert_eq!(spec.directory, dir);
    for (name, value) in [
        ("MESOS_FRAMEWORK_ID", FW),
        ("MESOS_EXECUTOR_ID", "t1"),
        ("MESOS_AGENT_ENDPOINT", ADDRESS),
        ("MESOS_SLAVE_ID", AGENT_ID),
        ("MESOS_SLAVE_PID", &format!("slave(1)@{ADDRESS}")),
        ("MESOS_DIRECTORY", &dir),
        ("MESOS_CHECKPOINT", "0"),
        ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs"),
    ] {
        assert_eq!(env(&spec, name), Some(value), "{name}: {:?}", spec.env);
    }
    assert_eq!(
        env(&spec, "MESOS_RECOVERY_TIMEOUT"),
        None,
        "checkpointing only"
    );
    assert_eq!(env(&spec, "MESOS_SUBSCRIPTION_BACKOFF_MAX"), None);
    // The task waits for the executor.
    assert_eq!(
        h.task_list("t1", "queued_tasks"),
        [("t1".into(), "TASK_STAGING".into())]
    );
    assert!(h.task_list("t1", "tasks").is_empty());
}

#[test]
fn checkpointing_framework_sets_the_recovery_variables() {
    let mut h = Harness::registered();
    h.run(&framework(true, &[]), None, task("t1"));
    let spec = h.launch();
    assert!(spec.checkpoint);
    assert_eq!(env(&spec, "MESOS_CHECKPOINT"), Some("1"));
    assert_eq!(env(&spec, "MESOS_RECOVERY_TIMEOUT"), Some("15mins"));
    assert!(env(&spec, "MESOS_SUBSCRIPTION_BACKOFF_MAX").is_some());
}

#[test]
fn shutdown_grace_period_is_written_as_stout_prints_durations() {
    let mut h = Harness::registered();
    for (id, secs, text) in [
        ("e1", 60.0, "1mins"),
        ("e2", 1.5, "1500ms"),
        ("e3", 90.0, "90secs"),
        ("e4", 0.25, "250ms"),
        ("e5", 3600.0, "1hrs"),
    ] {
        let mut ex = custom_executor(id);
        ex.shutdown_grace_period = grace(secs);
        h.run(&plain(), Some(ex), exec_task(&format!("t-{id}")));
        let spec = h.launch();
        assert_eq!(
            env(&spec, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"),
            Some(text),
            "{secs}s"
        );
    }
}

#[test]
fn custom_executor_gets_its_command_environment_uris_and_user() {
    let mut h = Harness::registered();
    let mut ex = custom_executor("e1");
    let cmd = ex.command.as_mut().unwrap();
    cmd.environment = Some(Environment {
        variables: vec![EnvVar {
            name: "GREETING".into(),
            kind: None,
            value: Some("hi".into()),
            secret: None,
        }],
    });
    cmd.user = Some("bob".into());
    cmd.uris = vec![strata_api::CommandUri {
        value: "http://example.test/exec.tgz".into(),
        executable: None,
        extract: true,
        cache: None,
        output_file: None,
    }];
    h.run(&plain(), Some(ex.clone()), exec_task("t1"));
    let spec = h.launch();
    assert_eq!(spec.kind, ExecutorKind::Custom(ex.command.clone().unwrap()));
    assert_eq!(spec.executor_id, eid("e1"));
    assert_eq!(env(&spec, "MESOS_EXECUTOR_ID"), Some("e1"));
    assert_eq!(env(&spec, "GREETING"), Some("hi"));
    assert_eq!(spec.user.as_deref(), Some("bob"));
    assert_eq!(spec.uris.len(), 1);
    assert_eq!(spec.directory, sandbox("e1", &spec.container_id));
}

#[test]
fn subscribe_gets_subscribed_then_the_queued_launch() {
    let mut h = Harness::registered();
    h.run(&plain(), None, task("t1"));
    let container = h.launch().container_id;
    h.started("t1", 4242);
    assert!(
        h.out.is_empty(),
        "a started container says nothing: {:#?}",
        h.out
    );
    let conn = h.subscribe("t1");
    assert_eq!(h.kinds(conn), ["SUBSCRIBED", "LAUNCH"]);
    let events = h.events(conn);
    let Event::Subscribed(s) = &events[0] else {
        unreachable!()
    };
    assert_eq!(s.executor_info.executor_id, eid("t1"));
    assert_eq!(s.executor_info.framework_id, Some(fid()));
    assert_eq!(
        s.executor_info.name.as_deref(),
        Some("Command Executor (Task: t1) (Command: sh -c 'sleep 1000')")
    );
    assert_eq!(s.framework_info.id, Some(fid()));
    assert_eq!(s.framework_info.name, "fw");
    assert_eq!(s.agent_info.id, Some(aid()));
    assert_eq!(s.agent_info.hostname, "agent7.test");
    assert_eq!(s.container_id, Some(container));
    let Event::Launch(l) = &events[1] else {
        unreachable!()
    };
    assert_eq!(l.task, task("t1"));
    assert!(h.to_master().is_empty(), "{:#?}", h.out);
    assert_eq!(
        h.task_list("t1", "tasks"),
        [("t1".into(), "TASK_STAGING".into())]
    );
    assert!(h.task_list("t1", "queued_tasks").is_empty());
}

#[test]
fn second_task_for_a_running_custom_executor_is_launched_at_once() {
    let mut h = Harness::registered();
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t1"));
    h.launch();
    let conn = h.subscribe("e1");
    assert_eq!(h.kinds(conn), ["SUBSCRIBED", "LAUNCH"]);
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t2"));
    assert!(h.launches().is_empty(), "no second container");
    assert_eq!(h.kinds(conn), ["LAUNCH"]);
    let Event::Launch(l) = &h.events(conn)[0] else {
        unreachable!()
    };
    assert_eq!(l.task.task_id, tid("t2"));
}

#[test]
fn tasks_for_a_registering_executor_are_delivered_in_order_on_subscribe() {
    let mut h = Harness::registered();
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t1"));
    h.launch();
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t2"));
    assert!(
        h.out.is_empty(),
        "queued, no second container: {:#?}",
        h.out
    );
    let conn = h.subscribe("e1");
    assert_eq!(h.kinds(conn), ["SUBSCRIBED", "LAUNCH", "LAUNCH"]);
    let ids: Vec<_> = h
        .events(conn)
        .into_iter()
        .filter_map(|e| match e {
            Event::Launch(l) => Some(l.task.task_id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["t1", "t2"]);
}

#[test]
fn task_group_on_the_default_executor_is_one_launch_group() {
    let mut h = Harness::registered();
    let group = vec![exec_task("g1"), exec_task("g2")];
    h.run_group(&plain(), default_executor("d1"), group.clone());
    let spec = h.launch();
    assert_eq!(spec.kind, ExecutorKind::Default);
    assert_eq!(spec.executor_id, eid("d1"));
    let conn = h.subscribe("d1");
    assert_eq!(h.kinds(conn), ["SUBSCRIBED", "LAUNCH_GROUP"]);
    let Event::LaunchGroup(g) = &h.events(conn)[1] else {
        unreachable!()
    };
    assert_eq!(g.task_group.tasks, group);
    // A second group for the running executor: LAUNCH_GROUP at once, no new container.
    h.run_group(&plain(), default_executor("d1"), vec![exec_task("g3")]);
    assert!(h.launches().is_empty());
    assert_eq!(h.kinds(conn), ["LAUNCH_GROUP"]);
    let mut tasks: Vec<_> = h
        .task_list("d1", "tasks")
        .into_iter()
        .map(|t| t.0)
        .collect();
    tasks.sort();
    assert_eq!(tasks, ["g1", "g2", "g3"]);
}

#[test]
fn resubscribe_replaces_the_old_stream() {
    let mut h = Harness::registered();
    h.running_command_task(&plain(), "t1");
    let old = h.conn("t1");
    let (new, reply) = h.subscribe_with("t1", Subscribe::default());
    assert_eq!(reply, Reply::Stream);
    assert_eq!(h.closed(), [old]);
    assert_eq!(
        h.kinds(new),
        ["SUBSCRIBED"],
        "the task is not launched twice"
    );
    // Events now go to the new stream.
    h.update("t1", "t1", TaskState::Running, 1);
    assert_eq!(h.kinds(new), ["ACKNOWLEDGED"]);
    assert!(h.events(old).is_empty());
}

#[test]
fn hello_carries_the_agent_id_once_registered() {
    let mut h = Harness::new();
    let hello = h.a.hello();
    assert_eq!(hello.agent_info.id, None, "a new agent");
    assert_eq!(hello.address, ADDRESS);
    assert_eq!(hello.protocol, strata_api::agent_link::PROTOCOL_VERSION);
    h.register();
    assert_eq!(h.a.hello().agent_info.id, Some(aid()));
    assert!(h.a.master_connected());
    assert_eq!(h.metric("registered"), 1.0);
    h.disconnect();
    assert_eq!(h.metric("registered"), 0.0);
}

#[test]
fn ping_is_answered_with_pong() {
    let mut h = Harness::registered();
    h.master(strata_api::agent_link::ToAgent::Ping);
    assert_eq!(h.kinds_all(), ["master:PONG"]);
}

#[test]
fn hello_lists_every_live_executor_but_command_executors() {
    let mut h = Harness::registered();
    let fw = plain();
    h.run(&fw, None, task("cmd"));
    h.run_group(&fw, default_executor("d1"), vec![exec_task("g1")]);
    h.run(&fw, Some(custom_executor("e1")), exec_task("t1"));
    h.run(&fw, Some(custom_executor("gone")), exec_task("t2"));
    h.exited("gone", 9); // its TASK_FAILED is unacknowledged: still known, but exited
    let hello = h.a.hello();
    let mut executors: Vec<_> = hello
        .executors
        .iter()
        .map(|e| e.executor_id.to_string())
        .collect();
    executors.sort();
    assert_eq!(executors, ["d1", "e1"]);
    assert!(hello
        .executors
        .iter()
        .all(|e| e.framework_id == Some(fid())));
    let mut tasks: Vec<_> = hello
        .tasks
        .iter()
        .map(|t| (t.task_id.to_string(), t.state))
        .collect();
    tasks.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        tasks,
        [
            ("cmd".into(), TaskState::Staging),
            ("g1".into(), TaskState::Staging),
            ("t1".into(), TaskState::Staging),
            ("t2".into(), TaskState::Failed),
        ],
        "queued tasks are reported as STAGING, terminal unacknowledged ones too"
    );
    assert_eq!(hello.frameworks, [fw]);
}

#[test]
fn tasks_wait_for_the_container_to_be_started_and_isolated() {
    // An executor may subscribe before the shell has isolated its container: a task it
    // forked then would escape the container's cgroups, so nothing is sent until
    // ContainerStarted.
    let mut h = Harness::registered();
    h.no_auto_start = true;
    h.run(&plain(), Some(custom_executor("e1")), exec_task("t1"));
    let conn = h.subscribe("e1");
    assert_eq!(h.kinds(conn), ["SUBSCRIBED"]);
    h.started("e1", 77);
    let events = h.events(conn);
    let Some(Event::Launch(l)) = events.first() else {
        panic!("{:#?}", h.out)
    };
    assert_eq!(l.task.task_id, tid("t1"));
}
