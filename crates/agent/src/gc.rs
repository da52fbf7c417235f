//! Sandbox garbage collection: sandboxes of executors that are gone are removed once
//! older than `--gc_delay`, scaled down as the disk fills (Mesos: delay × max(0, 1 −
//! headroom − disk usage)), so a full disk frees space first. Black-box records stay.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// GC settings.
#[derive(Debug, Clone, Copy)]
pub struct GcPolicy {
    pub delay: Duration,
    pub disk_headroom: f64,
}

/// The age past which a finished sandbox is removed, given the disk usage (0..1).
pub fn max_age(p: GcPolicy, disk_usage: f64) -> Duration {
    p.delay
        .mul_f64((1.0 - p.disk_headroom - disk_usage).clamp(0.0, 1.0))
}

/// Fraction of the work dir's filesystem in use.
pub fn disk_usage(dir: &Path) -> f64 {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) if s.blocks() > 0 => 1.0 - (s.blocks_available() as f64 / s.blocks() as f64),
        _ => 0.0,
    }
}

/// Every `runs/<container>` sandbox under `<work_dir>/slaves`.
fn run_dirs(work_dir: &Path) -> Vec<PathBuf> {
    let list = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() && !p.is_symlink())
            .collect()
    };
    let mut out = Vec::new();
    for agent in list(&work_dir.join("slaves")) {
        for fw in list(&agent.join("frameworks")) {
            for ex in list(&fw.join("executors")) {
                out.extend(list(&ex.join("runs")));
            }
        }
    }
    out
}

/// Removes finished sandboxes older than the policy allows; returns how many.
pub fn collect(work_dir: &Path, live: &[String], p: GcPolicy) -> usize {
    let age = max_age(p, disk_usage(work_dir));
    let now = SystemTime::now();
    let mut removed = 0;
    for dir in run_dirs(work_dir) {
        if live.iter().any(|l| Path::new(l) == dir) {
            continue;
        }
        let modified = std::fs::metadata(&dir)
            .and_then(|m| m.modified())
            .unwrap_or(now);
        if now.duration_since(modified).unwrap_or_default() < age {
            continue;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {
                removed += 1;
                prune_empty_parents(&dir, work_dir);
            }
            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a sandbox"),
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            max_age_secs = age.as_secs(),
            "garbage-collected sandboxes"
        );
    }
    removed
}

/// Removes `runs/latest` pointing nowhere and empty executor/framework directories.
fn prune_empty_parents(run: &Path, work_dir: &Path) {
    let Some(runs) = run.parent() else { return };
    let latest = runs.join("latest");
    if latest.is_symlink() && !latest.exists() {
        let _ = std::fs::remove_file(&latest);
    }
    let mut dir = runs.to_path_buf();
    while dir.starts_with(work_dir.join("slaves")) && dir != work_dir.join("slaves") {
        if std::fs::remove_dir(&dir).is_err() {
            break; // not empty
        }
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_shrinks_as_the_disk_fills() {
        let p = GcPolicy {
            delay: Duration::from_secs(1000),
            disk_headroom: 0.1,
        };
        assert_eq!(max_age(p, 0.0), Duration::from_secs(900));
        assert_eq!(max_age(p, 0.5), Duration::from_secs(400));
        assert_eq!(max_age(p, 0.95), Duration::ZERO);
    }

    #[test]
    fn only_finished_sandboxes_are_removed() {
        let work = tempfile::tempdir().unwrap();
        let base = work.path().join("slaves/A/frameworks/F/executors");
        let (old, live) = (base.join("E1/runs/c1"), base.join("E2/runs/c2"));
        std::fs::create_dir_all(&old).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        std::os::unix::fs::symlink("c1", base.join("E1/runs/latest")).unwrap();
        let p = GcPolicy {
            delay: Duration::ZERO,
            disk_headroom: 0.1,
        };
        assert_eq!(collect(work.path(), &[live.display().to_string()], p), 1);
        assert!(!base.join("E1").exists(), "empty parents go too");
        assert!(live.exists());
    }
}
