//! `strata bench launch`: end-to-end launch latency of a bare `true` task (ACCEPT sent →
//! TASK_RUNNING seen → TASK_FINISHED seen) and the time for one agent to launch a burst
//! of tasks back to back. Prints figures; asserts nothing.

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
}

pub async fn run(a: BenchArgs) -> anyhow::Result<i32> {
    match a.what {
        BenchWhat::Launch(l) => launch(l).await,
    }
}

/// A master and one agent in this process, kept alive while the value lives.
struct LocalCluster {
    _master: strata_master::RunningMaster,
    _agent: strata_agent::RunningAgent,
    _dir: tempdirs::Dir,
}

async fn local_cluster(parent: Option<&str>) -> anyhow::Result<(String, LocalCluster)> {
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
            _agent: agent,
            _dir: dir,
        },
    ))
}

mod tempdirs {
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

fn task(offer: &Offer, id: &str) -> TaskInfo {
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

async fn accept(s: &Scheduler, offers: &[&Offer], tasks: Vec<TaskInfo>) -> anyhow::Result<()> {
    let op = Operation {
        kind: "LAUNCH".into(),
        id: None,
        launch: Some(Launch { task_infos: tasks }),
        launch_group: None,
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

async fn next_offer(s: &mut Scheduler, pending: &mut Vec<Offer>) -> anyhow::Result<Offer> {
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<Duration>) {
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

async fn launch(a: LaunchArgs) -> anyhow::Result<i32> {
    let (master, _cluster) = match a.master.clone() {
        Some(m) => (m, None),
        None => {
            let (m, d) = local_cluster(a.work_dir.as_deref()).await?;
            (m, Some(d))
        }
    };
    let info: FrameworkInfo = serde_json::from_value(
        serde_json::json!({"user": "root", "name": "strata-bench", "failover_timeout": 0.0}),
    )?;
    let mut s = Scheduler::subscribe(&master, info).await?;
    let mut pending = Vec::new();
    let (mut to_running, mut to_finished) = (Vec::new(), Vec::new());
    for i in 0..a.tasks {
        let offer = next_offer(&mut s, &mut pending).await?;
        let id = format!("lat-{i}");
        let t0 = Instant::now();
        accept(&s, &[&offer], vec![task(&offer, &id)]).await?;
        let (running, finished) = wait_one(&mut s, &id, &mut pending).await?;
        to_running.push(running.duration_since(t0));
        to_finished.push(finished.duration_since(t0));
    }
    let place = a
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().display().to_string());
    println!("strata bench launch: master {master}, bare `true` tasks, command executor, sandboxes under {place}");
    report("ACCEPT -> TASK_RUNNING", to_running);
    report("ACCEPT -> TASK_FINISHED", to_finished);
    burst(&mut s, a.burst, &mut pending).await?;
    let _ = s.call(Command::Teardown).await;
    Ok(0)
}

async fn wait_one(
    s: &mut Scheduler,
    id: &str,
    pending: &mut Vec<Offer>,
) -> anyhow::Result<(Instant, Instant)> {
    let mut running = None;
    loop {
        match s.next_event().await? {
            Some(Event::Update(u)) => {
                s.acknowledge(&u.status).await?;
                if u.status.task_id.as_str() != id {
                    continue;
                }
                match u.status.state {
                    TaskState::Running => running = Some(Instant::now()),
                    st if st.is_terminal() => {
                        anyhow::ensure!(
                            st == TaskState::Finished,
                            "task {id} ended {st}: {:?}",
                            u.status.message
                        );
                        let now = Instant::now();
                        return Ok((running.unwrap_or(now), now));
                    }
                    _ => {}
                }
            }
            Some(Event::Offers(o)) => pending.extend(o.offers),
            Some(_) => {}
            None => anyhow::bail!("master closed the stream"),
        }
    }
}

/// Gathers outstanding offers of one agent until they hold `cpus` and `mem`.
async fn offers_holding(
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

async fn burst(s: &mut Scheduler, n: usize, pending: &mut Vec<Offer>) -> anyhow::Result<()> {
    let offers = offers_holding(s, pending, 0.01 * n as f64, n as f64).await?;
    let Some(first) = offers.first() else {
        anyhow::bail!("no offers")
    };
    let tasks: Vec<TaskInfo> = (0..n).map(|i| task(first, &format!("burst-{i}"))).collect();
    let t0 = Instant::now();
    accept(s, &offers.iter().collect::<Vec<_>>(), tasks).await?;
    let mut states: HashMap<TaskId, TaskState> = HashMap::new();
    let (mut all_running, mut finished) = (None, 0usize);
    let mut running = 0usize;
    while finished < n {
        match s.next_event().await? {
            Some(Event::Update(u)) => {
                s.acknowledge(&u.status).await?;
                let prev = states.insert(u.status.task_id.clone(), u.status.state);
                if u.status.state == TaskState::Running && prev != Some(TaskState::Running) {
                    running += 1;
                }
                if u.status.state.is_terminal() {
                    anyhow::ensure!(
                        u.status.state == TaskState::Finished,
                        "burst task ended {}: {:?}",
                        u.status.state,
                        u.status.message
                    );
                    finished += 1;
                }
                if running == n && all_running.is_none() {
                    all_running = Some(t0.elapsed());
                }
            }
            Some(Event::Offers(o)) => pending.extend(o.offers),
            Some(_) => {}
            None => anyhow::bail!("master closed the stream"),
        }
    }
    let total = t0.elapsed();
    let ar = all_running.unwrap_or(total);
    println!("burst of {n} tasks on one agent: all RUNNING after {:.2}s, all FINISHED after {:.2}s ({:.0} tasks/s)", ar.as_secs_f64(), total.as_secs_f64(), n as f64 / total.as_secs_f64());
    Ok(())
}
