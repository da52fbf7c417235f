//! `strata bench …`: benchmarks that print figures and assert nothing. `launch`: launch
//! latency and burst; `churn`: one agent launching then destroying many long tasks (with
//! its isolation on); `recovery`: how long a kill -9'd agent takes to recover its running
//! executors. Shared here: an in-process cluster, task and offer helpers, percentiles.

mod churn;
mod launch;
mod recovery;

use clap::{Args, Subcommand};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use strata_api::scheduler::{Accept, Command, Event, Launch, Operation};
use strata_api::{CommandInfo, Filters, FrameworkInfo, Offer, TaskId, TaskInfo, TaskState};
use strata_resources::{Resource, Resources, WireFormat};
use strata_sdk::Scheduler;

/// `strata bench` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// Benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Launch latency and burst launch time on one agent.
    Launch(LaunchArgs),
    /// Launch, then destroy, many long-running tasks on one agent.
    Churn(churn::ChurnArgs),
    /// Agent recovery time with running tasks (the agent runs as a child process).
    Recovery(recovery::RecoveryArgs),
}

/// `strata bench launch` options.
#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// Use this master instead of starting a master and one agent in-process.
    #[arg(long)]
    pub master: Option<String>,
    /// Sequential tasks for the latency figures.
    #[arg(long, default_value_t = 1000)]
    pub tasks: usize,
    /// Tasks launched back to back for the burst figure.
    #[arg(long, default_value_t = 1000)]
    pub burst: usize,
    /// Where the in-process cluster keeps its registry and sandboxes (default: the system
    /// temp dir). The filesystem matters: see docs/benchmarks.md.
    #[arg(long = "work_dir")]
    pub work_dir: Option<String>,
    /// Run the latency tasks in Docker containers of this image (e.g.
    /// `strata-test/busybox:latest`), each with 1 cpu and 64 MB; the burst is skipped.
    #[arg(long = "docker_image")]
    pub docker_image: Option<String>,
}

pub async fn run(a: BenchArgs) -> anyhow::Result<i32> {
    match a.what {
        BenchWhat::Launch(l) => launch::run(l).await,
        BenchWhat::Churn(c) => churn::run(c).await,
        BenchWhat::Recovery(r) => recovery::run(r).await,
    }
}

/// A master and one agent in this process, kept alive while the value lives.
pub(crate) struct LocalCluster {
    _master: strata_master::RunningMaster,
    agent: strata_agent::RunningAgent,
    _dir: tempdirs::Dir,
}

impl LocalCluster {
    /// Kills whatever still runs and removes the agent's cgroups.
    pub(crate) async fn stop(self) {
        self.agent.destroy_all().await;
    }
}

pub(crate) async fn local_cluster(parent: Option<&str>) -> anyhow::Result<(String, LocalCluster)> {
    let dir = tempdirs::Dir::new(parent)?;
    let master = strata_master::start(strata_master::MasterFlags::new(
        "127.0.0.1",
        0,
        &dir.path("master"),
    ))
    .await?;
    let mut flags =
        strata_agent::AgentFlags::new(&master.addr.to_string(), "127.0.0.1", 0, &dir.path("agent"));
    // Synthetic capacity so a burst of 1000 small tasks fits on the one agent.
    flags.resources = Some("cpus:64;mem:262144;disk:100000".into());
    let agent = strata_agent::start(flags).await?;
    let addr = master.addr.to_string();
    Ok((
        addr,
        LocalCluster {
            _master: master,
            agent,
            _dir: dir,
        },
    ))
}

pub(crate) mod tempdirs {
    /// A scratch directory removed on drop.
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new(parent: Option<&str>) -> std::io::Result<Self> {
            let base = parent
                .map(std::path::PathBuf::from)
                .unwrap_or_else(std::env::temp_dir);
            let p = base.join(format!("strata-bench-{}", std::process::id()));
            std::fs::create_dir_all(&p)?;
            Ok(Self(p))
        }
        pub fn path(&self, sub: &str) -> String {
            self.0.join(sub).display().to_string()
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A 0.01 cpu / 1 MB task running `cmd`.
pub(crate) fn task_running(offer: &Offer, id: &str, cmd: &str) -> TaskInfo {
    let mut t = task(offer, id);
    t.command = Some(CommandInfo::shell(cmd));
    t
}

pub(crate) fn task(offer: &Offer, id: &str) -> TaskInfo {
    let res = Resources::from_vec(vec![
        Resource::scalar("cpus", 0.01),
        Resource::scalar("mem", 1.0),
    ]);
    TaskInfo::command(
        id,
        TaskId::new(id),
        offer.agent_id.clone(),
        res.to_wire(WireFormat::PreRefinement),
        CommandInfo::shell("true"),
    )
}

pub(crate) async fn accept(
    s: &Scheduler,
    offers: &[&Offer],
    tasks: Vec<TaskInfo>,
) -> anyhow::Result<()> {
    let op = Operation {
        kind: "LAUNCH".into(),
        id: None,
        launch: Some(Launch { task_infos: tasks }),
        launch_group: None,
        ..Default::default()
    };
    let offer_ids = offers.iter().map(|o| o.id.clone()).collect();
    let accept = Accept {
        offer_ids,
        operations: vec![op],
        filters: Some(Filters {
            refuse_seconds: Some(0.0),
        }),
    };
    s.call(Command::Accept(accept)).await?;
    Ok(())
}

pub(crate) async fn next_offer(
    s: &mut Scheduler,
    pending: &mut Vec<Offer>,
) -> anyhow::Result<Offer> {
    loop {
        if let Some(o) = pending.pop() {
            return Ok(o);
        }
        match s.next_event().await? {
            Some(Event::Offers(o)) => pending.extend(o.offers),
            Some(Event::Update(u)) => s.acknowledge(&u.status).await?,
            Some(_) => {}
            None => anyhow::bail!("master closed the stream"),
        }
    }
}

/// Gathers outstanding offers of one agent until they hold `cpus` and `mem`.
pub(crate) async fn offers_holding(
    s: &mut Scheduler,
    pending: &mut Vec<Offer>,
    cpus: f64,
    mem: f64,
) -> anyhow::Result<Vec<Offer>> {
    let mut held: Vec<Offer> = Vec::new();
    loop {
        let total = held
            .iter()
            .filter_map(|o| Resources::from_wire(&o.resources).ok())
            .fold(Resources::new(), |a, r| a + r);
        if total.cpus().as_f64() >= cpus && total.mem_mb().as_f64() >= mem {
            return Ok(held);
        }
        let offer = next_offer(s, pending).await?;
        if held.first().is_none_or(|h| h.agent_id == offer.agent_id) {
            held.push(offer);
        }
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<28} n={:<5} p50={:>7.2}ms p90={:>7.2}ms p99={:>7.2}ms max={:>7.2}ms",
        v.len(),
        ms(percentile(&v, 0.5)),
        ms(percentile(&v, 0.9)),
        ms(percentile(&v, 0.99)),
        ms(v.last().copied().unwrap_or_default())
    );
}
