//! The harness shared by the executor's integration tests: a minimal in-process test agent
//! (axum) serving `/api/v1/executor` (SUBSCRIBED, then scripted events, UPDATE posts each
//! answered with ACKNOWLEDGED on the stream), and two ways to run the real executor against
//! it: in-process through `strata_executor::run`, or as its own process (this test binary
//! re-executed) with its stdout and stderr on the sandbox files, as an agent starts it.
#![allow(dead_code, clippy::unwrap_used)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_api::executor::{Call, CallBody, Subscribe};
use strata_api::{recordio, to_ascii_json, TaskState, TaskStatus};
use strata_executor::Config;
use tokio::sync::mpsc;

/// Deadline for anything a test waits for (generous: tests poll, they never time).
pub const WAIT: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct AgentState {
    pub stream: Option<mpsc::UnboundedSender<Bytes>>,
    /// Events sent right after the first SUBSCRIBED.
    pub launch: Vec<serde_json::Value>,
    pub updates: Vec<(Instant, TaskStatus)>,
    pub subscribes: Vec<Subscribe>,
    /// The `container_id` SUBSCRIBED carries (names a DOCKER task's container).
    pub container_id: Option<String>,
}

pub type Agent = Arc<Mutex<AgentState>>;

pub fn push(state: &AgentState, event: &serde_json::Value) {
    if let Some(tx) = &state.stream {
        let _ = tx.send(recordio::encode(to_ascii_json(event).as_bytes()));
    }
}

/// SUBSCRIBED for a framework whose user is the one running the tests (so no user switch).
pub fn subscribed(caps: &[&str], container_id: Option<&str>) -> serde_json::Value {
    let caps: Vec<_> = caps.iter().map(|c| json!({"type": c})).collect();
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name;
    let mut event = json!({"type": "SUBSCRIBED", "subscribed": {
        "executor_info": {"executor_id": {"value": "ex"}},
        "framework_info": {"user": user, "name": "fw", "id": {"value": "fw"}, "capabilities": caps},
        "agent_info": {"hostname": "localhost"},
    }});
    if let Some(id) = container_id {
        event["subscribed"]["container_id"] = json!({"value": id});
    }
    event
}

pub fn task(id: &str, script: &str) -> serde_json::Value {
    json!({"name": id, "task_id": {"value": id}, "agent_id": {"value": "a"}, "command": {"value": script}})
}

fn ack(status: &TaskStatus) -> serde_json::Value {
    json!({"type": "ACKNOWLEDGED", "acknowledged": {"task_id": status.task_id, "uuid": status.uuid}})
}

async fn executor_api(State(agent): State<Agent>, body: Bytes) -> Response {
    let call: Call = match serde_json::from_slice(&body) {
        Ok(call) => call,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let mut state = agent.lock().unwrap();
    match call.body {
        CallBody::Subscribe(subscribe) => {
            let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
            state.stream = Some(tx);
            let container_id = state.container_id.clone();
            push(
                &state,
                &subscribed(&["TASK_KILLING_STATE"], container_id.as_deref()),
            );
            // Like the agent, take in the resent updates and acknowledge them.
            for update in &subscribe.unacknowledged_updates {
                push(&state, &ack(&update.status));
            }
            std::mem::take(&mut state.launch)
                .iter()
                .for_each(|e| push(&state, e));
            state.subscribes.push(subscribe);
            let body = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
            });
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from_stream(body))
                .unwrap()
        }
        CallBody::Update(update) => {
            let status = update.status;
            push(&state, &ack(&status));
            state.updates.push((Instant::now(), status));
            StatusCode::ACCEPTED.into_response()
        }
        _ => StatusCode::ACCEPTED.into_response(),
    }
}

