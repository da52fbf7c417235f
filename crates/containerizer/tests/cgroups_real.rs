//! Enforcement on real cgroups: OOM kill and its detection, CFS throttling, pids.max,
//! sane usage numbers, and cleanup of a whole process tree and nested cgroups. Each runs
//! on v1 and v2 where the host has them (required under `CI=true` as root); the
//! controller-free ones also on any cgroup2 mount.
#![allow(clippy::unwrap_used)]

mod common;

use common::{alive, eventually, id, limits, Gated, Subject};
use std::time::Duration;
use strata_containerizer::isolation::{LimitationKind, Limits};

/// A process allocating far more than its 32 MB limit is OOM-killed and `watch` says so.
async fn oom_is_detected(s: Subject) {
    let c = id("oom");
    s.iso.prepare(&c, &limits(1.0, 32.0)).await.unwrap();
    let mut p = Gated::spawn(r"x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived");
    s.iso.isolate(&c, p.pid()).await.unwrap();
    p.release().await;
    let limitation = tokio::select! {
        l = s.iso.watch(&c) => l.unwrap(),
        status = p.child.wait() => {
            // The OOM kill may end the script first; the counter is already set then.
            let status = status.unwrap();
            s.iso.limitation(&c).await.unwrap().unwrap_or_else(|| {
                panic!("no OOM kill: the script exited with {status} (is swap absorbing it?)")
            })
        }
    };
    assert_eq!(limitation.kind, LimitationKind::Memory);
    assert!(
        limitation
            .message
            .starts_with("Memory limit exceeded: Requested: 32MB"),
        "{}",
        limitation.message
    );
    assert_eq!(limitation.mem_limit_bytes, Some(32 << 20));
    s.iso.cleanup(&c).await.unwrap();
    s.finish().await;
}

/// A busy loop limited to 0.2 CPU is throttled, and gets well under a full CPU.
async fn cpu_quota_is_enforced(s: Subject) {
    let c = id("quota");
    let l = Limits {
        cpus_limit: Some(0.2),
        ..limits(1.0, 64.0)
    };
    s.iso.prepare(&c, &l).await.unwrap();
    let mut p = Gated::spawn("while :; do :; done");
    s.iso.isolate(&c, p.pid()).await.unwrap();
    p.release().await;
    let usage = eventually("10 CFS periods", Duration::from_secs(30), || async {
        let u = s.iso.usage(&c).await.unwrap();
        (u.cpus_nr_periods.unwrap_or(0) >= 10).then_some(u)
    })
    .await;
    let periods = usage.cpus_nr_periods.unwrap();
    assert!(usage.cpus_nr_throttled.unwrap() > 0, "{usage:?}");
    assert!(usage.cpus_throttled_time_secs.unwrap() > 0.0, "{usage:?}");
    assert_eq!(usage.cpus_limit, Some(0.2));
    // Counter ratios, not wall time: CPU used is bounded by quota × periods, far below
    // one CPU for as many 100 ms periods.
    let used = usage.cpus_user_time_secs.unwrap() + usage.cpus_system_time_secs.unwrap();
    let one_cpu = f64::from(periods) * 0.1;
    assert!(
        used < 0.5 * one_cpu,
        "used {used}s over {periods} periods: {usage:?}"
    );
    s.iso.cleanup(&c).await.unwrap();
    assert_eq!(p.exit().await.1, Some(9));
    s.finish().await;
}

