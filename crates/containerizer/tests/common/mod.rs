//! Shared fixtures for the isolation tests: the backends under test (the fake always,
//! real cgroups v1/v2 where the host allows, and required under `CI=true` as root),
//! processes gated on stdin so they start working only once isolated, and polling.
#![allow(dead_code, clippy::unwrap_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_containerizer::isolation::cgroups::{self, v1, v2, CgroupVersion};
use strata_containerizer::isolation::{ContainerId, ControllerSet, FakeIsolator, Isolator, Limits};
use tokio::io::AsyncWriteExt;

pub const SYS_FS_CGROUP: &str = "/sys/fs/cgroup";

/// Where a subject's cgroups live, for tests that look at the files themselves.
#[derive(Debug, Clone)]
pub enum Layout {
    Fake,
    /// Each controller's `<root>/<controller>/<parent>`.
    V1(Vec<PathBuf>),
    /// `<root>/<parent>`.
    V2(PathBuf),
}

/// An isolator under test; removes its parent cgroup when dropped.
pub struct Subject {
    pub iso: Arc<dyn Isolator>,
    pub layout: Layout,
    remove_parent: Box<dyn Fn() + Send + Sync>,
}

impl Drop for Subject {
    /// After a failed test: kill what is left and remove every cgroup below the parent,
    /// then the parent, so no test leaves cgroups behind.
    fn drop(&mut self) {
        let parents = match &self.layout {
            Layout::Fake => Vec::new(),
            Layout::V1(parents) => parents.clone(),
            Layout::V2(parent) => vec![parent.clone()],
        };
        for parent in parents {
            let Ok(entries) = std::fs::read_dir(&parent) else {
                continue;
            };
            for entry in entries.flatten().filter(|e| e.path().is_dir()) {
                sweep(&entry.path());
            }
        }
        (self.remove_parent)();
    }
}

/// Synchronous best-effort removal of a cgroup subtree (only used after a failure).
fn sweep(dir: &Path) {
    for sub in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if sub.path().is_dir() {
            sweep(&sub.path());
        }
    }
    for _ in 0..100 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Subject {
    /// Cleans up every container left (a failed test) so the parent can be removed.
    pub async fn finish(self) {
        for id in self.iso.recover().await.unwrap_or_default() {
            let _ = self.iso.cleanup(&id).await;
        }
    }

    /// The container's directories (every hierarchy for v1; `<parent>/<id>` for v2).
    pub fn container_dirs(&self, id: &ContainerId) -> Vec<PathBuf> {
        match &self.layout {
            Layout::Fake => Vec::new(),
            Layout::V1(parents) => parents.iter().map(|p| p.join(id.as_str())).collect(),
            Layout::V2(parent) => vec![parent.join(id.as_str())],
        }
    }

    /// Where the container's processes are listed.
    pub fn procs_files(&self, id: &ContainerId) -> Vec<PathBuf> {
        match &self.layout {
            Layout::Fake => Vec::new(),
            Layout::V1(_) => self
                .container_dirs(id)
                .into_iter()
                .map(|d| d.join("cgroup.procs"))
                .collect(),
            Layout::V2(parent) => vec![parent.join(id.as_str()).join("leaf/cgroup.procs")],
        }
    }
}

fn parent_name() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "strata-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Returns `None` after printing why, or panics when the backend is required.
fn skip_or_fail<T>(required: bool, reason: String) -> Option<T> {
    assert!(
        !required,
        "CI=true, running as root on this kind of host, but the real backend is unusable: \
         {reason}"
    );
    println!("SKIPPED: {reason}");
    None
}

pub fn fake() -> Option<Subject> {
    Some(Subject {
        iso: Arc::new(FakeIsolator::new()),
        layout: Layout::Fake,
        remove_parent: Box::new(|| {}),
    })
}

/// Real cgroups v1 at /sys/fs/cgroup. Required (never skipped) under `CI=true` as root
/// on a host whose /sys/fs/cgroup is not cgroups v2.
pub fn v1() -> Option<Subject> {
    let root = Path::new(SYS_FS_CGROUP);
    let host = cgroups::detect(root);
    let required = ci() && is_root() && host != Some(CgroupVersion::V2);
    if host != Some(CgroupVersion::V1) {
        return skip_or_fail(
            required,
            format!("no cgroups v1 hierarchy at {SYS_FS_CGROUP}"),
        );
    }
    let hierarchy = v1::Hierarchy::new(root, &parent_name()).unwrap();
    let iso = match v1::CgroupsV1::new(hierarchy, ControllerSet::ALL, false) {
        Ok(iso) => Arc::new(iso),
        Err(e) => return skip_or_fail(required, format!("cgroups v1 unusable: {e}")),
    };
    let parents = iso
        .controllers()
        .into_iter()
        .map(|c| iso.hierarchy().parent_dir(c))
        .collect();
    let keep = iso.clone();
    Some(Subject {
        iso,
        layout: Layout::V1(parents),
        remove_parent: Box::new(move || {
            let _ = keep.remove_parent();
        }),
    })
}

/// Real cgroups v2 at /sys/fs/cgroup with cpu, memory and pids. Required under
/// `CI=true` as root on a v2 host.
pub fn v2() -> Option<Subject> {
    let root = Path::new(SYS_FS_CGROUP);
    let required = ci() && is_root() && cgroups::detect(root) == Some(CgroupVersion::V2);
    if cgroups::detect(root) != Some(CgroupVersion::V2) {
        return skip_or_fail(
            required,
            format!("no cgroups v2 hierarchy at {SYS_FS_CGROUP}"),
        );
    }
    v2_at(root, ControllerSet::ALL, required)
}

/// Real cgroups v2 without controllers on any cgroup2 mount (e.g. a hybrid host's
/// /sys/fs/cgroup/unified): grouping, counting and killing only.
pub fn v2_grouping() -> Option<Subject> {
    let Some(mount) = cgroups::mounts()
        .into_iter()
        .find(|m| m.version == CgroupVersion::V2)
    else {
        return skip_or_fail(false, "no cgroup2 mount".into());
    };
    v2_at(&mount.mount_point, ControllerSet::default(), false)
}

fn v2_at(root: &Path, set: ControllerSet, required: bool) -> Option<Subject> {
    let iso = match v2::CgroupsV2::new(root, &parent_name(), set, false) {
        Ok(iso) => Arc::new(iso),
        Err(e) => return skip_or_fail(required, format!("cgroups v2 unusable: {e}")),
    };
    let keep = iso.clone();
    Some(Subject {
        layout: Layout::V2(iso.parent_dir().to_path_buf()),
        iso,
        remove_parent: Box::new(move || {
            let _ = keep.remove_parent();
        }),
    })
}

pub fn id(s: &str) -> ContainerId {
    ContainerId::new(s).unwrap()
}

pub fn limits(cpus: f64, mem_mb: f64) -> Limits {
    Limits {
        cpus,
        mem_mb,
        ..Limits::default()
    }
}

/// `sh -c 'read _; <body>'`: the script waits for a line on stdin, so the test can
/// isolate the pid before the work starts (as Strata's executor forks only after
/// subscribing).
pub struct Gated {
    pub child: tokio::process::Child,
}

impl Gated {
    pub fn spawn(body: &str) -> Self {
        let child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read _; {body}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    pub async fn release(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Waits (bounded) for the exit; returns (exit code, signal).
    pub async fn exit(&mut self) -> (Option<i32>, Option<i32>) {
        use std::os::unix::process::ExitStatusExt;
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the process should have exited")
            .unwrap();
        (status.code(), status.signal())
    }
}

/// Polls `f` until it returns `Some`, at most `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}
