//! The executor's pure state machine: tasks, unacknowledged updates, the agent link and what
//! to do next. `Core::step(now, input)` returns effects for the shell to carry out; it never
//! reads the clock, touches processes or does I/O (uuids come from an injected generator).
//! Health checks and checks are deadlines here too (`probe`, `checking`); the shell only
//! runs the probes it is asked for.

mod checking;
mod docker;
mod link;
pub mod probe;
mod spawn;
mod target;
mod task;
#[cfg(test)]
mod tests;
mod updates;

pub use docker::{DockerSettings, DOCKER_DISABLED_MESSAGE};
pub use probe::{Probe, ProbeKind, ProbeNetwork, ProbeOutcome, ProbeTarget};
pub use task::{kill_grace, terminal_state, terminal_update, KillCause, Phase, DEFAULT_KILL_GRACE};
pub use updates::{decode_uuid, encode_uuid, Uuid};

use crate::termination::{OomKill, Termination};
use link::Link;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;
use strata_api::executor::{Event, Subscribe, UnacknowledgedUpdate};
use strata_api::{
    ContainerId, ExecutorId, FrameworkInfo, KillPolicy, Reason, Source, TaskGroupInfo, TaskId,
    TaskInfo, TaskState, TaskStatus,
};
use task::{KillState, Task};
use updates::UpdateBook;

/// How long to wait for the ACK of a terminal update before giving up (Mesos: 60 s).
pub const TERMINAL_ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the first SUBSCRIBE may take (the agent's executor registration timeout).
pub const REGISTRATION_WINDOW: Duration = Duration::from_secs(60);
/// Taken off the shutdown grace period to leave time for reaping and reporting (Mesos
/// subtracts its reap interval and one more second).
pub const SHUTDOWN_GRACE_MARGIN: Duration = Duration::from_secs(2);
/// The framework capability that enables TASK_KILLING.
pub const TASK_KILLING_STATE: &str = "TASK_KILLING_STATE";
/// Message for a second LAUNCH in command-executor mode (Mesos' exact text).
pub const MULTIPLE_TASKS_MESSAGE: &str =
    "Attempted to run multiple tasks using a \"command\" executor";
/// Message when a terminal update is never acknowledged (Mesos' exact text).
pub const NO_TERMINAL_ACK_MESSAGE: &str =
    "Did not receive ACK for the terminal status update from the agent";

/// The moment a step happens: monotonic time since the executor started, and wall-clock
/// seconds since the epoch for update timestamps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    pub mono: Duration,
    pub wall_secs: f64,
}

/// What the core reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The executor starts: subscribe.
    Start,
    /// An event from the agent's stream.
    Event(Box<Event>),
    /// The stream broke after SUBSCRIBED (or ended before it).
    StreamLost(String),
    /// A SUBSCRIBE request failed; `status` is the HTTP status if the agent answered.
    SubscribeFailed {
        status: Option<u16>,
        message: String,
    },
    /// The outcome of an `Effect::Spawn`: for a process before any other input, for a
    /// Docker container once it started (the image may need a pull first).
    Spawned {
        task_id: TaskId,
        result: Result<Started, String>,
    },
    /// A task's process or container ended; `oom` when the kernel OOM-killed in its
    /// Docker container.
    Exited {
        task_id: TaskId,
        termination: Termination,
        oom: Option<OomKill>,
    },
    /// A probe asked for by `Effect::Probe` ended.
    ProbeDone {
        task_id: TaskId,
        kind: ProbeKind,
        seq: u64,
        outcome: ProbeOutcome,
    },
    /// Time passed (a deadline from `next_deadline` may have arrived).
    Tick,
}

/// What the shell learned when a task's process or container started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Started {
    /// A Docker container's addresses on its BRIDGE or USER network, where its HTTP and
    /// TCP probes connect.
    pub container_ips: Vec<IpAddr>,
}

/// A signal for a task's whole process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillSignal {
    Term,
    Kill,
}

/// What the shell should launch.
#[derive(Debug, Clone, PartialEq)]
pub struct SpawnRequest {
    pub task: TaskInfo,
    /// The user to run as: `command.user`, else the framework's user.
    pub user: Option<String>,
    /// Default-executor task: own sandbox `tasks/<id>/` with stdout/stderr files there.
    pub own_sandbox: bool,
    /// Run the task in this Docker container instead of forking it.
    pub docker: Option<Box<crate::docker::DockerRun>>,
}

