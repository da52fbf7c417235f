//! Health checks and checks end to end: a real master and agent, tasks run by the built-in
//! command executor, and a framework on the Rust SDK that sees `healthy` and
//! `check_status` in its updates. A failing COMMAND health check gets its task killed
//! (TASK_KILLED, `healthy: false`), an HTTP health check of a real server reports
//! `healthy: true`, and a COMMAND check reports only its changes and never kills.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use std::path::Path;
use strata_api::scheduler::{Accept, Command, Event, Launch, Operation};
use strata_api::{
    CheckStatusInfo, CheckType, CommandInfo, Filters, Reason, TaskId, TaskInfo, TaskState,
    TaskStatus,
};
use strata_resources::{Ranges, Resource, Resources, WireFormat};
use strata_testkit::framework::{self, fits, Fw};
use strata_testkit::Cluster;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_strata"))
}

async fn start(name: &str) -> (Cluster, Fw) {
    let cluster = Cluster::start(bin(), 1).await;
    let info = framework::framework_info(name, 0.0, false, false);
    let fw = Fw::subscribe(&cluster.master.addr, info).await;
    (cluster, fw)
}

/// A port of `ports` that nothing on this host listens on.
fn free_port(ports: &Ranges) -> u16 {
    ports
        .iter()
        .flat_map(|r| r.begin..=r.end)
        .filter_map(|p| u16::try_from(p).ok())
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port in the offer")
}

/// Launches task `name` (0.1 cpus, 32 MB and, with `with_port`, one free port of the
/// offer) from an offer that fits; `build` fills in the command and checks.
async fn launch(fw: &mut Fw, name: &str, with_port: bool, build: impl FnOnce(&mut TaskInfo, u16)) {
    let mut need = vec![Resource::scalar("cpus", 0.1), Resource::scalar("mem", 32.0)];
    let scalars = Resources::from_vec(need.clone());
    let usable = |o: &&strata_api::Offer| {
        let ports = Resources::from_wire(&o.resources).map(|r| r.ports());
        fits(o, &scalars) && (!with_port || ports.is_ok_and(|p| !p.is_empty()))
    };
    let offer = loop {
        let found = fw.s.session.offers().find(usable).map(|o| o.id.clone());
        if let Some(id) = found {
            break fw.s.session.take_offer(&id).expect("outstanding");
        }
        let is_offers = |e: &Event| matches!(e, Event::Offers(_)).then_some(());
        fw.expect("an offer", is_offers).await;
    };
    let mut port = 0;
    if with_port {
        let offered = Resources::from_wire(&offer.resources).expect("valid offer");
        port = free_port(&offered.ports());
        need.push(Resource::ranges(
            "ports",
            Ranges::single(port.into(), port.into()),
        ));
    }
    let wire = Resources::from_vec(need).to_wire(WireFormat::PreRefinement);
    let mut info = TaskInfo::command(
        name,
        TaskId::new(name),
        offer.agent_id.clone(),
        wire,
        CommandInfo::shell("true"),
    );
    build(&mut info, port);
    let launch = Operation {
        kind: "LAUNCH".into(),
        id: None,
        launch: Some(Launch {
            task_infos: vec![info],
        }),
        launch_group: None,
        ..Default::default()
    };
    let accept = Accept {
        offer_ids: vec![offer.id],
        operations: vec![launch],
        filters: Some(Filters {
            refuse_seconds: Some(0.0),
        }),
    };
    fw.call(Command::Accept(accept)).await;
}

fn update_of<'a>(e: &'a Event, task: &str) -> Option<&'a TaskStatus> {
    match e {
        Event::Update(u) if u.status.task_id.as_str() == task => Some(&u.status),
        _ => None,
    }
}

/// Every update of `task` up to and including the first one that `last` accepts.
async fn updates_until(
    fw: &mut Fw,
    task: &str,
    what: &str,
    last: impl Fn(&TaskStatus) -> bool,
) -> Vec<TaskStatus> {
    let mut seen = Vec::new();
    fw.expect(what, |e| {
        let status = update_of(e, task)?;
        seen.push(status.clone());
        last(status).then_some(())
    })
    .await;
    seen
}

/// (state, reason, healthy) of each update.
fn summary(updates: &[TaskStatus]) -> Vec<(TaskState, Option<Reason>, Option<bool>)> {
    updates
        .iter()
        .map(|s| (s.state, s.reason, s.healthy))
        .collect()
}

