//! Script tests of health checks and checks in the core: timing from the task's start,
//! the grace period, an update for every failure and on every change to healthy, the kill
//! after `consecutive_failures`, timeouts, and checks that report changes and never kill.

use super::*;

const HEALTH: &str = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED";
const CHECK: &str = "REASON_TASK_CHECK_STATUS_UPDATED";

/// What an update says about health and checks: ` healthy=false check=COMMAND:1`.
pub(super) fn extras(s: &TaskStatus) -> String {
    let healthy = s.healthy.map(|h| format!(" healthy={h}"));
    let check = s
        .check_status
        .as_ref()
        .map(|c| format!(" check={}", check_brief(c)));
    [healthy, check].into_iter().flatten().collect()
}

/// `COMMAND:1`, `HTTP:200`, `TCP:true`, or `TYPE:-` for an empty result.
fn check_brief(c: &strata_api::CheckStatusInfo) -> String {
    let kind = c.kind.map(|k| k.as_str()).unwrap_or("?");
    let value = [
        c.command.and_then(|x| x.exit_code).map(|v| v.to_string()),
        c.http.and_then(|x| x.status_code).map(|v| v.to_string()),
        c.tcp.and_then(|x| x.succeeded).map(|v| v.to_string()),
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or_else(|| "-".to_string());
    format!("{kind}:{value}")
}

/// Expected effect text built at run time (tests only; the leak is bounded).
fn st(text: String) -> &'static str {
    text.leak()
}

fn with_health(mut info: TaskInfo, health: serde_json::Value) -> TaskInfo {
    info.health_check = Some(serde_json::from_value(health).expect("valid health check"));
    info
}

fn with_check(mut info: TaskInfo, check: serde_json::Value) -> TaskInfo {
    info.check = Some(serde_json::from_value(check).expect("valid check"));
    info
}

/// A COMMAND health check with the given timings (seconds).
fn health(interval: f64, grace: f64, failures: u32, timeout: f64) -> serde_json::Value {
    json!({"type": "COMMAND", "command": {"value": "exit 1"}, "delay_seconds": 0,
        "interval_seconds": interval, "grace_period_seconds": grace,
        "consecutive_failures": failures, "timeout_seconds": timeout})
}

fn done(id: &str, kind: ProbeKind, seq: u64, outcome: ProbeOutcome) -> Input {
    Input::ProbeDone {
        task_id: TaskId::new(id),
        kind,
        seq,
        outcome,
    }
}

fn health_done(seq: u64, code: i32) -> Input {
    done("t", ProbeKind::Health, seq, ProbeOutcome::Exited(code))
}

fn check_done(seq: u64, code: i32) -> Input {
    done("t", ProbeKind::Check, seq, ProbeOutcome::Exited(code))
}

