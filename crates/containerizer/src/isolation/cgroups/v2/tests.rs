//! The v2 backend on a temp dir that imitates a unified hierarchy (control files
//! pre-created, as the kernel would): every file written and parsed.

use super::*;
use std::fs;

fn populate(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name))
        .unwrap()
        .trim()
        .to_string()
}

/// A unified root offering the controllers, with the parent `strata` created.
fn fake_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    populate(
        root.path(),
        &[
            (
                "cgroup.controllers",
                "cpuset cpu io memory hugetlb pids rdma misc\n",
            ),
            ("cgroup.subtree_control", "memory\n"),
            ("cgroup.procs", "1\n"),
        ],
    );
    populate(
        &root.path().join("strata"),
        &[("cgroup.subtree_control", "")],
    );
    root
}

fn fake_container(root: &Path, id: &str) {
    let dir = root.join("strata").join(id);
    populate(
        &dir,
        &[
            ("cgroup.procs", ""),
            ("cgroup.threads", ""),
            ("cgroup.kill", ""),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
            ("memory.low", "0"),
            ("memory.max", "max"),
            ("memory.current", "0"),
            ("memory.stat", "anon 0\nfile 0\n"),
            ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
            ("pids.max", "max"),
        ],
    );
    populate(
        &dir.join(LEAF),
        &[("cgroup.procs", ""), ("cgroup.threads", "")],
    );
}

fn isolator(root: &Path, enable_cfs: bool) -> CgroupsV2 {
    CgroupsV2::new(root, "strata", ControllerSet::ALL, enable_cfs).unwrap()
}

fn id(s: &str) -> ContainerId {
    ContainerId::new(s).unwrap()
}

fn limits(cpus: f64, cpus_limit: Option<f64>, mem_mb: f64, mem_limit_mb: Option<f64>) -> Limits {
    Limits {
        cpus,
        cpus_limit,
        mem_mb,
        mem_limit_mb,
        pids_max: Some(100),
        low_priority: false,
    }
}

#[test]
fn new_enables_missing_controllers_from_the_root_down() {
    let root = fake_root();
    let iso = isolator(root.path(), false);
    assert_eq!(read(root.path(), "cgroup.subtree_control"), "+cpu +pids");
    assert_eq!(
        read(&root.path().join("strata"), "cgroup.subtree_control"),
        "+cpu +memory +pids"
    );
    assert_eq!(iso.parent_dir(), root.path().join("strata"));
}

#[test]
fn new_refuses_non_v2_roots_and_missing_controllers() {
    let plain = tempfile::tempdir().unwrap();
    let err = CgroupsV2::new(plain.path(), "strata", ControllerSet::ALL, false).unwrap_err();
    assert!(
        err.to_string().contains("is not a cgroup v2 mount"),
        "{err}"
    );

    let root = fake_root();
    fs::write(root.path().join("cgroup.controllers"), "cpu io\n").unwrap();
    let err = CgroupsV2::new(root.path(), "strata", ControllerSet::ALL, false).unwrap_err();
    assert!(err.to_string().contains("'memory' is not offered"), "{err}");
    // No controllers: grouping and killing only.
    CgroupsV2::new(root.path(), "strata", ControllerSet::default(), false).unwrap();
}

#[tokio::test]
async fn update_writes_weight_max_low_and_pids() {
    let mb = 1u64 << 20;
    let inf = f64::INFINITY;
    // (cpus, cpus_limit, enable_cfs, mem_mb, mem_limit_mb, current max, weight, cpu.max, low, max)
    let cases = [
        (
            1.0,
            None,
            false,
            64.0,
            None,
            "max",
            "100",
            "max",
            64 * mb,
            "max",
        ),
        (
            0.5,
            None,
            true,
            64.0,
            None,
            "1",
            "50",
            "50000 100000",
            64 * mb,
            "67108864",
        ),
        (
            0.001,
            Some(0.2),
            false,
            8.0,
            Some(128.0),
            "1",
            "1",
            "20000 100000",
            32 * mb,
            "134217728",
        ),
        (
            2.0,
            Some(inf),
            true,
            64.0,
            Some(inf),
            "1",
            "200",
            "max",
            64 * mb,
            "max",
        ),
        (
            1.0,
            None,
            false,
            64.0,
            None,
            "134217728",
            "100",
            "max",
            64 * mb,
            "134217728",
        ),
    ];
    for (cpus, cpus_limit, cfs, mem, mem_limit, current, weight, cpu_max, low, max) in cases {
        let root = fake_root();
        fake_container(root.path(), "c1");
        let dir = root.path().join("strata/c1");
        fs::write(dir.join("memory.max"), current).unwrap();
        let l = limits(cpus, cpus_limit, mem, mem_limit);
        isolator(root.path(), cfs)
            .update(&id("c1"), &l)
            .await
            .unwrap();
        let got = (
            read(&dir, "cpu.weight"),
            read(&dir, "cpu.max"),
            read(&dir, "memory.low"),
            read(&dir, "memory.max"),
            read(&dir, "pids.max"),
        );
        let want = (
            weight.into(),
            cpu_max.into(),
            low.to_string(),
            max.into(),
            "100".into(),
        );
        assert_eq!(got, want, "{l:?} cfs={cfs} current={current}");
    }
}