/// A health check or check the shell should run now for a task.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeRequest {
    pub task_id: TaskId,
    pub kind: ProbeKind,
    /// Echoed in `Input::ProbeDone`; tells a current answer from a late one.
    pub seq: u64,
    pub probe: Probe,
}

/// What the core asks the shell to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Open a new event stream with this SUBSCRIBE body (dropping any previous one).
    Subscribe(Subscribe),
    /// POST this UPDATE.
    Update(Box<TaskStatus>),
    /// Start a task's process; answer with `Input::Spawned`.
    Spawn(Box<SpawnRequest>),
    /// Signal a task's process group.
    Signal { task_id: TaskId, signal: KillSignal },
    /// Run a probe; answer with `Input::ProbeDone`.
    Probe(Box<ProbeRequest>),
    /// Abandon a running probe (it timed out, or its task is being killed or ended):
    /// kill a command probe's process group (or a container exec's process); its
    /// answer, if any, is ignored.
    CancelProbe {
        task_id: TaskId,
        kind: ProbeKind,
        seq: u64,
    },
    /// Exit the process with this code; `message` says why.
    Exit { code: i32, message: String },
}

/// Static settings of the core.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreConfig {
    pub executor_id: ExecutorId,
    pub checkpoint: bool,
    pub shutdown_grace: Duration,
    pub recovery_timeout: Duration,
    pub backoff_max: Duration,
    pub docker: DockerSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unknown,
    Command,
    Default,
}

/// The executor state machine.
pub struct Core {
    cfg: CoreConfig,
    uuids: Box<dyn FnMut() -> Uuid + Send>,
    mode: Mode,
    framework: Option<FrameworkInfo>,
    /// This executor's container (from SUBSCRIBED); names Docker containers.
    container_id: Option<String>,
    tasks: BTreeMap<TaskId, Task>,
    next_group: u64,
    book: UpdateBook,
    link: Link,
    shutdown_deadline: Option<Duration>,
    exited: bool,
    now: Now,
    out: Vec<Effect>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("mode", &self.mode)
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl Core {
    /// A core that draws update uuids from `uuids`.
    pub fn new(cfg: CoreConfig, uuids: Box<dyn FnMut() -> Uuid + Send>) -> Self {
        let backoff_max = cfg.backoff_max;
        Core {
            cfg,
            uuids,
            mode: Mode::Unknown,
            framework: None,
            container_id: None,
            tasks: BTreeMap::new(),
            next_group: 0,
            book: UpdateBook::default(),
            link: Link::subscribing(0, backoff_max, REGISTRATION_WINDOW),
            shutdown_deadline: None,
            exited: false,
            now: Now {
                mono: Duration::ZERO,
                wall_secs: 0.0,
            },
            out: Vec::new(),
        }
    }

    /// Feeds one input; returns the effects to carry out in order. After an
    /// `Effect::Exit` every further step returns nothing.
    pub fn step(&mut self, now: Now, input: Input) -> Vec<Effect> {
        if self.exited {
            return Vec::new();
        }
        self.now = now;
        match input {
            Input::Start => self.subscribe(),
            Input::Event(event) => self.on_event(*event),
            Input::StreamLost(reason) => self.on_stream_lost(&reason),
            Input::SubscribeFailed { status, message } => {
                self.on_subscribe_failed(status, &message)
            }
            Input::Spawned { task_id, result } => self.on_spawned(&task_id, result),
            Input::Exited {
                task_id,
                termination,
                oom,
            } => self.on_exited(&task_id, termination, oom),
            Input::ProbeDone {
                task_id,
                kind,
                seq,
                outcome,
            } => self.on_probe_done(&task_id, kind, seq, outcome),
            Input::Tick => self.on_tick(),
        }
        self.check_done();
        std::mem::take(&mut self.out)
    }

    /// The earliest moment a `Tick` is needed, if any.
    pub fn next_deadline(&self) -> Option<Duration> {
        let tasks = self.tasks.values().flat_map(|t| {
            let escalate = t
                .kill
                .and_then(|k| k.escalate_at)
                .filter(|_| t.phase == Phase::Running);
            let complete = t
                .completion_deadline
                .filter(|_| t.phase == Phase::Running && t.kill.is_none());
            let ack = t
                .terminal
                .filter(|(_, uuid)| self.book.contains(uuid))
                .map(|(at, _)| at + TERMINAL_ACK_TIMEOUT);
            [escalate, complete, ack]
        });
        tasks
            .chain([self.shutdown_deadline, self.link.deadline()])
            .flatten()
            .chain(self.probe_deadlines())
            .min()
    }

    /// The SUBSCRIBE body: tasks without any acknowledged update and all pending updates.
    pub fn subscribe_body(&self) -> Subscribe {
        Subscribe {
            unacknowledged_tasks: self
                .tasks
                .values()
                .filter(|t| !t.acked_any)
                .map(|t| t.info.clone())
                .collect(),
            unacknowledged_updates: self
                .book
                .pending()
                .iter()
                .map(|p| UnacknowledgedUpdate {
                    framework_id: None,
                    status: p.status.clone(),
                })
                .collect(),
        }
    }

    /// The last reported state of a task.
    pub fn task_state(&self, task_id: &TaskId) -> Option<TaskState> {
        self.tasks.get(task_id).map(|t| t.state)
    }

    fn subscribe(&mut self) {
        self.out.push(Effect::Subscribe(self.subscribe_body()));
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Subscribed(s) => self.on_subscribed(s.framework_info, s.container_id),
            Event::Launch(l) => self.on_launch(l.task),
            Event::LaunchGroup(g) => self.on_launch_group(g.task_group),
            Event::Kill(k) => self.on_kill(&k.task_id, k.kill_policy.as_ref()),
            Event::Acknowledged(a) => self.on_acknowledged(&a.task_id, &a.uuid),
            Event::Message(m) => {
                tracing::info!(data = %m.data, "Received MESSAGE from the framework")
            }
            Event::Error(e) => self.fatal(
                1,
                format!(
                    "The agent sent ERROR: {}; killing all tasks and exiting",
                    e.message
                ),
            ),
            Event::Shutdown => self.on_shutdown(),
            Event::Heartbeat => {}
        }
    }

