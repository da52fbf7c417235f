//! DOCKER tasks with a real Docker daemon (`.ci/docker-setup.sh` imports the image
//! `strata-test/busybox:latest` and serves it from a local registry on 127.0.0.1:5000):
//! output in the sandbox, exit statuses, bridge networking with a port mapping, kill and
//! removal, memory limits and OOM kills, force pulls and pull failures, agent restarts,
//! containers of dead executors removed by the agent, and health checks and checks that
//! run inside the container (COMMAND) or reach its address (HTTP, TCP). Skipped with a
//! reason when Docker or the image is missing; under CI=true they must run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::process::Command;
use strata_api::scheduler::Event;
use strata_api::{
    AgentId, CheckType, ContainerInfo, FrameworkId, Reason, TaskInfo, TaskState, TaskStatus,
};
use strata_resources::{Resources, WireFormat};
use strata_testkit::framework::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");
const IMAGE: &str = "strata-test/busybox:latest";
const REGISTRY_IMAGE: &str = "127.0.0.1:5000/strata-test/busybox:latest";

/// `docker args…`: (success, stdout).
fn docker(args: &[&str]) -> (bool, String) {
    match Command::new("docker").args(args).output() {
        Ok(out) => (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        ),
        Err(_) => (false, String::new()),
    }
}

/// Whether the Docker tests can run: a daemon and the test image. Under CI=true a missing
/// one fails the test; elsewhere it is skipped with the reason.
fn docker_ready() -> bool {
    let reason = if !docker(&["info"]).0 {
        "no reachable Docker daemon"
    } else if !docker(&["image", "inspect", IMAGE]).0 {
        "the test image is missing (run .ci/docker-setup.sh as root)"
    } else {
        return true;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run the Docker tests: {reason}"
    );
    eprintln!("SKIPPED: {reason}");
    false
}

/// Removes every container of a framework when the test ends (the daemons' test fixture
/// kills executors with SIGKILL, which leaves their containers behind).
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (_, ids) = docker(&["ps", "-aq", "--filter", &format!("label={}", self.0)]);
        for id in ids.split_whitespace() {
            docker(&["rm", "-f", id]);
        }
    }
}

fn cleanup(fw: &Fw) -> Cleanup {
    Cleanup(format!("strata.framework={}", fw.id()))
}

fn container(docker: Value) -> ContainerInfo {
    serde_json::from_value(json!({"type": "DOCKER", "docker": docker})).unwrap()
}

fn resources(flag: &str) -> Vec<strata_api::WireResource> {
    Resources::parse_flag(flag, "*")
        .unwrap()
        .to_wire(WireFormat::PreRefinement)
}

/// Launches `cmd` in `image` (0.1 cpu, 32 MB unless `edit` changes it).
async fn launch_in(fw: &mut Fw, task: &str, cmd: &str, image: &str) -> AgentId {
    launch_with(fw, task, cmd, json!({"image": image}), |_| {}).await
}

async fn launch_with(
    fw: &mut Fw,
    task: &str,
    cmd: &str,
    docker_info: Value,
    edit: impl FnOnce(&mut TaskInfo),
) -> AgentId {
    fw.launch_with(task, cmd, |t| {
        t.container = Some(container(docker_info));
        edit(t);
    })
    .await
}

/// Names of the containers (running or not) of `task` of framework `fid`.
fn containers_of(fid: &FrameworkId, task: &str) -> Vec<String> {
    let (_, names) = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=strata.framework={fid}"),
        "--filter",
        &format!("label=strata.task={task}"),
        "--format",
        "{{.Names}}",
    ]);
    names.split_whitespace().map(str::to_string).collect()
}

async fn running_container(fid: &FrameworkId, task: &str) -> String {
    wait_until(LONG, &format!("the container of {task}"), async || {
        let name = containers_of(fid, task).into_iter().next()?;
        let (_, running) = docker(&["inspect", "-f", "{{.State.Running}}", &name]);
        (running == "true").then_some(name)
    })
    .await
}