#[tokio::test]
async fn usage_parses_every_file() {
    let root = fake_root();
    fake_container(root.path(), "c1");
    let dir = root.path().join("strata/c1");
    fs::write(dir.join("cpu.max"), "20000 100000\n").unwrap();
    fs::write(
        dir.join("cpu.stat"),
        "usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\nnr_periods 30\n\
         nr_throttled 12\nthrottled_usec 750000\n",
    )
    .unwrap();
    fs::write(dir.join("memory.current"), "9437184\n").unwrap();
    fs::write(dir.join("memory.max"), "33554432\n").unwrap();
    fs::write(dir.join("memory.low"), "16777216\n").unwrap();
    fs::write(
        dir.join("memory.stat"),
        "anon 8192\nfile 4096\nkernel 100\nfile_mapped 512\nunevictable 64\n",
    )
    .unwrap();
    fs::write(dir.join("memory.swap.current"), "0\n").unwrap();
    fs::write(dir.join("leaf/cgroup.procs"), "10\n11\n").unwrap();
    fs::write(dir.join("leaf/cgroup.threads"), "10\n11\n12\n").unwrap();

    let u = isolator(root.path(), false).usage(&id("c1")).await.unwrap();
    assert_eq!((u.processes, u.threads), (Some(2), Some(3)));
    assert_eq!(u.cpus_user_time_secs, Some(1.5));
    assert_eq!(u.cpus_system_time_secs, Some(0.5));
    assert_eq!(u.cpus_limit, Some(0.2));
    assert_eq!(u.cpus_nr_periods, Some(30));
    assert_eq!(u.cpus_nr_throttled, Some(12));
    assert_eq!(u.cpus_throttled_time_secs, Some(0.75));
    assert_eq!(u.mem_total_bytes, Some(9_437_184));
    assert_eq!(u.mem_limit_bytes, Some(33_554_432));
    assert_eq!(u.mem_soft_limit_bytes, Some(16_777_216));
    assert_eq!(u.mem_rss_bytes, Some(8192));
    assert_eq!(u.mem_cache_bytes, Some(4096));
    assert_eq!(u.mem_mapped_file_bytes, Some(512));
    assert_eq!(u.mem_unevictable_bytes, Some(64));
    assert_eq!(u.mem_swap_bytes, Some(0));

    fake_container(root.path(), "c2");
    let u = isolator(root.path(), false).usage(&id("c2")).await.unwrap();
    assert_eq!(
        (u.cpus_limit, u.mem_limit_bytes, u.cpus_nr_periods),
        (None, None, None)
    );
}

#[tokio::test]
async fn limitation_from_memory_events() {
    let root = fake_root();
    fake_container(root.path(), "c1");
    let dir = root.path().join("strata/c1");
    let iso = isolator(root.path(), false);
    assert_eq!(iso.limitation(&id("c1")).await.unwrap(), None);
    fs::write(dir.join("memory.max"), "33554432").unwrap();
    fs::write(dir.join("memory.peak"), "33554432").unwrap();
    fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n",
    )
    .unwrap();
    let l = iso.watch(&id("c1")).await.unwrap();
    assert_eq!(
        l.message,
        "Memory limit exceeded: Requested: 32MB Maximum Used: 32MB"
    );
    assert_eq!(
        (l.mem_limit_bytes, l.mem_max_usage_bytes),
        (Some(32 << 20), Some(32 << 20))
    );
}

#[tokio::test]
async fn isolate_writes_the_leaf_and_unknowns_fail() {
    let root = fake_root();
    fake_container(root.path(), "c1");
    let iso = isolator(root.path(), false);
    iso.isolate(&id("c1"), 4242).await.unwrap();
    assert_eq!(
        read(&root.path().join("strata/c1/leaf"), "cgroup.procs"),
        "4242"
    );
    assert_eq!(read(&root.path().join("strata/c1"), "cgroup.procs"), "");

    let c9 = id("c9");
    let l = limits(1.0, None, 64.0, None);
    assert!(matches!(
        iso.isolate(&c9, 1).await,
        Err(IsolationError::UnknownContainer(_))
    ));
    assert!(matches!(
        iso.update(&c9, &l).await,
        Err(IsolationError::UnknownContainer(_))
    ));
    assert!(matches!(
        iso.usage(&c9).await,
        Err(IsolationError::UnknownContainer(_))
    ));
    assert!(matches!(
        iso.limitation(&c9).await,
        Err(IsolationError::UnknownContainer(_))
    ));
    iso.cleanup(&c9).await.unwrap();
    assert!(matches!(
        iso.prepare(&id("c1"), &l).await,
        Err(IsolationError::AlreadyExists(_))
    ));
    assert_eq!(iso.recover().await.unwrap(), vec![id("c1")]);
}

#[tokio::test]
async fn prepare_rolls_back_when_a_control_file_is_missing() {
    let root = fake_root();
    let iso = isolator(root.path(), false);
    let err = iso
        .prepare(&id("c1"), &limits(1.0, None, 64.0, None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cpu.weight"), "{err}");
    assert!(!root.path().join("strata/c1").exists());
}
