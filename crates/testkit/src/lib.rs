//! Test fixtures that run real `strata` master and agent processes on loopback: start,
//! wait until ready, kill -9, freeze (SIGSTOP), restart on the same port and work dir,
//! plus polling helpers and the Python interop environment. Used by integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod framework;
mod process;
pub mod volumes;

pub use process::{AgentProc, MasterProc, Proc};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use strata_transport::Client;

/// Master flags that make failure detection fast enough for tests.
pub const FAST_MASTER: &[&str] = &[
    "--agent_ping_interval",
    "0.5",
    "--max_agent_ping_timeouts",
    "4",
    "--agent_reregister_timeout",
    "3",
    "--heartbeat_interval",
    "1",
    "--allocation_interval",
    "0.2",
];

/// Agent flags for tests (fast status update retries).
pub const FAST_AGENT: &[&str] = &[
    "--status_update_retry_interval",
    "1",
    "--resources",
    "cpus:4;mem:4096;disk:10000;ports:[31000-31999]",
];

/// `defaults` then `extra`, where a `--flag value` pair in `extra` replaces the same flag
/// in `defaults` (daemons refuse a flag given twice).
pub fn merge_flags(defaults: &[&str], extra: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = defaults.iter().map(|s| s.to_string()).collect();
    let mut i = 0;
    while i < extra.len() {
        let flag = extra[i];
        let value = extra.get(i + 1).filter(|v| !v.starts_with("--"));
        match (out.iter().position(|a| a == flag), value) {
            (Some(at), Some(v)) if out.get(at + 1).is_some_and(|x| !x.starts_with("--")) => {
                out[at + 1] = v.to_string()
            }
            (_, Some(v)) => out.extend([flag.to_string(), v.to_string()]),
            (_, None) => out.push(flag.to_string()),
        }
        i += if value.is_some() { 2 } else { 1 };
    }
    out
}

/// Polls `f` every 50 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A master and agents, each a real `strata` process, in one temp directory.
pub struct Cluster {
    pub bin: PathBuf,
    pub dir: tempfile::TempDir,
    pub master: MasterProc,
    pub agents: Vec<AgentProc>,
    pub client: Client,
}

impl Cluster {
    /// Starts a master and `agents` agents (fast test timings) and waits until every
    /// agent is registered.
    pub async fn start(bin: &Path, agents: usize) -> Self {
        Self::start_with(bin, agents, &[], &[]).await
    }

    /// Like [`Cluster::start`] with extra master and agent flags (`--flag value` pairs; one
    /// that [`FAST_MASTER`] or [`FAST_AGENT`] already sets replaces its value).
    pub async fn start_with(
        bin: &Path,
        agents: usize,
        master_args: &[&str],
        agent_args: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let margs = merge_flags(FAST_MASTER, master_args);
        let master = MasterProc::start(bin, &dir.path().join("master"), 0, margs).await;
        let mut me = Self {
            bin: bin.to_path_buf(),
            dir,
            master,
            agents: Vec::new(),
            client: Client::new(Duration::from_secs(10)),
        };
        for _ in 0..agents {
            me.add_agent(agent_args).await;
        }
        me
    }

    /// Starts one more agent and waits until the master lists it.
    pub async fn add_agent(&mut self, extra: &[&str]) -> usize {
        let i = self.agents.len();
        let args = merge_flags(FAST_AGENT, extra);
        let agent = AgentProc::start(
            &self.bin,
            &self.master.addr,
            &self.dir.path().join(format!("agent-{i}")),
            0,
            args,
        )
        .await;
        self.agents.push(agent);
        self.wait_agent_registered(i).await;
        i
    }

    /// Waits until agent `i` is listed and active at the master; returns its id.
    pub async fn wait_agent_registered(&self, i: usize) -> String {
        let addr = self.agents[i].addr.clone();
        wait_until(
            Duration::from_secs(20),
            &format!("agent {addr} to register"),
            async || {
                let v = self.get("/master/slaves").await.ok()?;
                v["slaves"].as_array()?.iter().find(|s| {
                    s["pid"].as_str().is_some_and(|p| p.ends_with(&addr)) && s["active"] == true
                })?["id"]
                    .as_str()
                    .map(str::to_string)
            },
        )
        .await
    }

    /// `GET http://master<path>` as JSON.
    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .client
            .get_json(&format!("http://{}{path}", self.master.addr))
            .await?)
    }

    /// `GET http://agent<path>` as JSON.
    pub async fn agent_get(&self, i: usize, path: &str) -> anyhow::Result<Value> {
        Ok(self
            .client
            .get_json(&format!("http://{}{path}", self.agents[i].addr))
            .await?)
    }

    /// A task's latest state in /master/tasks (live, unreachable or completed).
    pub async fn task_state(&self, task_id: &str) -> Option<String> {
        let v = self
            .get(&format!("/master/tasks?limit=-1&task_id={task_id}"))
            .await
            .ok()?;
        v["tasks"].as_array()?.iter().find(|t| t["id"] == task_id)?["state"]
            .as_str()
            .map(str::to_string)
    }

    /// Runs the `strata` CLI with `args` (and `--master` appended where useful by the
    /// caller); returns (exit code, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(&self.bin)
            .args(args)
            .env("STRATA_MASTER", &self.master.addr)
            .output()
            .await
            .expect("run strata");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Prints every process log (call when a test fails).
    pub fn dump_logs(&self) {
        self.master.proc.dump();
        for a in &self.agents {
            a.proc.dump();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}

/// The Python interpreter of the interop venv (`$STRATA_VENV` or `<repo>/.venv`). With
/// `CI=true` a missing venv fails the test; elsewhere the test is skipped with a reason.
pub fn interop_python() -> Option<PathBuf> {
    let venv = std::env::var_os("STRATA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let py = venv.join("bin").join("python");
    if py.exists() {
        return Some(py);
    }
    let msg = format!(
        "interop venv missing at {} (create it with .ci/python-env.sh)",
        venv.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// Percent-encodes a query value (paths keep their slashes).
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The name of the user running the tests (frameworks need a `user`).
pub fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into())
}

/// Whether tests may use root-only features; in CI they must be available.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