/// The sandbox of executor `task` (= the task id) on agent 0 (live or completed).
async fn sandbox(c: &Cluster, task: &str) -> String {
    wait_until(LONG, &format!("the sandbox of {task}"), async || {
        let state = c.agent_get(0, "/state").await.ok()?;
        let fws = ["frameworks", "completed_frameworks"]
            .iter()
            .flat_map(|k| state[k].as_array().cloned().unwrap_or_default());
        let executors = fws.flat_map(|f| {
            ["executors", "completed_executors"]
                .iter()
                .flat_map(|k| f[k].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        });
        let found = executors.into_iter().find(|e| e["id"] == task)?;
        found["directory"].as_str().map(str::to_string)
    })
    .await
}

/// Waits until a sandbox file contains `needle` (read through the agent's /files/read).
async fn file_containing(c: &Cluster, path: &str, needle: &str) -> String {
    let url = format!(
        "/files/read?path={}&offset=0",
        strata_testkit::url_encode(path)
    );
    wait_until(LONG, &format!("{path} to contain {needle:?}"), async || {
        let v = c.agent_get(0, &url).await.ok()?;
        let data = v["data"].as_str()?.to_string();
        data.contains(needle).then_some(data)
    })
    .await
}

async fn framework(c: &Cluster, name: &str, checkpoint: bool) -> (Fw, Cleanup) {
    let info = framework_info(name, 60.0, checkpoint, true);
    let fw = Fw::subscribe(&c.master.addr, info).await;
    let guard = cleanup(&fw);
    (fw, guard)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_docker_task_runs_and_its_output_reaches_the_sandbox() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-echo", false).await;
    let cmd = "echo hello-docker; echo to-stderr >&2; echo sandbox=$MESOS_SANDBOX name=$MESOS_CONTAINER_NAME";
    launch_in(&mut fw, "echo", cmd, IMAGE).await;
    fw.state("echo", TaskState::Starting).await;
    let s = fw.terminal("echo").await;
    assert_eq!(s.state, TaskState::Finished, "{:#?}", fw.seen);
    assert_eq!(s.message.as_deref(), Some("Command exited with status 0"));
    let dir = sandbox(&c, "echo").await;
    let out = file_containing(&c, &format!("{dir}/stdout"), "hello-docker").await;
    assert!(
        out.contains("sandbox=/mnt/mesos/sandbox name=mesos-"),
        "{out}"
    );
    file_containing(&c, &format!("{dir}/stderr"), "to-stderr").await;
    assert!(
        containers_of(&fw.id(), "echo").is_empty(),
        "the container is removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_command_reports_its_exit_status() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-exit", false).await;
    launch_in(&mut fw, "three", "exit 3", IMAGE).await;
    let s = fw.terminal("three").await;
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.message.as_deref(), Some("Command exited with status 3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bridge_networking_publishes_a_mapped_port() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-bridge", false).await;
    let port = 31000 + std::process::id() % 1000;
    let info = json!({"image": IMAGE, "network": "BRIDGE",
        "port_mappings": [{"host_port": port, "container_port": 8080, "protocol": "tcp"}]});
    let cmd = "echo served-from-docker > $MESOS_SANDBOX/index.html && exec httpd -f -p 8080 -h /mnt/mesos/sandbox";
    launch_with(&mut fw, "web", cmd, info, |t| {
        t.resources = resources(&format!("cpus:0.1;mem:32;ports:[{port}-{port}]"))
    })
    .await;
    fw.state("web", TaskState::Running).await;
    let url = format!("http://127.0.0.1:{port}/index.html");
    let body = wait_until(LONG, &format!("{url} to answer"), async || {
        let reply = reqwest::get(&url).await.ok()?;
        (reply.status() == 200).then_some(())?;
        reply.text().await.ok()
    })
    .await;
    assert_eq!(body.trim(), "served-from-docker");
    fw.kill("web").await;
    assert_eq!(fw.terminal("web").await.state, TaskState::Killed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_task_is_killed_and_its_container_removed_with_its_memory_limit() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-kill", false).await;
    launch_with(
        &mut fw,
        "sleeper",
        "sleep 600",
        json!({"image": IMAGE}),
        |t| t.resources = resources("cpus:0.5;mem:96"),
    )
    .await;
    fw.state("sleeper", TaskState::Running).await;
    let name = running_container(&fw.id(), "sleeper").await;
    let (_, limits) = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.CpuShares}} {{.HostConfig.CpuQuota}}",
        &name,
    ]);
    assert_eq!(limits, format!("{} 512 50000", 96 * 1024 * 1024));
    fw.kill("sleeper").await;
    let s = fw.terminal("sleeper").await;
    assert_eq!(s.state, TaskState::Killed, "{:#?}", fw.seen);
    // PID 1 ignores SIGTERM, so the grace period ends with SIGKILL (137 to Docker).
    assert_eq!(
        s.message.as_deref(),
        Some("Command terminated with signal Killed")
    );
    assert!(!docker(&["inspect", &name]).0, "container {name} is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn force_pull_fetches_the_image_from_the_registry() {
    if !docker_ready() {
        return;
    }
    if !docker(&["pull", REGISTRY_IMAGE]).0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must serve {REGISTRY_IMAGE} (.ci/docker-setup.sh)"
        );
        return eprintln!("SKIPPED: no local registry serving {REGISTRY_IMAGE}");
    }
    // Removing the local tag means the task can only run what it pulled.
    assert!(docker(&["rmi", REGISTRY_IMAGE]).0);
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-pull", false).await;
    let info = json!({"image": REGISTRY_IMAGE, "force_pull_image": true});
    launch_with(&mut fw, "pulled", "echo pulled", info, |_| {}).await;
    let s = fw.terminal("pulled").await;
    assert_eq!(s.state, TaskState::Finished, "{:#?}", fw.seen);
    assert!(docker(&["image", "inspect", REGISTRY_IMAGE]).0, "pulled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_failure_is_a_container_launch_failure() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-nopull", false).await;
    let image = "127.0.0.1:5000/strata-test/does-not-exist:1";
    launch_in(&mut fw, "nope", "true", image).await;
    let s = fw.terminal("nope").await;
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.reason, Some(Reason::ContainerLaunchFailed), "{s:?}");
    let message = s.message.unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "Failed to launch container: Failed to pull image '{image}'"
        )),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_without_the_docker_containerizer_refuses_docker_tasks() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start_with(BIN.as_ref(), 1, &[], &["--containerizers", "mesos"]).await;
    let (mut fw, _guard) = framework(&c, "docker-off", false).await;
    launch_in(&mut fw, "off", "true", IMAGE).await;
    let s = fw.terminal("off").await;
    assert_eq!(
        (s.state, s.reason, s.message.as_deref()),
        (
            TaskState::Failed,
            Some(Reason::ContainerLaunchFailed),
            Some("Docker containerizer is not enabled on this agent (--containerizers)")
        )
    );
}