    fn on_subscribed(&mut self, framework: FrameworkInfo, container: Option<ContainerId>) {
        tracing::info!(framework = %framework.name, "Subscribed to the agent");
        self.framework = Some(framework);
        self.container_id = container
            .map(|c| c.to_string())
            .or(self.container_id.take());
        if let Some(from) = self.link.on_subscribed() {
            // Updates generated while SUBSCRIBE was in flight were not in its body.
            let resend: Vec<_> = self
                .book
                .pending()
                .iter()
                .filter(|p| p.seq >= from)
                .map(|p| p.status.clone())
                .collect();
            self.out
                .extend(resend.into_iter().map(|s| Effect::Update(Box::new(s))));
        }
    }

    fn on_launch(&mut self, info: TaskInfo) {
        if self.tasks.contains_key(&info.task_id) {
            tracing::warn!(task_id = %info.task_id, "Ignoring LAUNCH of a task this executor already has");
            return;
        }
        let rejection = match self.mode {
            _ if self.shutdown_deadline.is_some() => Some("Task launched while the executor is shutting down"),
            Mode::Command => Some(MULTIPLE_TASKS_MESSAGE),
            Mode::Default => Some("Attempted to launch a task with LAUNCH using a \"default\" executor; use LAUNCH_GROUP"),
            Mode::Unknown => None,
        };
        if let Some(message) = rejection {
            return self.reject(info, message);
        }
        self.mode = Mode::Command;
        if info.container.as_ref().is_some_and(|c| c.is_docker()) {
            return self.launch_docker(info);
        }
        let task_id = info.task_id.clone();
        self.tasks.insert(task_id.clone(), Task::new(info, None));
        self.send_update(&task_id, TaskState::Starting, None, None);
        self.request_spawn(&task_id, false, None);
    }

