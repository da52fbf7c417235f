//! Transcript harness for the agent core: feed inputs at chosen times, keep the effects
//! of the last step (and of every step), and look at them by kind.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use std::collections::BTreeMap;
use strata_agent_core::checkpoint::{CheckpointOp, RecoveredState};
use strata_agent_core::{Agent, Config, ConnId, ContainerSpec, Effect, Input, Reply};
use strata_api::agent_link::{
    KillTask, ReconcileTasks, RunTask, RunTaskGroup, ShutdownExecutor, ShutdownFramework,
    StatusAck, StatusUpdate, ToAgent, ToMaster,
};
use strata_api::executor::{CallBody, Event, Subscribe, Update};
use strata_api::{
    AgentId, AgentInfo, Capability, CommandInfo, ContainerId, DurationInfo, ExecutorId,
    ExecutorInfo, ExecutorType, FrameworkId, FrameworkInfo, KillPolicy, Source, TaskGroupInfo,
    TaskId, TaskInfo, TaskState, TaskStatus,
};
use strata_resources::{Resources, WireFormat, WireResource};

/// Where every transcript starts.
pub const T0: f64 = 1_000.0;
pub const AGENT_ID: &str = "5c3f0e1a-S7";
pub const ADDRESS: &str = "10.0.0.7:5051";
pub const WORK_DIR: &str = "/var/lib/strata";
pub const FW: &str = "5c3f0e1a-0001";
/// Status-update retry: first after 10 s, doubling, capped at 40 s.
pub const RETRY_INITIAL: f64 = 10.0;
pub const RETRY_MAX: f64 = 40.0;
pub const REGISTRATION_TIMEOUT: f64 = 60.0;
pub const REREGISTRATION_TIMEOUT: f64 = 5.0;
pub const GRACE: f64 = 5.0;

pub fn wire(flag: &str) -> Vec<WireResource> {
    Resources::parse_flag(flag, "*")
        .unwrap()
        .to_wire(WireFormat::PostRefinement)
}

pub fn config() -> Config {
    let info = AgentInfo {
        hostname: "agent7.test".into(),
        port: 5051,
        resources: wire("cpus:4;mem:4096;disk:10000"),
        attributes: Vec::new(),
        id: None,
        domain: None,
    };
    let mut cfg = Config::new(info, ADDRESS.into(), WORK_DIR.into());
    cfg.id_prefix = "run".into();
    cfg.uuid_seed = [7; 8];
    cfg.status_update_retry_initial = RETRY_INITIAL;
    cfg.status_update_retry_max = RETRY_MAX;
    cfg.executor_registration_timeout = REGISTRATION_TIMEOUT;
    cfg.executor_reregistration_timeout = REREGISTRATION_TIMEOUT;
    cfg.executor_shutdown_grace_period = GRACE;
    cfg
}

pub fn fid() -> FrameworkId {
    FrameworkId::new(FW)
}

pub fn aid() -> AgentId {
    AgentId::new(AGENT_ID)
}

pub fn tid(id: &str) -> TaskId {
    TaskId::new(id)
}

pub fn eid(id: &str) -> ExecutorId {
    ExecutorId::new(id)
}

/// FrameworkInfo with id `FW` and the given capabilities.
pub fn framework(checkpoint: bool, caps: &[&str]) -> FrameworkInfo {
    FrameworkInfo {
        user: "alice".into(),
        name: "fw".into(),
        id: Some(fid()),
        failover_timeout: 3600.0,
        checkpoint,
        role: None,
        roles: Vec::new(),
        hostname: None,
        principal: None,
        webui_url: None,
        capabilities: caps
            .iter()
            .map(|c| Capability {
                kind: c.to_string(),
            })
            .collect(),
        labels: None,
        offer_filters: None,
    }
}

pub fn plain() -> FrameworkInfo {
    framework(false, &[])
}

/// A command task (`sleep 1000`).
pub fn task(id: &str) -> TaskInfo {
    TaskInfo::command(
        &format!("task {id}"),
        tid(id),
        aid(),
        wire("cpus:0.5;mem:64"),
        CommandInfo::shell("sleep 1000"),
    )
}