async fn restart_agent(c: &mut Cluster, aid: &AgentId) {
    c.agents[0].restart();
    assert_eq!(
        c.wait_agent_registered(0).await,
        aid.as_str(),
        "same agent id"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_keeps_running_across_an_agent_kill9() {
    if !docker_ready() {
        return;
    }
    let mut c =
        Cluster::start_with(BIN.as_ref(), 1, &["--agent_reregister_timeout", "120"], &[]).await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let (mut fw, _guard) = framework(&c, "docker-recover", true).await;
    launch_in(&mut fw, "durable", "sleep 600", IMAGE).await;
    fw.state("durable", TaskState::Running).await;
    let name = running_container(&fw.id(), "durable").await;
    let (_, started) = docker(&["inspect", "-f", "{{.State.StartedAt}}", &name]);

    c.agents[0].proc.kill9();
    wait_until(LONG, "the agent to be seen disconnected", async || {
        (agent_active(&c, &aid).await == Some(false)).then_some(())
    })
    .await;
    restart_agent(&mut c, &aid).await;
    // Past the first orphan sweep: the same container still runs.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(running_container(&fw.id(), "durable").await, name);
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.StartedAt}}", &name]).1,
        started
    );

    fw.kill("durable").await;
    assert_eq!(fw.terminal("durable").await.state, TaskState::Killed);
    assert!(!docker(&["inspect", &name]).0, "container {name} is gone");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_removes_containers_whose_executor_is_gone() {
    if !docker_ready() {
        return;
    }
    let mut c =
        Cluster::start_with(BIN.as_ref(), 1, &["--agent_reregister_timeout", "120"], &[]).await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let (fw, _guard) = framework(&c, "docker-orphans", false).await;
    // A container as a dead executor would leave it: this agent's label, no executor.
    let name = format!("mesos-orphan-{}", std::process::id());
    let labels = [
        format!("strata.agent={aid}"),
        format!("strata.framework={}", fw.id()),
        "strata.task=orphan".to_string(),
    ];
    let mut args = vec!["run", "-d", "--name", &name];
    for l in &labels {
        args.extend(["--label", l]);
    }
    args.extend([IMAGE, "sleep", "600"]);
    let (ok, out) = docker(&args);
    assert!(ok, "docker run: {out}");

    restart_agent(&mut c, &aid).await;
    wait_until(LONG, &format!("{name} to be removed"), async || {
        (!docker(&["inspect", &name]).0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_container_of_an_executor_killed_by_signal_is_removed() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-executor-kill9", false).await;
    launch_in(&mut fw, "abandoned", "sleep 600", IMAGE).await;
    fw.state("abandoned", TaskState::Running).await;
    let name = running_container(&fw.id(), "abandoned").await;
    // The executor carries MESOS_FRAMEWORK_ID; the container's processes do not.
    for pid in framework_pids(&fw.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert_eq!(fw.terminal("abandoned").await.state, TaskState::Failed);
    wait_until(LONG, &format!("{name} to be removed"), async || {
        (!docker(&["inspect", &name]).0).then_some(())
    })
    .await;
}

/// A task that needs 200 MB at once: dd fills a 200 MB buffer in one read. (A pipe into
/// `tail` grows slowly and can thrash near the limit for minutes before the OOM kill.)
const HOG: &str = "dd if=/dev/zero of=/dev/null bs=200M count=1";

#[tokio::test(flavor = "multi_thread")]
async fn a_container_over_its_memory_is_oom_killed_and_reported() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-oom", false).await;
    let info = json!({"image": IMAGE});
    launch_with(&mut fw, "hog", HOG, info, |t| {
        t.resources = resources("cpus:0.1;mem:32")
    })
    .await;
    let s = fw.terminal("hog").await;
    assert_eq!(
        (s.state, s.reason),
        (TaskState::Failed, Some(Reason::ContainerLimitationMemory)),
        "{s:#?}"
    );
    let message = s.message.unwrap_or_default();
    assert!(
        message.starts_with("Memory limit exceeded: Requested: 32MB"),
        "{message}"
    );
    assert!(containers_of(&fw.id(), "hog").is_empty(), "removed");
}

/// Every update of `task` up to and including the first one that `last` accepts.
async fn updates_until(
    fw: &mut Fw,
    task: &str,
    what: &str,
    mut last: impl FnMut(&TaskStatus) -> bool,
) -> Vec<TaskStatus> {
    let mut seen = Vec::new();
    fw.expect(what, |e| match e {
        Event::Update(u) if u.status.task_id.as_str() == task => {
            seen.push(u.status.clone());
            last(&u.status).then_some(())
        }
        _ => None,
    })
    .await;
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_health_check_runs_inside_the_container_with_its_environment() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-health-command", false).await;
    // A file only the container has: the check cannot pass on the host.
    let marker = format!("/tmp/healthy-{}", std::process::id());
    let cmd = format!("touch {marker} && exec sleep 600");
    let health = json!({"type": "COMMAND",
        "command": {"value": format!("test -f {marker} && test \"$GREETING\" = hello")},
        "delay_seconds": 0, "interval_seconds": 0.2, "grace_period_seconds": 60,
        "consecutive_failures": 3});
    launch_with(&mut fw, "probed", &cmd, json!({"image": IMAGE}), |t| {
        let env = json!({"variables": [{"name": "GREETING", "value": "hello"}]});
        t.command.as_mut().unwrap().environment = Some(serde_json::from_value(env).unwrap());
        t.health_check = Some(serde_json::from_value(health).unwrap());
    })
    .await;
    let healthy = |s: &TaskStatus| s.healthy.is_some() || s.state.is_terminal();
    let updates = updates_until(&mut fw, "probed", "probed to be healthy", healthy).await;
    let last = updates.last().unwrap();
    assert_eq!(
        (last.state, last.reason, last.healthy),
        (
            TaskState::Running,
            Some(Reason::TaskHealthCheckStatusUpdated),
            Some(true)
        ),
        "{updates:#?}"
    );
    fw.kill("probed").await;
    let killed = fw.state("probed", TaskState::Killed).await;
    assert_eq!(
        killed.healthy, None,
        "killed by the framework, not for health"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn http_and_tcp_probes_reach_a_bridge_container_at_its_own_address() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-health-http", false).await;
    // Port 8080 of the container is not published: only its own address reaches it.
    let cmd = "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www";
    let health = json!({"type": "HTTP", "http": {"port": 8080, "path": "/index.html"},
        "delay_seconds": 0, "interval_seconds": 0.2, "grace_period_seconds": 60,
        "consecutive_failures": 3});
    let check = json!({"type": "TCP", "tcp": {"port": 8080},
        "delay_seconds": 0, "interval_seconds": 0.2, "timeout_seconds": 5});
    let info = json!({"image": IMAGE, "network": "BRIDGE"});
    launch_with(&mut fw, "web", cmd, info, |t| {
        t.health_check = Some(serde_json::from_value(health).unwrap());
        t.check = Some(serde_json::from_value(check).unwrap());
    })
    .await;
    let connected = |s: &TaskStatus| s.check_status.as_ref().and_then(|c| c.tcp?.succeeded);
    let (mut healthy, mut reachable) = (false, false);
    let updates = updates_until(&mut fw, "web", "web to be healthy and reachable", |s| {
        healthy |= s.healthy == Some(true);
        reachable |= connected(s) == Some(true);
        (healthy && reachable) || s.state.is_terminal()
    })
    .await;
    assert!(healthy && reachable, "{updates:#?}");
    assert!(
        updates.iter().all(|s| s.healthy != Some(false)),
        "failures in the grace period are not reported: {updates:#?}"
    );
    let check_types = updates.iter().filter_map(|s| s.check_status.as_ref()?.kind);
    assert!(check_types.into_iter().all(|k| k == CheckType::Tcp));
    fw.kill("web").await;
    assert_eq!(fw.terminal("web").await.state, TaskState::Killed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_command_health_check_in_the_container_kills_the_task_as_unhealthy() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-health-failing", false).await;
    // The cluster's directory exists on the host only: run there, the check would pass.
    let health = json!({"type": "COMMAND",
        "command": {"value": format!("test -d '{}'", c.dir.path().display())},
        "delay_seconds": 0, "interval_seconds": 0.2, "grace_period_seconds": 0,
        "consecutive_failures": 2});
    launch_with(&mut fw, "sick", "sleep 600", json!({"image": IMAGE}), |t| {
        t.health_check = Some(serde_json::from_value(health).unwrap());
    })
    .await;
    let updates = updates_until(&mut fw, "sick", "sick to end", |s| s.state.is_terminal()).await;
    let summary: Vec<_> = updates
        .iter()
        .map(|s| (s.state, s.reason, s.healthy))
        .collect();
    let health = Some(Reason::TaskHealthCheckStatusUpdated);
    // As for process tasks: every failure is reported; the second in a row kills.
    assert_eq!(
        summary,
        [
            (TaskState::Starting, None, None),
            (TaskState::Running, None, None),
            (TaskState::Running, health, Some(false)),
            (TaskState::Running, health, Some(false)),
            (TaskState::Killed, None, Some(false)),
        ],
        "{updates:#?}"
    );
    assert!(containers_of(&fw.id(), "sick").is_empty(), "removed");
}

/// Host pids of the processes of container `name` whose command line contains `needle`.
fn pids_in(name: &str, needle: &str) -> Vec<String> {
    let (ok, top) = docker(&["top", name]);
    assert!(ok, "docker top {name}");
    // UID PID PPID C STIME TTY TIME CMD
    let matching = top.lines().filter(|l| l.contains(needle));
    matching
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_probe_in_the_container_is_killed() {
    if !docker_ready() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let (mut fw, _guard) = framework(&c, "docker-probe-timeout", false).await;
    let check = json!({"type": "COMMAND", "command": {"command": {"value": "exec sleep 300"}},
        "delay_seconds": 0, "interval_seconds": 0.5, "timeout_seconds": 0.3});
    launch_with(
        &mut fw,
        "slow",
        "exec sleep 600",
        json!({"image": IMAGE}),
        |t| {
            t.check = Some(serde_json::from_value(check).unwrap());
        },
    )
    .await;
    fw.state("slow", TaskState::Running).await;
    let name = running_container(&fw.id(), "slow").await;
    let mut seen: Vec<String> = Vec::new();
    let running = wait_until(LONG, "three probes in the container", async || {
        let running = pids_in(&name, "sleep 300");
        for pid in &running {
            if !seen.contains(pid) {
                seen.push(pid.clone());
            }
        }
        (seen.len() >= 3).then_some(running)
    })
    .await;
    // `sleep 300` never ends by itself: the earlier probes are gone because their
    // timeouts killed them; only the one in flight is left.
    assert!(
        !running.contains(&seen[0]) && running.len() <= 1,
        "probes seen {seen:?}, still running {running:?}"
    );
    fw.kill("slow").await;
    assert_eq!(fw.terminal("slow").await.state, TaskState::Killed);
}
