//! `strata dev`: a master and N agents in one process, sharing this machine, with the
//! registry and sandboxes under one local directory.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use strata_agent::AgentFlags;
use strata_master::MasterFlags;

/// `strata dev` options.
#[derive(Debug, Args)]
pub struct DevArgs {
    /// How many agents to run (the machine's resources are split between them).
    #[arg(long, default_value_t = 1)]
    pub agents: usize,
    /// IP to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,
    /// Master port; agents use the next ports (0 = any free ports).
    #[arg(long, default_value_t = 5050)]
    pub port: u16,
    /// Where the registry and the sandboxes live.
    #[arg(long = "work_dir", default_value = ".strata-dev")]
    pub work_dir: String,
    /// Resources of each agent (default: this machine split evenly).
    #[arg(long)]
    pub resources: Option<String>,
    /// Seconds between scheduler HEARTBEATs.
    #[arg(long = "heartbeat_interval", default_value_t = 15.0)]
    pub heartbeat_interval: f64,
}

/// Each agent's share of the machine, in flag syntax.
fn share(work_dir: &std::path::Path, n: usize, i: usize) -> anyhow::Result<String> {
    let total = strata_agent::detect::total_resources(None, work_dir)?;
    let n_f = n as f64;
    let floor3 = |v: f64| (v * 1000.0).floor() / 1000.0;
    let ports_per = 1001 / n as u64;
    let begin = 31000 + ports_per * i as u64;
    Ok(format!(
        "cpus:{};mem:{};disk:{};ports:[{}-{}]",
        floor3(total.cpus().as_f64() / n_f),
        (total.mem_mb().as_f64() / n_f).floor(),
        (total.disk_mb().as_f64() / n_f).floor(),
        begin,
        begin + ports_per - 1
    ))
}

pub async fn run(a: DevArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(a.agents >= 1, "--agents must be at least 1");
    let root = PathBuf::from(&a.work_dir);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let mut mflags = MasterFlags::new(&a.ip, a.port, &root.join("master").display().to_string());
    mflags.heartbeat_interval = a.heartbeat_interval;
    let master = strata_master::start(mflags).await?;
    let mut agents = Vec::new();
    for i in 0..a.agents {
        let port = if a.port == 0 {
            0
        } else {
            a.port + 1 + i as u16
        };
        let dir = root.join(format!("agent-{i}"));
        std::fs::create_dir_all(&dir)?;
        let mut flags = AgentFlags::new(
            &master.addr.to_string(),
            &a.ip,
            port,
            &dir.display().to_string(),
        );
        flags.resources = Some(match &a.resources {
            Some(r) => r.clone(),
            None => share(&dir, a.agents, i)?,
        });
        agents.push(strata_agent::start(flags).await?);
    }
    println!(
        "strata dev: a cluster with {} agent(s) is running",
        agents.len()
    );
    println!(
        "  master   http://{}   (state: http://{}/master/state)",
        master.addr, master.addr
    );
    for (i, ag) in agents.iter().enumerate() {
        println!("  agent-{i}  http://{}", ag.addr);
    }
    println!("  data     {}", root.display());
    println!("try: strata run --master {} -- echo hello", master.addr);
    println!("press Ctrl-C to stop");
    crate::shutdown_signal().await;
    eprintln!("strata dev: stopping");
    for ag in &agents {
        ag.destroy_all().await;
        let _ = ag.shutdown.send(true);
    }
    let _ = master.shutdown.send(true);
    Ok(0)
}
