//! Script tests of the executor core: each step is (time in ms, input, expected effects
//! written as short strings), driven through one `check` helper. Health checks and checks
//! have their own scripts in `tests/probes.rs`.

mod docker;
mod groups;
mod probes;

use super::*;
use serde_json::json;
use strata_api::executor::{Acknowledged, ErrorEvent, Kill, Launch, LaunchGroup, Subscribed};
use strata_api::DurationInfo;

type Step = (u64, Input, Vec<&'static str>);

fn config(checkpoint: bool) -> CoreConfig {
    CoreConfig {
        executor_id: ExecutorId::new("ex"),
        checkpoint,
        shutdown_grace: Duration::from_secs(5),
        recovery_timeout: Duration::from_secs(10),
        backoff_max: Duration::from_millis(300),
        docker: DockerSettings::default(),
    }
}

/// A core whose n-th update (from 1) has uuid `[n; 16]`.
fn new_core(cfg: CoreConfig) -> Core {
    let mut n = 0u8;
    Core::new(
        cfg,
        Box::new(move || {
            n += 1;
            [n; 16]
        }),
    )
}

fn summary(effect: &Effect) -> String {
    match effect {
        Effect::Subscribe(s) => {
            let tasks: Vec<_> = s
                .unacknowledged_tasks
                .iter()
                .map(|t| t.task_id.to_string())
                .collect();
            let updates: Vec<_> = s
                .unacknowledged_updates
                .iter()
                .map(|u| format!("{}:{}", u.status.task_id, u.status.state))
                .collect();
            format!(
                "SUBSCRIBE tasks=[{}] updates=[{}]",
                tasks.join(","),
                updates.join(",")
            )
        }
        Effect::Update(s) => {
            let reason = s.reason.map(|r| format!(" {r}")).unwrap_or_default();
            let message = s
                .message
                .as_ref()
                .map(|m| format!(" '{m}'"))
                .unwrap_or_default();
            let extras = probes::extras(s);
            format!("UPDATE {} {}{reason}{message}{extras}", s.task_id, s.state)
        }
        Effect::Probe(r) => format!("PROBE {} {:?} #{}", r.task_id, r.kind, r.seq),
        Effect::CancelProbe { task_id, kind, seq } => format!("CANCEL {task_id} {kind:?} #{seq}"),
        Effect::Spawn(r) => {
            let sandbox = if r.own_sandbox { " own-sandbox" } else { "" };
            format!(
                "SPAWN {} user={}{sandbox}",
                r.task.task_id,
                r.user.as_deref().unwrap_or("-")
            )
        }
        Effect::Signal { task_id, signal } => {
            format!("{} {task_id}", format!("{signal:?}").to_uppercase())
        }
        Effect::Exit { code, message } => format!("EXIT {code} '{message}'"),
    }
}

fn run(core: &mut Core, steps: Vec<Step>) {
    for (i, (ms, input, expected)) in steps.into_iter().enumerate() {
        let now = Now {
            mono: Duration::from_millis(ms),
            wall_secs: 1_700_000_000.0 + ms as f64 / 1e3,
        };
        let label = format!("step {i} at {ms}ms: {input:?}");
        let effects = core.step(now, input);
        for e in &effects {
            if let Effect::Update(s) = e {
                assert_eq!(s.source, Some(Source::Executor));
                assert_eq!(s.executor_id, Some(ExecutorId::new("ex")));
                assert!(
                    s.timestamp.is_some_and(|t| t <= now.wall_secs),
                    "updates carry the time they were made"
                );
                assert!(s.uuid.as_deref().and_then(decode_uuid).is_some());
            }
        }
        let got: Vec<String> = effects.iter().map(summary).collect();
        assert_eq!(got, expected, "{label}");
    }
}

fn check(checkpoint: bool, steps: Vec<Step>) {
    run(&mut new_core(config(checkpoint)), steps);
}

fn task(id: &str) -> TaskInfo {
    serde_json::from_value(json!({"name": id, "task_id": {"value": id}, "agent_id": {"value": "a"}, "command": {"value": "true"}}))
        .expect("valid task json")
}

fn subscribed(caps: &[&str]) -> Input {
    let caps: Vec<_> = caps.iter().map(|c| json!({"type": c})).collect();
    let s: Subscribed = serde_json::from_value(json!({
        "executor_info": {"executor_id": {"value": "ex"}},
        "framework_info": {"user": "fwuser", "name": "fw", "id": {"value": "fw"}, "capabilities": caps},
        "agent_info": {"hostname": "h"},
    }))
    .expect("valid subscribed json");
    event(Event::Subscribed(s))
}

fn event(e: Event) -> Input {
    Input::Event(Box::new(e))
}

fn launch(info: TaskInfo) -> Input {
    event(Event::Launch(Launch { task: info }))
}

fn launch_group(ids: &[&str]) -> Input {
    event(Event::LaunchGroup(LaunchGroup {
        task_group: TaskGroupInfo {
            tasks: ids.iter().map(|id| task(id)).collect(),
        },
    }))
}

fn kill(id: &str, grace_ms: Option<i64>) -> Input {
    let kill_policy = grace_ms.map(|ms| KillPolicy {
        grace_period: Some(DurationInfo::from_millis(ms)),
    });
    event(Event::Kill(Kill {
        task_id: TaskId::new(id),
        kill_policy,
    }))
}

fn ack(id: &str, n: u8) -> Input {
    event(Event::Acknowledged(Acknowledged {
        task_id: TaskId::new(id),
        uuid: encode_uuid(&[n; 16]),
    }))
}

fn spawned(id: &str) -> Input {
    Input::Spawned {
        task_id: TaskId::new(id),
        result: Ok(Started::default()),
    }
}

fn exited(id: &str, code: i32) -> Input {
    Input::Exited {
        task_id: TaskId::new(id),
        termination: Termination::Exited(code),
        oom: None,
    }
}

fn signaled(id: &str, signal: i32) -> Input {
    Input::Exited {
        task_id: TaskId::new(id),
        termination: Termination::Signaled {
            signal,
            core_dumped: false,
        },
        oom: None,
    }
}

fn started(id: &str) -> Vec<Step> {
    vec![
        (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
        (0, subscribed(&[TASK_KILLING_STATE]), vec![]),
        (
            0,
            launch(task(id)),
            vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"],
        ),
        (0, spawned(id), vec!["UPDATE t TASK_RUNNING"]),
        (0, ack(id, 1), vec![]),
        (0, ack(id, 2), vec![]),
    ]
}

fn with(mut base: Vec<Step>, more: Vec<Step>) -> Vec<Step> {
    base.extend(more);
    base
}

const DONE: &str = "EXIT 0 'All tasks ended and their terminal updates were acknowledged'";

#[test]
fn command_task_runs_to_finished_and_exits_after_the_ack() {
    check(
        false,
        with(
            started("t"),
            vec![
                (
                    5,
                    exited("t", 0),
                    vec!["UPDATE t TASK_FINISHED 'Command exited with status 0'"],
                ),
                (6, ack("t", 9), vec![]),
                (7, ack("t", 3), vec![DONE]),
                (8, Input::Tick, vec![]),
            ],
        ),
    );
}

#[test]
fn exit_codes_and_signals_give_the_mesos_terminal_update() {
    let cases: Vec<(Input, &str)> = vec![
        (
            exited("t", 3),
            "UPDATE t TASK_FAILED 'Command exited with status 3'",
        ),
        (
            signaled("t", 9),
            "UPDATE t TASK_FAILED 'Command terminated with signal Killed'",
        ),
        (
            signaled("t", 15),
            "UPDATE t TASK_FAILED 'Command terminated with signal Terminated'",
        ),
    ];
    for (input, expected) in cases {
        check(
            false,
            with(
                started("t"),
                vec![(1, input, vec![expected]), (2, ack("t", 3), vec![DONE])],
            ),
        );
    }
}

#[test]
fn terminal_state_rule() {
    let ok = Termination::Exited(0);
    let sig = Termination::Signaled {
        signal: 15,
        core_dumped: false,
    };
    let cases = [
        (None, ok, TaskState::Finished, None),
        (None, Termination::Exited(1), TaskState::Failed, None),
        (None, sig, TaskState::Failed, None),
        (Some(KillCause::Framework), sig, TaskState::Killed, None),
        (Some(KillCause::Framework), ok, TaskState::Killed, None),
        (Some(KillCause::Shutdown), sig, TaskState::Killed, None),
        (Some(KillCause::Group), ok, TaskState::Killed, None),
        (
            Some(KillCause::MaxCompletion),
            sig,
            TaskState::Failed,
            Some(Reason::MaxCompletionTimeReached),
        ),
    ];
    for (cause, termination, state, reason) in cases {
        assert_eq!(
            terminal_state(cause, termination),
            (state, reason),
            "{cause:?} {termination:?}"
        );
    }
}

#[test]
fn grace_period_selection() {
    let policy = |ms: i64| KillPolicy {
        grace_period: Some(DurationInfo::from_millis(ms)),
    };
    let empty = KillPolicy { grace_period: None };
    let ms = Duration::from_millis;
    assert_eq!(kill_grace(None, None), DEFAULT_KILL_GRACE);
    assert_eq!(kill_grace(Some(&empty), None), ms(3_000));
    assert_eq!(kill_grace(None, Some(&policy(7_000))), ms(7_000));
    assert_eq!(
        kill_grace(Some(&policy(1_000)), Some(&policy(7_000))),
        ms(1_000)
    );
    assert_eq!(kill_grace(Some(&empty), Some(&policy(7_000))), ms(7_000));
    assert_eq!(kill_grace(Some(&policy(-5)), None), Duration::ZERO);
}

#[test]
fn kill_with_task_killing_capability_sends_killing_then_escalates() {
    check(
        false,
        with(
            started("t"),
            vec![
                (
                    1_000,
                    kill("t", None),
                    vec!["UPDATE t TASK_KILLING", "TERM t"],
                ),
                (3_999, Input::Tick, vec![]),
                (4_000, Input::Tick, vec!["KILL t"]),
                (4_001, Input::Tick, vec![]),
                (
                    4_010,
                    signaled("t", 9),
                    vec!["UPDATE t TASK_KILLED 'Command terminated with signal Killed'"],
                ),
                (4_020, ack("t", 3), vec![]),
                (4_030, ack("t", 4), vec![DONE]),
            ],
        ),
    );
}

#[test]
fn kill_without_capability_skips_killing_and_task_exit_zero_is_still_killed() {
    let mut steps = started("t");
    steps[1] = (0, subscribed(&[]), vec![]);
    check(
        false,
        with(
            steps,
            vec![
                (10, kill("t", Some(500)), vec!["TERM t"]),
                (
                    20,
                    exited("t", 0),
                    vec!["UPDATE t TASK_KILLED 'Command exited with status 0'"],
                ),
                (30, kill("t", None), vec![]),
                (40, ack("t", 3), vec![DONE]),
            ],
        ),
    );
}

#[test]
fn repeated_kill_only_shortens_the_grace() {
    let mut core = new_core(config(false));
    run(&mut core, started("t"));
    let at = |ms| Some(Duration::from_millis(ms));
    run(
        &mut core,
        vec![(
            0,
            kill("t", Some(10_000)),
            vec!["UPDATE t TASK_KILLING", "TERM t"],
        )],
    );
    assert_eq!(core.next_deadline(), at(10_000));
    run(&mut core, vec![(1_000, kill("t", Some(20_000)), vec![])]);
    assert_eq!(core.next_deadline(), at(10_000));
    run(&mut core, vec![(1_000, kill("t", Some(1_000)), vec![])]);
    assert_eq!(core.next_deadline(), at(2_000));
    run(
        &mut core,
        vec![
            (1_500, kill("t", Some(0)), vec!["KILL t"]),
            (1_600, kill("t", Some(0)), vec![]),
        ],
    );
    assert_eq!(core.next_deadline(), None);
}

#[test]
fn second_launch_in_command_mode_fails() {
    check(
        false,
        with(
            started("t"),
            vec![
                (
                    1,
                    launch(task("u")),
                    vec![
                        r#"UPDATE u TASK_FAILED 'Attempted to run multiple tasks using a "command" executor'"#,
                    ],
                ),
                (2, ack("u", 3), vec![]),
                (
                    3,
                    launch_group(&["g"]),
                    vec![
                        r#"UPDATE g TASK_FAILED 'Attempted to launch a task group using a "command" executor'"#,
                    ],
                ),
                (
                    4,
                    exited("t", 0),
                    vec!["UPDATE t TASK_FINISHED 'Command exited with status 0'"],
                ),
                (5, ack("t", 5), vec![]),
                (6, ack("g", 4), vec![DONE]),
            ],
        ),
    );
}

#[test]
fn spawn_failure_is_task_failed() {
    check(
        false,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (0, subscribed(&[]), vec![]),
            (0, launch(task("t")), vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"]),
            (
                0,
                Input::Spawned { task_id: TaskId::new("t"), result: Err("No such file or directory".into()) },
                vec!["UPDATE t TASK_FAILED REASON_COMMAND_EXECUTOR_FAILED 'Failed to launch command: No such file or directory'"],
            ),
            (1, ack("t", 1), vec![]),
            (2, ack("t", 2), vec![DONE]),
        ],
    );
}

#[test]
fn command_user_overrides_framework_user() {
    let mut info = task("t");
    info.command.as_mut().expect("task has a command").user = Some("alice".into());
    check(
        false,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (0, subscribed(&[]), vec![]),
            (
                0,
                launch(info),
                vec!["UPDATE t TASK_STARTING", "SPAWN t user=alice"],
            ),
        ],
    );
}

#[test]
fn max_completion_time_kills_without_killing_state_and_fails() {
    let mut info = task("t");
    info.max_completion_time = Some(DurationInfo::from_millis(5_000));
    check(
        false,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (0, subscribed(&[TASK_KILLING_STATE]), vec![]),
            (0, launch(info), vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"]),
            (1_000, spawned("t"), vec!["UPDATE t TASK_RUNNING"]),
            (5_999, Input::Tick, vec![]),
            (6_000, Input::Tick, vec!["TERM t"]),
            (
                6_100,
                signaled("t", 15),
                vec!["UPDATE t TASK_FAILED REASON_MAX_COMPLETION_TIME_REACHED 'Command terminated with signal Terminated'"],
            ),
        ],
    );
}

#[test]
fn shutdown_kills_with_reduced_grace_and_exits_after_acks() {
    check(
        false,
        with(
            started("t"),
            vec![
                (
                    1_000,
                    event(Event::Shutdown),
                    vec!["UPDATE t TASK_KILLING", "TERM t"],
                ),
                (3_999, Input::Tick, vec![]),
                (4_000, Input::Tick, vec!["KILL t"]),
                (
                    4_100,
                    signaled("t", 9),
                    vec!["UPDATE t TASK_KILLED 'Command terminated with signal Killed'"],
                ),
                (4_200, ack("t", 3), vec![]),
                (
                    4_300,
                    ack("t", 4),
                    vec!["EXIT 0 'Shut down: all tasks killed and their updates acknowledged'"],
                ),
            ],
        ),
    );
}

#[test]
fn shutdown_without_tasks_exits_at_once_and_unacked_shutdown_times_out() {
    check(
        false,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (0, subscribed(&[]), vec![]),
            (
                1,
                event(Event::Shutdown),
                vec!["EXIT 0 'Shut down: all tasks killed and their updates acknowledged'"],
            ),
        ],
    );
    check(
        false,
        with(
            started("t"),
            vec![
                (
                    0,
                    event(Event::Shutdown),
                    vec!["UPDATE t TASK_KILLING", "TERM t"],
                ),
                (
                    10,
                    exited("t", 0),
                    vec!["UPDATE t TASK_KILLED 'Command exited with status 0'"],
                ),
                (
                    5_000,
                    Input::Tick,
                    vec![
                        "EXIT 1 'Shutdown grace period ended before all updates were acknowledged'",
                    ],
                ),
            ],
        ),
    );
}

