//! The shell's side of DOCKER tasks: the Docker Engine API through bollard (`DOCKER_HOST`,
//! else the local unix socket). One task per container pulls the image when it is missing
//! (or always with `force_pull_image`), creates the container, attaches to its output
//! (copied into the executor's stdout/stderr: the sandbox files), starts it, inspects it
//! (its addresses, for probes), waits for it, inspects it again (an OOM kill), removes it
//! and reports each step to the shell loop. Signals are `docker kill`s.

use super::{container_ips, create_body, exit_termination, image_reference, oom_kill, DockerRun};
use crate::core::{KillSignal, Started};
use crate::termination::{OomKill, Termination};
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    KillContainerOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    WaitContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;
use strata_api::TaskId;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long the daemon may take to answer the version handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long output may still arrive after the container exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long removing one container may take.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(30);
/// Backoff between attempts to learn a container's exit (doubles up to the max).
const WAIT_RETRY: Duration = Duration::from_millis(500);
const WAIT_RETRY_MAX: Duration = Duration::from_secs(30);

/// Why a container could not be started (reported as "Failed to launch container: …").
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("cannot reach the Docker daemon: {0}")]
    Connect(String),
    #[error("Failed to pull image '{image}': {message}")]
    Pull { image: String, message: String },
    #[error("cannot create container '{name}': {source}")]
    Create { name: String, source: BollardError },
    #[error("cannot attach to container '{name}': {source}")]
    Attach { name: String, source: BollardError },
    #[error("cannot start container '{name}': {source}")]
    Start { name: String, source: BollardError },
}

/// What a container's task tells the shell loop.
#[derive(Debug)]
pub enum DockerReport {
    /// The container runs (or could not be started: the error text).
    Started {
        task_id: TaskId,
        result: Result<Started, String>,
    },
    /// The container ended (`oom`: the kernel OOM-killed in it) and was removed.
    Exited {
        task_id: TaskId,
        termination: Termination,
        oom: Option<OomKill>,
    },
}

