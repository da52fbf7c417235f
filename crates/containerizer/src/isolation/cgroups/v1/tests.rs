//! The v1 backend on a temp dir that imitates `/sys/fs/cgroup` (control files
//! pre-created, as the kernel would): every file written and parsed.

use super::*;
use std::fs;

const UNLIMITED: &str = "9223372036854771712";

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

/// A v1 root with the four controllers mounted and the parent `strata` created.
fn fake_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for c in Controller::ALL {
        populate(&root.path().join(c.name()), &[("cgroup.procs", "1\n")]);
    }
    populate(
        &root.path().join("memory/strata"),
        &[("memory.oom_control", "oom_kill_disable 1\nunder_oom 0\n")],
    );
    root
}

/// The control files a freshly created container cgroup has.
fn fake_container(root: &Path, id: &str) {
    let common = [("cgroup.procs", ""), ("tasks", "")];
    populate(&root.join("cpu/strata").join(id), &common);
    populate(
        &root.join("cpu/strata").join(id),
        &[
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "-1"),
            (
                "cpu.stat",
                "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
            ),
        ],
    );
    populate(&root.join("cpuacct/strata").join(id), &common);
    populate(
        &root.join("cpuacct/strata").join(id),
        &[("cpuacct.stat", "user 0\nsystem 0\n")],
    );
    populate(&root.join("memory/strata").join(id), &common);
    populate(
        &root.join("memory/strata").join(id),
        &[
            ("memory.soft_limit_in_bytes", UNLIMITED),
            ("memory.limit_in_bytes", UNLIMITED),
            ("memory.usage_in_bytes", "0"),
            ("memory.max_usage_in_bytes", "0"),
            (
                "memory.stat",
                "cache 0\nrss 0\ntotal_cache 0\ntotal_rss 0\n",
            ),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            ),
        ],
    );
    populate(&root.join("pids/strata").join(id), &common);
    populate(&root.join("pids/strata").join(id), &[("pids.max", "max")]);
}

fn isolator(root: &Path, enable_cfs: bool) -> CgroupsV1 {
    let h = Hierarchy::new(root, "strata").unwrap();
    CgroupsV1::new(h, ControllerSet::ALL, enable_cfs).unwrap()
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
        pids_max: Some(64),
        low_priority: false,
    }
}

#[test]
fn new_creates_parents_and_enables_the_oom_killer() {
    let root = fake_root();
    let iso = isolator(root.path(), false);
    for c in Controller::ALL {
        assert!(root.path().join(c.name()).join("strata").is_dir(), "{c:?}");
    }
    assert_eq!(
        read(&root.path().join("memory/strata"), "memory.oom_control"),
        "0"
    );
    assert_eq!(iso.controllers(), Controller::ALL.to_vec());
}

