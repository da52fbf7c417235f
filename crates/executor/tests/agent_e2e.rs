//! End-to-end tests of the executor against a minimal in-process test agent (axum) that
//! serves `/api/v1/executor`: a SUBSCRIBE stream (SUBSCRIBED, then scripted events) and
//! UPDATE posts, each answered with ACKNOWLEDGED on the stream.
#![allow(clippy::unwrap_used)]

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_api::executor::{Call, CallBody, Subscribe};
use strata_api::{recordio, to_ascii_json, Source, TaskState, TaskStatus};
use strata_executor::core::decode_uuid;
use strata_executor::Config;
use tokio::sync::mpsc;

#[derive(Default)]
struct AgentState {
    stream: Option<mpsc::UnboundedSender<Bytes>>,
    /// Events sent right after the first SUBSCRIBED.
    launch: Vec<serde_json::Value>,
    updates: Vec<(Instant, TaskStatus)>,
    subscribes: Vec<Subscribe>,
}

type Agent = Arc<Mutex<AgentState>>;

fn push(state: &AgentState, event: &serde_json::Value) {
    if let Some(tx) = &state.stream {
        let _ = tx.send(recordio::encode(to_ascii_json(event).as_bytes()));
    }
}

/// SUBSCRIBED for a framework whose user is the one running the tests (so no user switch).
fn subscribed(caps: &[&str]) -> serde_json::Value {
    let caps: Vec<_> = caps.iter().map(|c| json!({"type": c})).collect();
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name;
    json!({"type": "SUBSCRIBED", "subscribed": {
        "executor_info": {"executor_id": {"value": "ex"}},
        "framework_info": {"user": user, "name": "fw", "id": {"value": "fw"}, "capabilities": caps},
        "agent_info": {"hostname": "localhost"},
    }})
}

fn task(id: &str, script: &str) -> serde_json::Value {
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
            push(&state, &subscribed(&["TASK_KILLING_STATE"]));
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

async fn start_agent(state: AgentState) -> (Agent, String) {
    let agent: Agent = Arc::new(Mutex::new(state));
    let app = axum::Router::new()
        .route("/api/v1/executor", axum::routing::post(executor_api))
        .with_state(agent.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (agent, endpoint)
}

fn config(endpoint: &str, directory: &std::path::Path, checkpoint: bool) -> Config {
    let env: HashMap<&str, String> = HashMap::from([
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
    ]);
    Config::from_lookup(|k| env.get(k).cloned()).unwrap()
}

/// What a run left behind.
struct Outcome {
    code: i32,
    updates: Vec<(Instant, TaskStatus)>,
    subscribes: Vec<Subscribe>,
    sandbox: tempfile::TempDir,
}

/// Runs the executor (without checkpointing) against a test agent.
async fn run_against(state: AgentState) -> Outcome {
    run_with(state, false, |_| ()).await
}

/// Runs the executor against a test agent; `hook` gets the agent before the executor starts.
async fn run_with(state: AgentState, checkpoint: bool, hook: impl FnOnce(Agent)) -> Outcome {
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

/// Acts on the agent once the task wrote a line to `ready` and TASK_RUNNING was received
/// (so its ACKNOWLEDGED is already queued on the stream).
fn when_ready(
    ready: std::path::PathBuf,
    action: impl FnOnce(&mut AgentState) + Send + 'static,
) -> impl FnOnce(Agent) {
    move |agent: Agent| {
        tokio::spawn(async move {
            let running = |agent: &Agent| {
                agent
                    .lock()
                    .unwrap()
                    .updates
                    .iter()
                    .any(|(_, s)| s.state == TaskState::Running)
            };
            while !(std::fs::read_to_string(&ready).is_ok_and(|t| t.ends_with('\n'))
                && running(&agent))
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            action(&mut agent.lock().unwrap());
        });
    }
}

/// Drops the event stream, as an agent restart would, once the task is ready.
fn close_stream_when(ready: std::path::PathBuf) -> impl FnOnce(Agent) {
    when_ready(ready, |state| state.stream = None)
}

fn states(updates: &[(Instant, TaskStatus)]) -> Vec<String> {
    updates
        .iter()
        .map(|(_, s)| format!("{} {}", s.task_id, s.state))
        .collect()
}

#[tokio::test]
async fn command_task_reports_starting_running_finished_and_exits_zero() {
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH", "launch": {"task": task("t", "echo hello")}})],
        ..Default::default()
    };
    let Outcome { code, updates, .. } = run_against(state).await;
    assert_eq!(code, 0);
    assert_eq!(
        states(&updates),
        ["t TASK_STARTING", "t TASK_RUNNING", "t TASK_FINISHED"]
    );
    for (_, status) in &updates {
        assert!(
            status.uuid.as_deref().and_then(decode_uuid).is_some(),
            "uuid is base64 of 16 bytes: {:?}",
            status.uuid
        );
        assert_eq!(status.source, Some(Source::Executor));
        assert_eq!(status.executor_id.as_ref().map(|e| e.as_str()), Some("ex"));
        assert!(status.timestamp.is_some_and(|t| t > 1e9));
    }
    assert_eq!(
        updates[2].1.message.as_deref(),
        Some("Command exited with status 0")
    );
}

#[tokio::test]
async fn kill_escalates_to_sigkill_within_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    let script = format!("trap '' TERM; echo ok > {}; sleep 30", ready.display());
    let kill = json!({"type": "KILL", "kill": {"task_id": {"value": "t"}, "kill_policy": {"grace_period": {"nanoseconds": 500_000_000}}}});
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH", "launch": {"task": task("t", &script)}})],
        ..Default::default()
    };
    let Outcome { code, updates, .. } = run_with(
        state,
        false,
        when_ready(ready, move |state| push(state, &kill)),
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        states(&updates),
        [
            "t TASK_STARTING",
            "t TASK_RUNNING",
            "t TASK_KILLING",
            "t TASK_KILLED"
        ]
    );
    assert_eq!(
        updates[3].1.message.as_deref(),
        Some("Command terminated with signal Killed")
    );
    let took = updates[3].0 - updates[2].0;
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1_500),
        "kill took {took:?}"
    );
}

