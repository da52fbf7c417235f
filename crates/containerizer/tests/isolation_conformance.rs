//! The isolator conformance suite: one function per behaviour, run against the fake
//! always, against real cgroups v1 and v2 where the host has them (required under
//! `CI=true` as root), and the controller-free behaviours against any cgroup2 mount.
#![allow(clippy::unwrap_used)]

mod common;

use common::{eventually, id, limits, Gated, Subject};
use std::time::Duration;
use strata_containerizer::isolation::{IsolationError, Limits};

const MB: u64 = 1 << 20;

/// prepare → recover lists it → cleanup → gone; cleanup again succeeds.
async fn lifecycle(s: Subject) {
    let c = id("lifecycle");
    s.iso.prepare(&c, &limits(0.5, 64.0)).await.unwrap();
    assert_eq!(s.iso.recover().await.unwrap(), vec![c.clone()]);
    assert!(s.container_dirs(&c).iter().all(|d| d.is_dir()));
    assert_eq!(s.iso.limitation(&c).await.unwrap(), None);
    s.iso.cleanup(&c).await.unwrap();
    assert_eq!(s.iso.recover().await.unwrap(), vec![]);
    assert!(s.container_dirs(&c).iter().all(|d| !d.exists()));
    s.iso.cleanup(&c).await.unwrap();
    s.finish().await;
}

async fn prepare_twice_fails(s: Subject) {
    let c = id("twice");
    s.iso.prepare(&c, &limits(1.0, 64.0)).await.unwrap();
    let err = s.iso.prepare(&c, &limits(1.0, 64.0)).await.unwrap_err();
    assert!(matches!(err, IsolationError::AlreadyExists(_)), "{err}");
    s.iso.cleanup(&c).await.unwrap();
    s.finish().await;
}

async fn unknown_container_fails(s: Subject) {
    let c = id("never-prepared");
    let unknown = |r: Result<(), IsolationError>| {
        assert!(
            matches!(r, Err(IsolationError::UnknownContainer(_))),
            "{r:?}"
        );
    };
    unknown(s.iso.isolate(&c, std::process::id()).await);
    unknown(s.iso.update(&c, &limits(1.0, 64.0)).await);
    unknown(s.iso.usage(&c).await.map(|_| ()));
    unknown(s.iso.limitation(&c).await.map(|_| ()));
    unknown(s.iso.watch(&c).await.map(|_| ()));
    s.iso.cleanup(&c).await.unwrap();
    s.finish().await;
}

async fn invalid_limits_touch_nothing(s: Subject) {
    let c = id("invalid");
    let bad = Limits {
        cpus: f64::NAN,
        ..limits(1.0, 64.0)
    };
    let err = s.iso.prepare(&c, &bad).await.unwrap_err();
    assert!(matches!(err, IsolationError::InvalidLimits { .. }), "{err}");
    assert_eq!(s.iso.recover().await.unwrap(), vec![]);
    s.iso.prepare(&c, &limits(1.0, 64.0)).await.unwrap();
    let bad = Limits {
        mem_limit_mb: Some(-1.0),
        ..limits(1.0, 64.0)
    };
    let err = s.iso.update(&c, &bad).await.unwrap_err();
    assert!(matches!(err, IsolationError::InvalidLimits { .. }), "{err}");
    s.iso.cleanup(&c).await.unwrap();
    s.finish().await;
}

/// Isolated processes (and their children) are counted; cleanup kills them all.
async fn isolate_counts_and_cleanup_kills(s: Subject) {
    let c = id("tree");
    s.iso.prepare(&c, &limits(1.0, 64.0)).await.unwrap();
    let mut p = Gated::spawn("sleep 300 & sleep 300 & wait");
    s.iso.isolate(&c, p.pid()).await.unwrap();
    for file in s.procs_files(&c) {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.lines().any(|l| l == p.pid().to_string()),
            "{file:?}: {text}"
        );
    }
    assert_eq!(s.iso.usage(&c).await.unwrap().processes, Some(1));
    p.release().await;
    eventually("3 processes", Duration::from_secs(10), || async {
        (s.iso.usage(&c).await.unwrap().processes == Some(3)).then_some(())
    })
    .await;
    s.iso.cleanup(&c).await.unwrap();
    assert_eq!(p.exit().await, (None, Some(9)), "SIGKILLed");
    assert!(s.iso.usage(&c).await.is_err());
    s.finish().await;
}

async fn isolate_dead_pid_fails(s: Subject) {
    let c = id("dead");
    s.iso.prepare(&c, &limits(1.0, 64.0)).await.unwrap();
    let mut p = Gated::spawn("exit 0");
    let pid = p.pid();
    p.release().await;
    assert_eq!(p.exit().await, (Some(0), None));
    let err = s.iso.isolate(&c, pid).await.unwrap_err();
    assert!(matches!(err, IsolationError::Io { .. }), "{err}");
    s.iso.cleanup(&c).await.unwrap();
    s.finish().await;
}

