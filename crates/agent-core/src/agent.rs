//! The `Agent` struct: dispatch of inputs, master session state, the Hello sent on
//! (re-)registration, and id/uuid generation.

use crate::config::Config;
use crate::io::{ConnId, Effect, Input, Reply};
use crate::state::{FrameworkEntry, UpdateStream};
use base64::Engine;
use std::collections::{BTreeMap, HashMap, VecDeque};
use strata_api::agent_link::{Hello, ShutdownExecutor, ToAgent, ToMaster, PROTOCOL_VERSION};
use strata_api::{AgentId, ContainerId, ExecutorId, FrameworkId, Task, TaskId};
use strata_resources::{Resources, WireFormat};

/// The agent's whole state; owned by one task in the shell.
#[derive(Debug)]
pub struct Agent {
    pub(crate) cfg: Config,
    pub(crate) agent_id: Option<AgentId>,
    pub(crate) master_connected: bool,
    pub(crate) frameworks: BTreeMap<FrameworkId, FrameworkEntry>,
    pub(crate) completed_frameworks: VecDeque<FrameworkEntry>,
    pub(crate) streams: BTreeMap<(FrameworkId, TaskId), UpdateStream>,
    pub(crate) containers: HashMap<ContainerId, (FrameworkId, ExecutorId)>,
    pub(crate) conns: HashMap<ConnId, (FrameworkId, ExecutorId)>,
    pub(crate) total: Resources,
    /// The configured resources (`total` without dynamic reservations and volumes).
    pub(crate) base_total: Resources,
    pub(crate) start_time: f64,
    pub(crate) counters: Counters,
    /// The resource estimator's latest estimate (revocable); `None` before the first one
    /// (oversubscription off, or just started).
    pub(crate) estimate: Option<Resources>,
    /// The oversubscribed total last reported to the master (or to be sent in the Hello).
    pub(crate) oversubscribed: Resources,
    next_container: u64,
    next_uuid: u64,
}

/// Agent counters for `/metrics/snapshot`.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    pub valid_status_updates: u64,
    pub invalid_status_updates: u64,
    pub valid_framework_messages: u64,
    pub invalid_framework_messages: u64,
    pub executors_terminated: u64,
    pub container_launch_errors: u64,
    pub tasks_finished: u64,
    pub tasks_failed: u64,
    pub tasks_killed: u64,
    pub tasks_lost: u64,
    pub tasks_gone: u64,
    /// Containers killed by the QoS correction.
    pub executors_preempted: u64,
}

impl Agent {
    /// A fresh agent; `agent_id` is the id kept from an earlier run, if any.
    pub fn new(cfg: Config, agent_id: Option<AgentId>, now: f64) -> Self {
        let total = Resources::from_wire(&cfg.agent_info.resources).unwrap_or_default();
        Self {
            cfg,
            agent_id,
            master_connected: false,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            streams: BTreeMap::new(),
            containers: HashMap::new(),
            conns: HashMap::new(),
            base_total: total.clone(),
            total,
            start_time: now,
            counters: Counters::default(),
            estimate: None,
            oversubscribed: Resources::new(),
            next_container: 0,
            next_uuid: 0,
        }
    }

    /// Feeds one input; effects are appended to `out` in order.
    pub fn step(&mut self, now: f64, input: Input, out: &mut Vec<Effect>) -> Reply {
        match input {
            Input::MasterRegistered { agent_id } => {
                self.agent_id = Some(agent_id);
                self.master_connected = true;
                self.resend_all_updates(now, out);
                self.report_oversubscribed(out);
                Reply::None
            }
            Input::Master(msg) => {
                self.master_message(now, *msg, out);
                Reply::None
            }
            Input::MasterDisconnected => {
                self.master_connected = false;
                Reply::None
            }
            Input::ExecutorSubscribe {
                conn,
                framework_id,
                executor_id,
                subscribe,
            } => self.executor_subscribe(now, conn, &framework_id, &executor_id, *subscribe, out),
            Input::ExecutorCall {
                framework_id,
                executor_id,
                body,
            } => self.executor_call(now, &framework_id, &executor_id, *body, out),
            Input::ExecutorStreamClosed { conn } => {
                self.executor_stream_closed(conn);
                Reply::None
            }
            Input::ContainerStarted { container_id, pid } => {
                self.container_started(&container_id, pid, out);
                Reply::None
            }
            Input::ContainerFailed {
                container_id,
                message,
            } => {
                self.container_failed(now, &container_id, message, out);
                Reply::None
            }
            Input::ContainerLimited {
                container_id,
                reason,
                message,
            } => {
                self.container_limited(&container_id, reason, message);
                Reply::None
            }
            Input::ContainerExited {
                container_id,
                status,
            } => {
                self.container_exited(now, &container_id, status, out);
                Reply::None
            }
            Input::Tick => {
                self.tick(now, out);
                Reply::None
            }
            Input::ResourceEstimate { revocable } => {
                self.resource_estimate(&revocable, out);
                Reply::None
            }
        }
    }

