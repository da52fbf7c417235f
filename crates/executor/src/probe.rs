//! Running health checks and checks for real: a command in the task's sandbox and
//! environment (own process group, output to the executor's stderr, as Mesos sends it),
//! a command inside a DOCKER task's container (Docker's exec API, `docker::exec`), an
//! HTTP GET (redirects followed and certificates not verified, like Mesos' `curl -L -k`)
//! and a TCP connect. Timeouts are the core's business: it asks for a cancel.

use crate::core::{Probe, ProbeKind, ProbeOutcome, ProbeRequest};
use crate::docker::engine::Engine;
use crate::docker::exec;
use crate::process::{self, LaunchError, LaunchSpec, Output};
use crate::termination::Termination;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use strata_api::{CommandInfo, TaskId};
use tokio::sync::{mpsc, watch, OnceCell};
use tokio::task::JoinHandle;

/// Where and as whom a task's command probes run: the task's working directory,
/// environment additions and user, as its own process got them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeContext {
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub ids: Option<(u32, u32)>,
}

impl ProbeContext {
    /// The context of a task launched with `spec`.
    pub fn of(spec: &LaunchSpec) -> Self {
        ProbeContext {
            cwd: spec.cwd.clone(),
            env: spec.env.clone(),
            ids: spec.ids,
        }
    }
}

/// The launch spec of a command probe: the task's context plus the probe command's own
/// VALUE variables (which win).
pub fn command_spec(command: &CommandInfo, ctx: &ProbeContext) -> Result<LaunchSpec, LaunchError> {
    let (program, arg0, args) = process::command_line(command)?;
    let mut env = ctx.env.clone();
    let vars = command.environment.iter().flat_map(|e| e.variables.iter());
    env.extend(
        vars.filter(|v| matches!(v.kind.as_deref(), None | Some("VALUE")))
            .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default())),
    );
    Ok(LaunchSpec {
        program,
        arg0,
        args,
        env,
        cwd: ctx.cwd.clone(),
        ids: ctx.ids,
        output: Output::Stderr,
    })
}

/// A running command probe.
#[derive(Debug)]
pub struct CommandProbe {
    child: tokio::process::Child,
    pgid: u32,
}

impl CommandProbe {
    /// Starts the probe command in its own process group.
    pub fn spawn(command: &CommandInfo, ctx: &ProbeContext) -> Result<Self, LaunchError> {
        let spec = command_spec(command, ctx)?;
        let child = process::spawn(&spec)?;
        let pgid = child.id().unwrap_or_default();
        Ok(CommandProbe { child, pgid })
    }

    /// The probe's process group (its pid).
    pub fn pgid(&self) -> u32 {
        self.pgid
    }

    /// Waits for the command: its exit code, or an error if it was killed by a signal.
    pub async fn wait(mut self) -> ProbeOutcome {
        match self.child.wait().await.map(Termination::from_status) {
            Ok(Termination::Exited(code)) => ProbeOutcome::Exited(code),
            Ok(other) => ProbeOutcome::Error(other.message()),
            Err(e) => ProbeOutcome::Error(format!("cannot wait for the probe command: {e}")),
        }
    }
}

/// Kills a command probe's whole process group (a timed-out or abandoned probe).
pub fn kill_command(pgid: u32) -> Result<(), nix::Error> {
    process::signal_group(pgid, crate::core::KillSignal::Kill)
}

/// The HTTP client of probes: no proxy (probes target loopback), redirects followed,
/// any certificate accepted, no timeout of its own.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
}

/// GETs `url`: the final status code, or an error when no answer came.
pub async fn http_get(client: &reqwest::Client, url: &str) -> ProbeOutcome {
    match client.get(url).send().await {
        Ok(response) => ProbeOutcome::Status(response.status().as_u16()),
        Err(e) => ProbeOutcome::Error(format!("GET {url} failed: {e}")),
    }
}

/// Connects to `addr` and closes the connection at once.
pub async fn tcp_connect(addr: SocketAddr) -> ProbeOutcome {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => {
            drop(stream);
            ProbeOutcome::Connected(true)
        }
        Err(e) => {
            tracing::debug!(%addr, error = %e, "TCP probe could not connect");
            ProbeOutcome::Connected(false)
        }
    }
}

/// A probe's answer on its way back to the shell loop.
#[derive(Debug)]
pub struct ProbeDone {
    pub task_id: TaskId,
    pub kind: ProbeKind,
    pub seq: u64,
    pub outcome: ProbeOutcome,
}

struct Running {
    seq: u64,
    abandon: Abandon,
    handle: JoinHandle<()>,
}

/// How to abandon a running probe.
enum Abandon {
    /// Kill a command probe's process group; its waiter still reaps it and reports.
    Group(u32),
    /// Stop waiting for it.
    Drop,
    /// Stop waiting and kill the exec's process (its id once the exec exists).
    Exec {
        docker: Arc<OnceCell<Engine>>,
        id: watch::Receiver<Option<String>>,
    },
}

type Pending = Pin<Box<dyn Future<Output = ProbeOutcome> + Send>>;

