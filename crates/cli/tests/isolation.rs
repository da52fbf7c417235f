//! Resource isolation with real cgroups (this machine and CI have cgroups v1; as root):
//! a task over its memory is OOM-killed and reported TASK_FAILED with
//! REASON_CONTAINER_LIMITATION_MEMORY; CPU quota is enforced (throttling shows in
//! /monitor/statistics and GET_CONTAINERS); and without isolation (by flag, or with no
//! usable cgroups) tasks still run; with `namespaces/pid` a task sees only its own
//! container's processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use strata_api::{Reason, TaskState};
use strata_resources::{Resources, WireFormat};
use strata_testkit::framework::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// Cgroups need root; under CI=true they must be available, elsewhere the test is skipped.
fn cgroups_available() -> bool {
    let ok = strata_testkit::is_root() && std::path::Path::new("/sys/fs/cgroup/memory").exists()
        || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
            && strata_testkit::is_root();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the cgroups tests: run as root with cgroups"
        );
        eprintln!("SKIPPED: cgroups tests need root and a cgroup hierarchy");
    }
    ok
}

fn resources(flag: &str) -> Vec<strata_api::WireResource> {
    Resources::parse_flag(flag, "*")
        .unwrap()
        .to_wire(WireFormat::PreRefinement)
}

/// A task that needs ~200 MB at once (dd's block buffer), so an OOM kill comes quickly
/// even under a small CPU quota.
const HOG: &str = "dd if=/dev/zero of=/dev/null bs=200M count=1";

#[tokio::test(flavor = "multi_thread")]
async fn a_task_over_its_memory_is_oom_killed_and_reported() {
    if !cgroups_available() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("oom", 0.0, false, false)).await;
    fw.launch_with("hog", HOG, |t| t.resources = resources("cpus:0.1;mem:64"))
        .await;
    let s = fw.terminal("hog").await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert_eq!(s.reason, Some(Reason::ContainerLimitationMemory), "{s:?}");
    assert!(
        s.message
            .as_deref()
            .unwrap_or("")
            .contains("Memory limit exceeded"),
        "{s:?}"
    );
    // The black box keeps the OOM kill.
    let records = c.agent_get(0, "/blackbox?task_id=hog").await.unwrap();
    assert_eq!(records[0]["oom"], true, "{records}");
}

