//! What goes into the agent core and what comes out.

use strata_api::agent_link::{ToAgent, ToMaster};
use strata_api::executor::{CallBody, Event, Subscribe};
use strata_api::{AgentId, CommandInfo, ContainerId, ExecutorId, FrameworkId, TaskId};

/// An executor event stream held by the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Inputs to [`crate::Agent::step`].
#[derive(Debug, Clone)]
pub enum Input {
    /// The master accepted our Hello.
    MasterRegistered { agent_id: AgentId },
    /// A message on the master session stream.
    Master(Box<ToAgent>),
    /// The master session broke (the shell reconnects).
    MasterDisconnected,
    /// An executor SUBSCRIBE on a new stream.
    ExecutorSubscribe {
        conn: ConnId,
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        subscribe: Box<Subscribe>,
    },
    /// Any other executor call.
    ExecutorCall {
        framework_id: FrameworkId,
        executor_id: ExecutorId,
        body: Box<CallBody>,
    },
    /// An executor's event stream ended.
    ExecutorStreamClosed { conn: ConnId },
    /// A container (executor process) started.
    ContainerStarted { container_id: ContainerId, pid: u32 },
    /// A container could not be started.
    ContainerFailed {
        container_id: ContainerId,
        message: String,
    },
    /// A container hit a resource limit (e.g. OOM); the shell destroys it, and its tasks
    /// end with this reason and message when it exits.
    ContainerLimited {
        container_id: ContainerId,
        reason: strata_api::Reason,
        message: String,
    },
    /// A container's executor process exited with this raw wait status.
    ContainerExited {
        container_id: ContainerId,
        status: i32,
    },
    /// Timers: update retries, registration timeouts, shutdown grace periods.
    Tick,
    /// The resource estimator's latest estimate of what can be lent as revocable
    /// resources (every `--oversubscribed_resources_interval`); runs the QoS correction
    /// and reports a changed total to the master.
    ResourceEstimate {
        revocable: strata_resources::Resources,
    },
}

/// The synchronous answer to an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 202 (executor calls).
    Accepted,
    /// The input opened a stream that now carries the answer.
    Stream,
    /// Nothing to answer.
    None,
    /// HTTP error status and message.
    Error(u16, String),
}

/// How to run an executor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ExecutorKind {
    /// Strata's command executor (one task).
    Command,
    /// Strata's default executor (task groups).
    Default,
    /// The framework's own executor command.
    Custom(CommandInfo),
}

/// What a container may use: requests (shares, soft memory limit) and limits (CFS quota,
/// hard memory limit; `None` = the request, `f64::INFINITY` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ContainerLimits {
    pub cpus: f64,
    pub mem_mb: f64,
    pub cpus_limit: Option<f64>,
    pub mem_limit_mb: Option<f64>,
    /// Some task (or the executor) uses revocable cpus.
    pub revocable_cpus: bool,
}

/// Everything the containerizer needs to start an executor.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub container_id: ContainerId,
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub kind: ExecutorKind,
    /// Host sandbox path.
    pub directory: String,
    /// Environment for the executor (MESOS_* and the command's own variables).
    pub env: Vec<(String, String)>,
    /// User to run as (None = the agent's user).
    pub user: Option<String>,
    /// URIs to fetch into the sandbox before starting.
    pub uris: Vec<strata_api::CommandUri>,
    /// The task this executor was started for (for logs and the black box).
    pub task_id: Option<TaskId>,
    /// The framework checkpoints: the process is recorded so a restarted agent finds it.
    pub checkpoint: bool,
    /// Resources for isolation: the tasks', plus the executor's (or the built-in
    /// executors' overhead).
    pub limits: ContainerLimits,
    /// Persistent volumes to bind-mount in the container's mount namespace
    /// (`Config::bind_volumes`); their mount points exist when the launch is carried out.
    pub binds: Vec<crate::volumes::VolumeBind>,
}

/// Something the shell must do, in order.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Post a message to the master (dropped if not connected; updates are retried).
    Master(Box<ToMaster>),
    /// Send an event on an executor stream.
    Executor { conn: ConnId, event: Box<Event> },
    /// Close an executor stream.
    CloseExecutor { conn: ConnId },
    /// Create the sandbox, fetch URIs and start the executor process.
    Launch(Box<ContainerSpec>),
    /// Kill every process of a container (SIGKILL).
    Destroy { container_id: ContainerId },
    /// Stop talking to the master: it refused or removed this agent.
    Shutdown { message: String },
    /// Keep the black-box record of a task that ended (the shell adds output tails).
    BlackBox(Box<crate::blackbox::BlackBox>),
    /// Write a checkpoint durably before carrying out any later effect.
    Checkpoint(Box<crate::checkpoint::CheckpointOp>),
    /// Create, remove or link a persistent volume's directory.
    Volume(crate::volumes::VolumeOp),
}