/// Subscribes (with TASK_KILLING_STATE), launches `info` as task `t` at 0 ms and acks
/// STARTING and RUNNING; `suffix` is what those two updates show of the check.
fn launched(info: TaskInfo, suffix: &'static str) -> Vec<Step> {
    let starting = st(format!("UPDATE t TASK_STARTING{suffix}"));
    let running = st(format!("UPDATE t TASK_RUNNING{suffix}"));
    vec![
        (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
        (0, subscribed(&[TASK_KILLING_STATE]), vec![]),
        (0, launch(info), vec![starting, "SPAWN t user=fwuser"]),
        (0, spawned("t"), vec![running]),
        (0, ack("t", 1), vec![]),
        (0, ack("t", 2), vec![]),
    ]
}

#[test]
fn every_failure_is_reported_and_the_second_kills_the_task() {
    let info = with_health(task("t"), health(0.2, 0.0, 2, 1.0));
    let unhealthy = "UPDATE t TASK_RUNNING REASON_TASK_HEALTH_CHECK_STATUS_UPDATED healthy=false";
    check(
        false,
        with(
            launched(info, ""),
            vec![
                (0, Input::Tick, vec!["PROBE t Health #1"]),
                (50, health_done(1, 1), vec![unhealthy]),
                (249, Input::Tick, vec![]),
                (250, Input::Tick, vec!["PROBE t Health #2"]),
                (
                    300,
                    health_done(2, 1),
                    vec![unhealthy, "UPDATE t TASK_KILLING", "TERM t"],
                ),
                (3_299, Input::Tick, vec![]),
                (3_300, Input::Tick, vec!["KILL t"]),
                (
                    3_310,
                    signaled("t", 9),
                    vec!["UPDATE t TASK_KILLED 'Command terminated with signal Killed' healthy=false"],
                ),
                (3_320, ack("t", 3), vec![]),
                (3_320, ack("t", 4), vec![]),
                (3_320, ack("t", 5), vec![]),
                (3_330, ack("t", 6), vec![DONE]),
            ],
        ),
    );
}

#[test]
fn grace_period_hides_failures_until_the_first_success() {
    let info = with_health(task("t"), health(0.1, 1.0, 3, 0.0));
    let healthy = "UPDATE t TASK_RUNNING REASON_TASK_HEALTH_CHECK_STATUS_UPDATED healthy=true";
    let unhealthy = "UPDATE t TASK_RUNNING REASON_TASK_HEALTH_CHECK_STATUS_UPDATED healthy=false";
    check(
        false,
        with(
            launched(info, ""),
            vec![
                (0, Input::Tick, vec!["PROBE t Health #1"]),
                (10, health_done(1, 1), vec![]),
                (110, Input::Tick, vec!["PROBE t Health #2"]),
                (1_000, health_done(2, 7), vec![]),
                (1_100, Input::Tick, vec!["PROBE t Health #3"]),
                (1_100, health_done(3, 0), vec![healthy]),
                (1_200, Input::Tick, vec!["PROBE t Health #4"]),
                (1_200, health_done(4, 0), vec![]),
                (1_300, Input::Tick, vec!["PROBE t Health #5"]),
                (1_300, health_done(5, 1), vec![unhealthy]),
                (1_400, Input::Tick, vec!["PROBE t Health #6"]),
                (1_400, health_done(6, 0), vec![healthy]),
            ],
        ),
    );
}

#[test]
fn timed_out_probe_is_cancelled_and_counts_as_a_failure() {
    let info = with_health(task("t"), health(10.0, 0.0, 1, 0.5));
    let mut core = new_core(config(false));
    run(&mut core, launched(info, ""));
    assert_eq!(core.next_deadline(), Some(Duration::ZERO));
    run(&mut core, vec![(0, Input::Tick, vec!["PROBE t Health #1"])]);
    assert_eq!(core.next_deadline(), Some(Duration::from_millis(500)));
    run(
        &mut core,
        vec![
            (
                500,
                Input::Tick,
                vec![
                    "CANCEL t Health #1",
                    "UPDATE t TASK_RUNNING REASON_TASK_HEALTH_CHECK_STATUS_UPDATED healthy=false",
                    "UPDATE t TASK_KILLING",
                    "TERM t",
                ],
            ),
            (600, health_done(1, 0), vec![]),
        ],
    );
    assert_eq!(core.next_deadline(), Some(Duration::from_millis(3_500)));
}

#[test]
fn a_kill_stops_probing_and_late_results_are_ignored() {
    let info = with_health(task("t"), health(0.1, 0.0, 3, 0.0));
    check(
        false,
        with(
            launched(info, ""),
            vec![
                (0, Input::Tick, vec!["PROBE t Health #1"]),
                (
                    10,
                    kill("t", Some(1_000)),
                    vec!["CANCEL t Health #1", "UPDATE t TASK_KILLING", "TERM t"],
                ),
                (20, health_done(1, 1), vec![]),
                (1_010, Input::Tick, vec!["KILL t"]),
                (
                    1_020,
                    signaled("t", 9),
                    vec!["UPDATE t TASK_KILLED 'Command terminated with signal Killed'"],
                ),
            ],
        ),
    );
}

#[test]
fn checks_report_only_changes_and_never_kill() {
    let check_info = json!({"type": "COMMAND", "command": {"command": {"value": "test -f ready"}},
        "delay_seconds": 0.5, "interval_seconds": 0.1, "timeout_seconds": 1});
    let info = with_check(task("t"), check_info);
    let update = |c: &str| -> &'static str {
        st(format!("UPDATE t TASK_RUNNING {CHECK} check=COMMAND:{c}"))
    };
    let mut steps = launched(info, " check=COMMAND:-");
    let mut at = 500;
    let mut seq = 0;
    // Results 1, 1, 1, 1, timeout, 0, 0: updates for 1, the empty result and 0 only.
    for (code, expected) in [(1, Some("1")), (1, None), (1, None), (1, None)] {
        seq += 1;
        steps.push((at, Input::Tick, vec![st(format!("PROBE t Check #{seq}"))]));
        steps.push((
            at,
            check_done(seq, code),
            expected.map(update).into_iter().collect(),
        ));
        at += 100;
    }
    seq += 1;
    steps.push((at, Input::Tick, vec![st(format!("PROBE t Check #{seq}"))]));
    steps.push((
        at + 1_000,
        Input::Tick,
        vec![st(format!("CANCEL t Check #{seq}")), update("-")],
    ));
    at += 1_100;
    for (code, expected) in [(0, Some("0")), (0, None)] {
        seq += 1;
        steps.push((at, Input::Tick, vec![st(format!("PROBE t Check #{seq}"))]));
        steps.push((
            at,
            check_done(seq, code),
            expected.map(update).into_iter().collect(),
        ));
        at += 100;
    }
    steps.push((
        at,
        exited("t", 0),
        vec!["UPDATE t TASK_FINISHED 'Command exited with status 0' check=COMMAND:-"],
    ));
    check(false, steps);
}

