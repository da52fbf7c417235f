//! Starting and destroying containers (an executor process and everything it spawns).
//! This version has the POSIX process backend: own process group, sandbox stdout/stderr,
//! optional user switch, and destroy by killing the whole process tree; and resource
//! isolation behind the [`isolation::Isolator`] trait (cgroups v1 and v2, none, a fake);
//! optional pid and mount namespaces ([`namespaces`]) with volumes bind-mounted
//! ([`mounts`]). Docker tasks are run by the
//! executor (`strata-executor`'s `docker` module), not here.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod isolation;
pub mod mounts;
pub mod namespaces;
mod posix;
mod proctree;

pub use posix::PosixContainerizer;
pub use proctree::{descendants, kill_tree, start_time};

use futures_util::future::BoxFuture;
use std::path::PathBuf;

/// What to run in a container.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Container id, for logs.
    pub id: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to the agent's own environment.
    pub env: Vec<(String, String)>,
    /// Working directory (the sandbox); stdout/stderr files are created in it.
    pub sandbox: PathBuf,
    /// Run as this user when the agent runs as root.
    pub user: Option<String>,
}

/// A started container.
#[derive(Debug)]
pub struct Launched {
    pub pid: u32,
    /// Resolves with the raw wait status when the process exits.
    pub exit: tokio::sync::oneshot::Receiver<i32>,
    /// Holds a wrapped container before it forks anything: [`Gate::open`] it once the
    /// process is isolated (dropping it aborts the container).
    pub gate: Gate,
}

/// The start gate of a container whose first process waits for the agent (see
/// [`namespaces`]); a no-op for unwrapped processes.
#[derive(Debug, Default)]
pub struct Gate(pub(crate) Option<tokio::process::ChildStdin>);

impl Gate {
    /// Lets the container go on.
    pub async fn open(self) {
        use tokio::io::AsyncWriteExt;
        if let Some(mut pipe) = self.0 {
            if let Err(e) = pipe.write_all(namespaces::GATE_OPEN).await {
                tracing::warn!(error = %e, "cannot open the container's start gate");
            }
        }
    }
}

/// Why a container could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("cannot create {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("user '{0}' does not exist on this machine")]
    NoSuchUser(String),
}

/// The container backends' common interface.
pub trait Containerizer: Send + Sync {
    /// Starts the process; the returned receiver fires on exit.
    fn launch(&self, spec: ProcessSpec) -> BoxFuture<'_, Result<Launched, ContainerError>>;
    /// Kills every process of the container rooted at `pid`.
    fn destroy(&self, pid: u32) -> BoxFuture<'_, ()>;
}
