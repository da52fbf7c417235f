//! Real-process tests of health check and check probes: commands in the task's context
//! (exit codes, environment, working directory, killing a timed-out probe's whole group),
//! HTTP GETs against a local server (status codes, redirects, no answer) and TCP connects,
//! and the probe runner that reports every outcome on its channel.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use strata_api::{CommandInfo, EnvVar, Environment, TaskId};
use strata_executor::core::{Probe, ProbeKind, ProbeOutcome, ProbeRequest};
use strata_executor::probe::{self, CommandProbe, ProbeContext, ProbeDone, ProbeRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Deadline for anything a test waits for.
const WAIT: Duration = Duration::from_secs(20);

fn context(cwd: &Path) -> ProbeContext {
    ProbeContext {
        cwd: cwd.to_path_buf(),
        env: vec![
            ("MESOS_TASK_ID".into(), "t".into()),
            ("FROM_TASK".into(), "task".into()),
        ],
        ids: None,
    }
}

async fn run_command(command: CommandInfo, cwd: &Path) -> ProbeOutcome {
    let probe = CommandProbe::spawn(&command, &context(cwd)).unwrap();
    tokio::time::timeout(WAIT, probe.wait()).await.unwrap()
}

#[tokio::test]
async fn command_probe_reports_exit_codes_in_the_task_context() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("ready"), "").unwrap();
    let mut own_env = CommandInfo::shell(
        r#"test -f ready && test "$MESOS_TASK_ID" = t && test "$FROM_TASK" = probe"#,
    );
    own_env.environment = Some(Environment {
        variables: vec![EnvVar {
            name: "FROM_TASK".into(),
            kind: None,
            value: Some("probe".into()),
            secret: None,
        }],
    });
    let argv: CommandInfo = serde_json::from_value(
        serde_json::json!({"shell": false, "value": "/bin/sh", "arguments": ["sh", "-c", "exit 4"]}),
    )
    .unwrap();
    let cases = [
        (CommandInfo::shell("exit 0"), ProbeOutcome::Exited(0)),
        (CommandInfo::shell("exit 3"), ProbeOutcome::Exited(3)),
        (
            CommandInfo::shell("test -f missing"),
            ProbeOutcome::Exited(1),
        ),
        (own_env, ProbeOutcome::Exited(0)),
        (argv, ProbeOutcome::Exited(4)),
        (
            CommandInfo::shell("kill -TERM $$"),
            ProbeOutcome::Error("Command terminated with signal Terminated".into()),
        ),
    ];
    for (command, expected) in cases {
        let value = command.value.clone();
        assert_eq!(
            run_command(command, tmp.path()).await,
            expected,
            "{value:?}"
        );
    }
}

/// True once `pid` no longer runs (gone, or a zombie).
fn is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn read_when_ready(path: &PathBuf) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text.trim().to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn killing_a_command_probe_ends_its_whole_group() {
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("grandchild");
    let script = format!("sleep 600 & echo $! > {}; wait", pidfile.display());
    let probe = CommandProbe::spawn(&CommandInfo::shell(script), &context(tmp.path())).unwrap();
    let grandchild = read_when_ready(&pidfile).await;
    probe::kill_command(probe.pgid()).unwrap();
    let outcome = tokio::time::timeout(WAIT, probe.wait()).await.unwrap();
    assert_eq!(
        outcome,
        ProbeOutcome::Error("Command terminated with signal Killed".into())
    );
    let deadline = Instant::now() + WAIT;
    while !is_dead(&grandchild) {
        assert!(
            Instant::now() < deadline,
            "grandchild {grandchild} survived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A tiny HTTP server: `/status/N` answers N, `/moved` redirects to `/status/200`.
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                let head = match path.strip_prefix("/status/") {
                    Some(code) => format!("HTTP/1.1 {code} X\r\n"),
                    None if path == "/moved" => {
                        "HTTP/1.1 302 Found\r\nLocation: /status/200\r\n".to_string()
                    }
                    None => "HTTP/1.1 404 Not Found\r\n".to_string(),
                };
                let response = format!("{head}Content-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

/// A loopback port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn http_probe_reports_the_final_status_code() {
    let addr = http_server().await;
    let client = probe::http_client().unwrap();
    let cases = [
        ("/status/200", 200),
        ("/status/204", 204),
        ("/status/503", 503),
        ("/moved", 200),
        ("/elsewhere", 404),
    ];
    for (path, code) in cases {
        let url = format!("http://{addr}{path}");
        assert_eq!(
            probe::http_get(&client, &url).await,
            ProbeOutcome::Status(code),
            "{url}"
        );
    }
    let url = format!("http://{}/", closed_port().await);
    let outcome = probe::http_get(&client, &url).await;
    assert!(
        matches!(&outcome, ProbeOutcome::Error(m) if m.starts_with("GET ")),
        "{outcome:?}"
    );
    assert!(!outcome.is_healthy());
}

#[tokio::test]
async fn tcp_probe_reports_whether_a_connection_was_accepted() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap();
    assert_eq!(
        probe::tcp_connect(open).await,
        ProbeOutcome::Connected(true)
    );
    drop(listener);
    assert_eq!(
        probe::tcp_connect(closed_port().await).await,
        ProbeOutcome::Connected(false)
    );
}

fn request(task: &str, kind: ProbeKind, seq: u64, probe: Probe) -> ProbeRequest {
    ProbeRequest {
        task_id: TaskId::new(task),
        kind,
        seq,
        probe,
    }
}

async fn next(rx: &mut mpsc::Receiver<ProbeDone>) -> ProbeDone {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn runner_reports_every_probe_and_kills_cancelled_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::channel(8);
    let mut runner = ProbeRunner::new(tx);
    runner.set_context(TaskId::new("t"), context(tmp.path()));
    let addr = http_server().await;

    let command = Probe::Command(CommandInfo::shell("exit 2"));
    runner.start(request("t", ProbeKind::Check, 1, command.clone()));
    let done = next(&mut rx).await;
    assert_eq!(
        (done.kind, done.seq, done.outcome),
        (ProbeKind::Check, 1, ProbeOutcome::Exited(2))
    );

    runner.start(request("unknown", ProbeKind::Health, 1, command));
    let done = next(&mut rx).await;
    assert_eq!(done.task_id, TaskId::new("unknown"));
    assert!(
        matches!(done.outcome, ProbeOutcome::Error(_)),
        "{:?}",
        done.outcome
    );

    let url = format!("http://{addr}/status/302");
    runner.start(request("t", ProbeKind::Health, 2, Probe::Http { url }));
    assert_eq!(next(&mut rx).await.outcome, ProbeOutcome::Status(302));
    runner.start(request("t", ProbeKind::Health, 3, Probe::Tcp { addr }));
    assert_eq!(next(&mut rx).await.outcome, ProbeOutcome::Connected(true));

    let sleeper = Probe::Command(CommandInfo::shell("exec sleep 600"));
    runner.start(request("t", ProbeKind::Health, 4, sleeper));
    runner.cancel(&TaskId::new("t"), ProbeKind::Health, 4);
    let done = next(&mut rx).await;
    assert_eq!(done.seq, 4);
    assert_eq!(
        done.outcome,
        ProbeOutcome::Error("Command terminated with signal Killed".into())
    );
}
