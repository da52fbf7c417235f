//! The task-runner conformance suite: one function per behaviour of a command task (exit
//! statuses, signals, kill with grace, environment and sandbox, launch failures, SHUTDOWN),
//! run against each runner of the executor: plain POSIX processes always, and Docker
//! containers (image `strata-test/busybox:latest` from `.ci/docker-setup.sh`) where a
//! daemon and the image exist (required under `CI=true`). The real executor runs as its
//! own process (stdout/stderr on the sandbox files) against the test agent of `common`;
//! a backend only changes the TaskInfo.
#![allow(clippy::unwrap_used)]

mod common;

use common::{eventually, AgentState, ExecutorProcess, WAIT};
use serde_json::{json, Value};
use std::process::Command;
use strata_api::Reason;

const IMAGE: &str = "strata-test/busybox:latest";
/// An image that is not present and cannot be pulled (nothing listens on port 1).
const UNPULLABLE_IMAGE: &str = "127.0.0.1:1/nope:latest";
const TASK: &str = "conformance-task";
/// The full name of the test below (`ExecutorProcess` re-executes this binary with it).
const ENTRY: &str = "executor_process_entry";

/// Not a behaviour: the entry point of the executor processes this suite starts (this
/// binary re-executed by `ExecutorProcess::start`); in a normal run it returns at once.
#[test]
fn executor_process_entry() {
    common::executor_process_entry();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Process,
    Docker,
}

/// One test's runner: how its tasks are described, and what it leaves behind. Dropping it
/// removes the test's container and kills the test's task processes (after a failure).
struct Subject {
    backend: Backend,
    /// The executor's container id (Docker names the container `mesos-<id>`).
    container_id: String,
    /// In every task's command line, so its processes can be found.
    marker: String,
}

impl Subject {
    fn new(backend: Backend, behaviour: &str) -> Subject {
        let kind = format!("{backend:?}").to_lowercase();
        let container_id = format!("conformance-{kind}-{behaviour}-{}", std::process::id());
        let marker = format!("strata-runner-{container_id}");
        Subject {
            backend,
            container_id,
            marker,
        }
    }

    fn process(behaviour: &str) -> Option<Subject> {
        Some(Subject::new(Backend::Process, behaviour))
    }

    fn docker(behaviour: &str) -> Option<Subject> {
        docker_ready().then(|| Subject::new(Backend::Docker, behaviour))
    }

    /// A shell command running `script` (marked, see `marker`).
    fn shell(&self, script: &str) -> Value {
        json!({"value": format!(": {}; {script}", self.marker)})
    }

    /// The task running `command` on this backend, `image` for Docker.
    fn task_in(&self, command: Value, image: &str) -> Value {
        let mut task = json!({"name": TASK, "task_id": {"value": TASK},
            "agent_id": {"value": "a"}, "command": command});
        if self.backend == Backend::Docker {
            task["container"] = json!({"type": "DOCKER",
                "docker": {"image": image, "network": "HOST"}});
        }
        task
    }

    fn task(&self, command: Value) -> Value {
        self.task_in(command, IMAGE)
    }

    /// Starts an executor and has the agent LAUNCH `task` right after SUBSCRIBED.
    async fn launch(&self, task: Value) -> ExecutorProcess {
        let state = AgentState {
            launch: vec![json!({"type": "LAUNCH", "launch": {"task": task}})],
            container_id: Some(self.container_id.clone()),
            ..Default::default()
        };
        let agent_id = format!("conformance-{}", std::process::id());
        let env = [
            ("STRATA_DOCKER", "1"),
            ("MESOS_SLAVE_ID", agent_id.as_str()),
        ];
        ExecutorProcess::start(state, ENTRY, &env).await
    }

    fn container_name(&self) -> String {
        format!("mesos-{}", self.container_id)
    }

