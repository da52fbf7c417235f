//! Sandboxes over time, with real processes: logs of a task printing fast are rotated and
//! stay bounded; every ended task leaves a black-box record (exit code, signal, output's
//! tail) that outlives the sandbox's garbage collection and that `strata logs` shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use strata_api::TaskState;
use strata_testkit::framework::*;
use strata_testkit::{wait_until, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_strata");
const MB: u64 = 1 << 20;

/// The sandbox directory of executor `eid` on agent 0 (live or completed).
async fn sandbox(c: &Cluster, eid: &str) -> Option<PathBuf> {
    let state = c.agent_get(0, "/state").await.ok()?;
    let fws = state["frameworks"]
        .as_array()?
        .iter()
        .chain(state["completed_frameworks"].as_array()?.iter());
    for f in fws {
        let exs = f["executors"]
            .as_array()?
            .iter()
            .chain(f["completed_executors"].as_array()?.iter());
        if let Some(e) = exs.into_iter().find(|e| e["id"] == eid) {
            return e["directory"].as_str().map(PathBuf::from);
        }
    }
    None
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_of_a_fast_printer_are_rotated_and_bounded() {
    let c = Cluster::start_with(
        BIN.as_ref(),
        1,
        &[],
        &[
            "--sandbox_log_max_size",
            "1048576",
            "--sandbox_log_max_files",
            "2",
        ],
    )
    .await;
    let mut fw = Fw::subscribe(&c.master.addr, framework_info("logs", 0.0, false, false)).await;
    // Up to ~2 MB/s of output, for as long as it runs.
    let printer = "while :; do head -c 100000 /dev/zero | tr '\\0' x; echo; sleep 0.05; done";
    fw.launch("printer", printer).await;
    fw.state("printer", TaskState::Running).await;
    let dir = wait_until(LONG, "the sandbox", async || sandbox(&c, "printer").await).await;
    let (live, one, two) = (
        dir.join("stdout"),
        dir.join("stdout.1"),
        dir.join("stdout.2"),
    );
    wait_until(LONG, "two rotations", async || {
        (one.exists() && two.exists()).then_some(())
    })
    .await;
    // Once rotating, the logs stay bounded: three files of about the limit, plus what the
    // output adds between two checks (one second, here ~2 MB; several times that for a
    // loaded machine) — while many times that is written.
    let bound = 3 * MB + 20 * MB;
    for _ in 0..15 {
        let total = size(&live) + size(&one) + size(&two);
        assert!(total <= bound, "logs grew to {total} bytes");
        assert!(
            !dir.join("stdout.3").exists(),
            "only 2 rotated files are kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    fw.kill("printer").await;
    fw.state("printer", TaskState::Killed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_black_box_outlives_the_sandbox() {
    let c = Cluster::start_with(
        BIN.as_ref(),
        1,
        &[],
        &["--gc_delay", "0", "--disk_watch_interval", "0.3"],
    )
    .await;
    let mut fw = Fw::subscribe(
        &c.master.addr,
        framework_info("blackbox", 0.0, false, false),
    )
    .await;
    fw.launch("bb", "echo last-words; echo oops >&2; exit 3")
        .await;
    let end = fw.state("bb", TaskState::Failed).await;
    assert_eq!(end.message.as_deref(), Some("Command exited with status 3"));
    let dir = wait_until(LONG, "the sandbox", async || sandbox(&c, "bb").await).await;
    // Garbage collection (delay 0) removes the sandbox once the executor is gone.
    wait_until(LONG, "the sandbox to be collected", async || {
        (!dir.exists()).then_some(())
    })
    .await;
    let records: Value = c.agent_get(0, "/blackbox?task_id=bb").await.unwrap();
    let r = &records[0];
    assert_eq!(
        (
            r["state"].as_str(),
            r["exit_code"].as_i64(),
            r["oom"].as_bool()
        ),
        (Some("TASK_FAILED"), Some(3), Some(false)),
        "{r}"
    );
    assert!(
        r["stdout_tail"].as_str().unwrap().contains("last-words"),
        "{r}"
    );
    assert!(r["stderr_tail"].as_str().unwrap().contains("oops"), "{r}");
    // The state endpoint keeps the summary, and `strata logs` falls back to the black box.
    let state = c.agent_get(0, "/state").await.unwrap();
    let text = state.to_string();
    assert!(
        text.contains("\"black_box\"") && text.contains("\"exit_code\":3"),
        "{state}"
    );
    let (code, out, err) = c.cli(&["logs", "bb"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("last-words"), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("exit code 3"), "{err}");
    let (_, out, _) = c.cli(&["tasks", "--all"]).await;
    assert!(out.contains("Command exited with status 3"), "{out}");
}