/// A task for an executor (no command).
pub fn exec_task(id: &str) -> TaskInfo {
    let mut t = task(id);
    t.command = None;
    t
}

pub fn custom_executor(id: &str) -> ExecutorInfo {
    ExecutorInfo {
        kind: None,
        executor_id: eid(id),
        framework_id: Some(fid()),
        command: Some(CommandInfo::shell("./my-executor")),
        container: None,
        resources: wire("cpus:0.1;mem:32"),
        name: Some(format!("executor {id}")),
        source: None,
        data: None,
        discovery: None,
        shutdown_grace_period: None,
        labels: None,
    }
}

pub fn default_executor(id: &str) -> ExecutorInfo {
    let mut e = custom_executor(id);
    e.kind = Some(ExecutorType::Default);
    e.command = None;
    e
}

pub fn grace(secs: f64) -> Option<DurationInfo> {
    Some(DurationInfo {
        nanoseconds: (secs * 1e9) as i64,
    })
}

pub fn kill_policy(secs: f64) -> KillPolicy {
    KillPolicy {
        grace_period: grace(secs),
    }
}

/// 16 bytes `[n; 16]` in base64: a valid executor-made update uuid.
pub fn uuid(n: u8) -> String {
    base64::engine::general_purpose::STANDARD.encode([n; 16])
}

/// An executor-made status (SOURCE_EXECUTOR, uuid `n`).
pub fn status(task: &str, state: TaskState, n: u8) -> TaskStatus {
    let mut s = TaskStatus::new(tid(task), state);
    s.source = Some(Source::Executor);
    s.uuid = Some(uuid(n));
    s
}

pub fn kind_of_event(e: &Event) -> String {
    e.type_name().to_string()
}

/// A short name for an effect: `launch`, `destroy`, `close`, `shutdown`,
/// `master:STATUS_UPDATE`, `executor:LAUNCH`, `checkpoint:Task`…
pub fn effect_kind(e: &Effect) -> String {
    match e {
        Effect::Master(m) => format!("master:{}", m.type_name()),
        Effect::Executor { event, .. } => format!("executor:{}", event.type_name()),
        Effect::CloseExecutor { .. } => "close".into(),
        Effect::Launch(_) => "launch".into(),
        Effect::Destroy { .. } => "destroy".into(),
        Effect::Shutdown { .. } => "shutdown".into(),
        Effect::Checkpoint(op) => format!("checkpoint:{}", op_kind(op)),
        Effect::BlackBox(b) => format!("blackbox:{}", b.task_id),
        Effect::Volume(op) => format!("volume:{}", volume_kind(op)),
    }
}

pub fn op_kind(op: &CheckpointOp) -> &'static str {
    match op {
        CheckpointOp::Framework { .. } => "Framework",
        CheckpointOp::Executor { .. } => "Executor",
        CheckpointOp::Task { .. } => "Task",
        CheckpointOp::Updates { .. } => "Updates",
        CheckpointOp::RemoveTask { .. } => "RemoveTask",
        CheckpointOp::RemoveExecutor { .. } => "RemoveExecutor",
        CheckpointOp::RemoveFramework { .. } => "RemoveFramework",
        CheckpointOp::Resources { .. } => "Resources",
    }
}

pub fn volume_kind(op: &strata_agent_core::volumes::VolumeOp) -> &'static str {
    use strata_agent_core::volumes::VolumeOp;
    match op {
        VolumeOp::Create { .. } => "create",
        VolumeOp::Destroy { .. } => "destroy",
        VolumeOp::Link { .. } => "link",
        VolumeOp::MountPoint { .. } => "mount point",
        VolumeOp::MountInto { .. } => "mount into",
    }
}

