//! A test framework on the Rust SDK that records what it saw, plus /proc and /master
//! lookups shared by the integration tests (tasks' processes, framework and task states).

use crate::{wait_until, Cluster};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use strata_api::scheduler::{Accept, Command, Decline, Event, Kill, Launch, Operation};
use strata_api::scheduler::{Reconcile, ReconcileTask};
use strata_api::{AgentId, CommandInfo, Filters, FrameworkId, FrameworkInfo, Offer, OfferId};
use strata_api::{TaskId, TaskInfo, TaskState, TaskStatus};
use strata_resources::{Resource, Resources, WireFormat};
use strata_sdk::Scheduler;

/// Deadline for anything the cluster must do; generous for a loaded 2-core machine.
pub const LONG: Duration = Duration::from_secs(60);

pub fn framework_info(
    name: &str,
    failover_timeout: f64,
    checkpoint: bool,
    pa: bool,
) -> FrameworkInfo {
    let user = crate::current_user();
    let caps = if pa {
        json!([{"type": "PARTITION_AWARE"}])
    } else {
        json!([])
    };
    serde_json::from_value(
        json!({"user": user, "name": name, "failover_timeout": failover_timeout,
        "checkpoint": checkpoint, "capabilities": caps}),
    )
    .unwrap()
}

/// A long-running command with a unique argument, and that argument's text as it shows
/// in /proc (`sh -c 'exec sleep 600.N'`: both the shell and sleep carry it).
pub fn sleeper() -> (String, String) {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let marker = format!("sleep 600.{}{n:03}", std::process::id());
    (format!("exec {marker}"), marker)
}

/// Live processes whose /proc/<pid>/`file` (NULs read as spaces) contains `needle`;
/// zombies have an empty command line and environment.
pub fn pids_where(file: &str, needle: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let text = std::fs::read(e.path().join(file)).ok()?;
        String::from_utf8_lossy(&text)
            .replace('\0', " ")
            .contains(needle)
            .then_some(pid)
    })
    .collect()
}

pub fn pids_with(marker: &str) -> Vec<u32> {
    pids_where("cmdline", marker)
}

/// Live processes of framework `fid`: its executors (and their tasks) carry
/// `MESOS_FRAMEWORK_ID` in their environment.
pub fn framework_pids(fid: &FrameworkId) -> Vec<u32> {
    pids_where("environ", &format!("MESOS_FRAMEWORK_ID={fid} "))
}

pub async fn wait_framework_processes_gone(fid: &FrameworkId) {
    let what = format!("every executor and task of {fid} to end");
    wait_until(LONG, &what, async || {
        framework_pids(fid).is_empty().then_some(())
    })
    .await
}

pub async fn wait_alive(marker: &str) -> Vec<u32> {
    let what = format!("a process running `{marker}`");
    wait_until(LONG, &what, async || {
        let pids = pids_with(marker);
        (!pids.is_empty()).then_some(pids)
    })
    .await
}

pub async fn wait_gone(marker: &str) {
    let what = format!("every process running `{marker}` to end");
    wait_until(LONG, &what, async || {
        pids_with(marker).is_empty().then_some(())
    })
    .await
}

pub fn brief(e: &Event) -> String {
    match e {
        Event::Update(u) => {
            let s = &u.status;
            let uuid = if s.uuid.is_some() { " uuid" } else { "" };
            format!(
                "UPDATE {} {} {:?} {:?}{uuid}",
                s.task_id, s.state, s.reason, s.message
            )
        }
        Event::Offers(o) => format!("OFFERS x{}", o.offers.len()),
        other => format!("{other:?}").chars().take(300).collect(),
    }
}

pub fn fits(offer: &Offer, need: &Resources) -> bool {
    Resources::from_wire(&offer.resources)
        .is_ok_and(|r| r.cpus() >= need.cpus() && r.mem_mb() >= need.mem_mb())
}

/// A framework on the Rust SDK that remembers what it saw (printed when a wait fails).
pub struct Fw {
    pub s: Scheduler,
    /// Acknowledge every update that carries a uuid as soon as it is read.
    pub auto_ack: bool,
    pub seen: Vec<String>,
}

impl Fw {
    pub async fn subscribe(master: &str, info: FrameworkInfo) -> Self {
        let s = Scheduler::subscribe(master, info)
            .await
            .expect("SUBSCRIBE accepted");
        Self {
            s,
            auto_ack: true,
            seen: Vec::new(),
        }
    }

    /// Re-subscribes with the id of an earlier subscription.
    pub async fn resubscribe(master: &str, mut info: FrameworkInfo, id: &FrameworkId) -> Self {
        info.id = Some(id.clone());
        let fw = Self::subscribe(master, info).await;
        assert_eq!(&fw.id(), id, "re-subscription keeps the framework id");
        fw
    }

    pub fn id(&self) -> FrameworkId {
        self.s.framework_id().clone()
    }