    fn master_message(&mut self, now: f64, msg: ToAgent, out: &mut Vec<Effect>) {
        match msg {
            ToAgent::Registered(r) => {
                self.agent_id = Some(r.agent_id);
                self.master_connected = true;
                self.resend_all_updates(now, out);
                self.report_oversubscribed(out);
            }
            ToAgent::RunTask(r) => self.run_task(now, r.framework, r.executor, vec![r.task], out),
            ToAgent::RunTaskGroup(r) => {
                self.run_task(now, r.framework, Some(r.executor), r.task_group.tasks, out)
            }
            ToAgent::KillTask(k) => {
                self.kill_task(now, &k.framework_id, &k.task_id, k.kill_policy, out)
            }
            ToAgent::StatusAck(a) => {
                self.acknowledge(now, &a.framework_id, &a.task_id, &a.uuid, out)
            }
            ToAgent::ShutdownFramework(s) => self.shutdown_framework(now, &s.framework_id, out),
            ToAgent::ShutdownExecutor(ShutdownExecutor {
                framework_id,
                executor_id,
            }) => self.shutdown_executor(now, &framework_id, &executor_id, out),
            ToAgent::FrameworkMessage(m) => self.framework_message(m, out),
            ToAgent::UpdateFramework(u) => {
                if let Some(fid) = u.framework_info.id.clone() {
                    if let Some(f) = self.frameworks.get_mut(&fid) {
                        f.info = u.framework_info;
                    }
                }
            }
            ToAgent::ReconcileTasks(r) => self.reconcile_tasks(now, r, out),
            ToAgent::CheckpointResources(c) => self.checkpoint_resources(c, out),
            ToAgent::Ping => out.push(Effect::Master(Box::new(ToMaster::Pong))),
            ToAgent::Shutdown(s) => out.push(Effect::Shutdown { message: s.message }),
            ToAgent::PreemptTasks(p) => self.preempt_tasks(&p, out),
        }
    }

    /// The Hello for (re-)registration: identity plus everything running here.
    pub fn hello(&self) -> Hello {
        let mut info = self.cfg.agent_info.clone();
        info.id = self.agent_id.clone();
        let mut frameworks = Vec::new();
        let mut executors = Vec::new();
        let mut tasks = Vec::new();
        for (fid, fw) in &self.frameworks {
            frameworks.push(fw.info.clone());
            for ex in fw.executors.values() {
                // As Mesos: every executor but command executors, unless it has exited.
                let listed = ex.kind != crate::io::ExecutorKind::Command
                    && ex.phase != crate::ExecutorPhase::Terminated;
                if listed {
                    let mut e = ex.info.clone();
                    e.framework_id = Some(fid.clone());
                    executors.push(e);
                }
                for t in ex.launched.values().chain(ex.terminated.values()) {
                    tasks.push(self.task_record(fid, ex, t));
                }
                for t in ex.queued.iter().flatten() {
                    let entry = crate::state::TaskEntry {
                        info: t.clone(),
                        state: strata_api::TaskState::Staging,
                        latest: None,
                    };
                    tasks.push(self.task_record(fid, ex, &entry));
                }
            }
        }
        Hello {
            protocol: PROTOCOL_VERSION,
            agent_info: info,
            address: self.cfg.address.clone(),
            version: self.cfg.version.clone(),
            frameworks,
            executors,
            tasks,
            checkpointed_resources: self.checkpointed_wire(),
            oversubscribed_resources: self.oversubscribed_wire(),
        }
    }