/// A negotiated connection to the Docker daemon.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects and agrees on an API version (the daemon may be older than bollard).
    pub async fn connect() -> Result<Engine, DockerError> {
        let docker =
            Docker::connect_with_defaults().map_err(|e| DockerError::Connect(e.to_string()))?;
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| DockerError::Connect(format!("no answer in {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| DockerError::Connect(e.to_string()))?;
        Ok(Engine { docker })
    }

    /// The bollard client.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Pulls `image` unless it is present locally (always with `force`).
    pub async fn ensure_image(&self, image: &str, force: bool) -> Result<(), DockerError> {
        let reference = image_reference(image);
        if !force && self.docker.inspect_image(&reference).await.is_ok() {
            return Ok(());
        }
        tracing::info!(image = %reference, force, "Pulling image");
        let options = CreateImageOptionsBuilder::default()
            .from_image(&reference)
            .build();
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            if let Err(e) = item {
                return Err(DockerError::Pull {
                    image: reference,
                    message: error_text(&e),
                });
            }
        }
        Ok(())
    }

    /// Pulls, creates, attaches and starts; returns the task copying the output.
    async fn launch(&self, run: &DockerRun) -> Result<JoinHandle<()>, DockerError> {
        self.ensure_image(&run.image, run.force_pull).await?;
        let name = run.name.clone();
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        self.docker
            .create_container(Some(options), create_body(run))
            .await
            .map_err(|source| DockerError::Create {
                name: name.clone(),
                source,
            })?;
        let attach = AttachContainerOptionsBuilder::default()
            .stream(true)
            .logs(true)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = self
            .docker
            .attach_container(&name, Some(attach))
            .await
            .map_err(|source| DockerError::Attach {
                name: name.clone(),
                source,
            })?;
        let pump = tokio::spawn(copy_output(attached.output));
        if let Err(source) = self
            .docker
            .start_container(&name, None::<StartContainerOptions>)
            .await
        {
            pump.abort();
            return Err(DockerError::Start { name, source });
        }
        Ok(pump)
    }

    /// Waits until the container stops; asks again (with backoff) when the wait breaks
    /// while the container still runs (e.g. the daemon restarted).
    async fn wait_exit(&self, name: &str) -> Termination {
        let mut delay = WAIT_RETRY;
        loop {
            let options = WaitContainerOptionsBuilder::default()
                .condition("not-running")
                .build();
            let mut wait = self.docker.wait_container(name, Some(options));
            let error = match wait.next().await {
                Some(Ok(reply)) => return exit_termination(reply.status_code),
                Some(Err(BollardError::DockerContainerWaitError { code, .. })) => {
                    return exit_termination(code)
                }
                Some(Err(e)) => e.to_string(),
                None => "the daemon closed the wait without a status".to_string(),
            };
            match self.docker.inspect_container(name, None).await {
                Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(false) => {
                    let code = c.state.and_then(|s| s.exit_code).unwrap_or(-1);
                    return exit_termination(code);
                }
                Err(e) if status_of(&e) == Some(404) => {
                    tracing::error!(container = name, "The container disappeared while running");
                    return Termination::Exited(-1);
                }
                _ => tracing::warn!(
                    container = name,
                    error,
                    "Waiting for the container failed; retrying"
                ),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(WAIT_RETRY_MAX);
        }
    }

    /// The container's addresses on its network, for its probes (none if it cannot be
    /// inspected: its HTTP and TCP probes then cannot run).
    async fn addresses(&self, run: &DockerRun) -> Started {
        match self.docker.inspect_container(&run.name, None).await {
            Ok(inspect) => Started {
                container_ips: container_ips(&inspect, &run.network),
            },
            Err(e) => {
                tracing::warn!(container = %run.name, error = %e, "Cannot inspect the started container; its HTTP and TCP probes will not run");
                Started::default()
            }
        }
    }

    /// Whether the kernel OOM-killed in the ended container (asked before removing it).
    async fn oom_kill(&self, name: &str) -> Option<OomKill> {
        match self.docker.inspect_container(name, None).await {
            Ok(inspect) => oom_kill(&inspect),
            Err(e) => {
                tracing::warn!(container = name, error = %e, "Cannot inspect the ended container; an OOM kill would go unreported");
                None
            }
        }
    }

    /// Sends `signal` to the container; one that is gone or stopped is no error.
    pub async fn kill(&self, name: &str, signal: KillSignal) {
        let signal = match signal {
            KillSignal::Term => "SIGTERM",
            KillSignal::Kill => "SIGKILL",
        };
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        match self.docker.kill_container(name, Some(options)).await {
            Ok(()) => tracing::info!(container = name, signal, "Signalled container"),
            Err(e) if matches!(status_of(&e), Some(404 | 409)) => {
                tracing::debug!(container = name, error = %e, "Container not running")
            }
            Err(e) => {
                tracing::warn!(container = name, signal, error = %e, "Cannot signal container")
            }
        }
    }

    /// Force-removes the container (and its anonymous volumes); a missing one is fine.
    pub async fn remove(&self, name: &str) -> Result<(), BollardError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let removal = self.docker.remove_container(name, Some(options));
        match tokio::time::timeout(REMOVE_TIMEOUT, removal).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if status_of(&e) == Some(404) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BollardError::RequestTimeoutError),
        }
    }
}

/// The HTTP status of a daemon error, if it is one.
pub fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The daemon's own message when there is one.
fn error_text(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    }
}

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, BollardError>> + Send>>;

/// Copies the container's stdout and stderr into the executor's own.
async fn copy_output(mut output: Output) {
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    while let Some(item) = output.next().await {
        let written = match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                stdout.write_all(&message).await.and(stdout.flush().await)
            }
            Ok(LogOutput::StdErr { message }) => {
                stderr.write_all(&message).await.and(stderr.flush().await)
            }
            Ok(LogOutput::StdIn { .. }) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "The container's output stream broke");
                return;
            }
        };
        if let Err(e) = written {
            tracing::warn!(error = %e, "Cannot write the container's output to the sandbox");
        }
    }
}