#[test]
fn new_refuses_missing_controllers_and_bad_parents() {
    let root = tempfile::tempdir().unwrap();
    populate(&root.path().join("cpu"), &[("cgroup.procs", "")]);
    let h = Hierarchy::new(root.path(), "strata").unwrap();
    let err = CgroupsV1::new(h, ControllerSet::ALL, false).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("'cpuacct' is not mounted") && msg.contains("--isolation"),
        "{msg}"
    );
    for bad in ["", "/abs", "../up", "a/./b"] {
        assert!(Hierarchy::new(root.path(), bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn update_writes_cpu_files() {
    let inf = f64::INFINITY;
    // (cpus, cpus_limit, enable_cfs, shares, period, quota)
    let cases = [
        (1.0, None, false, "1024", "100000", "-1"),
        (0.5, None, true, "512", "100000", "50000"),
        (0.001, None, true, "2", "100000", "1000"),
        (1.0, Some(0.2), false, "1024", "100000", "20000"),
        (2.0, Some(inf), true, "2048", "100000", "-1"),
    ];
    for (cpus, cpus_limit, cfs, shares, period, quota) in cases {
        let root = fake_root();
        fake_container(root.path(), "c1");
        fs::write(root.path().join("cpu/strata/c1/cpu.cfs_period_us"), "").unwrap();
        let iso = isolator(root.path(), cfs);
        let l = limits(cpus, cpus_limit, 64.0, None);
        iso.update(&id("c1"), &l).await.unwrap();
        let dir = root.path().join("cpu/strata/c1");
        let got = (
            read(&dir, "cpu.shares"),
            read(&dir, "cpu.cfs_period_us"),
            read(&dir, "cpu.cfs_quota_us"),
        );
        let period = if quota == "-1" { "" } else { period };
        assert_eq!(
            got,
            (shares.into(), period.into(), quota.into()),
            "{l:?} cfs={cfs}"
        );
    }
}

#[tokio::test]
async fn memory_hard_limit_is_set_first_then_only_raised() {
    let mb = 1u64 << 20;
    // (initial hard limit file, mem_mb, mem_limit_mb, soft, hard after update)
    let cases = [
        (
            UNLIMITED.to_string(),
            64.0,
            None,
            64 * mb,
            UNLIMITED.to_string(),
        ),
        (
            (128 * mb).to_string(),
            64.0,
            None,
            64 * mb,
            (128 * mb).to_string(),
        ),
        (
            (32 * mb).to_string(),
            64.0,
            None,
            64 * mb,
            (64 * mb).to_string(),
        ),
        (
            (32 * mb).to_string(),
            64.0,
            Some(256.0),
            64 * mb,
            (256 * mb).to_string(),
        ),
        (
            (32 * mb).to_string(),
            8.0,
            Some(f64::INFINITY),
            32 * mb,
            "-1".to_string(),
        ),
    ];
    for (current, mem, mem_limit, soft, hard) in cases {
        let root = fake_root();
        fake_container(root.path(), "c1");
        let dir = root.path().join("memory/strata/c1");
        fs::write(dir.join("memory.limit_in_bytes"), &current).unwrap();
        let iso = isolator(root.path(), false);
        iso.update(&id("c1"), &limits(1.0, None, mem, mem_limit))
            .await
            .unwrap();
        assert_eq!(read(&dir, "memory.soft_limit_in_bytes"), soft.to_string());
        assert_eq!(
            read(&dir, "memory.limit_in_bytes"),
            hard,
            "{current} {mem} {mem_limit:?}"
        );
        assert_eq!(read(&root.path().join("pids/strata/c1"), "pids.max"), "64");
    }
    // The first write (prepare) always sets the hard limit, even lowering it.
    let root = fake_root();
    fake_container(root.path(), "c1");
    let dir = root.path().join("memory/strata/c1");
    let iso = isolator(root.path(), false);
    iso.apply(&id("c1"), &limits(1.0, None, 48.0, None), true)
        .unwrap();
    assert_eq!(read(&dir, "memory.limit_in_bytes"), (48 * mb).to_string());
}

#[tokio::test]
async fn usage_parses_every_file() {
    let root = fake_root();
    fake_container(root.path(), "c1");
    let r = root.path();
    fs::write(r.join("cpu/strata/c1/cpu.cfs_quota_us"), "20000").unwrap();
    fs::write(
        r.join("cpu/strata/c1/cpu.stat"),
        "nr_periods 50\nnr_throttled 40\nthrottled_time 2500000000\nnr_bursts 0\n",
    )
    .unwrap();
    fs::write(
        r.join("cpuacct/strata/c1/cpuacct.stat"),
        "user 150\nsystem 25\n",
    )
    .unwrap();
    fs::write(r.join("memory/strata/c1/memory.usage_in_bytes"), "7340032").unwrap();
    fs::write(r.join("memory/strata/c1/memory.limit_in_bytes"), "33554432").unwrap();
    fs::write(
        r.join("memory/strata/c1/memory.soft_limit_in_bytes"),
        "16777216",
    )
    .unwrap();
    fs::write(
        r.join("memory/strata/c1/memory.stat"),
        "cache 1\nrss 2\ntotal_cache 4096\ntotal_rss 8192\ntotal_mapped_file 512\n\
         total_swap 0\ntotal_unevictable 64\n",
    )
    .unwrap();
    fs::write(r.join("cpu/strata/c1/cgroup.procs"), "100\n101\n").unwrap();
    fs::write(r.join("cpu/strata/c1/tasks"), "100\n101\n102\n").unwrap();
    populate(
        &r.join("cpu/strata/c1/sub"),
        &[("cgroup.procs", "103\n"), ("tasks", "103\n")],
    );

    let u = isolator(r, true).usage(&id("c1")).await.unwrap();
    assert!(u.timestamp > 1.0e9);
    assert_eq!((u.processes, u.threads), (Some(3), Some(4)));
    assert_eq!(u.cpus_user_time_secs, Some(1.5));
    assert_eq!(u.cpus_system_time_secs, Some(0.25));
    assert_eq!(u.cpus_limit, Some(0.2));
    assert_eq!(u.cpus_nr_periods, Some(50));
    assert_eq!(u.cpus_nr_throttled, Some(40));
    assert_eq!(u.cpus_throttled_time_secs, Some(2.5));
    assert_eq!(u.mem_total_bytes, Some(7_340_032));
    assert_eq!(u.mem_limit_bytes, Some(33_554_432));
    assert_eq!(u.mem_soft_limit_bytes, Some(16_777_216));
    assert_eq!(u.mem_cache_bytes, Some(4096));
    assert_eq!(u.mem_rss_bytes, Some(8192));
    assert_eq!(u.mem_mapped_file_bytes, Some(512));
    assert_eq!(u.mem_swap_bytes, Some(0));
    assert_eq!(u.mem_unevictable_bytes, Some(64));

    // An unlimited container reports no limits.
    fake_container(r, "c2");
    let u = isolator(r, false).usage(&id("c2")).await.unwrap();
    assert_eq!((u.cpus_limit, u.mem_limit_bytes), (None, None));
}

#[tokio::test]
async fn limitation_from_oom_control() {
    let root = fake_root();
    fake_container(root.path(), "c1");
    let dir = root.path().join("memory/strata/c1");
    let iso = isolator(root.path(), false);
    assert_eq!(iso.limitation(&id("c1")).await.unwrap(), None);
    fs::write(dir.join("memory.limit_in_bytes"), "33554432").unwrap();
    fs::write(dir.join("memory.max_usage_in_bytes"), "33554432").unwrap();
    for oom in [
        "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        // Kernels before 4.13 have no oom_kill counter.
        "oom_kill_disable 0\nunder_oom 1\n",
    ] {
        fs::write(dir.join("memory.oom_control"), oom).unwrap();
        let l = iso.limitation(&id("c1")).await.unwrap().unwrap();
        assert_eq!(l.kind, crate::isolation::LimitationKind::Memory);
        assert_eq!(
            l.message,
            "Memory limit exceeded: Requested: 32MB Maximum Used: 32MB"
        );
        assert_eq!(l.mem_limit_bytes, Some(32 << 20));
        let watched = iso.watch(&id("c1")).await.unwrap();
        assert_eq!(watched, l);
    }
}

#[tokio::test]
async fn isolate_writes_the_pid_once_per_hierarchy() {
    // cpu and cpuacct co-mounted, as most distributions do: two symlinks, one directory.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    populate(&r.join("cpu,cpuacct"), &[("cgroup.procs", "")]);
    std::os::unix::fs::symlink(r.join("cpu,cpuacct"), r.join("cpu")).unwrap();
    std::os::unix::fs::symlink(r.join("cpu,cpuacct"), r.join("cpuacct")).unwrap();
    let set = ControllerSet {
        cpu: true,
        ..ControllerSet::default()
    };
    let iso = CgroupsV1::new(Hierarchy::new(r, "strata").unwrap(), set, false).unwrap();
    populate(
        &r.join("cpu,cpuacct/strata/c1"),
        &[("cgroup.procs", ""), ("tasks", "")],
    );
    assert_eq!(
        iso.dirs(&id("c1")),
        vec![r.canonicalize().unwrap().join("cpu,cpuacct/strata/c1")]
    );
    iso.isolate(&id("c1"), 4242).await.unwrap();
    assert_eq!(
        read(&r.join("cpu,cpuacct/strata/c1"), "cgroup.procs"),
        "4242"
    );
}

#[tokio::test]
async fn unknown_containers_invalid_limits_and_recover() {
    let root = fake_root();
    let iso = isolator(root.path(), false);
    let c9 = id("c9");
    let l = limits(1.0, None, 64.0, None);
    assert!(matches!(
        iso.update(&c9, &l).await,
        Err(IsolationError::UnknownContainer(_))
    ));
    assert!(matches!(
        iso.usage(&c9).await,
        Err(IsolationError::UnknownContainer(_))
    ));
    assert!(matches!(
        iso.isolate(&c9, 1).await,
        Err(IsolationError::UnknownContainer(_))
    ));
    assert!(matches!(
        iso.limitation(&c9).await,
        Err(IsolationError::UnknownContainer(_))
    ));
    assert!(matches!(
        iso.watch(&c9).await,
        Err(IsolationError::UnknownContainer(_))
    ));
    iso.cleanup(&c9).await.unwrap();

    let bad = Limits {
        mem_mb: f64::NAN,
        ..l
    };
    let err = iso.prepare(&c9, &bad).await.unwrap_err();
    assert!(matches!(err, IsolationError::InvalidLimits { .. }), "{err}");
    assert!(!root.path().join("cpu/strata/c9").exists());

    fake_container(root.path(), "c1");
    fake_container(root.path(), "c2");
    assert!(matches!(
        iso.prepare(&id("c1"), &l).await,
        Err(IsolationError::AlreadyExists(_))
    ));
    assert_eq!(iso.recover().await.unwrap(), vec![id("c1"), id("c2")]);
}

#[tokio::test]
async fn prepare_rolls_back_when_a_control_file_is_missing() {
    // A temp dir has no kernel to create control files, so the first write fails; the
    // directories created so far must be gone afterwards.
    let root = fake_root();
    let iso = isolator(root.path(), false);
    let err = iso
        .prepare(&id("c1"), &limits(1.0, None, 64.0, None))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cpu.shares"), "{err}");
    for c in Controller::ALL {
        assert!(
            !root.path().join(c.name()).join("strata/c1").exists(),
            "{c:?}"
        );
    }
}
