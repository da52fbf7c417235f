//! Unit tests of the pure DOCKER parts: TaskInfo → `DockerRun` (command, environment,
//! limits, volumes, network and port mappings, parameters) and `DockerRun` → the Engine
//! API's create body, each table-driven through one `check` helper.

use super::params::{parse_bool, size};
use super::spec::{DockerLimits, PortBinding};
use super::*;
use crate::termination::Termination;
use serde_json::{json, Value};
use std::path::Path;
use strata_api::TaskInfo;

const MIB: i64 = 1024 * 1024;

/// A task with `cpus:1;mem:128;ports:[31000-31009]`; `extra` is merged into the TaskInfo
/// and `docker` into its DockerInfo.
fn task(extra: Value, docker: Value) -> TaskInfo {
    let mut t = json!({
        "name": "t", "task_id": {"value": "t1"}, "agent_id": {"value": "a"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 128.0}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31009}]}}
        ],
        "command": {"value": "echo hi"},
        "container": {"type": "DOCKER", "docker": {"image": "busybox"}}
    });
    merge(&mut t, extra);
    merge(&mut t["container"]["docker"], docker);
    serde_json::from_value(t).unwrap()
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn plan_of(t: &TaskInfo) -> Result<DockerRun, PlanError> {
    let volumes = [(
        "data".to_string(),
        std::path::PathBuf::from("/work/volumes/roles/eng/v1"),
    )]
    .into();
    let ctx = DockerContext {
        container_id: Some("c1"),
        executor_id: "t1",
        framework_id: "fw",
        agent_id: Some("S0"),
        directory: Path::new("/sandbox"),
        volumes: &volumes,
    };
    plan(t, &ctx)
}

#[test]
fn persistent_volumes_are_bind_mounted_into_the_sandbox() {
    let mut t = task(json!({}), json!({}));
    let vol = json!({"name": "disk", "type": "SCALAR", "scalar": {"value": 64},
        "role": "eng", "reservation": {},
        "disk": {"persistence": {"id": "v1"}, "volume": {"mode": "RW", "container_path": "data"}}});
    let ro = json!({"name": "disk", "type": "SCALAR", "scalar": {"value": 8},
        "role": "eng", "reservation": {},
        "disk": {"persistence": {"id": "v2"}, "volume": {"mode": "RO", "container_path": "other"}}});
    t.resources.push(serde_json::from_value(vol).unwrap());
    t.resources.push(serde_json::from_value(ro).unwrap());
    let run = plan_of(&t).unwrap();
    assert!(
        run.binds
            .contains(&"/work/volumes/roles/eng/v1:/mnt/mesos/sandbox/data:rw".to_string()),
        "{:?}",
        run.binds
    );
    assert_eq!(
        run.binds.iter().filter(|b| b.contains("other")).count(),
        0,
        "no host path known"
    );
}

/// Plans `t` and compares `view(run)` with `expected` (or the error text).
fn check<T: PartialEq + std::fmt::Debug>(
    t: TaskInfo,
    view: impl Fn(&DockerRun) -> T,
    expected: Result<T, &str>,
) {
    let got = plan_of(&t).map(|r| view(&r)).map_err(|e| e.to_string());
    assert_eq!(got, expected.map_err(str::to_string));
}

#[test]
fn command_follows_mesos() {
    let argv = |r: &DockerRun| (r.entrypoint.clone(), r.cmd.clone());
    let sh = Some(vec!["/bin/sh".to_string()]);
    check(
        task(json!({}), json!({})),
        argv,
        Ok((sh, vec!["-c".into(), "echo hi".into()])),
    );
    let exec =
        json!({"command": {"shell": false, "value": "httpd", "arguments": ["-f", "-p", "80"]}});
    check(
        task(exec, json!({})),
        argv,
        Ok((
            None,
            vec!["httpd".into(), "-f".into(), "-p".into(), "80".into()],
        )),
    );
    let image_default = json!({"command": {"shell": false, "arguments": ["x"]}});
    check(
        task(image_default, json!({})),
        argv,
        Ok((None, vec!["x".into()])),
    );
    let no_value = json!({"command": {"shell": true}});
    check(
        task(no_value, json!({})),
        argv,
        Err("Shell specified but no command value provided"),
    );
}

