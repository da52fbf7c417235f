//! Agent recovery with real processes: for frameworks with `checkpoint: true`, an agent
//! killed with -9 at different moments (task running, during launch, with an update in
//! flight, during a kill) and restarted on the same port and work dir reconnects to its
//! executors (also in pid namespaces); tasks keep running and every update still reaches
//! the framework.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use strata_api::scheduler::Event;
use strata_api::{AgentId, CommandUri, Reason, TaskState};
use strata_testkit::framework::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// A cluster whose master waits long for a disconnected agent, so a slow restart is still
/// a re-registration (not unreachability).
async fn cluster() -> Cluster {
    cluster_with(&[]).await
}

async fn cluster_with(agent_flags: &[&str]) -> Cluster {
    let master_flags = ["--agent_reregister_timeout", "120"];
    Cluster::start_with(BIN.as_ref(), 1, &master_flags, agent_flags).await
}

async fn restart_agent(c: &mut Cluster, aid: &AgentId) {
    c.agents[0].restart();
    assert_eq!(
        c.wait_agent_registered(0).await,
        aid.as_str(),
        "same agent id"
    );
}

async fn wait_master_state(c: &Cluster, task: &str, state: &str) {
    let what = format!("{task} to be {state} at the master");
    wait_until(LONG, &what, async || {
        (c.task_state(task).await.as_deref() == Some(state)).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn tasks_keep_running_across_an_agent_kill9() {
    survive_kill9(&[]).await;
}

/// The same with each container in its own pid namespace (needs root; CI runs it).
#[tokio::test(flavor = "multi_thread")]
async fn tasks_in_pid_namespaces_keep_running_across_an_agent_kill9() {
    if !strata_testkit::is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run the pid namespace tests as root"
        );
        eprintln!("SKIPPED: pid namespaces need root");
        return;
    }
    survive_kill9(&["--isolation", "cgroups/cpu,cgroups/mem,namespaces/pid"]).await;
}

async fn survive_kill9(agent_flags: &[&str]) {
    let mut c = cluster_with(agent_flags).await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("recover", 60.0, true, true)).await;
    let (cmd, marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    let before = wait_alive(&marker).await;

    c.agents[0].proc.kill9();
    wait_until(LONG, "the agent to be seen disconnected", async || {
        (agent_active(&c, &aid).await == Some(false)).then_some(())
    })
    .await;
    restart_agent(&mut c, &aid).await;

    // The same process still runs and the master still has the task running.
    assert_eq!(
        wait_alive(&marker).await,
        before,
        "the task was not restarted"
    );
    wait_master_state(&c, "t1", "TASK_RUNNING").await;
    // The framework saw no terminal update (an unacknowledged RUNNING may come again:
    // delivery is at least once); reconciliation says RUNNING.
    fw.reconcile("t1", None).await;
    let s = fw
        .expect("the reconciliation answer for t1", |e| match e {
            Event::Update(u) if u.status.task_id.as_str() == "t1" => {
                assert!(!u.status.state.is_terminal(), "{u:?}");
                (u.status.reason == Some(Reason::Reconciliation)).then(|| u.status.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(s.state, TaskState::Running, "{s:?}");
    // The recovered executor still obeys: KILL ends the task.
    fw.kill("t1").await;
    fw.state("t1", TaskState::Killed).await;
    wait_gone(&marker).await;
    // And the agent launches new tasks as before.
    fw.launch("t2", "true").await;
    fw.state("t2", TaskState::Finished).await;
}

/// SIGTERM stops the agent alone, as for an upgrade: the task keeps running and the next
/// agent run recovers it.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_agent_but_not_its_tasks() {
    let mut c = cluster().await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("sigterm", 60.0, true, true)).await;
    let (cmd, marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    let before = wait_alive(&marker).await;
    let code = c.agents[0]
        .proc
        .signal_and_wait(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0), "the agent exits cleanly");
    assert_eq!(pids_with(&marker), before, "the task still runs");
    restart_agent(&mut c, &aid).await;
    assert_eq!(wait_alive(&marker).await, before);
    wait_master_state(&c, "t1", "TASK_RUNNING").await;
    fw.kill("t1").await;
    fw.state("t1", TaskState::Killed).await;
}

/// SIGUSR1 stops the agent for good: every task is killed and its cgroups removed.
#[tokio::test(flavor = "multi_thread")]
async fn sigusr1_stops_the_agent_and_kills_every_task() {
    let root = format!("strata-usr1/{}", std::process::id());
    let c = cluster_with(&["--cgroups_root", &root]).await;
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("sigusr1", 60.0, true, true)).await;
    let (cmd, marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    wait_alive(&marker).await;
    let mut c = c;
    let code = c.agents[0]
        .proc
        .signal_and_wait(nix::sys::signal::Signal::SIGUSR1);
    assert_eq!(code, Some(0), "the agent exits cleanly");
    wait_gone(&marker).await;
    let cpu_parent = std::path::Path::new("/sys/fs/cgroup/cpu").join(&root);
    if strata_testkit::is_root() && std::path::Path::new("/sys/fs/cgroup/cpu").exists() {
        assert!(!cpu_parent.exists(), "{} is left", cpu_parent.display());
        let _ = std::fs::remove_dir(cpu_parent.parent().unwrap());
        let _ = std::fs::remove_dir(std::path::Path::new("/sys/fs/cgroup/memory/strata-usr1"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_executor_that_died_while_the_agent_was_down_is_reported() {
    let mut c = cluster().await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let mut fw = Fw::subscribe(
        &c.master.addr,
        framework_info("recover-dead", 60.0, true, false),
    )
    .await;
    let (cmd, marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    wait_alive(&marker).await;

    c.agents[0].proc.kill9();
    // While the agent is down the executor and its task die.
    for pid in framework_pids(&fw.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    wait_framework_processes_gone(&fw.id()).await;
    restart_agent(&mut c, &aid).await;

    let s = fw.terminal("t1").await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert_eq!(s.reason, Some(Reason::ExecutorTerminated));
    assert!(s.uuid.is_some(), "a reliable agent update");
    wait_master_state(&c, "t1", "TASK_FAILED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_killed_during_launch_reports_the_task() {
    let mut c = cluster().await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    // A URI that never answers keeps the launch in the fetch step.
    let stall = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/never", stall.local_addr().unwrap());
    let mut fw = Fw::subscribe(
        &c.master.addr,
        framework_info("recover-launch", 60.0, true, false),
    )
    .await;
    fw.launch_with("t1", "true", |t| {
        let uri = CommandUri {
            value: url.clone(),
            executable: None,
            extract: false,
            cache: None,
            output_file: None,
        };
        t.command.as_mut().unwrap().uris.push(uri);
    })
    .await;
    let agent_addr = c.agents[0].addr.clone();
    wait_until(LONG, "the agent to start launching t1", async || {
        let state = c
            .client
            .get_json::<serde_json::Value>(&format!("http://{agent_addr}/state"))
            .await
            .ok()?;
        state["frameworks"]
            .as_array()?
            .iter()
            .any(|f| !f["executors"].as_array().unwrap().is_empty())
            .then_some(())
    })
    .await;

    c.agents[0].proc.kill9();
    restart_agent(&mut c, &aid).await;
    let s = fw.terminal("t1").await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert_eq!(s.reason, Some(Reason::ExecutorTerminated));
    drop(stall);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unacknowledged_update_is_resent_after_an_agent_kill9() {
    let mut c = cluster().await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let mut fw = Fw::subscribe(
        &c.master.addr,
        framework_info("recover-update", 60.0, true, false),
    )
    .await;
    let trigger = c.dir.path().join("finish-now");
    let cmd = format!("while [ ! -f {} ]; do sleep 0.05; done", trigger.display());
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    fw.auto_ack = false;
    std::fs::write(&trigger, b"").unwrap();
    let first = fw.state("t1", TaskState::Finished).await;

    c.agents[0].proc.kill9();
    restart_agent(&mut c, &aid).await;
    // The agent checkpointed the unacknowledged update and sends it again.
    let again = fw.state("t1", TaskState::Finished).await;
    assert_eq!(again.uuid, first.uuid, "the same update");
    fw.s.acknowledge(&again).await.unwrap();
    let what = "t1 to complete";
    wait_until(LONG, what, async || {
        let (_, state) = framework_state(&c, &fw.id()).await?;
        (task_in(&state, "completed_tasks", "t1").as_deref() == Some("TASK_FINISHED")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_kill9_during_a_kill_still_ends_the_task() {
    let mut c = cluster().await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let mut fw = Fw::subscribe(
        &c.master.addr,
        framework_info("recover-kill", 60.0, true, false),
    )
    .await;
    // The task takes ~2 s to die after SIGTERM: the agent dies in between.
    let (cmd, marker) = sleeper();
    let got_term = c.dir.path().join("got-term");
    let slow = format!(
        "trap 'touch {}; sleep 2; exit 0' TERM; {} & wait",
        got_term.display(),
        cmd.trim_start_matches("exec ")
    );
    fw.launch_with("t1", &slow, |t| {
        t.kill_policy = Some(strata_api::KillPolicy {
            grace_period: Some(strata_api::DurationInfo::from_millis(10_000)),
        });
    })
    .await;
    fw.state("t1", TaskState::Running).await;
    wait_alive(&marker).await;
    fw.kill("t1").await;
    wait_until(LONG, "the task to get SIGTERM", async || {
        got_term.exists().then_some(())
    })
    .await;
    c.agents[0].proc.kill9();
    restart_agent(&mut c, &aid).await;
    let end = fw.terminal("t1").await;
    assert_eq!(end.state, TaskState::Killed, "{end:?}");
    wait_gone(&marker).await;
}

/// An agent that stays away longer than `--recovery_timeout` finds nothing to recover: its
/// checkpointing executors gave up on it, killed their tasks and exited; when it does come
/// back the task is reported ended.
#[tokio::test(flavor = "multi_thread")]
async fn executors_shut_down_after_the_recovery_timeout() {
    let mut c = cluster_with(&["--recovery_timeout", "2"]).await;
    let aid = AgentId::new(c.wait_agent_registered(0).await);
    let mut fw = Fw::subscribe(
        &c.master.addr,
        framework_info("recovery-timeout", 60.0, true, false),
    )
    .await;
    let (cmd, marker) = sleeper();
    fw.launch("t1", &cmd).await;
    fw.state("t1", TaskState::Running).await;
    wait_alive(&marker).await;

    c.agents[0].proc.kill9();
    // Nobody restarts the agent: the executor waits 2 s, then kills the task and exits.
    wait_gone(&marker).await;
    wait_framework_processes_gone(&fw.id()).await;

    restart_agent(&mut c, &aid).await;
    let s = fw.terminal("t1").await;
    assert!(
        matches!(s.state, TaskState::Failed | TaskState::Killed),
        "{s:?}"
    );
    wait_until(LONG, "t1 to end at the master", async || {
        let st = c.task_state("t1").await?;
        (st != "TASK_RUNNING").then_some(())
    })
    .await;
}