    /// Waits until no process of the test's tasks is left and, for Docker, no container.
    async fn assert_nothing_left(&self) {
        eventually("no task process left", WAIT, || async {
            marked_pids(&self.marker).is_empty().then_some(())
        })
        .await;
        if self.backend == Backend::Docker {
            let name = self.container_name();
            eventually("the container to be removed", WAIT, || async {
                (!docker(&["container", "inspect", &name])).then_some(())
            })
            .await;
        }
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        if self.backend == Backend::Docker {
            docker(&["rm", "-f", &self.container_name()]);
        }
        for pid in marked_pids(&self.marker) {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Live processes whose command line contains `marker` (zombies have none).
fn marked_pids(marker: &str) -> Vec<nix::unistd::Pid> {
    let entries = std::fs::read_dir("/proc").unwrap();
    let pids = entries.flatten().filter_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains(marker)
            .then_some(nix::unistd::Pid::from_raw(pid))
    });
    pids.collect()
}

/// Runs `docker args…`; whether it succeeded.
fn docker(args: &[&str]) -> bool {
    let output = Command::new("docker").args(args).output();
    output.is_ok_and(|out| out.status.success())
}

/// Whether the Docker arm can run: a daemon and the test image. Under CI=true a missing
/// one fails the test; elsewhere it is skipped with the reason.
fn docker_ready() -> bool {
    let reason = if !docker(&["info"]) {
        "no reachable Docker daemon"
    } else if !docker(&["image", "inspect", IMAGE]) {
        "the test image is missing (run .ci/docker-setup.sh as root)"
    } else {
        return true;
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must run the Docker tests: {reason}"
    );
    eprintln!("SKIPPED: {reason}");
    false
}

fn kill_event(grace_ns: u64) -> Value {
    json!({"type": "KILL", "kill": {"task_id": {"value": TASK},
        "kill_policy": {"grace_period": {"nanoseconds": grace_ns}}}})
}

const STARTING_RUNNING_FINISHED: [&str; 3] = ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"];
const STARTING_RUNNING_FAILED: [&str; 3] = ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"];
const KILLED_AFTER_KILLING: [&str; 4] = [
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
    "TASK_KILLED",
];

/// Exit 0: STARTING, RUNNING, FINISHED in that order; stdout and stderr each land in the
/// sandbox file of that name; the executor exits 0 and leaves nothing running.
async fn exit_zero_finishes_with_output_in_the_sandbox(s: Subject) {
    let mut run = s
        .launch(s.task(s.shell("echo to-stdout-42; echo to-stderr-42 >&2")))
        .await;
    assert_eq!(run.exit().await, 0, "{}", run.log());
    assert_eq!(run.states(), STARTING_RUNNING_FINISHED, "{}", run.log());
    let last = run.last();
    assert_eq!(
        last.message.as_deref(),
        Some("Command exited with status 0")
    );
    assert_eq!(last.reason, None);
    let stdout = run.file_containing("stdout", "to-stdout-42").await;
    let stderr = run.file_containing("stderr", "to-stderr-42").await;
    assert!(!stdout.contains("to-stderr-42"), "stdout: {stdout}");
    assert!(!stderr.contains("to-stdout-42"), "stderr: {stderr}");
    s.assert_nothing_left().await;
}

/// Exit 3: TASK_FAILED with Mesos' message naming the status.
async fn exit_three_fails_with_the_status(s: Subject) {
    let mut run = s.launch(s.task(s.shell("exit 3"))).await;
    assert_eq!(run.exit().await, 0, "{}", run.log());
    assert_eq!(run.states(), STARTING_RUNNING_FAILED, "{}", run.log());
    let last = run.last();
    let message = last.message.as_deref();
    assert_eq!(
        message,
        Some("Command exited with status 3"),
        "{}",
        run.log()
    );
    assert_eq!(last.reason, None);
    s.assert_nothing_left().await;
}

/// The task SIGKILLs its own shell: TASK_FAILED naming the signal.
async fn killed_by_a_signal_fails_naming_it(s: Subject) {
    let script = "kill -9 $$; echo survived-sigkill";
    let mut run = s.launch(s.task(s.shell(script))).await;
    assert_eq!(run.exit().await, 0, "{}", run.log());
    if s.backend == Backend::Docker {
        // BACKENDS DISAGREE (reported, not fixed here): in a container the task's shell is
        // pid 1 of its pid namespace, and the kernel drops the signals a namespace's init
        // sends itself, SIGKILL included, so `kill -9 $$` does nothing and the task
        // FINISHES. Mesos' docker executor behaves the same (it runs no init either).
        // This pins today's outcome; with the `init` docker parameter (an init process
        // as pid 1) the container meets the common contract, checked next.
        assert_eq!(run.states(), STARTING_RUNNING_FINISHED, "{}", run.log());
        run.file_containing("stdout", "survived-sigkill").await;
        s.assert_nothing_left().await;
        let mut task = s.task(s.shell(script));
        task["container"]["docker"]["parameters"] = json!([{"key": "init", "value": "true"}]);
        run = s.launch(task).await;
        assert_eq!(run.exit().await, 0, "{}", run.log());
    }
    assert_eq!(run.states(), STARTING_RUNNING_FAILED, "{}", run.log());
    let last = run.last();
    let message = last.message.as_deref();
    let expected = "Command terminated with signal Killed";
    assert_eq!(message, Some(expected), "{}", run.log());
    assert_eq!(last.reason, None);
    assert!(!run.sandbox_file("stdout").contains("survived-sigkill"));
    s.assert_nothing_left().await;
}

/// KILL with a 1 s grace: a task that traps SIGTERM ends on it (its trap ran, status 0)
/// and is TASK_KILLED.
async fn kill_lets_a_trapping_task_end_on_sigterm(s: Subject) {
    let script = "trap 'echo got-sigterm; exit 0' TERM; echo ready > \"$MESOS_SANDBOX/ready\"; \
                  while :; do sleep 0.1; done";
    let mut run = s.launch(s.task(s.shell(script))).await;
    run.wait_ready().await;
    run.push(&kill_event(1_000_000_000));
    assert_eq!(run.exit().await, 0, "{}", run.log());
    assert_eq!(run.states(), KILLED_AFTER_KILLING, "{}", run.log());
    let message = run.last().message;
    assert_eq!(message.as_deref(), Some("Command exited with status 0"));
    run.file_containing("stdout", "got-sigterm").await;
    s.assert_nothing_left().await;
}

/// KILL with a 1 s grace: a task that ignores SIGTERM gets SIGKILL after the grace and is
/// TASK_KILLED all the same.
async fn kill_escalates_to_sigkill_for_a_task_ignoring_sigterm(s: Subject) {
    let script = "trap '' TERM; echo ready > \"$MESOS_SANDBOX/ready\"; \
                  while :; do sleep 0.1; done";
    let mut run = s.launch(s.task(s.shell(script))).await;
    run.wait_ready().await;
    run.push(&kill_event(1_000_000_000));
    assert_eq!(run.exit().await, 0, "{}", run.log());
    assert_eq!(run.states(), KILLED_AFTER_KILLING, "{}", run.log());
    let message = run.last().message;
    let expected = "Command terminated with signal Killed";
    assert_eq!(message.as_deref(), Some(expected), "{}", run.log());
    s.assert_nothing_left().await;
}

/// The task sees MESOS_TASK_ID and its command's variables, and what it writes under
/// $MESOS_SANDBOX appears in the host sandbox.
async fn environment_and_sandbox_reach_the_task(s: Subject) {
    let script = "echo \"task=$MESOS_TASK_ID var=$CONFORMANCE_VAR\" > \"$MESOS_SANDBOX/env.txt\"";
    let mut command = s.shell(script);
    command["environment"] =
        json!({"variables": [{"name": "CONFORMANCE_VAR", "value": "from-command-info"}]});
    let mut run = s.launch(s.task(command)).await;
    assert_eq!(run.exit().await, 0, "{}", run.log());
    assert_eq!(run.states(), STARTING_RUNNING_FINISHED, "{}", run.log());
    let written = run.sandbox_file("env.txt");
    let expected = format!("task={TASK} var=from-command-info\n");
    assert_eq!(written, expected, "{}", run.log());
    s.assert_nothing_left().await;
}

/// A task that cannot start (a missing program; an image that cannot be pulled) is
/// TASK_FAILED with a reason and a message naming what is missing; the executor exits.
async fn launch_failure_fails_the_task_and_the_executor_exits(s: Subject) {
    let (task, missing) = match s.backend {
        Backend::Process => {
            let command = json!({"shell": false, "value": "/nonexistent/program"});
            (s.task(command), "/nonexistent/program")
        }
        Backend::Docker => (
            s.task_in(s.shell("true"), UNPULLABLE_IMAGE),
            UNPULLABLE_IMAGE,
        ),
    };
    let mut run = s.launch(task).await;
    assert_eq!(run.exit().await, 0, "{}", run.log());
    assert_eq!(
        run.states(),
        ["TASK_STARTING", "TASK_FAILED"],
        "{}",
        run.log()
    );
    let last = run.last();
    // The wording and reason are the runner's own: "Failed to launch command: …" with
    // REASON_COMMAND_EXECUTOR_FAILED for a process, "Failed to launch container: Failed
    // to pull image …" with REASON_CONTAINER_LAUNCH_FAILED (as Mesos) for Docker.
    let (prefix, reason) = match s.backend {
        Backend::Process => ("Failed to launch command: ", Reason::CommandExecutorFailed),
        Backend::Docker => (
            "Failed to launch container: ",
            Reason::ContainerLaunchFailed,
        ),
    };
    let message = last.message.clone().unwrap_or_default();
    assert!(
        message.starts_with(prefix) && message.contains(missing),
        "{message}"
    );
    assert_eq!(last.reason, Some(reason), "{}", run.log());
    s.assert_nothing_left().await;
}

/// SHUTDOWN kills a running task (and what it forked): TASK_KILLED, the executor exits
/// 0, and nothing of the task keeps running.
async fn shutdown_kills_the_task_and_leaves_nothing(s: Subject) {
    let script = "(while :; do sleep 0.1; done) & echo ready > \"$MESOS_SANDBOX/ready\"; \
                  while :; do sleep 0.1; done";
    let mut run = s.launch(s.task(s.shell(script))).await;
    run.wait_ready().await;
    assert!(
        marked_pids(&s.marker).len() >= 2,
        "the task and its child run"
    );
    run.push(&json!({"type": "SHUTDOWN"}));
    assert_eq!(run.exit().await, 0, "{}", run.log());
    assert_eq!(run.states(), KILLED_AFTER_KILLING, "{}", run.log());
    // How it died differs for a reason: the process group gets SIGTERM, which kills the
    // shell; a container's shell is pid 1 of its namespace and has no TERM handler, so
    // the kernel drops SIGTERM and it dies of the SIGKILL after the shutdown grace.
    let expected = match s.backend {
        Backend::Process => "Command terminated with signal Terminated",
        Backend::Docker => "Command terminated with signal Killed",
    };
    let message = run.last().message;
    assert_eq!(message.as_deref(), Some(expected), "{}", run.log());
    s.assert_nothing_left().await;
}

/// One `#[tokio::test]` per (backend, behaviour), in a module per backend; a `None`
/// subject was skipped.
macro_rules! suite {
    ($($backend:ident),+: $behaviours:tt) => {
        $(suite!(@backend $backend $behaviours);)+
    };
    (@backend $backend:ident [$($behaviour:ident),+ $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    if let Some(s) = super::Subject::$backend(stringify!($behaviour)) {
                        super::$behaviour(s).await;
                    }
                }
            )+
        }
    };
}

suite!(process, docker: [
    exit_zero_finishes_with_output_in_the_sandbox,
    exit_three_fails_with_the_status,
    killed_by_a_signal_fails_naming_it,
    kill_lets_a_trapping_task_end_on_sigterm,
    kill_escalates_to_sigkill_for_a_task_ignoring_sigterm,
    environment_and_sandbox_reach_the_task,
    launch_failure_fails_the_task_and_the_executor_exits,
    shutdown_kills_the_task_and_leaves_nothing,
]);
