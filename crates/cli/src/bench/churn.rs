//! `strata bench churn`: one agent launches a burst of long-running tasks, then destroys
//! them all, with its default isolation (cgroups where available): the time until every
//! task is RUNNING, and from the KILLs until every task is KILLED (containers destroyed).

use super::*;

/// `strata bench churn` options.
#[derive(Debug, Args)]
pub struct ChurnArgs {
    /// Tasks launched and destroyed.
    #[arg(long, default_value_t = 1000)]
    pub tasks: usize,
    /// Where the in-process cluster keeps its data (default: the system temp dir).
    #[arg(long = "work_dir")]
    pub work_dir: Option<String>,
}

pub(crate) async fn run(a: ChurnArgs) -> anyhow::Result<i32> {
    let (master, cluster) = local_cluster(a.work_dir.as_deref()).await?;
    let info: FrameworkInfo = serde_json::from_value(
        serde_json::json!({"user": "root", "name": "strata-bench-churn", "failover_timeout": 0.0}),
    )?;
    let mut s = Scheduler::subscribe(&master, info).await?;
    let mut pending = Vec::new();
    let n = a.tasks;
    let offers = offers_holding(&mut s, &mut pending, 0.01 * n as f64, n as f64).await?;
    let Some(first) = offers.first() else {
        anyhow::bail!("no offers")
    };
    let tasks: Vec<TaskInfo> = (0..n)
        .map(|i| task_running(first, &format!("churn-{i}"), "exec sleep 600"))
        .collect();
    let ids: Vec<TaskId> = tasks.iter().map(|t| t.task_id.clone()).collect();
    let t0 = Instant::now();
    accept(&s, &offers.iter().collect::<Vec<_>>(), tasks).await?;
    wait_all(&mut s, n, TaskState::Running).await?;
    let launched = t0.elapsed();
    let t1 = Instant::now();
    for id in ids {
        s.call(Command::Kill(strata_api::scheduler::Kill {
            task_id: id,
            agent_id: None,
            kill_policy: None,
        }))
        .await?;
    }
    wait_all(&mut s, n, TaskState::Killed).await?;
    let destroyed = t1.elapsed();
    println!(
        "strata bench churn: {n} `sleep` tasks on one agent (default isolation), master {master}"
    );
    println!(
        "launched (all RUNNING)  {:.2}s  ({:.0} tasks/s)",
        launched.as_secs_f64(),
        n as f64 / launched.as_secs_f64()
    );
    println!(
        "destroyed (all KILLED)  {:.2}s  ({:.0} tasks/s)",
        destroyed.as_secs_f64(),
        n as f64 / destroyed.as_secs_f64()
    );
    let _ = s.call(Command::Teardown).await;
    cluster.stop().await;
    Ok(0)
}

/// Reads events (acknowledging updates) until `n` distinct tasks reached `state`.
pub(crate) async fn wait_all(s: &mut Scheduler, n: usize, state: TaskState) -> anyhow::Result<()> {
    let mut seen: HashMap<TaskId, ()> = HashMap::new();
    while seen.len() < n {
        match s.next_event().await? {
            Some(Event::Update(u)) => {
                s.acknowledge(&u.status).await?;
                if u.status.state == state {
                    seen.insert(u.status.task_id.clone(), ());
                } else if u.status.state.is_terminal() {
                    anyhow::bail!(
                        "task {} ended {}: {:?}",
                        u.status.task_id,
                        u.status.state,
                        u.status.message
                    );
                }
            }
            Some(_) => {}
            None => anyhow::bail!("master closed the stream"),
        }
    }
    Ok(())
}