    /// The wire `Task` for a task entry (re-registration and the operator API).
    pub(crate) fn task_record(
        &self,
        fid: &FrameworkId,
        ex: &crate::state::ExecutorState,
        t: &crate::state::TaskEntry,
    ) -> Task {
        let head = self
            .streams
            .get(&(fid.clone(), t.info.task_id.clone()))
            .and_then(|s| s.pending.front());
        let custom = matches!(
            ex.kind,
            crate::io::ExecutorKind::Custom(_) | crate::io::ExecutorKind::Default
        );
        Task {
            name: t.info.name.clone(),
            task_id: t.info.task_id.clone(),
            framework_id: fid.clone(),
            executor_id: custom.then(|| ex.info.executor_id.clone()),
            agent_id: self.agent_id.clone().unwrap_or_default(),
            state: t.state,
            resources: t.info.resources.clone(),
            statuses: t.latest.iter().cloned().collect(),
            status_update_state: head.map(|s| s.state),
            status_update_uuid: head.and_then(|s| s.uuid.clone()),
            labels: t.info.labels.clone(),
            discovery: t.info.discovery.clone(),
            container: t.info.container.clone().map(Box::new),
            health_check: t.info.health_check.clone().map(Box::new),
            kill_policy: t.info.kill_policy.clone(),
            user: t.info.command.as_ref().and_then(|c| c.user.clone()),
            limits: t.info.limits.clone(),
            container_id: Some(ex.container_id.clone()),
        }
    }

    pub(crate) fn next_container_id(&mut self) -> ContainerId {
        self.next_container += 1;
        ContainerId::new(format!("{}-{}", self.cfg.id_prefix, self.next_container))
    }

    /// A fresh 16-byte uuid (base64) for an agent-made status update.
    pub(crate) fn next_uuid(&mut self) -> String {
        self.next_uuid += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.cfg.uuid_seed);
        bytes[8..].copy_from_slice(&self.next_uuid.to_be_bytes());
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// The id the master gave this agent, if registered.
    pub fn agent_id(&self) -> Option<&AgentId> {
        self.agent_id.as_ref()
    }

    /// Whether the master session is up.
    pub fn master_connected(&self) -> bool {
        self.master_connected
    }

    /// Configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Total resources offered to the cluster.
    pub fn total(&self) -> &Resources {
        &self.total
    }

    /// Sandboxes of executors that have not exited (log rotation; never garbage-collected).
    pub fn live_sandboxes(&self) -> Vec<String> {
        self.frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .filter(|e| e.phase != crate::state::ExecutorPhase::Terminated)
            .map(|e| e.directory.clone())
            .collect()
    }

    /// Running containers: (framework, executor, executor name, source, container).
    pub fn containers(&self) -> Vec<(FrameworkId, ExecutorId, String, String, ContainerId)> {
        self.frameworks
            .iter()
            .flat_map(|(fid, f)| f.executors.values().map(move |e| (fid, e)))
            .filter(|(_, e)| e.phase != crate::state::ExecutorPhase::Terminated)
            .map(|(fid, e)| {
                let name = e.info.name.clone().unwrap_or_default();
                let source = e.info.source.clone().unwrap_or_default();
                (
                    fid.clone(),
                    e.info.executor_id.clone(),
                    name,
                    source,
                    e.container_id.clone(),
                )
            })
            .collect()
    }

    /// Process ids of running executors, for shutdown cleanup.
    pub fn executor_pids(&self) -> Vec<(ContainerId, u32)> {
        self.frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .filter_map(|e| e.pid.map(|p| (e.container_id.clone(), p)))
            .collect()
    }

    /// Resources in wire form for the Hello (post-refinement).
    pub fn total_wire(&self) -> Vec<strata_resources::WireResource> {
        self.total.to_wire(WireFormat::PostRefinement)
    }
}