/// The agent plus the shell's bookkeeping: executor streams and containers.
pub struct Harness {
    pub a: Agent,
    pub now: f64,
    /// Effects of the last step.
    pub out: Vec<Effect>,
    /// Every effect since the harness was built (or `clear_log`).
    pub log: Vec<Effect>,
    next_conn: u64,
    /// Current stream of each executor (by executor id).
    pub conns: BTreeMap<String, ConnId>,
    /// Latest container of each executor (by executor id), from Launch effects.
    pub containers: BTreeMap<String, ContainerId>,
    /// Containers reported started (`ContainerStarted`).
    pub started: std::collections::BTreeSet<ContainerId>,
    /// When set, `subscribe` does not report the container started first.
    pub no_auto_start: bool,
}

impl Harness {
    /// A new agent (no id yet), not registered.
    pub fn new() -> Self {
        Self::from_agent(Agent::new(config(), None, T0))
    }

    /// A new agent registered as `AGENT_ID`.
    pub fn registered() -> Self {
        let mut h = Self::new();
        h.register();
        assert!(h.out.is_empty(), "nothing to resend: {:#?}", h.out);
        h
    }

    pub fn from_agent(a: Agent) -> Self {
        Self {
            a,
            now: T0,
            out: Vec::new(),
            log: Vec::new(),
            next_conn: 1,
            conns: BTreeMap::new(),
            containers: BTreeMap::new(),
            started: Default::default(),
            no_auto_start: false,
        }
    }

    /// A restarted agent (id kept) that recovered `state` at `T0`; `out` holds the
    /// effects of recovery.
    pub fn recovered(state: RecoveredState) -> Self {
        let mut a = Agent::new(config(), Some(aid()), T0);
        let mut out = Vec::new();
        a.recover(state, T0, &mut out);
        let mut h = Self::from_agent(a);
        h.log.extend(out.iter().cloned());
        h.out = out;
        h
    }

    // ----- driving ------------------------------------------------------------------

    pub fn step(&mut self, input: Input) -> Reply {
        let mut out = Vec::new();
        let reply = self.a.step(self.now, input, &mut out);
        for e in &out {
            match e {
                Effect::Launch(spec) => {
                    self.containers
                        .insert(spec.executor_id.to_string(), spec.container_id.clone());
                }
                Effect::CloseExecutor { conn } => self.conns.retain(|_, c| c != conn),
                _ => {}
            }
        }
        self.log.extend(out.iter().cloned());
        self.out = out;
        reply
    }

    /// Moves the clock to `t` (never backwards).
    pub fn at(&mut self, t: f64) {
        assert!(t >= self.now, "time goes forward: {t} < {}", self.now);
        self.now = t;
    }

    /// Tick at absolute time `t`.
    pub fn tick_at(&mut self, t: f64) {
        self.at(t);
        assert_eq!(self.step(Input::Tick), Reply::None);
    }

    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    pub fn register(&mut self) {
        assert_eq!(
            self.step(Input::MasterRegistered { agent_id: aid() }),
            Reply::None
        );
    }

    pub fn disconnect(&mut self) {
        assert_eq!(self.step(Input::MasterDisconnected), Reply::None);
    }

    pub fn master(&mut self, msg: ToAgent) {
        assert_eq!(self.step(Input::Master(Box::new(msg))), Reply::None);
    }

    /// RUN_TASK for a command task (`executor` None) or a custom executor.
    pub fn run(&mut self, fw: &FrameworkInfo, executor: Option<ExecutorInfo>, task: TaskInfo) {
        self.master(ToAgent::RunTask(RunTask {
            framework: fw.clone(),
            executor,
            task,
        }));
    }

    pub fn run_group(&mut self, fw: &FrameworkInfo, executor: ExecutorInfo, tasks: Vec<TaskInfo>) {
        self.master(ToAgent::RunTaskGroup(RunTaskGroup {
            framework: fw.clone(),
            executor,
            task_group: TaskGroupInfo { tasks },
        }));
    }

    pub fn kill(&mut self, task: &str, policy: Option<KillPolicy>) {
        self.master(ToAgent::KillTask(KillTask {
            framework_id: fid(),
            task_id: tid(task),
            kill_policy: policy,
        }));
    }

