//! Task groups on the default executor: a failing or killed task takes its group down.

use super::*;

#[test]
fn group_failure_kills_the_rest_of_the_group_only() {
    check(
        false,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (0, subscribed(&[]), vec![]),
            (
                0,
                launch_group(&["a", "b", "c"]),
                vec![
                    "UPDATE a TASK_STARTING",
                    "UPDATE b TASK_STARTING",
                    "UPDATE c TASK_STARTING",
                    "SPAWN a user=fwuser own-sandbox",
                    "SPAWN b user=fwuser own-sandbox",
                    "SPAWN c user=fwuser own-sandbox",
                ],
            ),
            (0, spawned("a"), vec!["UPDATE a TASK_RUNNING"]),
            (0, spawned("b"), vec!["UPDATE b TASK_RUNNING"]),
            (0, spawned("c"), vec!["UPDATE c TASK_RUNNING"]),
            (
                0,
                launch_group(&["x"]),
                vec!["UPDATE x TASK_STARTING", "SPAWN x user=fwuser own-sandbox"],
            ),
            (0, spawned("x"), vec!["UPDATE x TASK_RUNNING"]),
            (
                10,
                exited("c", 0),
                vec!["UPDATE c TASK_FINISHED 'Command exited with status 0'"],
            ),
            (
                20,
                exited("a", 2),
                vec![
                    "UPDATE a TASK_FAILED 'Command exited with status 2'",
                    "TERM b",
                ],
            ),
            (3_020, Input::Tick, vec!["KILL b"]),
            (
                3_030,
                signaled("b", 9),
                vec!["UPDATE b TASK_KILLED 'Command terminated with signal Killed'"],
            ),
        ],
    );
}

#[test]
fn killed_group_task_takes_the_group_down() {
    check(
        false,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (0, subscribed(&[TASK_KILLING_STATE]), vec![]),
            (
                0,
                launch_group(&["a", "b"]),
                vec![
                    "UPDATE a TASK_STARTING",
                    "UPDATE b TASK_STARTING",
                    "SPAWN a user=fwuser own-sandbox",
                    "SPAWN b user=fwuser own-sandbox",
                ],
            ),
            (0, spawned("a"), vec!["UPDATE a TASK_RUNNING"]),
            (0, spawned("b"), vec!["UPDATE b TASK_RUNNING"]),
            (1, kill("a", None), vec!["UPDATE a TASK_KILLING", "TERM a"]),
            (
                2,
                signaled("a", 15),
                vec![
                    "UPDATE a TASK_KILLED 'Command terminated with signal Terminated'",
                    "UPDATE b TASK_KILLING",
                    "TERM b",
                ],
            ),
            (
                3,
                exited("b", 143),
                vec!["UPDATE b TASK_KILLED 'Command exited with status 143'"],
            ),
        ],
    );
}

#[test]
fn group_spawn_failure_kills_siblings_once_they_run() {
    check(
        false,
        vec![
            (0, Input::Start, vec!["SUBSCRIBE tasks=[] updates=[]"]),
            (0, subscribed(&[]), vec![]),
            (
                0,
                launch_group(&["a", "b"]),
                vec!["UPDATE a TASK_STARTING", "UPDATE b TASK_STARTING", "SPAWN a user=fwuser own-sandbox", "SPAWN b user=fwuser own-sandbox"],
            ),
            (
                0,
                Input::Spawned { task_id: TaskId::new("a"), result: Err("boom".into()) },
                vec!["UPDATE a TASK_FAILED REASON_COMMAND_EXECUTOR_FAILED 'Failed to launch command: boom'"],
            ),
            (0, spawned("b"), vec!["UPDATE b TASK_RUNNING", "TERM b"]),
        ],
    );
}