#[test]
fn environment_adds_mesos_variables_and_parameters_win() {
    let extra = json!({"command": {"value": "true", "environment": {"variables": [
        {"name": "A", "value": "1"}, {"name": "MESOS_SANDBOX", "value": "/elsewhere"},
        {"name": "S", "type": "SECRET", "secret": {"type": "VALUE"}}]}}});
    let params =
        json!({"parameters": [{"key": "env", "value": "A=2"}, {"key": "e", "value": "B=3"}]});
    check(
        task(extra, params),
        |r| r.env.clone(),
        Ok(vec![
            "A=2".into(),
            "MESOS_SANDBOX=/mnt/mesos/sandbox".into(),
            "MESOS_TASK_ID=t1".into(),
            "MESOS_CONTAINER_NAME=mesos-c1".into(),
            "B=3".into(),
        ]),
    );
}

#[test]
fn names_and_labels_identify_the_container() {
    let t = task(json!({}), json!({}));
    let run = plan_of(&t).unwrap();
    assert_eq!(run.name, "mesos-c1");
    let labels: Vec<_> = run.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(
        labels,
        [
            "strata.agent=S0",
            "strata.executor=t1",
            "strata.framework=fw",
            "strata.task=t1"
        ]
    );
    let none = Default::default();
    let ctx = DockerContext {
        container_id: None,
        executor_id: "ex",
        framework_id: "f",
        agent_id: None,
        directory: Path::new("/"),
        volumes: &none,
    };
    assert_eq!(container_name(&ctx), "mesos-ex");
}

#[test]
fn resources_become_cgroup_limits() {
    let limits = |r: &DockerRun| r.limits.clone();
    let l = |shares, quota, mem, reservation| DockerLimits {
        cpu_shares: shares,
        cpu_quota_us: quota,
        memory_bytes: mem,
        memory_reservation_bytes: reservation,
    };
    check(
        task(json!({}), json!({})),
        limits,
        Ok(l(Some(1024), Some(100_000), Some(128 * MIB), None)),
    );
    let tiny = json!({"resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.001}},
                                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 4.0}}]});
    check(
        task(tiny, json!({})),
        limits,
        Ok(l(Some(2), Some(1_000), Some(32 * MIB), None)),
    );
    let capped = json!({"limits": {"cpus": {"value": 2}, "mem": {"value": 256}}});
    check(
        task(capped, json!({})),
        limits,
        Ok(l(
            Some(1024),
            Some(200_000),
            Some(256 * MIB),
            Some(128 * MIB),
        )),
    );
    let unlimited =
        json!({"limits": {"cpus": {"value": "Infinity"}, "mem": {"value": "Infinity"}}});
    check(
        task(unlimited, json!({})),
        limits,
        Ok(l(Some(1024), None, None, Some(128 * MIB))),
    );
}

#[test]
fn volumes_bind_like_mesos_and_the_sandbox_comes_last() {
    let binds = |r: &DockerRun| r.binds.clone();
    let vols =
        |v: Value| json!({"container": {"type": "DOCKER", "docker": {"image": "i"}, "volumes": v}});
    let v = vols(json!([
        {"mode": "RO", "container_path": "/etc/x", "host_path": "/srv/x"},
        {"mode": "RW", "container_path": "data", "host_path": "/srv/data"},
        {"mode": "RW", "container_path": "/cache", "host_path": "cache"},
        {"mode": "RW", "container_path": "/named", "source": {"type": "DOCKER_VOLUME", "docker_volume": {"name": "vol1"}}}
    ]));
    check(
        task(v, json!({})),
        binds,
        Ok(vec![
            "/srv/x:/etc/x:ro".into(),
            "/srv/data:/mnt/mesos/sandbox/data:rw".into(),
            "/sandbox/cache:/cache:rw".into(),
            "vol1:/named:rw".into(),
            "/sandbox:/mnt/mesos/sandbox".into(),
        ]),
    );
    let both_relative = vols(json!([{"mode": "RW", "container_path": "a", "host_path": "b"}]));
    check(
        task(both_relative, json!({})),
        binds,
        Err("Both host_path 'b' and container_path 'a' of a volume are relative"),
    );
}