#[test]
fn terminal_update_without_ack_exits_after_sixty_seconds() {
    check(
        false,
        with(
            started("t"),
            vec![
                (1_000, exited("t", 0), vec!["UPDATE t TASK_FINISHED 'Command exited with status 0'"]),
                (60_999, Input::Tick, vec![]),
                (61_000, Input::Tick, vec!["EXIT 1 'Did not receive ACK for the terminal status update from the agent'"]),
            ],
        ),
    );
}

#[test]
fn error_event_kills_and_exits() {
    let error = event(Event::Error(ErrorEvent {
        message: "bad".into(),
    }));
    check(
        false,
        with(
            started("t"),
            vec![(
                1,
                error,
                vec![
                    "KILL t",
                    "EXIT 1 'The agent sent ERROR: bad; killing all tasks and exiting'",
                ],
            )],
        ),
    );
}

#[test]
fn stream_loss_without_checkpoint_kills_and_exits() {
    let message = "EXIT 1 'Lost the connection to the agent (eof) and checkpointing is disabled; killing all tasks and exiting'";
    check(
        false,
        with(
            started("t"),
            vec![(1, Input::StreamLost("eof".into()), vec!["KILL t", message])],
        ),
    );
}

#[test]
fn stream_loss_with_checkpoint_resubscribes_with_unacked_state() {
    let refused = "EXIT 1 'The agent refused SUBSCRIBE with 404 (unknown executor); it does not know this executor. Killing all tasks and exiting'";
    let failed = |status| Input::SubscribeFailed {
        status,
        message: "unknown executor".into(),
    };
    let steps = vec![
        (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
        (0, subscribed(&[]), vec![]),
        (
            0,
            launch(task("t")),
            vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"],
        ),
        (0, spawned("t"), vec!["UPDATE t TASK_RUNNING"]),
        (1_000, Input::StreamLost("eof".into()), vec![]),
        (1_050, exited("t", 0), vec![]),
        (
            1_100,
            Input::Tick,
            vec!["SUBSCRIBE tasks=[t] updates=[t:TASK_STARTING,t:TASK_RUNNING,t:TASK_FINISHED]"],
        ),
        (1_200, failed(Some(503)), vec![]),
        (1_399, Input::Tick, vec![]),
        (
            1_400,
            Input::Tick,
            vec!["SUBSCRIBE tasks=[t] updates=[t:TASK_STARTING,t:TASK_RUNNING,t:TASK_FINISHED]"],
        ),
        (1_500, failed(Some(404)), vec![refused]),
    ];
    check(true, steps);
}

#[test]
fn updates_made_while_subscribing_are_sent_after_subscribed() {
    let steps = vec![
        (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
        (0, subscribed(&[]), vec![]),
        (
            0,
            launch(task("t")),
            vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"],
        ),
        (0, spawned("t"), vec!["UPDATE t TASK_RUNNING"]),
        (0, ack("t", 1), vec![]),
        (1_000, Input::StreamLost("eof".into()), vec![]),
        (
            1_100,
            Input::Tick,
            vec!["SUBSCRIBE tasks=[] updates=[t:TASK_RUNNING]"],
        ),
        (1_150, exited("t", 0), vec![]),
        (
            1_200,
            subscribed(&[]),
            vec!["UPDATE t TASK_FINISHED 'Command exited with status 0'"],
        ),
        (1_300, ack("t", 2), vec![]),
        (1_300, ack("t", 3), vec![DONE]),
    ];
    check(true, steps);
}

#[test]
fn recovery_gives_up_after_the_timeout() {
    let steps = vec![
        (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
        (0, subscribed(&[]), vec![]),
        (0, launch(task("t")), vec!["UPDATE t TASK_STARTING", "SPAWN t user=fwuser"]),
        (0, spawned("t"), vec!["UPDATE t TASK_RUNNING"]),
        (1_000, Input::StreamLost("eof".into()), vec![]),
        (1_100, Input::Tick, vec!["SUBSCRIBE tasks=[t] updates=[t:TASK_STARTING,t:TASK_RUNNING]"]),
        (1_200, Input::SubscribeFailed { status: None, message: "connection refused".into() }, vec![]),
        (
            11_000,
            Input::Tick,
            vec!["KILL t", "EXIT 1 'The agent did not accept a subscription in time; killing all tasks and exiting'"],
        ),
    ];
    check(true, steps);
}

#[test]
fn first_subscription_retries_within_the_registration_window() {
    let mut core = new_core(config(false));
    run(
        &mut core,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (10, Input::StreamLost("connection refused".into()), vec![]),
            (110, Input::Tick, vec!["SUBSCRIBE tasks=[] updates=[]"]),
        ],
    );
    assert_eq!(core.next_deadline(), Some(REGISTRATION_WINDOW));
}