    fn on_launch_group(&mut self, group: TaskGroupInfo) {
        let rejection = match self.mode {
            _ if self.shutdown_deadline.is_some() => {
                Some("Task group launched while the executor is shutting down")
            }
            Mode::Command => Some("Attempted to launch a task group using a \"command\" executor"),
            Mode::Default | Mode::Unknown => None,
        };
        let mut fresh = Vec::new();
        for info in group.tasks {
            if self.tasks.contains_key(&info.task_id)
                || fresh.iter().any(|t: &TaskInfo| t.task_id == info.task_id)
            {
                tracing::warn!(task_id = %info.task_id, "Ignoring LAUNCH_GROUP of a task this executor already has");
            } else {
                fresh.push(info);
            }
        }
        if let Some(message) = rejection {
            return fresh
                .into_iter()
                .for_each(|info| self.reject(info, message));
        }
        self.mode = Mode::Default;
        let group_id = self.next_group;
        self.next_group += 1;
        let ids: Vec<TaskId> = fresh.iter().map(|t| t.task_id.clone()).collect();
        for info in fresh {
            let task_id = info.task_id.clone();
            self.tasks
                .insert(task_id.clone(), Task::new(info, Some(group_id)));
            self.send_update(&task_id, TaskState::Starting, None, None);
        }
        ids.iter().for_each(|id| self.request_spawn(id, true, None));
    }

    /// Records a task that will never run and reports it TASK_FAILED.
    fn reject(&mut self, info: TaskInfo, message: &str) {
        tracing::warn!(task_id = %info.task_id, message, "Rejecting task");
        let task_id = info.task_id.clone();
        let mut task = Task::new(info, None);
        task.phase = Phase::Done;
        self.tasks.insert(task_id.clone(), task);
        self.send_update(&task_id, TaskState::Failed, Some(message.to_string()), None);
    }

    fn request_spawn(
        &mut self,
        task_id: &TaskId,
        own_sandbox: bool,
        docker: Option<Box<crate::docker::DockerRun>>,
    ) {
        let Some(task) = self.tasks.get(task_id) else {
            return;
        };
        let framework_user = self.framework.as_ref().map(|f| f.user.clone());
        let user = task
            .info
            .command
            .as_ref()
            .and_then(|c| c.user.clone())
            .or(framework_user)
            .filter(|u| !u.is_empty());
        let request = SpawnRequest {
            task: task.info.clone(),
            user,
            own_sandbox,
            docker,
        };
        self.out.push(Effect::Spawn(Box::new(request)));
    }

    /// Default executor: one task of a group failed or was killed, so kill the rest.
    fn kill_group_of(&mut self, task_id: &TaskId) {
        let Some(group) = self.tasks.get(task_id).and_then(|t| t.group) else {
            return;
        };
        let others: Vec<(TaskId, Duration)> = self
            .tasks
            .iter()
            .filter(|(id, t)| {
                *id != task_id && t.group == Some(group) && t.is_live() && t.kill.is_none()
            })
            .map(|(id, t)| (id.clone(), kill_grace(None, t.info.kill_policy.as_ref())))
            .collect();
        for (other, grace) in others {
            tracing::info!(task_id = %other, failed = %task_id, "Killing task because another task of its group ended");
            self.start_kill(&other, KillCause::Group, grace);
        }
    }

    fn on_kill(&mut self, task_id: &TaskId, policy: Option<&KillPolicy>) {
        let Some(task) = self.tasks.get(task_id) else {
            return tracing::warn!(%task_id, "Ignoring KILL of an unknown task");
        };
        if !task.is_live() {
            return tracing::info!(%task_id, "Ignoring KILL of a task that already ended");
        }
        let grace = kill_grace(policy, task.info.kill_policy.as_ref());
        self.start_kill(task_id, KillCause::Framework, grace);
    }