    /// The next event; `None` once the master closed (or broke) the stream.
    pub async fn next(&mut self) -> Option<Event> {
        let event = match tokio::time::timeout(LONG, self.s.next_event()).await {
            Err(_) => panic!(
                "no event, not even a HEARTBEAT, in {LONG:?}: {:#?}",
                self.seen
            ),
            Ok(Err(e)) => {
                self.seen.push(format!("stream broke: {e}"));
                None
            }
            Ok(Ok(e)) => e,
        }?;
        self.seen.push(brief(&event));
        self.s.session.observe(&event);
        if let (true, Event::Update(u)) = (self.auto_ack, &event) {
            if let Err(e) = self.s.acknowledge(&u.status).await {
                self.seen.push(format!("ACKNOWLEDGE failed: {e}"));
            }
        }
        Some(event)
    }

    /// Reads events until `f` picks one; panics if the stream ends or time runs out.
    pub async fn expect<T>(&mut self, what: &str, mut f: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = Instant::now() + LONG;
        while Instant::now() < deadline {
            let Some(event) = self.next().await else {
                panic!(
                    "the stream ended while waiting for {what}: {:#?}",
                    self.seen
                )
            };
            if let Some(v) = f(&event) {
                return v;
            }
        }
        panic!("timed out waiting for {what}: {:#?}", self.seen)
    }

    /// The next UPDATE of `task`, whatever its state.
    pub async fn next_update(&mut self, task: &str) -> TaskStatus {
        self.expect(&format!("an update of {task}"), |e| match e {
            Event::Update(u) if u.status.task_id.as_str() == task => Some(u.status.clone()),
            _ => None,
        })
        .await
    }

    /// The first UPDATE of `task` in `state`.
    pub async fn state(&mut self, task: &str, state: TaskState) -> TaskStatus {
        self.expect(&format!("{task} in {state}"), |e| match e {
            Event::Update(u) if u.status.task_id.as_str() == task && u.status.state == state => {
                Some(u.status.clone())
            }
            _ => None,
        })
        .await
    }

    /// The first terminal UPDATE of `task` (earlier non-terminal ones may be resent).
    pub async fn terminal(&mut self, task: &str) -> TaskStatus {
        self.expect(&format!("{task} to end"), |e| match e {
            Event::Update(u)
                if u.status.task_id.as_str() == task && u.status.state.is_terminal() =>
            {
                Some(u.status.clone())
            }
            _ => None,
        })
        .await
    }

    /// The first terminal UPDATE of each of `tasks`, in whatever order they end
    /// (`terminal` one after the other would miss a task that ended first).
    pub async fn terminals(
        &mut self,
        tasks: &[&str],
    ) -> std::collections::BTreeMap<String, TaskStatus> {
        let mut ended = std::collections::BTreeMap::new();
        while ended.len() < tasks.len() {
            let what = format!("{tasks:?} to end");
            let s = self
                .expect(&what, |e| match e {
                    Event::Update(u)
                        if tasks.contains(&u.status.task_id.as_str())
                            && u.status.state.is_terminal()
                            && !ended.contains_key(u.status.task_id.as_str()) =>
                    {
                        Some(u.status.clone())
                    }
                    _ => None,
                })
                .await;
            ended.insert(s.task_id.to_string(), s);
        }
        ended
    }

    /// Launches a 0.1 cpu / 32 MB command task from an offer that fits; returns its agent.
    pub async fn launch(&mut self, task: &str, cmd: &str) -> AgentId {
        self.launch_with(task, cmd, |_| {}).await
    }

    /// Like [`Fw::launch`], letting `edit` change the TaskInfo before it is sent.
    pub async fn launch_with(
        &mut self,
        task: &str,
        cmd: &str,
        edit: impl FnOnce(&mut TaskInfo),
    ) -> AgentId {
        let need = Resources::from_vec(vec![
            Resource::scalar("cpus", 0.1),
            Resource::scalar("mem", 32.0),
        ]);
        let offer = loop {
            let fit = self.s.session.offers().find(|o| fits(o, &need));
            if let Some(id) = fit.map(|o| o.id.clone()) {
                break self.s.session.take_offer(&id).expect("outstanding");
            }
            let is_offers = |e: &Event| matches!(e, Event::Offers(_)).then_some(());
            self.expect("an offer", is_offers).await;
        };
        let wire = need.to_wire(WireFormat::PreRefinement);
        let mut info = TaskInfo::command(
            task,
            TaskId::new(task),
            offer.agent_id.clone(),
            wire,
            CommandInfo::shell(cmd),
        );
        edit(&mut info);
        let op = Operation {
            kind: "LAUNCH".into(),
            id: None,
            launch: Some(Launch {
                task_infos: vec![info],
            }),
            launch_group: None,
            ..Default::default()
        };
        let accept = Accept {
            offer_ids: vec![offer.id],
            operations: vec![op],
            filters: Some(Filters {
                refuse_seconds: Some(0.0),
            }),
        };
        self.call(Command::Accept(accept)).await;
        offer.agent_id
    }