async fn monitor(c: &Cluster) -> Vec<Value> {
    c.agent_get(0, "/monitor/statistics")
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_quota_is_enforced_and_usage_is_reported() {
    if !cgroups_available() {
        return;
    }
    let c = Cluster::start(BIN.as_ref(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("cpu", 0.0, false, false)).await;
    fw.launch_with("spin", "while :; do :; done", |t| {
        t.resources = resources("cpus:0.2;mem:64")
    })
    .await;
    fw.state("spin", TaskState::Running).await;
    // Throttling is a fact the kernel reports, not a timing we measure.
    let stats = wait_until(LONG, "the busy task to be throttled", async || {
        let list = monitor(&c).await;
        let s = list.iter().find(|e| e["executor_id"] == "spin")?["statistics"].clone();
        (s["cpus_nr_throttled"].as_u64()? > 0).then_some(s)
    })
    .await;
    assert!(
        stats["mem_limit_bytes"].as_u64().unwrap() >= 64 << 20,
        "{stats}"
    );
    assert!(
        stats["cpus_user_time_secs"].as_f64().unwrap() > 0.0,
        "{stats}"
    );
    let url = format!("http://{}/api/v1", c.agents[0].addr);
    let reply = c
        .client
        .post_json(&url, &[], &serde_json::json!({"type": "GET_CONTAINERS"}))
        .await
        .unwrap();
    let v: Value = reply.json(&url).unwrap();
    let containers = v["get_containers"]["containers"].as_array().unwrap();
    assert!(
        containers
            .iter()
            .any(|x| x["executor_id"]["value"] == "spin"
                && x["resource_statistics"]["cpus_nr_throttled"].as_u64() > Some(0)),
        "{v}"
    );
    let metrics = c.agent_get(0, "/metrics/snapshot").await.unwrap();
    assert_eq!(metrics["containers/count"], 1.0, "{metrics}");
    fw.kill("spin").await;
    fw.state("spin", TaskState::Killed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pids_limit_contains_a_fork_loop() {
    if !cgroups_available() {
        return;
    }
    const MAX: u64 = 40;
    let max = MAX.to_string();
    let flags = [
        "--isolation",
        "cgroups/cpu,cgroups/mem,cgroups/pids",
        "--cgroups_pids_max",
        &max,
    ];
    let c = Cluster::start_with(BIN.as_ref(), 1, &[], &flags).await;
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("pids", 0.0, false, false)).await;
    // bash retries a failed fork for several seconds, so the loop sits at the limit.
    fw.launch_with(
        "forker",
        "bash -c 'for i in $(seq 200); do sleep 600 & done; wait'",
        |t| t.resources = resources("cpus:0.1;mem:64"),
    )
    .await;
    fw.state("forker", TaskState::Running).await;
    let threads = async || {
        let list = monitor(&c).await;
        let s = &list.iter().find(|e| e["executor_id"] == "forker")?["statistics"];
        s["threads"].as_u64()
    };
    wait_until(LONG, "the loop to reach the limit", async || {
        (threads().await? >= MAX - 5).then_some(())
    })
    .await;
    let mut most = 0;
    for _ in 0..20 {
        most = most.max(threads().await.unwrap_or(0));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        most <= MAX,
        "{most} threads in a container limited to {MAX}"
    );
    let flags = c.agent_get(0, "/flags").await.unwrap();
    assert_eq!(flags["flags"]["cgroups_pids_max"], max, "{flags}");
    fw.kill("forker").await;
    fw.state("forker", TaskState::Killed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pids_limit_needs_the_pids_isolator() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "agent",
            "--master",
            "127.0.0.1:1",
            "--port",
            "0",
            "--cgroups_pids_max",
            "10",
        ])
        .arg("--work_dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cgroups_pids_max needs cgroups/pids"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_pid_namespaces_a_task_sees_only_its_container() {
    if !cgroups_available() {
        return;
    }
    let flags = ["--isolation", "cgroups/cpu,cgroups/mem,namespaces/pid"];
    let c = Cluster::start_with(BIN.as_ref(), 1, &[], &flags).await;
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("pidns", 0.0, false, false)).await;
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().display();
    let marker = format!("sleep 600.{}", std::process::id());
    let cmd = format!(
        "echo $$ > {dir}/pid.tmp && mv {dir}/pid.tmp {dir}/pid; \
         ls /proc | grep -c '^[0-9][0-9]*$' > {dir}/procs.tmp && mv {dir}/procs.tmp {dir}/procs; \
         exec {marker}"
    );
    fw.launch_with("ns", &cmd, |t| t.resources = resources("cpus:0.1;mem:64"))
        .await;
    fw.state("ns", TaskState::Running).await;
    let host_pids = wait_alive(&marker).await;
    let read = |name: &str| {
        let path = out.path().join(name);
        async move {
            wait_until(LONG, "the task's report", async || {
                std::fs::read_to_string(&path)
                    .ok()?
                    .trim()
                    .parse::<u32>()
                    .ok()
            })
            .await
        }
    };
    // ns-init is pid 1, the executor 2, the task's shell a few more: all small numbers,
    // while the host sees the same process under a host pid.
    let (pid, procs) = (read("pid").await, read("procs").await);
    assert!(pid < 10, "the task's pid in its namespace is {pid}");
    assert!(procs < 10, "the task sees {procs} processes");
    assert!(
        host_pids.iter().all(|p| *p != pid),
        "{host_pids:?} vs {pid}"
    );
    // The host's /proc is untouched.
    let me = format!("/proc/{}", std::process::id());
    assert!(std::path::Path::new(&me).exists());
    // Still isolated: the container's cgroup holds the namespace's processes.
    let stats = monitor(&c).await;
    let s = &stats.iter().find(|e| e["executor_id"] == "ns").unwrap()["statistics"];
    assert!(s["processes"].as_u64() >= Some(3), "{s}");
    fw.kill("ns").await;
    fw.state("ns", TaskState::Killed).await;
    wait_gone(&marker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_isolation_tasks_run_unlimited() {
    for flags in [
        &["--isolation", "posix/cpu,posix/mem"][..],
        &["--cgroups_hierarchy", "/nonexistent/cgroups"][..],
    ] {
        let c = Cluster::start_with(BIN.as_ref(), 1, &[], flags).await;
        let mut fw = Fw::subscribe(
            &c.master.addr,
            framework_info("no-isolation", 0.0, false, false),
        )
        .await;
        fw.launch_with("hog", HOG, |t| t.resources = resources("cpus:0.1;mem:64"))
            .await;
        let s = fw.terminal("hog").await;
        assert_eq!(s.state, TaskState::Finished, "{flags:?}: {s:?}");
    }
}