/// One container's whole life, reported on `tx`: started (or not), then exited.
async fn lifecycle(run: DockerRun, task_id: TaskId, tx: mpsc::Sender<DockerReport>) {
    let started = match Engine::connect().await {
        Ok(engine) => match engine.launch(&run).await {
            Ok(pump) => Ok((engine, pump)),
            Err(e) => {
                if let Err(rm) = engine.remove(&run.name).await {
                    tracing::warn!(container = %run.name, error = %rm, "Cannot remove a container that failed to start");
                }
                Err(e)
            }
        },
        Err(e) => Err(e),
    };
    let (engine, pump) = match started {
        Ok(ok) => ok,
        Err(e) => {
            let result = Err(e.to_string());
            let _ = tx.send(DockerReport::Started { task_id, result }).await;
            return;
        }
    };
    let id = task_id.clone();
    let started = engine.addresses(&run).await;
    let _ = tx
        .send(DockerReport::Started {
            task_id: id,
            result: Ok(started),
        })
        .await;
    let termination = engine.wait_exit(&run.name).await;
    if tokio::time::timeout(DRAIN_TIMEOUT, pump).await.is_err() {
        tracing::warn!(container = %run.name, "The container's output did not end after it exited");
    }
    let oom = engine.oom_kill(&run.name).await;
    if let Err(e) = engine.remove(&run.name).await {
        tracing::warn!(container = %run.name, error = %e, "Cannot remove the container");
    }
    let _ = tx
        .send(DockerReport::Exited {
            task_id,
            termination,
            oom,
        })
        .await;
}

/// The executor's containers: launched by `launch`, signalled by `signal`, forgotten when
/// they report their exit, and removed by `shutdown` when the executor exits first.
#[derive(Debug)]
pub struct DockerTasks {
    live: HashMap<TaskId, (String, JoinHandle<()>)>,
    tx: mpsc::Sender<DockerReport>,
}

impl DockerTasks {
    pub fn new(tx: mpsc::Sender<DockerReport>) -> Self {
        DockerTasks {
            live: HashMap::new(),
            tx,
        }
    }

    /// Starts the container's life; its reports arrive on the channel given to `new`.
    pub fn launch(&mut self, task_id: TaskId, run: DockerRun) {
        let name = run.name.clone();
        let handle = tokio::spawn(lifecycle(run, task_id.clone(), self.tx.clone()));
        self.live.insert(task_id, (name, handle));
    }

    /// Signals the task's container; false if the task has none.
    pub fn signal(&self, task_id: &TaskId, signal: KillSignal) -> bool {
        let Some((name, _)) = self.live.get(task_id) else {
            return false;
        };
        let name = name.clone();
        tokio::spawn(async move {
            match Engine::connect().await {
                Ok(engine) => engine.kill(&name, signal).await,
                Err(e) => tracing::warn!(container = %name, error = %e, "Cannot signal container"),
            }
        });
        true
    }

    /// The task's container ended (its life reported `Exited`).
    pub fn finished(&mut self, task_id: &TaskId) {
        self.live.remove(task_id);
    }

    /// The executor exits: stop every container's life and force-remove the containers.
    pub async fn shutdown(&mut self) {
        if self.live.is_empty() {
            return;
        }
        let live: Vec<(String, JoinHandle<()>)> = self.live.drain().map(|(_, v)| v).collect();
        live.iter().for_each(|(_, handle)| handle.abort());
        let engine = match Engine::connect().await {
            Ok(engine) => engine,
            Err(e) => return tracing::error!(error = %e, "Cannot remove the task containers"),
        };
        for (name, _) in live {
            match engine.remove(&name).await {
                Ok(()) => tracing::info!(container = %name, "Removed container"),
                Err(e) => tracing::error!(container = %name, error = %e, "Cannot remove container"),
            }
        }
    }
}
