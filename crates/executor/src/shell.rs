//! The executor's I/O shell: one loop that owns the core, feeds it agent events, process
//! exits, probe results and timer ticks, and carries out its effects (HTTP calls, spawns,
//! signals, probes, exit).

use crate::agent::{spawn_poster, spawn_stream, FromAgent};
use crate::config::Config;
use crate::core::{
    Core, CoreConfig, DockerSettings, Effect, Input, KillSignal, Now, SpawnRequest, Started,
};
use crate::docker::engine::{DockerReport, DockerTasks};
use crate::probe::{ProbeContext, ProbeDone, ProbeRunner};
use crate::process::{self, LaunchError, LaunchSpec, Output};
use crate::sandbox_volumes;
use crate::termination::Termination;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use strata_api::executor::{Call, CallBody, Update};
use strata_api::TaskId;
use strata_transport::Client;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Read timeout of the event stream: the agent sends HEARTBEAT events far apart (Mesos:
/// every 30 min), so only a silence twice that long counts as a dead connection.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(60 * 60);
/// Timeout of ordinary calls (UPDATE, MESSAGE).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Capacity of each internal channel.
const CHANNEL_CAPACITY: usize = 256;

/// Runs the executor until it decides to exit; returns the process exit code.
pub async fn run(config: Config) -> i32 {
    let core_config = CoreConfig {
        executor_id: config.executor_id.clone(),
        checkpoint: config.checkpoint,
        shutdown_grace: config.shutdown_grace,
        recovery_timeout: config.recovery_timeout,
        backoff_max: config.backoff_max,
        docker: DockerSettings {
            enabled: config.docker_enabled,
            framework_id: config.framework_id.to_string(),
            agent_id: config.agent_id.clone(),
            directory: config.directory.clone(),
            volumes: config.docker_volumes.clone(),
        },
    };
    let core = Core::new(core_config, Box::new(rand::random::<[u8; 16]>));
    tracing::info!(
        framework_id = %config.framework_id,
        executor_id = %config.executor_id,
        agent = %config.agent_endpoint,
        checkpoint = config.checkpoint,
        "Starting executor"
    );
    Shell::new(config, core).run().await
}

struct Shell {
    config: Config,
    core: Core,
    start: Instant,
    stream_client: Client,
    generation: u64,
    stream_task: Option<JoinHandle<()>>,
    agent_tx: mpsc::Sender<FromAgent>,
    agent_rx: mpsc::Receiver<FromAgent>,
    exit_tx: mpsc::Sender<(TaskId, Termination)>,
    exit_rx: mpsc::Receiver<(TaskId, Termination)>,
    poster_tx: mpsc::Sender<Call>,
    poster_task: JoinHandle<()>,
    /// Process group of every task whose process has not been reaped.
    groups: HashMap<TaskId, u32>,
    probes: ProbeRunner,
    probe_rx: mpsc::Receiver<ProbeDone>,
    /// Tasks running in Docker containers.
    docker: DockerTasks,
    docker_rx: mpsc::Receiver<DockerReport>,
    warned_user: bool,
    inputs: VecDeque<Input>,
}

impl Shell {
    fn new(config: Config, core: Core) -> Self {
        let (agent_tx, agent_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (exit_tx, exit_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (poster_tx, poster_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (probe_tx, probe_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (docker_tx, docker_rx) = mpsc::channel(CHANNEL_CAPACITY);
        let poster_task = spawn_poster(Client::new(CALL_TIMEOUT), config.executor_url(), poster_rx);
        Shell {
            config,
            core,
            start: Instant::now(),
            stream_client: Client::new(STREAM_READ_TIMEOUT),
            generation: 0,
            stream_task: None,
            agent_tx,
            agent_rx,
            exit_tx,
            exit_rx,
            poster_tx,
            poster_task,
            groups: HashMap::new(),
            probes: ProbeRunner::new(probe_tx),
            probe_rx,
            docker: DockerTasks::new(docker_tx),
            docker_rx,
            warned_user: false,
            inputs: VecDeque::from([Input::Start]),
        }
    }

    async fn run(mut self) -> i32 {
        loop {
            while let Some(input) = self.inputs.pop_front() {
                let effects = self.core.step(self.now(), input);
                for effect in effects {
                    if let Some(code) = self.execute(effect).await {
                        self.stop().await;
                        return code;
                    }
                }
            }
            let input = self.wait().await;
            self.inputs.push_back(input);
        }
    }

    fn now(&self) -> Now {
        let wall_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        Now {
            mono: self.start.elapsed(),
            wall_secs,
        }
    }

    /// Waits for the next agent event, process exit or deadline.
    async fn wait(&mut self) -> Input {
        loop {
            let deadline = self.core.next_deadline().map(|d| self.start + d);
            let sleep = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some(msg) = self.agent_rx.recv() => {
                    if let Some(input) = self.agent_input(msg) {
                        return input;
                    }
                }
                Some((task_id, termination)) = self.exit_rx.recv() => return self.reaped(task_id, termination),
                Some(report) = self.docker_rx.recv() => return self.docker_report(report),
                Some(done) = self.probe_rx.recv() => {
                    self.probes.finished(&done);
                    return Input::ProbeDone { task_id: done.task_id, kind: done.kind, seq: done.seq, outcome: done.outcome };
                }
                () = sleep => return Input::Tick,
            }
        }
    }

    /// Turns a stream report into an input; reports of replaced streams are dropped.
    fn agent_input(&self, msg: FromAgent) -> Option<Input> {
        match msg {
            FromAgent::Event { generation, event } if generation == self.generation => {
                tracing::debug!(event = event.type_name(), "Received event");
                Some(Input::Event(event))
            }
            FromAgent::Ended { generation, reason } if generation == self.generation => {
                Some(Input::StreamLost(reason))
            }
            FromAgent::Refused {
                generation,
                status,
                message,
            } if generation == self.generation => Some(Input::SubscribeFailed { status, message }),
            _ => None,
        }
    }

    /// A task's process ended: anything left in its process group is killed with it.
    fn reaped(&mut self, task_id: TaskId, termination: Termination) -> Input {
        if let Some(pgid) = self.groups.remove(&task_id) {
            if let Err(e) = process::signal_group(pgid, KillSignal::Kill) {
                tracing::warn!(%task_id, error = %e, "Cannot kill what is left of the task's process group");
            }
        }
        Input::Exited {
            task_id,
            termination,
            oom: None,
        }
    }

    /// A container started (or not) or ended.
    fn docker_report(&mut self, report: DockerReport) -> Input {
        match report {
            DockerReport::Started { task_id, result } => {
                if result.is_err() {
                    self.docker.finished(&task_id);
                }
                Input::Spawned { task_id, result }
            }
            DockerReport::Exited {
                task_id,
                termination,
                oom,
            } => {
                self.docker.finished(&task_id);
                Input::Exited {
                    task_id,
                    termination,
                    oom,
                }
            }
        }
    }

    /// Carries out one effect; returns the exit code when the executor must stop.
    async fn execute(&mut self, effect: Effect) -> Option<i32> {
        match effect {
            Effect::Subscribe(body) => self.subscribe(CallBody::Subscribe(body)),
            Effect::Update(status) => {
                let call = self.call(CallBody::Update(Update { status: *status }));
                if self.poster_tx.send(call).await.is_err() {
                    tracing::error!(
                        "The update poster stopped; the update will be resent on resubscription"
                    );
                }
            }
            Effect::Spawn(mut request) => {
                if let Some(run) = request.docker.take() {
                    let task_id = request.task.task_id.clone();
                    self.docker.launch(task_id, *run);
                    return None;
                }
                let task_id = request.task.task_id.clone();
                let result = (self.launch(&request))
                    .map(|()| Started::default())
                    .map_err(|e| e.to_string());
                self.inputs.push_back(Input::Spawned { task_id, result });
            }
            Effect::Signal { task_id, signal } => self.signal(&task_id, signal),
            Effect::Probe(request) => self.probes.start(*request),
            Effect::CancelProbe { task_id, kind, seq } => self.probes.cancel(&task_id, kind, seq),
            Effect::Exit { code, message } => {
                if code == 0 {
                    tracing::info!(message, "Executor exiting");
                } else {
                    tracing::error!(code, message, "Executor exiting");
                    eprintln!("strata executor: {message}");
                }
                return Some(code);
            }
        }
        None
    }

    fn call(&self, body: CallBody) -> Call {
        Call {
            framework_id: self.config.framework_id.clone(),
            executor_id: self.config.executor_id.clone(),
            body,
        }
    }

    fn subscribe(&mut self, body: CallBody) {
        if let Some(old) = self.stream_task.take() {
            old.abort();
        }
        self.generation += 1;
        let call = self.call(body);
        let (client, url) = (self.stream_client.clone(), self.config.executor_url());
        self.stream_task = Some(spawn_stream(
            client,
            url,
            call,
            self.generation,
            self.agent_tx.clone(),
        ));
    }

    fn signal(&mut self, task_id: &TaskId, signal: KillSignal) {
        if self.docker.signal(task_id, signal) {
            return;
        }
        let Some(&pgid) = self.groups.get(task_id) else {
            return;
        };
        tracing::info!(%task_id, pgid, ?signal, "Signalling task process group");
        if let Err(e) = process::signal_group(pgid, signal) {
            tracing::warn!(%task_id, pgid, error = %e, "Cannot signal task process group");
        }
    }

    /// Spawns a task and a waiter that reports its exit.
    fn launch(&mut self, request: &SpawnRequest) -> Result<(), LaunchError> {
        let spec = self.launch_spec(request)?;
        let mut child = process::spawn(&spec)?;
        let task_id = request.task.task_id.clone();
        self.probes
            .set_context(task_id.clone(), ProbeContext::of(&spec));
        let pid = child.id().unwrap_or_default();
        tracing::info!(%task_id, pid, program = %spec.program, "Launched task");
        self.groups.insert(task_id.clone(), pid);
        let tx = self.exit_tx.clone();
        tokio::spawn(async move {
            let termination = match child.wait().await {
                Ok(status) => Termination::from_status(status),
                Err(e) => {
                    tracing::error!(%task_id, error = %e, "Failed to get exit status for Command");
                    Termination::Exited(-1)
                }
            };
            let _ = tx.send((task_id, termination)).await;
        });
        Ok(())
    }

    fn launch_spec(&mut self, request: &SpawnRequest) -> Result<LaunchSpec, LaunchError> {
        let task = &request.task;
        let (program, arg0, args) = process::command_line(process::task_command(task)?)?;
        let ids = process::resolve_user(request.user.as_deref(), &mut self.warned_user)?;
        let (cwd, output) = if request.own_sandbox {
            let dir =
                process::prepare_task_sandbox(&self.config.directory, task.task_id.as_str(), ids)?;
            let links = sandbox_volumes::links(task, Some(&self.config.directory), &dir)
                .map_err(LaunchError::Volume)?;
            sandbox_volumes::create(&links, ids).map_err(|source| LaunchError::Sandbox {
                path: dir.clone(),
                source,
            })?;
            let output = Output::Files {
                stdout: dir.join("stdout"),
                stderr: dir.join("stderr"),
            };
            (dir, output)
        } else {
            let links = sandbox_volumes::links(task, None, &self.config.directory)
                .map_err(LaunchError::Volume)?;
            sandbox_volumes::create(&links, ids).map_err(|source| LaunchError::Sandbox {
                path: self.config.directory.clone(),
                source,
            })?;
            (self.config.sandbox.clone(), Output::Inherit)
        };
        let env = process::task_env(task, &self.config.directory, &cwd);
        Ok(LaunchSpec {
            program,
            arg0,
            args,
            env,
            cwd,
            ids,
            output,
        })
    }

    async fn stop(&mut self) {
        self.docker.shutdown().await;
        if let Some(stream) = self.stream_task.take() {
            stream.abort();
        }
        self.poster_task.abort();
        self.probes.stop_all();
    }
}
