//! Script tests of DOCKER tasks in the core: the container is decided at LAUNCH (named
//! after the container id from SUBSCRIBED), refused when Docker is disabled or the
//! TaskInfo cannot become a container, and a failed start is a container launch failure;
//! an OOM kill is a memory limitation, and probes run in and reach the container.

use super::*;

fn docker_task(id: &str, docker: serde_json::Value) -> TaskInfo {
    let mut t = task(id);
    t.container =
        Some(serde_json::from_value(json!({"type": "DOCKER", "docker": docker})).unwrap());
    t
}

fn subscribed_in(container: &str) -> Input {
    let s: Subscribed = serde_json::from_value(json!({
        "executor_info": {"executor_id": {"value": "ex"}},
        "framework_info": {"user": "u", "name": "fw", "id": {"value": "fw"}},
        "agent_info": {"hostname": "h"},
        "container_id": {"value": container},
    }))
    .unwrap();
    event(Event::Subscribed(s))
}

fn docker_config(enabled: bool) -> CoreConfig {
    let mut cfg = config(false);
    cfg.docker = DockerSettings {
        enabled,
        framework_id: "fw".into(),
        agent_id: Some("agent-S1".into()),
        directory: "/sb".into(),
        volumes: Default::default(),
    };
    cfg
}

fn at(ms: u64) -> Now {
    Now {
        mono: Duration::from_millis(ms),
        wall_secs: 1_700_000_000.0,
    }
}

#[test]
fn launch_spawns_the_planned_container() {
    let mut core = new_core(docker_config(true));
    core.step(at(0), Input::Start);
    core.step(at(1), subscribed_in("c-7"));
    let effects = core.step(at(2), launch(docker_task("t", json!({"image": "busybox"}))));
    let spawn = effects.iter().find_map(|e| match e {
        Effect::Spawn(r) => Some(r.clone()),
        _ => None,
    });
    let run = spawn.and_then(|r| r.docker).expect("a docker spawn");
    assert_eq!(run.name, "mesos-c-7");
    assert_eq!(run.labels["strata.agent"], "agent-S1");
    assert_eq!(run.labels["strata.task"], "t");
    assert_eq!(run.binds, ["/sb:/mnt/mesos/sandbox"]);
    assert_eq!(
        core.task_state(&TaskId::new("t")),
        Some(TaskState::Starting)
    );
}

#[test]
fn disabled_docker_fails_the_task_at_once() {
    let failed = "UPDATE t TASK_FAILED REASON_CONTAINER_LAUNCH_FAILED 'Docker containerizer is not enabled on this agent (--containerizers)'";
    run(
        &mut new_core(docker_config(false)),
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (1, subscribed(&[]), vec![]),
            (
                2,
                launch(docker_task("t", json!({"image": "i"}))),
                vec![failed],
            ),
            (
                3,
                ack("t", 1),
                vec!["EXIT 0 'All tasks ended and their terminal updates were acknowledged'"],
            ),
        ],
    );
}

#[test]
fn unusable_docker_info_fails_after_starting() {
    let info = docker_task(
        "t",
        json!({"image": "i", "parameters": [{"key": "cpu-shares", "value": "9"}]}),
    );
    let effects = new_core(docker_config(true));
    let mut core = effects;
    core.step(at(0), Input::Start);
    core.step(at(1), subscribed(&[]));
    let got: Vec<String> = core.step(at(2), launch(info)).iter().map(summary).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], "UPDATE t TASK_STARTING");
    assert!(
        got[1].starts_with("UPDATE t TASK_FAILED 'Failed to create docker run options: unsupported docker parameter 'cpu-shares'; supported: add-host"),
        "{}",
        got[1]
    );
}

#[test]
fn a_failed_pull_is_a_container_launch_failure() {
    let failed = "UPDATE t TASK_FAILED REASON_CONTAINER_LAUNCH_FAILED 'Failed to launch container: Failed to pull image 'nope:latest': not found'";
    run(
        &mut new_core(docker_config(true)),
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (1, subscribed(&[]), vec![]),
            (
                2,
                launch(docker_task("t", json!({"image": "nope"}))),
                vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"],
            ),
            (
                3,
                Input::Spawned {
                    task_id: TaskId::new("t"),
                    result: Err("Failed to pull image 'nope:latest': not found".into()),
                },
                vec![failed],
            ),
        ],
    );
}