#[test]
fn networks_and_port_mappings() {
    let net = |r: &DockerRun| (r.network.clone(), r.ports.clone());
    let bridge = json!({"network": "BRIDGE", "port_mappings": [{"host_port": 31005, "container_port": 8080}]});
    let bound = PortBinding {
        host_port: 31005,
        container_port: 8080,
        protocol: "tcp".into(),
    };
    check(
        task(json!({}), bridge),
        net,
        Ok(("bridge".into(), vec![bound])),
    );
    check(task(json!({}), json!({})), net, Ok(("host".into(), vec![])));
    check(
        task(json!({}), json!({"network": "NONE"})),
        net,
        Ok(("none".into(), vec![])),
    );
    let outside =
        json!({"network": "BRIDGE", "port_mappings": [{"host_port": 80, "container_port": 80}]});
    check(
        task(json!({}), outside),
        net,
        Err("Port [80] not included in resources"),
    );
    let on_host = json!({"port_mappings": [{"host_port": 31000, "container_port": 80}]});
    check(
        task(json!({}), on_host),
        net,
        Err("Port mappings are only supported for bridge and user-defined networks"),
    );
    check(
        task(json!({}), json!({"network": "USER"})),
        net,
        Err("No network info found in container info"),
    );
    let user = json!({"container": {"type": "DOCKER", "docker": {"image": "i", "network": "USER"}, "network_infos": [{"name": "mynet"}]}});
    check(task(user, json!({})), net, Ok(("mynet".into(), vec![])));
    let param = json!({"parameters": [{"key": "net", "value": "none"}, {"key": "network", "value": "ignored"}]});
    check(task(json!({}), param), net, Ok(("none".into(), vec![])));
}

#[test]
fn parameters_map_or_are_rejected() {
    let params = |p: Value| json!({"parameters": p});
    let opts = |r: &DockerRun| {
        let o = &r.options;
        (
            o.user.clone(),
            o.working_dir.clone(),
            o.memory_swap_bytes,
            r.labels.get("team").cloned(),
        )
    };
    let p = params(
        json!([{"key": "user", "value": "nobody"}, {"key": "workdir", "value": "/w"},
        {"key": "memory-swap", "value": "1g"}, {"key": "label", "value": "team=a"}]),
    );
    check(
        task(json!({}), p),
        opts,
        Ok((
            Some("nobody".into()),
            Some("/w".into()),
            Some(1 << 30),
            Some("a".into()),
        )),
    );
    let unknown = params(json!([{"key": "cpus", "value": "2"}]));
    let err = plan_of(&task(json!({}), unknown)).unwrap_err();
    assert!(
        matches!(&err, PlanError::UnsupportedParameter { key } if key == "cpus"),
        "{err}"
    );
    let bad = params(json!([{"key": "memory-swap", "value": "lots"}]));
    check(
        task(json!({}), bad),
        opts,
        Err("invalid value 'lots' for docker parameter 'memory-swap': expected a size"),
    );
    let ours = params(json!([{"key": "label", "value": "strata.agent=x"}]));
    check(task(json!({}), ours), opts, Err("invalid value 'strata.agent=x' for docker parameter 'label': labels under 'strata.' are set by Strata"));
}

#[test]
fn sizes_and_bools_parse_like_the_docker_cli() {
    let cases = [
        ("512", Some(512)),
        ("1k", Some(1024)),
        ("64m", Some(64 * MIB)),
        ("1.5GB", Some(3 << 29)),
        ("2gib", Some(2 << 30)),
        ("-1", Some(-1)),
        ("x", None),
        ("1q", None),
        ("", None),
    ];
    for (text, expected) in cases {
        assert_eq!(size(text), expected, "{text}");
    }
    assert_eq!(
        (parse_bool("true"), parse_bool("0"), parse_bool("yes")),
        (Some(true), Some(false), None)
    );
}

