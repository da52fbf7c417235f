//! `strata bench recovery`: a master in this process and an agent as a child process run
//! N tasks of a checkpointing framework; the agent is killed with -9 and started again; the
//! figure is the time from its restart until it is registered with every executor
//! re-subscribed.

use super::*;
use std::process::{Child, Command as Process, Stdio};

/// `strata bench recovery` options.
#[derive(Debug, Args)]
pub struct RecoveryArgs {
    /// Running tasks on the agent.
    #[arg(long, default_value_t = 100)]
    pub tasks: usize,
    /// Where the cluster keeps its data (default: the system temp dir).
    #[arg(long = "work_dir")]
    pub work_dir: Option<String>,
}

fn spawn_agent(master: &str, port: u16, dir: &str) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let child = Process::new(exe)
        .args([
            "agent",
            "--master",
            master,
            "--port",
            &port.to_string(),
            "--work_dir",
            dir,
        ])
        .args([
            "--resources",
            "cpus:64;mem:262144;disk:100000",
            "--status_update_retry_interval",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(child)
}

/// The agent's metrics, if it answers.
async fn metrics(client: &strata_transport::Client, port: u16) -> Option<serde_json::Value> {
    client
        .get_json(&format!("http://127.0.0.1:{port}/metrics/snapshot"))
        .await
        .ok()
}

pub(crate) async fn run(a: RecoveryArgs) -> anyhow::Result<i32> {
    let dir = tempdirs::Dir::new(a.work_dir.as_deref())?;
    let master = strata_master::start(strata_master::MasterFlags::new(
        "127.0.0.1",
        0,
        &dir.path("master"),
    ))
    .await?;
    let addr = master.addr.to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut agent = spawn_agent(&addr, port, &dir.path("agent"))?;
    let info: FrameworkInfo = serde_json::from_value(
        serde_json::json!({"user": "root", "name": "strata-bench-recovery", "failover_timeout": 600.0, "checkpoint": true}),
    )?;
    let mut s = Scheduler::subscribe(&addr, info).await?;
    let mut pending = Vec::new();
    let n = a.tasks;
    let offers = offers_holding(&mut s, &mut pending, 0.01 * n as f64, n as f64).await?;
    let Some(first) = offers.first() else {
        anyhow::bail!("no offers")
    };
    let tasks: Vec<TaskInfo> = (0..n)
        .map(|i| task_running(first, &format!("rec-{i}"), "exec sleep 600"))
        .collect();
    accept(&s, &offers.iter().collect::<Vec<_>>(), tasks).await?;
    super::churn::wait_all(&mut s, n, TaskState::Running).await?;

    agent.kill()?;
    agent.wait()?;
    let t0 = Instant::now();
    let mut agent = spawn_agent(&addr, port, &dir.path("agent"))?;
    let client = strata_transport::Client::default();
    loop {
        if let Some(m) = metrics(&client, port).await {
            if m["slave/registered"] == 1.0
                && m["slave/executors_running"].as_f64() == Some(n as f64)
            {
                break;
            }
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(120),
            "the agent did not recover within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let recovered = t0.elapsed();
    println!("strata bench recovery: {n} running tasks of a checkpointing framework, agent killed with -9");
    println!(
        "agent restart → registered with all {n} executors re-subscribed: {:.2}s",
        recovered.as_secs_f64()
    );
    let _ = s.call(Command::Teardown).await;
    // Let the agent shut the executors down before it goes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match metrics(&client, port).await {
            Some(m)
                if m["slave/executors_running"] == 0.0
                    && m["slave/executors_terminating"] == 0.0 =>
            {
                break
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    stop_for_good(&mut agent).await;
    Ok(0)
}

/// SIGUSR1 (the agent kills what is left and removes its cgroups), SIGKILL after 10 s.
async fn stop_for_good(agent: &mut Child) {
    if let Ok(pid) = i32::try_from(agent.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGUSR1,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = agent.try_wait() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = agent.kill();
    let _ = agent.wait();
}