/// With pids.max 3 the shell's fourth fork fails.
async fn pids_max_is_enforced(s: Subject) {
    let c = id("pids");
    let l = Limits {
        pids_max: Some(3),
        ..limits(1.0, 64.0)
    };
    s.iso.prepare(&c, &l).await.unwrap();
    let mut p = Gated::spawn("for i in 1 2 3 4 5 6; do sleep 300 2>/dev/null & done; wait");
    s.iso.isolate(&c, p.pid()).await.unwrap();
    p.release().await;
    let (code, _) = p.exit().await;
    assert_ne!(code, Some(0), "the shell should fail to fork");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(p.child.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(stderr.to_lowercase().contains("fork"), "{stderr}");
    // The shell is gone; the two sleeps it managed to start remain (their stderr is not
    // the pipe, so reading it to the end above did not wait for them).
    assert_eq!(s.iso.usage(&c).await.unwrap().processes, Some(2));
    s.iso.cleanup(&c).await.unwrap();
    s.finish().await;
}

/// A busy process shows CPU time, one process and one thread, and memory in use.
async fn usage_is_sane(s: Subject) {
    let c = id("usage");
    s.iso.prepare(&c, &limits(1.0, 64.0)).await.unwrap();
    // v1 does not move a process's existing memory charge with it, so the script
    // allocates ~4 MB after joining.
    let mut p = Gated::spawn(r"x=$(head -c 4000000 /dev/zero | tr '\0' a); while :; do :; done");
    s.iso.isolate(&c, p.pid()).await.unwrap();
    p.release().await;
    let u = eventually(
        "CPU time with the allocation done",
        Duration::from_secs(30),
        || async {
            let u = s.iso.usage(&c).await.unwrap();
            let cpu = u.cpus_user_time_secs.unwrap_or(0.0) + u.cpus_system_time_secs.unwrap_or(0.0);
            (cpu >= 0.05 && u.processes == Some(1)).then_some(u)
        },
    )
    .await;
    assert_eq!((u.processes, u.threads), (Some(1), Some(1)), "{u:?}");
    assert!(u.timestamp > 1.0e9);
    if !matches!(s.layout, common::Layout::V2(_)) || u.mem_total_bytes.is_some() {
        assert!(u.mem_total_bytes.unwrap() > 0, "{u:?}");
        assert!(u.mem_rss_bytes.unwrap() > 0, "{u:?}");
        assert_eq!(u.mem_limit_bytes, Some(64 << 20));
    }
    s.iso.cleanup(&c).await.unwrap();
    assert_eq!(p.exit().await.1, Some(9));
    s.finish().await;
}

/// Cleanup kills processes in other sessions and in nested cgroups the container made,
/// and removes every directory.
async fn cleanup_removes_everything(s: Subject) {
    let c = id("cleanup");
    s.iso.prepare(&c, &limits(1.0, 64.0)).await.unwrap();
    let mut p = Gated::spawn("setsid sleep 300 & (sleep 300 &) ; sleep 300 & wait");
    s.iso.isolate(&c, p.pid()).await.unwrap();
    p.release().await;
    let pids: Vec<u32> = eventually("4 processes", Duration::from_secs(10), || async {
        let files = s.procs_files(&c);
        let text = std::fs::read_to_string(&files[0]).unwrap();
        let pids: Vec<u32> = text.lines().map(|l| l.parse().unwrap()).collect();
        (pids.len() == 4).then_some(pids)
    })
    .await;
    // The container moves one process into a sub-cgroup of its own.
    let leaf_parent = s.procs_files(&c)[0].parent().unwrap().to_path_buf();
    let nested = leaf_parent.join("nested");
    std::fs::create_dir(&nested).unwrap();
    let shell = p.pid();
    let moved = *pids.iter().find(|pid| **pid != shell).unwrap();
    std::fs::write(nested.join("cgroup.procs"), moved.to_string()).unwrap();
    assert_eq!(s.iso.usage(&c).await.unwrap().processes, Some(4));

    s.iso.cleanup(&c).await.unwrap();
    for pid in &pids {
        eventually("the process to die", Duration::from_secs(10), || async {
            (!alive(*pid)).then_some(())
        })
        .await;
    }
    assert!(s.container_dirs(&c).iter().all(|d| !d.exists()));
    assert_eq!(s.iso.recover().await.unwrap(), vec![]);
    assert_eq!(p.exit().await.1, Some(9));
    s.finish().await;
}

macro_rules! suite {
    ($backend:ident: $($test:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    if let Some(s) = crate::common::$backend() {
                        super::$test(s).await;
                    }
                }
            )*
        }
    };
}

suite!(v1: oom_is_detected, cpu_quota_is_enforced, pids_max_is_enforced, usage_is_sane,
    cleanup_removes_everything);
suite!(v2: oom_is_detected, cpu_quota_is_enforced, pids_max_is_enforced, usage_is_sane,
    cleanup_removes_everything);
suite!(v2_grouping: usage_is_sane, cleanup_removes_everything);