#[test]
fn create_body_carries_the_plan() {
    let bridge = json!({"network": "BRIDGE", "port_mappings": [{"host_port": 31001, "container_port": 80, "protocol": "udp"}]});
    let body = create_body(&plan_of(&task(json!({}), bridge)).unwrap());
    let v = serde_json::to_value(&body).unwrap();
    assert_eq!(v["Image"], "busybox:latest");
    assert_eq!(v["Entrypoint"], json!(["/bin/sh"]));
    assert_eq!(v["ExposedPorts"], json!({"80/udp": {}}));
    let host = &v["HostConfig"];
    assert_eq!(
        host["PortBindings"],
        json!({"80/udp": [{"HostPort": "31001"}]})
    );
    assert_eq!(
        (host["NetworkMode"].clone(), host["Memory"].clone()),
        (json!("bridge"), json!(128 * MIB))
    );
    assert_eq!(
        (
            host["CpuShares"].clone(),
            host["CpuQuota"].clone(),
            host["CpuPeriod"].clone()
        ),
        (json!(1024), json!(100_000), json!(100_000))
    );
    assert_eq!(host["Binds"], json!(["/sandbox:/mnt/mesos/sandbox"]));
    assert_eq!(v["Labels"]["strata.agent"], "S0");
}

#[test]
fn image_references_and_exit_codes() {
    for (image, expected) in [
        ("busybox", "busybox:latest"),
        ("127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:latest"),
        ("a/b:1.2", "a/b:1.2"),
        ("a@sha256:00", "a@sha256:00"),
    ] {
        assert_eq!(image_reference(image), expected);
    }
    let signaled = |signal| Termination::Signaled {
        signal,
        core_dumped: false,
    };
    let cases = [
        (0, Termination::Exited(0)),
        (3, Termination::Exited(3)),
        (137, signaled(9)),
        (143, signaled(15)),
        (255, Termination::Exited(255)),
        (-1, Termination::Exited(-1)),
    ];
    for (code, expected) in cases {
        assert_eq!(exit_termination(code), expected, "{code}");
    }
}

/// A container inspection from its JSON (Docker's PascalCase wire form).
fn inspected(v: Value) -> bollard::models::ContainerInspectResponse {
    serde_json::from_value(v).unwrap()
}

#[test]
fn inspection_gives_the_addresses_probes_reach() {
    let net = |name: &str, v4: &str, v6: &str| json!({"NetworkSettings": {"Networks": {name: {"IPAddress": v4, "GlobalIPv6Address": v6}}}});
    let two = json!({"NetworkSettings": {"Networks": {
        "aaa": {"IPAddress": "10.0.0.9", "GlobalIPv6Address": ""},
        "mine": {"IPAddress": "10.1.0.2", "GlobalIPv6Address": "fd00::2"}}}});
    let cases: Vec<(Value, &str, Vec<&str>)> = vec![
        (
            net("bridge", "172.17.0.3", ""),
            "bridge",
            vec!["172.17.0.3"],
        ),
        (
            net("bridge", "172.17.0.3", "fd00::3"),
            "bridge",
            vec!["172.17.0.3", "fd00::3"],
        ),
        (net("host", "", ""), "host", vec![]),
        (net("none", "", ""), "none", vec![]),
        (net("bridge", "not-an-ip", "::"), "bridge", vec![]),
        (two.clone(), "mine", vec!["10.1.0.2", "10.0.0.9", "fd00::2"]),
        (two, "other", vec!["10.0.0.9", "10.1.0.2", "fd00::2"]),
        (json!({}), "bridge", vec![]),
    ];
    for (inspect, network, expected) in cases {
        let got = container_ips(&inspected(inspect.clone()), network);
        let expected: Vec<std::net::IpAddr> = expected.iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(got, expected, "{inspect} on {network}");
    }
}

#[test]
fn inspection_tells_an_oom_kill_and_the_memory_limit() {
    use crate::termination::OomKill;
    let cases = [
        (
            json!({"State": {"OOMKilled": true}, "HostConfig": {"Memory": 32 * MIB}}),
            Some(OomKill {
                memory_limit_bytes: Some(32 << 20),
            }),
        ),
        (
            json!({"State": {"OOMKilled": true}, "HostConfig": {"Memory": 0}}),
            Some(OomKill {
                memory_limit_bytes: None,
            }),
        ),
        (
            json!({"State": {"OOMKilled": false}, "HostConfig": {"Memory": 32 * MIB}}),
            None,
        ),
        (json!({}), None),
    ];
    for (inspect, expected) in cases {
        assert_eq!(oom_kill(&inspected(inspect.clone())), expected, "{inspect}");
    }
}