/// A watcher ends (with UnknownContainer) once the container is cleaned up.
async fn watch_ends_on_cleanup(s: Subject) {
    let c = id("watched");
    s.iso.prepare(&c, &limits(1.0, 64.0)).await.unwrap();
    let watcher = {
        let iso = s.iso.clone();
        let c = c.clone();
        tokio::spawn(async move { iso.watch(&c).await })
    };
    s.iso.cleanup(&c).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), watcher)
        .await
        .expect("watch should end after cleanup")
        .unwrap();
    assert!(
        matches!(result, Err(IsolationError::UnknownContainer(_))),
        "{result:?}"
    );
    s.finish().await;
}

/// The hard memory limit is set by prepare, then only raised; the soft limit follows.
async fn memory_hard_limit_only_rises(s: Subject) {
    let c = id("mem");
    s.iso.prepare(&c, &limits(1.0, 64.0)).await.unwrap();
    let mem =
        |u: strata_containerizer::isolation::Usage| (u.mem_soft_limit_bytes, u.mem_limit_bytes);
    assert_eq!(
        mem(s.iso.usage(&c).await.unwrap()),
        (Some(64 * MB), Some(64 * MB))
    );
    s.iso.update(&c, &limits(1.0, 128.0)).await.unwrap();
    assert_eq!(
        mem(s.iso.usage(&c).await.unwrap()),
        (Some(128 * MB), Some(128 * MB))
    );
    s.iso.update(&c, &limits(1.0, 48.0)).await.unwrap();
    assert_eq!(
        mem(s.iso.usage(&c).await.unwrap()),
        (Some(48 * MB), Some(128 * MB))
    );
    let unlimited = Limits {
        mem_limit_mb: Some(f64::INFINITY),
        ..limits(1.0, 48.0)
    };
    s.iso.update(&c, &unlimited).await.unwrap();
    assert_eq!(s.iso.usage(&c).await.unwrap().mem_limit_bytes, None);
    s.iso.cleanup(&c).await.unwrap();
    s.finish().await;
}

/// The CFS quota follows the CPU limit; an infinite limit lifts it.
async fn cpu_limit_follows(s: Subject) {
    let c = id("cpu");
    let l = Limits {
        cpus_limit: Some(0.5),
        ..limits(0.25, 64.0)
    };
    s.iso.prepare(&c, &l).await.unwrap();
    assert_eq!(s.iso.usage(&c).await.unwrap().cpus_limit, Some(0.5));
    let l = Limits {
        cpus_limit: Some(f64::INFINITY),
        ..l
    };
    s.iso.update(&c, &l).await.unwrap();
    assert_eq!(s.iso.usage(&c).await.unwrap().cpus_limit, None);
    s.iso.cleanup(&c).await.unwrap();
    s.finish().await;
}

/// remove_parent keeps a parent that still holds a container and removes an empty one.
async fn remove_parent_only_when_empty(s: Subject) {
    let parents = match &s.layout {
        common::Layout::Fake => Vec::new(),
        common::Layout::V1(parents) => parents.clone(),
        common::Layout::V2(parent) => vec![parent.clone()],
    };
    let c = id("parent");
    s.iso.prepare(&c, &limits(0.5, 64.0)).await.unwrap();
    s.iso.remove_parent().await.unwrap();
    assert!(parents.iter().all(|p| p.is_dir()), "{parents:?}");
    s.iso.cleanup(&c).await.unwrap();
    s.iso.remove_parent().await.unwrap();
    assert!(parents.iter().all(|p| !p.exists()), "{parents:?}");
    s.iso.remove_parent().await.unwrap();
    s.finish().await;
}

/// One `#[tokio::test]` per behaviour for a backend; a `None` subject was skipped.
macro_rules! suite {
    ($backend:ident: $($behaviour:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $behaviour() {
                    if let Some(s) = crate::common::$backend() {
                        super::$behaviour(s).await;
                    }
                }
            )*
        }
    };
}

suite!(fake: lifecycle, prepare_twice_fails, unknown_container_fails,
    invalid_limits_touch_nothing, isolate_counts_and_cleanup_kills, isolate_dead_pid_fails,
    watch_ends_on_cleanup, memory_hard_limit_only_rises, cpu_limit_follows,
    remove_parent_only_when_empty);
suite!(v1: lifecycle, prepare_twice_fails, unknown_container_fails,
    invalid_limits_touch_nothing, isolate_counts_and_cleanup_kills, isolate_dead_pid_fails,
    watch_ends_on_cleanup, memory_hard_limit_only_rises, cpu_limit_follows,
    remove_parent_only_when_empty);
suite!(v2: lifecycle, prepare_twice_fails, unknown_container_fails,
    invalid_limits_touch_nothing, isolate_counts_and_cleanup_kills, isolate_dead_pid_fails,
    watch_ends_on_cleanup, memory_hard_limit_only_rises, cpu_limit_follows,
    remove_parent_only_when_empty);
suite!(v2_grouping: lifecycle, prepare_twice_fails, unknown_container_fails,
    invalid_limits_touch_nothing, isolate_counts_and_cleanup_kills, isolate_dead_pid_fails,
    watch_ends_on_cleanup, remove_parent_only_when_empty);