#[tokio::test]
async fn task_group_failure_kills_the_other_tasks() {
    let group = json!({"tasks": [task("a", "echo \"$MESOS_SANDBOX\"; sleep 0.2; exit 1"), task("b", "sleep 30")]});
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH_GROUP", "launch_group": {"task_group": group}})],
        ..Default::default()
    };
    let Outcome {
        code,
        updates,
        sandbox,
        ..
    } = run_against(state).await;
    assert_eq!(code, 0);
    assert_eq!(
        states(&updates),
        [
            "a TASK_STARTING",
            "b TASK_STARTING",
            "a TASK_RUNNING",
            "b TASK_RUNNING",
            "a TASK_FAILED",
            "b TASK_KILLING",
            "b TASK_KILLED"
        ]
    );
    assert_eq!(
        updates[4].1.message.as_deref(),
        Some("Command exited with status 1")
    );
    assert_eq!(
        updates[6].1.message.as_deref(),
        Some("Command terminated with signal Terminated")
    );
    let task_dir = sandbox.path().join("tasks/a");
    let stdout = std::fs::read_to_string(task_dir.join("stdout")).unwrap();
    assert_eq!(stdout.trim(), task_dir.display().to_string());
    assert!(sandbox.path().join("tasks/b/stderr").is_file());
}

#[tokio::test]
async fn lost_stream_without_checkpointing_kills_the_task_and_exits_one() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("pid");
    let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH", "launch": {"task": task("t", &script)}})],
        ..Default::default()
    };
    let started = Instant::now();
    let Outcome { code, updates, .. } =
        run_with(state, false, close_stream_when(pidfile.clone())).await;
    assert_eq!(code, 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(states(&updates), ["t TASK_STARTING", "t TASK_RUNNING"]);
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
        if stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "task process {pid} survived the executor"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn lost_stream_with_checkpointing_resubscribes_and_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    let release = tmp.path().join("release");
    // The task runs until the test has seen the executor resubscribe.
    let script = format!(
        "echo ok > {}; while [ ! -e {} ]; do sleep 0.05; done",
        ready.display(),
        release.display()
    );
    let state = AgentState {
        launch: vec![json!({"type": "LAUNCH", "launch": {"task": task("t", &script)}})],
        ..Default::default()
    };
    let hook = move |agent: Agent| {
        close_stream_when(ready)(agent.clone());
        tokio::spawn(async move {
            while agent.lock().unwrap().subscribes.len() < 2 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            std::fs::write(release, "go").unwrap();
        });
    };
    let Outcome {
        code,
        updates,
        subscribes,
        ..
    } = run_with(state, true, hook).await;
    assert_eq!(code, 0);
    assert_eq!(
        states(&updates),
        ["t TASK_STARTING", "t TASK_RUNNING", "t TASK_FINISHED"]
    );
    assert_eq!(subscribes.len(), 2);
    assert!(
        subscribes[0].unacknowledged_tasks.is_empty()
            && subscribes[0].unacknowledged_updates.is_empty()
    );
    // STARTING and RUNNING were acknowledged before the stream dropped: nothing to resend.
    assert!(
        subscribes[1].unacknowledged_tasks.is_empty()
            && subscribes[1].unacknowledged_updates.is_empty()
    );
}