    pub async fn call(&self, body: Command) {
        self.s.call(body).await.expect("call accepted");
    }

    pub async fn reconcile(&self, task: &str, agent: Option<&AgentId>) {
        let one = ReconcileTask {
            task_id: TaskId::new(task),
            agent_id: agent.cloned(),
        };
        self.call(Command::Reconcile(Reconcile { tasks: vec![one] }))
            .await;
    }

    pub async fn kill(&self, task: &str) {
        let kill = Kill {
            task_id: TaskId::new(task),
            agent_id: None,
            kill_policy: None,
        };
        self.call(Command::Kill(kill)).await;
    }
}

/// The framework's object in /master/state, and whether it is a completed one.
pub async fn framework_state(c: &Cluster, fid: &FrameworkId) -> Option<(bool, Value)> {
    let state = c.get("/master/state").await.ok()?;
    [(false, "frameworks"), (true, "completed_frameworks")]
        .into_iter()
        .find_map(|(completed, key)| {
            let list = state[key].as_array()?;
            let fw = list.iter().find(|f| f["id"] == fid.as_str())?;
            Some((completed, fw.clone()))
        })
}

/// A task's state in one of a framework's lists (`tasks`, `completed_tasks`…).
pub fn task_in(fw: &Value, list: &str, task: &str) -> Option<String> {
    let t = fw[list].as_array()?.iter().find(|t| t["id"] == task)?;
    t["state"].as_str().map(str::to_string)
}

/// Waits until the framework's `list` holds `task` in `state` (and its live list does not).
pub async fn wait_task_listed(c: &Cluster, fid: &FrameworkId, list: &str, task: &str, state: &str) {
    let what = format!("{task} in {list} as {state}");
    wait_until(LONG, &what, async || {
        let (_, fw) = framework_state(c, fid).await?;
        let live = list == "tasks" || task_in(&fw, "tasks", task).is_none();
        (live && task_in(&fw, list, task).as_deref() == Some(state)).then_some(())
    })
    .await
}

impl Fw {
    pub async fn decline(&self, offer_ids: Vec<OfferId>, refuse_seconds: f64) {
        let filters = Some(Filters {
            refuse_seconds: Some(refuse_seconds),
        });
        self.call(Command::Decline(Decline { offer_ids, filters }))
            .await;
    }

    /// Declines every outstanding offer (no filter).
    pub async fn decline_all(&mut self) {
        let ids: Vec<OfferId> = self.s.session.offers().map(|o| o.id.clone()).collect();
        for id in &ids {
            self.s.session.take_offer(id).expect("outstanding");
        }
        if !ids.is_empty() {
            self.decline(ids, 0.0).await;
        }
    }

    /// One offer holding all of an idle agent's 4 cpus (partial offers are declined so
    /// that the allocator merges them).
    pub async fn full_offer(&mut self) -> Offer {
        let full = |o: &&Offer| {
            Resources::from_wire(&o.resources).is_ok_and(|r| r.cpus().as_f64() >= 3.999)
        };
        loop {
            let found = self.s.session.offers().find(full).map(|o| o.id.clone());
            if let Some(id) = found {
                return self.s.session.take_offer(&id).expect("outstanding");
            }
            self.decline_all().await;
            let is_offers = |e: &Event| matches!(e, Event::Offers(_)).then_some(());
            self.expect("an offer of the whole agent", is_offers).await;
        }
    }

    /// Asks the master for a reconciliation of a made-up task and returns every event that
    /// arrived before its answer: the answer marks a point in the stream.
    pub async fn events_until_marker(&mut self, marker: &str) -> Vec<String> {
        self.reconcile(marker, None).await;
        let mut before = Vec::new();
        self.expect(&format!("the answer for {marker}"), |e| match e {
            Event::Update(u) if u.status.task_id.as_str() == marker => Some(()),
            other => {
                before.push(brief(other));
                None
            }
        })
        .await;
        before
    }
}

/// A task as the operator API reports it (full statuses, with reasons).
pub async fn operator_task(c: &Cluster, task: &str) -> Option<Value> {
    let url = format!("http://{}/api/v1", c.master.addr);
    let reply = c
        .client
        .post_json(&url, &[], &json!({"type": "GET_TASKS"}))
        .await
        .ok()?;
    let v: Value = reply.json(&url).ok()?;
    let lists = ["tasks", "unreachable_tasks", "completed_tasks"];
    lists.iter().find_map(|l| {
        let list = v["get_tasks"][l].as_array()?;
        list.iter().find(|t| t["task_id"]["value"] == task).cloned()
    })
}

pub async fn agent_active(c: &Cluster, aid: &AgentId) -> Option<bool> {
    let slaves = c.get("/master/slaves").await.ok()?;
    let agent = slaves["slaves"]
        .as_array()?
        .iter()
        .find(|s| s["id"] == aid.as_str())?;
    agent["active"].as_bool()
}