#[tokio::test]
async fn failing_command_health_check_kills_the_task_as_unhealthy() {
    let (_cluster, mut fw) = start("it-health-command").await;
    let (cmd, marker) = framework::sleeper();
    launch(&mut fw, "sick", false, |t, _| {
        t.command = Some(CommandInfo::shell(cmd));
        let check = json!({"type": "COMMAND", "command": {"value": "exit 1"},
            "delay_seconds": 0, "interval_seconds": 0.2, "grace_period_seconds": 0,
            "consecutive_failures": 2});
        t.health_check = Some(serde_json::from_value(check).unwrap());
    })
    .await;
    let updates = updates_until(&mut fw, "sick", "sick to end", |s| s.state.is_terminal()).await;
    let health = Some(Reason::TaskHealthCheckStatusUpdated);
    // Mesos reports every failure; the second one in a row kills the task.
    assert_eq!(
        summary(&updates),
        [
            (TaskState::Starting, None, None),
            (TaskState::Running, None, None),
            (TaskState::Running, health, Some(false)),
            (TaskState::Running, health, Some(false)),
            (TaskState::Killed, None, Some(false)),
        ],
        "{updates:#?}"
    );
    framework::wait_gone(&marker).await;
}

/// `python3` for the HTTP server task; in CI it must exist, elsewhere the test is skipped.
fn have_python() -> bool {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = "python3 is not installed; it serves HTTP for the health check";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
    }
    ok
}

#[tokio::test]
async fn http_health_check_of_a_real_server_reports_healthy() {
    if !have_python() {
        return;
    }
    let (_cluster, mut fw) = start("it-health-http").await;
    launch(&mut fw, "web", true, |t, port| {
        let server = format!("exec python3 -m http.server {port} --bind 127.0.0.1");
        t.command = Some(CommandInfo::shell(server));
        // The grace period covers the server's start-up; its first answer ends it.
        let check = json!({"type": "HTTP", "http": {"port": port, "path": "/"},
            "delay_seconds": 0, "interval_seconds": 0.2, "grace_period_seconds": 60,
            "consecutive_failures": 3});
        t.health_check = Some(serde_json::from_value(check).unwrap());
    })
    .await;
    let healthy = |s: &TaskStatus| s.healthy == Some(true) || s.state.is_terminal();
    let updates = updates_until(&mut fw, "web", "web to become healthy", healthy).await;
    let last = updates.last().expect("an update");
    assert_eq!(
        (last.state, last.reason, last.healthy),
        (
            TaskState::Running,
            Some(Reason::TaskHealthCheckStatusUpdated),
            Some(true)
        ),
        "{updates:#?}"
    );
    assert!(
        updates.iter().all(|s| s.healthy != Some(false)),
        "failures in the grace period are not reported: {updates:#?}"
    );
    fw.kill("web").await;
    let killed = fw.state("web", TaskState::Killed).await;
    assert_eq!(
        killed.healthy, None,
        "killed by the framework, not for health"
    );
}

#[tokio::test]
async fn command_check_reports_each_change_and_never_kills() {
    let (cluster, mut fw) = start("it-check-command").await;
    let (sleep, marker) = framework::sleeper();
    let trigger = cluster.dir.path().join("make-ready");
    launch(&mut fw, "probed", false, |t, _| {
        // The task creates `ready` in its sandbox once the test says so.
        let script = format!(
            "while [ ! -e '{}' ]; do sleep 0.05; done; touch ready; {sleep}",
            trigger.display()
        );
        t.command = Some(CommandInfo::shell(script));
        let check = json!({"type": "COMMAND", "command": {"command": {"value": "test -f ready"}},
            "delay_seconds": 0, "interval_seconds": 0.2, "timeout_seconds": 0});
        t.check = Some(serde_json::from_value(check).unwrap());
    })
    .await;
    let exit_code = |s: &TaskStatus| s.check_status.as_ref().and_then(|c| c.command?.exit_code);
    let first = updates_until(&mut fw, "probed", "the first check result", |s| {
        exit_code(s).is_some() || s.state.is_terminal()
    })
    .await;
    let empty = Some(CheckStatusInfo::empty(CheckType::Command));
    let running = first.iter().find(|s| s.state == TaskState::Running);
    assert_eq!(running.map(|s| &s.check_status), Some(&empty), "{first:#?}");
    let result = first.last().expect("an update");
    assert_eq!(
        (result.state, result.reason, exit_code(result)),
        (
            TaskState::Running,
            Some(Reason::TaskCheckStatusUpdated),
            Some(1)
        ),
        "{first:#?}"
    );

    std::fs::write(&trigger, "").unwrap();
    let next = updates_until(&mut fw, "probed", "the check to pass", |s| {
        exit_code(s) != Some(1) || s.state != TaskState::Running
    })
    .await;
    // Repeated results of 1 were not reported again: the very next update is the 0.
    let got: Vec<_> = next
        .iter()
        .map(|s| (s.state, s.reason, exit_code(s)))
        .collect();
    assert_eq!(
        got,
        [(
            TaskState::Running,
            Some(Reason::TaskCheckStatusUpdated),
            Some(0)
        )]
    );

    fw.kill("probed").await;
    let killed = fw.state("probed", TaskState::Killed).await;
    assert_eq!(
        killed.check_status, empty,
        "terminal updates carry an empty result"
    );
    framework::wait_gone(&marker).await;
}