    pub fn ack(&mut self, task: &str, uuid: &str) {
        self.master(ToAgent::StatusAck(StatusAck {
            framework_id: fid(),
            task_id: tid(task),
            uuid: uuid.to_string(),
        }));
    }

    /// Acknowledges the update just sent for `task` (the one STATUS_UPDATE in the last
    /// step); returns it.
    pub fn ack_sent(&mut self, task: &str) -> TaskStatus {
        let s = self.sent_for(task);
        self.ack(
            task,
            s.uuid.as_deref().expect("reliable updates carry a uuid"),
        );
        s
    }

    /// Acknowledges every pending update (as reported in the Hello) until none is left.
    pub fn ack_everything(&mut self) {
        for _ in 0..100 {
            let heads: Vec<_> = self
                .a
                .hello()
                .tasks
                .into_iter()
                .filter_map(|t| Some((t.task_id.to_string(), t.status_update_uuid?)))
                .collect();
            if heads.is_empty() {
                return;
            }
            for (task, uuid) in heads {
                self.ack(&task, &uuid);
            }
        }
        panic!("updates keep coming");
    }

    pub fn shutdown_framework(&mut self) {
        self.master(ToAgent::ShutdownFramework(ShutdownFramework {
            framework_id: fid(),
        }));
    }

    pub fn shutdown_executor(&mut self, executor: &str) {
        self.master(ToAgent::ShutdownExecutor(ShutdownExecutor {
            framework_id: fid(),
            executor_id: eid(executor),
        }));
    }

    pub fn reconcile(&mut self, fw: &FrameworkInfo, tasks: &[&str]) {
        self.master(ToAgent::ReconcileTasks(ReconcileTasks {
            framework: fw.clone(),
            task_ids: tasks.iter().map(|t| tid(t)).collect(),
        }));
    }

    /// SUBSCRIBE of `executor` on a new stream.
    pub fn subscribe_with(&mut self, executor: &str, sub: Subscribe) -> (ConnId, Reply) {
        self.subscribe_as(&fid(), executor, sub)
    }

    pub fn subscribe_as(
        &mut self,
        framework_id: &FrameworkId,
        executor: &str,
        sub: Subscribe,
    ) -> (ConnId, Reply) {
        // The shell reports a container started (and isolated) before its executor can
        // get tasks; most tests want that ordinary order, so it happens here unless the
        // test already did it (or deliberately subscribes with `subscribe_before_start`).
        if let Some(cid) = self.containers.get(executor).cloned() {
            if !self.started.contains(&cid) && !self.no_auto_start {
                self.started.insert(cid.clone());
                self.step(Input::ContainerStarted {
                    container_id: cid,
                    pid: 4242,
                });
            }
        }
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let reply = self.step(Input::ExecutorSubscribe {
            conn,
            framework_id: framework_id.clone(),
            executor_id: eid(executor),
            subscribe: Box::new(sub),
        });
        if reply == Reply::Stream {
            self.conns.insert(executor.to_string(), conn);
        }
        (conn, reply)
    }

    /// SUBSCRIBE that must succeed; returns the new stream.
    pub fn subscribe(&mut self, executor: &str) -> ConnId {
        let (conn, reply) = self.subscribe_with(executor, Subscribe::default());
        assert_eq!(reply, Reply::Stream, "{:#?}", self.out);
        conn
    }

    pub fn conn(&self, executor: &str) -> ConnId {
        *self
            .conns
            .get(executor)
            .unwrap_or_else(|| panic!("executor {executor} has no stream"))
    }

    pub fn close_stream(&mut self, executor: &str) {
        let conn = self.conns.remove(executor).expect("a stream to close");
        assert_eq!(self.step(Input::ExecutorStreamClosed { conn }), Reply::None);
    }

    pub fn call(&mut self, executor: &str, body: CallBody) -> Reply {
        self.call_as(&fid(), executor, body)
    }