/// Runs the probes the core asks for, one task per probe; every outcome (also of a probe
/// that could not start) arrives on the channel given to `new`.
pub struct ProbeRunner {
    contexts: HashMap<TaskId, ProbeContext>,
    running: HashMap<(TaskId, ProbeKind), Running>,
    http: Option<reqwest::Client>,
    /// The Docker daemon, connected on the first probe inside a container.
    docker: Arc<OnceCell<Engine>>,
    tx: mpsc::Sender<ProbeDone>,
}

impl ProbeRunner {
    pub fn new(tx: mpsc::Sender<ProbeDone>) -> Self {
        ProbeRunner {
            contexts: HashMap::new(),
            running: HashMap::new(),
            http: None,
            docker: Arc::new(OnceCell::new()),
            tx,
        }
    }

    /// Remembers where the task's command probes run.
    pub fn set_context(&mut self, task_id: TaskId, ctx: ProbeContext) {
        self.contexts.insert(task_id, ctx);
    }

    /// Starts a probe.
    pub fn start(&mut self, request: ProbeRequest) {
        let ProbeRequest {
            task_id,
            kind,
            seq,
            probe,
        } = request;
        let (abandon, pending) = self.prepare(&task_id, probe);
        let tx = self.tx.clone();
        let id = task_id.clone();
        let handle = tokio::spawn(async move {
            let outcome = pending.await;
            let done = ProbeDone {
                task_id: id,
                kind,
                seq,
                outcome,
            };
            let _ = tx.send(done).await;
        });
        let running = Running {
            seq,
            abandon,
            handle,
        };
        if let Some(old) = self.running.insert((task_id, kind), running) {
            old.stop();
        }
    }

    fn prepare(&mut self, task_id: &TaskId, probe: Probe) -> (Abandon, Pending) {
        let failed = |message: String| -> Pending {
            Box::pin(std::future::ready(ProbeOutcome::Error(message)))
        };
        match probe {
            Probe::Command(command) => {
                let Some(ctx) = self.contexts.get(task_id) else {
                    let message = format!("task {task_id} has no process to check");
                    return (Abandon::Drop, failed(message));
                };
                match CommandProbe::spawn(&command, ctx) {
                    Ok(probe) => (Abandon::Group(probe.pgid()), Box::pin(probe.wait())),
                    Err(e) => {
                        let message = format!("cannot start the probe command: {e}");
                        (Abandon::Drop, failed(message))
                    }
                }
            }
            Probe::Exec { container, command } => self.exec(container, command),
            Probe::Http { url } => match self.client() {
                Ok(client) => {
                    let get = async move { http_get(&client, &url).await };
                    (Abandon::Drop, Box::pin(get))
                }
                Err(e) => {
                    let message = format!("cannot create an HTTP client: {e}");
                    (Abandon::Drop, failed(message))
                }
            },
            Probe::Tcp { addr } => (Abandon::Drop, Box::pin(tcp_connect(addr))),
        }
    }

    /// A command inside a container.
    fn exec(&self, container: String, command: CommandInfo) -> (Abandon, Pending) {
        let (id_tx, id_rx) = watch::channel(None);
        let docker = self.docker.clone();
        let pending = async move {
            match docker.get_or_try_init(Engine::connect).await {
                Ok(engine) => exec::run(engine, &container, &command, id_tx).await,
                Err(e) => ProbeOutcome::Error(format!(
                    "cannot run the probe in container '{container}': {e}"
                )),
            }
        };
        let abandon = Abandon::Exec {
            docker: self.docker.clone(),
            id: id_rx,
        };
        (abandon, Box::pin(pending))
    }

    fn client(&mut self) -> Result<reqwest::Client, reqwest::Error> {
        if let Some(client) = &self.http {
            return Ok(client.clone());
        }
        let client = http_client()?;
        self.http = Some(client.clone());
        Ok(client)
    }

    /// Abandons probe `seq`: a command's process group is killed (its waiter still reaps
    /// it and reports, and the core ignores that answer); an exec's process is killed and
    /// its answer dropped, as are other probes.
    pub fn cancel(&mut self, task_id: &TaskId, kind: ProbeKind, seq: u64) {
        let key = (task_id.clone(), kind);
        if self.running.get(&key).is_some_and(|r| r.seq == seq) {
            if let Some(running) = self.running.remove(&key) {
                running.stop();
            }
        }
    }

    /// An answer arrived: the probe no longer runs.
    pub fn finished(&mut self, done: &ProbeDone) {
        let key = (done.task_id.clone(), done.kind);
        if self.running.get(&key).is_some_and(|r| r.seq == done.seq) {
            self.running.remove(&key);
        }
    }

    /// Stops every probe (the executor exits).
    pub fn stop_all(&mut self) {
        self.running.drain().for_each(|(_, running)| running.stop());
    }
}

impl Running {
    fn stop(self) {
        match self.abandon {
            Abandon::Group(pgid) => {
                if let Err(e) = kill_command(pgid) {
                    tracing::warn!(pgid, error = %e, "Cannot kill a probe command's process group");
                }
            }
            Abandon::Drop => self.handle.abort(),
            Abandon::Exec { docker, id } => {
                self.handle.abort();
                let id = id.borrow().clone();
                if let (Some(engine), Some(id)) = (docker.get().cloned(), id) {
                    tokio::spawn(async move { exec::kill(&engine, &id).await });
                }
            }
        }
    }
}