    /// SIGTERM now, SIGKILL after `grace`. A repeated kill can only shorten the grace.
    fn start_kill(&mut self, task_id: &TaskId, cause: KillCause, grace: Duration) {
        let now = self.now.mono;
        let escalate_at = now.saturating_add(grace);
        let killing_state = self
            .framework
            .as_ref()
            .is_some_and(|f| f.has_capability(TASK_KILLING_STATE));
        let Some(task) = self.tasks.get_mut(task_id).filter(|t| t.is_live()) else {
            return;
        };
        let running = task.phase == Phase::Running;
        let mut signals = Vec::new();
        match &mut task.kill {
            Some(kill) => match kill.escalate_at {
                Some(at) if escalate_at < at => kill.escalate_at = Some(escalate_at),
                _ => return,
            },
            None => {
                task.kill = Some(KillState {
                    cause,
                    escalate_at: Some(escalate_at),
                });
                signals.push(KillSignal::Term);
            }
        }
        let first = !signals.is_empty();
        if first {
            self.stop_probers(task_id);
        }
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        if grace.is_zero() {
            task.kill = task.kill.map(|k| KillState {
                escalate_at: None,
                ..k
            });
            signals.push(KillSignal::Kill);
        }
        if first && killing_state && cause != KillCause::MaxCompletion {
            self.send_update(task_id, TaskState::Killing, None, None);
        }
        if running {
            let effects = signals.into_iter().map(|signal| Effect::Signal {
                task_id: task_id.clone(),
                signal,
            });
            self.out.extend(effects);
        }
    }

    fn on_acknowledged(&mut self, task_id: &TaskId, uuid: &str) {
        let Some(uuid) = decode_uuid(uuid) else {
            return tracing::warn!(%task_id, uuid, "Ignoring ACKNOWLEDGED with a malformed uuid");
        };
        match self.book.ack(&uuid) {
            Some(acked) => {
                if let Some(task) = self.tasks.get_mut(&acked) {
                    task.acked_any = true;
                }
            }
            None => tracing::warn!(%task_id, "Ignoring ACKNOWLEDGED for an unknown update"),
        }
    }