    pub fn call_as(&mut self, framework_id: &FrameworkId, executor: &str, body: CallBody) -> Reply {
        self.step(Input::ExecutorCall {
            framework_id: framework_id.clone(),
            executor_id: eid(executor),
            body: Box::new(body),
        })
    }

    /// UPDATE from `executor`.
    pub fn update_raw(&mut self, executor: &str, status: TaskStatus) -> Reply {
        self.call(executor, CallBody::Update(Update { status }))
    }

    /// A valid UPDATE from `executor`: must be accepted.
    pub fn update(&mut self, executor: &str, task: &str, state: TaskState, n: u8) {
        let reply = self.update_raw(executor, status(task, state, n));
        assert_eq!(reply, Reply::Accepted, "{:#?}", self.out);
    }

    pub fn container(&self, executor: &str) -> ContainerId {
        self.containers
            .get(executor)
            .cloned()
            .unwrap_or_else(|| panic!("executor {executor} was never launched"))
    }

    pub fn started(&mut self, executor: &str, pid: u32) {
        let container_id = self.container(executor);
        self.started.insert(container_id.clone());
        assert_eq!(
            self.step(Input::ContainerStarted { container_id, pid }),
            Reply::None
        );
    }

    pub fn exited(&mut self, executor: &str, status: i32) {
        let container_id = self.container(executor);
        assert_eq!(
            self.step(Input::ContainerExited {
                container_id,
                status
            }),
            Reply::None
        );
    }

    pub fn failed(&mut self, executor: &str, message: &str) {
        let container_id = self.container(executor);
        assert_eq!(
            self.step(Input::ContainerFailed {
                container_id,
                message: message.into()
            }),
            Reply::None
        );
    }

    /// RUN_TASK of command task `task`, then its executor subscribes: the task is
    /// LAUNCHed. The stream is `h.conn(task)`.
    pub fn running_command_task(&mut self, fw: &FrameworkInfo, task_id: &str) {
        self.run(fw, None, task(task_id));
        assert_eq!(self.launches().len(), 1, "{:#?}", self.out);
        self.started(task_id, 4000);
        let conn = self.subscribe(task_id);
        assert_eq!(self.kinds(conn), ["SUBSCRIBED", "LAUNCH"]);
    }

    // ----- effects of the last step -------------------------------------------------

    pub fn kinds_all(&self) -> Vec<String> {
        self.out.iter().map(effect_kind).collect()
    }

