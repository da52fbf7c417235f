//! `strata bench launch`: end-to-end launch latency of a bare `true` task (ACCEPT sent →
//! TASK_RUNNING seen → TASK_FINISHED seen) and the time for one agent to launch a burst of
//! tasks back to back.

use super::*;

pub(crate) async fn run(a: LaunchArgs) -> anyhow::Result<i32> {
    let (master, cluster) = match a.master.clone() {
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
        let mut t = task(&offer, &id);
        if let Some(image) = &a.docker_image {
            t.container = Some(serde_json::from_value(
                serde_json::json!({"type": "DOCKER", "docker": {"image": image}}),
            )?);
            // A container's own start-up (runc, the image's shell) runs under the task's
            // CFS quota: 0.01 cpus would make it take a second, measuring the quota.
            t.resources = Resources::from_vec(vec![
                Resource::scalar("cpus", 1.0),
                Resource::scalar("mem", 64.0),
            ])
            .to_wire(WireFormat::PreRefinement);
        }
        let t0 = Instant::now();
        accept(&s, &[&offer], vec![t]).await?;
        let (running, finished) = wait_one(&mut s, &id, &mut pending).await?;
        to_running.push(running.duration_since(t0));
        to_finished.push(finished.duration_since(t0));
    }
    let place = a
        .work_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().display().to_string());
    let how = match &a.docker_image {
        Some(image) => format!("Docker containers of {image}"),
        None => "command executor".to_string(),
    };
    println!(
        "strata bench launch: master {master}, bare `true` tasks, {how}, sandboxes under {place}"
    );
    report("ACCEPT -> TASK_RUNNING", to_running);
    report("ACCEPT -> TASK_FINISHED", to_finished);
    if a.docker_image.is_none() {
        burst(&mut s, a.burst, &mut pending).await?;
    }
    let _ = s.call(Command::Teardown).await;
    if let Some(c) = cluster {
        c.stop().await;
    }
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