#[test]
fn a_killed_container_is_signalled_with_grace_and_reported_killed() {
    let killed = Input::Exited {
        task_id: TaskId::new("t"),
        termination: crate::docker::exit_termination(137),
        oom: None,
    };
    run(
        &mut new_core(docker_config(true)),
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (1, subscribed(&[]), vec![]),
            (
                2,
                launch(docker_task("t", json!({"image": "i"}))),
                vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"],
            ),
            (3, spawned("t"), vec!["UPDATE t TASK_RUNNING"]),
            (4, kill("t", Some(1_000)), vec!["TERM t"]),
            (1_004, Input::Tick, vec!["KILL t"]),
            (
                1_100,
                killed,
                vec!["UPDATE t TASK_KILLED 'Command terminated with signal Killed'"],
            ),
        ],
    );
}

#[test]
fn an_oom_killed_container_fails_with_the_memory_limitation() {
    let oom = Input::Exited {
        task_id: TaskId::new("t"),
        termination: crate::docker::exit_termination(137),
        oom: Some(crate::termination::OomKill {
            memory_limit_bytes: Some(32 << 20),
        }),
    };
    let failed = "UPDATE t TASK_FAILED REASON_CONTAINER_LIMITATION_MEMORY 'Memory limit exceeded: Requested: 32MB (the kernel's OOM killer ended a process of the container; Command terminated with signal Killed)'";
    run(
        &mut new_core(docker_config(true)),
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (1, subscribed(&[]), vec![]),
            (
                2,
                launch(docker_task("t", json!({"image": "i"}))),
                vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"],
            ),
            (3, spawned("t"), vec!["UPDATE t TASK_RUNNING"]),
            (4, oom, vec![failed]),
        ],
    );
}

/// The probe the core asks for first, for a DOCKER task on `network` whose container
/// got `ips`, with `health` as its health check.
fn first_probe(network: &str, ips: &[&str], health: serde_json::Value) -> Option<Probe> {
    let mut info = docker_task("t", json!({"image": "i", "network": network}));
    info.health_check = Some(serde_json::from_value(health).unwrap());
    let mut core = new_core(docker_config(true));
    core.step(at(0), Input::Start);
    core.step(at(1), subscribed_in("c-9"));
    core.step(at(2), launch(info));
    let started = Started {
        container_ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
    };
    let spawned = Input::Spawned {
        task_id: TaskId::new("t"),
        result: Ok(started),
    };
    let effects = [core.step(at(3), spawned), core.step(at(3), Input::Tick)].concat();
    effects.into_iter().find_map(|e| match e {
        Effect::Probe(r) => Some(r.probe),
        _ => None,
    })
}

#[test]
fn probes_of_a_container_run_in_it_and_reach_its_address() {
    let command =
        json!({"type": "COMMAND", "command": {"value": "test -f /tmp/ok"}, "delay_seconds": 0});
    let http = json!({"type": "HTTP", "http": {"port": 8080, "path": "/"}, "delay_seconds": 0});
    let exec = Some(Probe::Exec {
        container: "mesos-c-9".into(),
        command: strata_api::CommandInfo::shell("test -f /tmp/ok"),
    });
    let url = |u: &str| Some(Probe::Http { url: u.into() });
    let cases = [
        ("HOST", vec![], command.clone(), exec.clone()),
        ("BRIDGE", vec!["172.17.0.4"], command, exec),
        (
            "BRIDGE",
            vec!["172.17.0.4"],
            http.clone(),
            url("http://172.17.0.4:8080/"),
        ),
        ("HOST", vec![], http.clone(), url("http://127.0.0.1:8080/")),
        // No address to reach: the task runs without its health check, as with an
        // invalid one.
        ("NONE", vec![], http, None),
    ];
    for (network, ips, health, expected) in cases {
        let got = first_probe(network, &ips, health.clone());
        assert_eq!(got, expected, "{network} {ips:?} {health}");
    }
}