    pub fn launches(&self) -> Vec<ContainerSpec> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::Launch(s) => Some((**s).clone()),
                _ => None,
            })
            .collect()
    }

    pub fn launch(&self) -> ContainerSpec {
        let mut l = self.launches();
        assert_eq!(l.len(), 1, "expected one Launch: {:#?}", self.out);
        l.remove(0)
    }

    pub fn to_master(&self) -> Vec<ToMaster> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::Master(m) => Some((**m).clone()),
                _ => None,
            })
            .collect()
    }

    pub fn status_updates(&self) -> Vec<StatusUpdate> {
        self.to_master()
            .into_iter()
            .filter_map(|m| match m {
                ToMaster::StatusUpdate(u) => Some(u),
                _ => None,
            })
            .collect()
    }

    /// `(task id, state)` of every STATUS_UPDATE in the last step.
    pub fn sent(&self) -> Vec<(String, TaskState)> {
        self.status_updates()
            .iter()
            .map(|u| (u.status.task_id.to_string(), u.status.state))
            .collect()
    }

    /// The one STATUS_UPDATE for `task` in the last step.
    pub fn sent_for(&self, task: &str) -> TaskStatus {
        let mut u: Vec<_> = self
            .status_updates()
            .into_iter()
            .filter(|u| u.status.task_id.as_str() == task)
            .collect();
        assert_eq!(u.len(), 1, "one STATUS_UPDATE for {task}: {:#?}", self.out);
        u.remove(0).status
    }

    pub fn events(&self, conn: ConnId) -> Vec<Event> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::Executor { conn: c, event } if *c == conn => Some((**event).clone()),
                _ => None,
            })
            .collect()
    }

    pub fn kinds(&self, conn: ConnId) -> Vec<String> {
        self.events(conn).iter().map(kind_of_event).collect()
    }

    /// Every executor event in the last step, whatever the stream.
    pub fn all_events(&self) -> Vec<(ConnId, Event)> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::Executor { conn, event } => Some((*conn, (**event).clone())),
                _ => None,
            })
            .collect()
    }

    pub fn destroys(&self) -> Vec<ContainerId> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::Destroy { container_id } => Some(container_id.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn closed(&self) -> Vec<ConnId> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::CloseExecutor { conn } => Some(*conn),
                _ => None,
            })
            .collect()
    }

    pub fn checkpoints(&self) -> Vec<CheckpointOp> {
        checkpoints_in(&self.out)
    }

    /// Position in the last step of the first effect whose kind is `kind`.
    pub fn pos(&self, kind: &str) -> usize {
        self.kinds_all()
            .iter()
            .position(|k| k == kind)
            .unwrap_or_else(|| panic!("no {kind} in {:?}", self.kinds_all()))
    }

    // ----- views --------------------------------------------------------------------

    pub fn state(&self) -> serde_json::Value {
        strata_agent_core::views::state(&self.a)
    }

    pub fn metric(&self, name: &str) -> f64 {
        let m = strata_agent_core::views::metrics(&self.a, self.now);
        *m.get(&format!("slave/{name}"))
            .unwrap_or_else(|| panic!("no metric slave/{name}"))
    }

    /// The `/state` framework object for `FW` in `list` (`frameworks` or
    /// `completed_frameworks`), if there.
    pub fn fw_state(&self, list: &str) -> Option<serde_json::Value> {
        self.state()[list]
            .as_array()?
            .iter()
            .find(|f| f["id"] == FW)
            .cloned()
    }

    /// The `/state` executor object of `executor` in `list` (`executors` or
    /// `completed_executors`) of the live or completed framework.
    pub fn executor_state(&self, list: &str, executor: &str) -> Option<serde_json::Value> {
        ["frameworks", "completed_frameworks"]
            .iter()
            .filter_map(|l| self.fw_state(l))
            .flat_map(|f| f[list].as_array().cloned().unwrap_or_default())
            .find(|e| e["id"] == executor)
    }

    /// `(id, state)` of the tasks in `list` (`tasks`, `queued_tasks`, `completed_tasks`)
    /// of the live executor `executor`.
    pub fn task_list(&self, executor: &str, list: &str) -> Vec<(String, String)> {
        let ex = self
            .executor_state("executors", executor)
            .or_else(|| self.executor_state("completed_executors", executor))
            .unwrap_or_else(|| panic!("no executor {executor} in /state"));
        ex[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap().to_string(),
                    t["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

pub fn checkpoints_in(effects: &[Effect]) -> Vec<CheckpointOp> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Checkpoint(op) => Some((**op).clone()),
            _ => None,
        })
        .collect()
}

pub fn env<'a>(spec: &'a ContainerSpec, name: &str) -> Option<&'a str> {
    spec.env
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub fn sandbox(executor: &str, container: &ContainerId) -> String {
    format!("{WORK_DIR}/slaves/{AGENT_ID}/frameworks/{FW}/executors/{executor}/runs/{container}")
}

/// Checks an agent-made status update.
pub fn assert_agent_status(
    s: &TaskStatus,
    state: TaskState,
    reason: strata_api::Reason,
    message: &str,
) {
    assert_eq!(s.state, state, "{s:#?}");
    assert_eq!(s.reason, Some(reason), "{s:#?}");
    assert_eq!(s.message.as_deref(), Some(message), "{s:#?}");
    assert_eq!(s.source, Some(Source::Agent), "{s:#?}");
    let uuid = s.uuid.as_deref().expect("agent-made updates are reliable");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(uuid)
        .expect("base64 uuid");
    assert_eq!(bytes.len(), 16, "{uuid}");
    assert_eq!(s.agent_id.as_ref(), Some(&aid()), "{s:#?}");
}