#[test]
fn health_and_check_updates_keep_each_other() {
    let info = with_check(
        with_health(task("t"), health(1.0, 0.0, 3, 0.0)),
        json!({"type": "TCP", "tcp": {"port": 80}, "delay_seconds": 0, "interval_seconds": 1}),
    );
    let tcp = |seq, ok| done("t", ProbeKind::Check, seq, ProbeOutcome::Connected(ok));
    check(
        false,
        with(
            launched(info, " check=TCP:-"),
            vec![
                (
                    0,
                    Input::Tick,
                    vec!["PROBE t Health #1", "PROBE t Check #1"],
                ),
                (
                    10,
                    health_done(1, 0),
                    vec![st(format!(
                        "UPDATE t TASK_RUNNING {HEALTH} healthy=true check=TCP:-"
                    ))],
                ),
                (
                    20,
                    tcp(1, false),
                    vec![st(format!(
                        "UPDATE t TASK_RUNNING {CHECK} healthy=true check=TCP:false"
                    ))],
                ),
                (1_010, Input::Tick, vec!["PROBE t Health #2"]),
                (
                    1_010,
                    health_done(2, 1),
                    vec![st(format!(
                        "UPDATE t TASK_RUNNING {HEALTH} healthy=false check=TCP:false"
                    ))],
                ),
                (1_020, Input::Tick, vec!["PROBE t Check #2"]),
                (
                    1_020,
                    tcp(2, true),
                    vec![st(format!(
                        "UPDATE t TASK_RUNNING {CHECK} healthy=false check=TCP:true"
                    ))],
                ),
            ],
        ),
    );
}

#[test]
fn a_health_kill_in_a_group_marks_the_group_unhealthy() {
    let mut a = with_health(task("a"), health(1.0, 0.0, 1, 0.0));
    a.kill_policy = Some(KillPolicy {
        grace_period: Some(DurationInfo::from_millis(0)),
    });
    let group = event(Event::LaunchGroup(LaunchGroup {
        task_group: TaskGroupInfo {
            tasks: vec![a, task("b")],
        },
    }));
    let health_fail = done("a", ProbeKind::Health, 1, ProbeOutcome::Exited(1));
    check(
        false,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (0, subscribed(&[]), vec![]),
            (
                0,
                group,
                vec![
                    "UPDATE a TASK_STARTING",
                    "UPDATE b TASK_STARTING",
                    "SPAWN a user=fwuser own-sandbox",
                    "SPAWN b user=fwuser own-sandbox",
                ],
            ),
            (0, spawned("a"), vec!["UPDATE a TASK_RUNNING"]),
            (0, spawned("b"), vec!["UPDATE b TASK_RUNNING"]),
            (0, Input::Tick, vec!["PROBE a Health #1"]),
            (
                10,
                health_fail,
                vec![
                    "UPDATE a TASK_RUNNING REASON_TASK_HEALTH_CHECK_STATUS_UPDATED healthy=false",
                    "TERM a",
                    "KILL a",
                ],
            ),
            (
                20,
                signaled("a", 9),
                vec![
                    "UPDATE a TASK_KILLED 'Command terminated with signal Killed' healthy=false",
                    "TERM b",
                ],
            ),
            (
                30,
                signaled("b", 15),
                vec!["UPDATE b TASK_KILLED 'Command terminated with signal Terminated' healthy=false"],
            ),
        ],
    );
}

#[test]
fn an_invalid_health_check_is_skipped_and_a_pending_kill_starts_no_probes() {
    let invalid = with_health(
        task("t"),
        json!({"type": "HTTP", "http": {"port": 1, "path": "x"}}),
    );
    let mut core = new_core(config(false));
    run(&mut core, launched(invalid, ""));
    assert_eq!(core.next_deadline(), None, "no prober, nothing to wait for");

    let valid = with_health(task("t"), health(0.1, 0.0, 1, 0.0));
    let mut core = new_core(config(false));
    run(
        &mut core,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (0, subscribed(&[]), vec![]),
            (
                0,
                launch(valid),
                vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"],
            ),
            (0, kill("t", Some(0)), vec![]),
            (
                0,
                spawned("t"),
                vec!["UPDATE t TASK_RUNNING", "TERM t", "KILL t"],
            ),
            (0, Input::Tick, vec![]),
        ],
    );
    assert_eq!(core.next_deadline(), None);
}