pub async fn start_agent(state: AgentState) -> (Agent, String) {
    let agent: Agent = Arc::new(Mutex::new(state));
    let app = axum::Router::new()
        .route("/api/v1/executor", axum::routing::post(executor_api))
        .with_state(agent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (agent, endpoint)
}

/// The `MESOS_*` environment an agent gives the executor.
pub fn executor_env(endpoint: &str, directory: &Path, checkpoint: bool) -> Vec<(String, String)> {
    [
        ("MESOS_FRAMEWORK_ID", "fw".to_string()),
        ("MESOS_EXECUTOR_ID", "ex".to_string()),
        ("MESOS_AGENT_ENDPOINT", endpoint.to_string()),
        ("MESOS_DIRECTORY", directory.display().to_string()),
        ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs".to_string()),
        (
            "MESOS_CHECKPOINT",
            if checkpoint { "1" } else { "0" }.to_string(),
        ),
        ("MESOS_RECOVERY_TIMEOUT", "10secs".to_string()),
        ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "200ms".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn config(endpoint: &str, directory: &Path, checkpoint: bool) -> Config {
    let env: HashMap<String, String> = executor_env(endpoint, directory, checkpoint)
        .into_iter()
        .collect();
    Config::from_lookup(|k| env.get(k).cloned()).unwrap()
}

/// What a run left behind.
pub struct Outcome {
    pub code: i32,
    pub updates: Vec<(Instant, TaskStatus)>,
    pub subscribes: Vec<Subscribe>,
    pub sandbox: tempfile::TempDir,
}

/// Runs the executor in-process (without checkpointing) against a test agent.
pub async fn run_against(state: AgentState) -> Outcome {
    run_with(state, false, |_| ()).await
}

/// Runs the executor in-process against a test agent; `hook` gets the agent before the
/// executor starts.
pub async fn run_with(state: AgentState, checkpoint: bool, hook: impl FnOnce(Agent)) -> Outcome {
    let sandbox = tempfile::tempdir().unwrap();
    let (agent, endpoint) = start_agent(state).await;
    hook(agent.clone());
    let code = tokio::time::timeout(
        Duration::from_secs(30),
        strata_executor::run(config(&endpoint, sandbox.path(), checkpoint)),
    )
    .await
    .expect("the executor exits on its own");
    let mut state = agent.lock().unwrap();
    Outcome {
        code,
        updates: state.updates.clone(),
        subscribes: std::mem::take(&mut state.subscribes),
        sandbox,
    }
}

/// Whether a TASK_RUNNING update reached the agent.
fn running(agent: &Agent) -> bool {
    agent
        .lock()
        .unwrap()
        .updates
        .iter()
        .any(|(_, s)| s.state == TaskState::Running)
}

/// Whether `path` holds at least one whole line.
fn has_line(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n'))
}

/// Acts on the agent once the task wrote a line to `ready` and TASK_RUNNING was received
/// (so its ACKNOWLEDGED is already queued on the stream).
pub fn when_ready(
    ready: PathBuf,
    action: impl FnOnce(&mut AgentState) + Send + 'static,
) -> impl FnOnce(Agent) {
    move |agent: Agent| {
        tokio::spawn(async move {
            while !(has_line(&ready) && running(&agent)) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            action(&mut agent.lock().unwrap());
        });
    }
}

/// Drops the event stream, as an agent restart would, once the task is ready.
pub fn close_stream_when(ready: PathBuf) -> impl FnOnce(Agent) {
    when_ready(ready, |state| state.stream = None)
}

pub fn states(updates: &[(Instant, TaskStatus)]) -> Vec<String> {
    updates
        .iter()
        .map(|(_, s)| format!("{} {}", s.task_id, s.state))
        .collect()
}

/// Polls `probe` every 20 ms until it yields a value, for at most `timeout`.
pub async fn poll_until<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `poll_until`, panicking with `what` when the time is up.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let found = poll_until(timeout, probe).await;
    found.unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// Set (to the sandbox directory) in the environment of a re-executed test binary that
/// must run the executor (see `executor_process_entry`).
const EXECUTOR_PROCESS_ENV: &str = "STRATA_TEST_EXECUTOR_PROCESS";

/// The body of the test named `entry` in a test file using `ExecutorProcess`: in a test
/// binary re-executed by `ExecutorProcess::start` it points stdout and stderr at the sandbox
/// files (as the agent does, and after libtest's own output) and runs the executor from
/// the environment until it exits, exiting with its code; otherwise it does nothing.
pub fn executor_process_entry() {
    use std::os::fd::AsRawFd;
    let Some(directory) = std::env::var_os(EXECUTOR_PROCESS_ENV) else {
        return;
    };
    for (name, fd) in [("stdout", 1), ("stderr", 2)] {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(&directory).join(name))
            .unwrap();
        nix::unistd::dup2(file.as_raw_fd(), fd).unwrap();
    }
    std::process::exit(strata_executor::main_from_env());
}

/// The real executor running as its own process against a test agent, like an agent
/// starts it: `MESOS_*` environment, stdout/stderr on the sandbox's `stdout`/`stderr`.
/// Killed (only the executor process) if dropped before it exited.
pub struct ExecutorProcess {
    pub agent: Agent,
    pub sandbox: tempfile::TempDir,
    child: tokio::process::Child,
}

impl ExecutorProcess {
    /// Starts the agent with `state`, then the executor with the agent's environment plus
    /// `extra_env`; `entry` is the full name of the test calling `executor_process_entry`.
    pub async fn start(state: AgentState, entry: &str, extra_env: &[(&str, &str)]) -> Self {
        let sandbox = tempfile::tempdir().unwrap();
        let (agent, endpoint) = start_agent(state).await;
        let exe = std::env::current_exe().unwrap();
        let mut cmd = tokio::process::Command::new(exe);
        cmd.args([entry, "--exact", "--nocapture", "--test-threads=1"]);
        // Only what the agent sets: nothing inherited from a surrounding executor or agent.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            if name.starts_with("MESOS_") || name.starts_with("STRATA_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(executor_env(&endpoint, sandbox.path(), false))
            .envs(extra_env.iter().copied())
            .env(EXECUTOR_PROCESS_ENV, sandbox.path())
            // Plain text in the executor's log, which failed assertions print.
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().unwrap();
        ExecutorProcess {
            agent,
            sandbox,
            child,
        }
    }

    /// Sends `event` on the executor's event stream.
    pub fn push(&self, event: &serde_json::Value) {
        push(&self.agent.lock().unwrap(), event);
    }

    /// Every update received so far.
    pub fn updates(&self) -> Vec<TaskStatus> {
        let state = self.agent.lock().unwrap();
        state.updates.iter().map(|(_, s)| s.clone()).collect()
    }

    /// The states received so far, e.g. `["TASK_STARTING", "TASK_RUNNING"]`.
    pub fn states(&self) -> Vec<String> {
        self.updates().iter().map(|s| s.state.to_string()).collect()
    }

    /// The last update received (panics when there is none).
    pub fn last(&self) -> TaskStatus {
        let last = self.updates().pop();
        last.unwrap_or_else(|| panic!("no update yet\n{}", self.log()))
    }

    /// A sandbox file's text ("" while it does not exist).
    pub fn sandbox_file(&self, name: &str) -> String {
        std::fs::read_to_string(self.sandbox.path().join(name)).unwrap_or_default()
    }

    /// The updates so far and the executor's log (its stderr), for assertion messages.
    pub fn log(&self) -> String {
        let updates: Vec<String> = self
            .updates()
            .iter()
            .map(|s| format!("  {} {:?} {:?}", s.state, s.reason, s.message))
            .collect();
        format!(
            "updates:\n{}\nexecutor stderr:\n{}",
            updates.join("\n"),
            self.sandbox_file("stderr")
        )
    }

    /// Polls `probe` until it yields a value; panics with `what` and the log after `WAIT`.
    async fn until<T, F, Fut>(&self, what: &str, probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let found = poll_until(WAIT, probe).await;
        found.unwrap_or_else(|| panic!("timed out waiting for {what}\n{}", self.log()))
    }

    /// Waits until the task wrote a line to the sandbox file `ready` and TASK_RUNNING
    /// reached the agent.
    pub async fn wait_ready(&self) {
        let ready = self.sandbox.path().join("ready");
        let what = "the task to be running and ready";
        self.until(what, || async {
            (has_line(&ready) && running(&self.agent)).then_some(())
        })
        .await
    }

    /// Waits until the sandbox file `name` contains `text`; returns the file's text.
    pub async fn file_containing(&self, name: &str, text: &str) -> String {
        let what = format!("'{text}' in the sandbox's {name}");
        self.until(&what, || async {
            let content = self.sandbox_file(name);
            content.contains(text).then_some(content)
        })
        .await
    }

    /// Waits for the executor to exit on its own; returns its exit code (-1 for a signal).
    pub async fn exit(&mut self) -> i32 {
        let status = match tokio::time::timeout(WAIT, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!("the executor did not exit within {WAIT:?}\n{}", self.log());
            }
        };
        status.code().unwrap_or(-1)
    }
}