    fn on_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        tracing::info!(grace = ?self.cfg.shutdown_grace, "Shutting down: killing all tasks");
        self.shutdown_deadline = Some(self.now.mono.saturating_add(self.cfg.shutdown_grace));
        let grace = self
            .cfg
            .shutdown_grace
            .saturating_sub(SHUTDOWN_GRACE_MARGIN);
        let live: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.is_live())
            .map(|(id, _)| id.clone())
            .collect();
        for task_id in live {
            self.start_kill(&task_id, KillCause::Shutdown, grace);
        }
    }

    fn on_stream_lost(&mut self, reason: &str) {
        if !self.link.is_connected() {
            return self.on_subscribe_failed(None, reason);
        }
        if !self.cfg.checkpoint {
            let message = format!("Lost the connection to the agent ({reason}) and checkpointing is disabled; killing all tasks and exiting");
            return self.fatal(1, message);
        }
        tracing::warn!(reason, timeout = ?self.cfg.recovery_timeout, "Lost the connection to the agent; retrying SUBSCRIBE");
        self.link.on_lost(self.now.mono, self.cfg.recovery_timeout);
    }

    fn on_subscribe_failed(&mut self, status: Option<u16>, message: &str) {
        if let Some(code) = status.filter(|s| (400..500).contains(s)) {
            let text = format!("The agent refused SUBSCRIBE with {code} ({message}); it does not know this executor. Killing all tasks and exiting");
            return self.fatal(1, text);
        }
        tracing::warn!(?status, message, "SUBSCRIBE failed; retrying");
        self.link.on_attempt_failed(self.now.mono);
    }

    fn on_tick(&mut self) {
        let now = self.now.mono;
        if let Some((task_id, _)) = self
            .tasks
            .iter()
            .find(|(_, t)| self.terminal_ack_overdue(t, now))
        {
            tracing::error!(%task_id, "Terminal update not acknowledged in time");
            return self.fatal(1, NO_TERMINAL_ACK_MESSAGE.to_string());
        }
        if self.shutdown_deadline.is_some_and(|d| now >= d) {
            return self.fatal(
                1,
                "Shutdown grace period ended before all updates were acknowledged".to_string(),
            );
        }
        if self.link.expired(now) {
            return self.fatal(
                1,
                "The agent did not accept a subscription in time; killing all tasks and exiting"
                    .to_string(),
            );
        }
        self.escalate_and_expire(now);
        self.poll_probers();
        if self.link.retry_due(now) {
            self.link.on_retry(self.book.next_seq());
            self.subscribe();
        }
    }

    fn terminal_ack_overdue(&self, task: &Task, now: Duration) -> bool {
        task.terminal.is_some_and(|(at, uuid)| {
            now >= at.saturating_add(TERMINAL_ACK_TIMEOUT) && self.book.contains(&uuid)
        })
    }

    /// SIGKILLs tasks whose grace ran out; starts kills of tasks past max_completion_time.
    fn escalate_and_expire(&mut self, now: Duration) {
        let mut expired = Vec::new();
        for (task_id, task) in self
            .tasks
            .iter_mut()
            .filter(|(_, t)| t.phase == Phase::Running)
        {
            if let Some(kill) = task
                .kill
                .as_mut()
                .filter(|k| k.escalate_at.is_some_and(|at| at <= now))
            {
                kill.escalate_at = None;
                tracing::info!(%task_id, "Grace period ended; sending SIGKILL");
                self.out.push(Effect::Signal {
                    task_id: task_id.clone(),
                    signal: KillSignal::Kill,
                });
            }
            if task.kill.is_none() && task.completion_deadline.is_some_and(|d| d <= now) {
                expired.push((
                    task_id.clone(),
                    kill_grace(None, task.info.kill_policy.as_ref()),
                ));
            }
        }
        for (task_id, grace) in expired {
            tracing::info!(%task_id, "Max completion time reached; killing task");
            self.start_kill(&task_id, KillCause::MaxCompletion, grace);
        }
    }

    /// Builds a status update from scratch (Mesos' `createTaskStatus`): a task with a
    /// check carries an empty `check_status` of its type, and the terminal update of a
    /// task killed for failing health checks says `healthy: false`.
    fn send_update(
        &mut self,
        task_id: &TaskId,
        state: TaskState,
        message: Option<String>,
        reason: Option<Reason>,
    ) {
        let mut status = TaskStatus::new(task_id.clone(), state).with(
            Source::Executor,
            reason,
            message.unwrap_or_default(),
        );
        if let Some(task) = self.tasks.get(task_id) {
            status.check_status = probe::empty_check_status(task.info.check.as_ref());
            if state.is_terminal() && task.unhealthy {
                status.healthy = Some(false);
            }
        }
        self.emit(task_id, status);
    }

    /// Stamps (uuid, executor id, time), records and (when connected) sends an update; a
    /// terminal one also moves the task to `Done` bookkeeping.
    fn emit(&mut self, task_id: &TaskId, mut status: TaskStatus) {
        let uuid = (self.uuids)();
        status.executor_id = Some(self.cfg.executor_id.clone());
        status.timestamp = Some(self.now.wall_secs);
        status.uuid = Some(encode_uuid(&uuid));
        if let Some(task) = self.tasks.get_mut(task_id) {
            task.state = status.state;
            if status.state.is_terminal() {
                task.terminal = Some((self.now.mono, uuid));
            }
            task.last_status = Some(status.clone());
        }
        self.book.push(uuid, status.clone());
        if self.link.is_connected() {
            self.out.push(Effect::Update(Box::new(status)));
        }
    }

    /// Exits successfully once every task is terminal and acknowledged (or, after
    /// SHUTDOWN, once nothing is left even if no task ever ran).
    fn check_done(&mut self) {
        if self.exited || (self.tasks.is_empty() && self.shutdown_deadline.is_none()) {
            return;
        }
        if self
            .tasks
            .values()
            .all(|t| !t.is_live() && t.state.is_terminal())
            && self.book.is_empty()
        {
            let message = match self.shutdown_deadline {
                Some(_) => "Shut down: all tasks killed and their updates acknowledged",
                None => "All tasks ended and their terminal updates were acknowledged",
            };
            self.out.push(Effect::Exit {
                code: 0,
                message: message.to_string(),
            });
            self.exited = true;
        }
    }

    /// SIGKILLs every live task's process group and exits with `code`.
    fn fatal(&mut self, code: i32, message: String) {
        let live = self.tasks.iter().filter(|(_, t)| t.phase == Phase::Running);
        let kills: Vec<Effect> = live
            .map(|(id, _)| Effect::Signal {
                task_id: id.clone(),
                signal: KillSignal::Kill,
            })
            .collect();
        self.out.extend(kills);
        self.out.push(Effect::Exit { code, message });
        self.exited = true;
    }
}
