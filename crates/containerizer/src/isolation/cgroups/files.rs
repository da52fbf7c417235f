//! Reading, writing and parsing cgroup control files, and draining and removing a
//! container's cgroup directories. Shared by both versions.

use crate::isolation::{ContainerId, IsolationError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long cleanup keeps killing and retrying `rmdir` before giving up (Mesos' v2
/// isolator retries for about 5 s, as crun does).
pub(crate) const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);
const CLEANUP_DELAY_MAX: Duration = Duration::from_millis(100);

pub(crate) fn read(path: &Path) -> Result<String, IsolationError> {
    std::fs::read_to_string(path).map_err(|e| IsolationError::io("read", path, e))
}

/// Writes `value` to an existing control file (never creates one, like cgroupfs).
pub(crate) fn write(path: &Path, value: &str) -> Result<(), IsolationError> {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|e| IsolationError::io("write", path, e))
}

pub(crate) fn read_u64(path: &Path) -> Result<u64, IsolationError> {
    let text = read(path)?;
    text.trim()
        .parse()
        .map_err(|_| IsolationError::parse(path, format!("expected a number, got {text:?}")))
}

pub(crate) fn read_i64(path: &Path) -> Result<i64, IsolationError> {
    let text = read(path)?;
    text.trim()
        .parse()
        .map_err(|_| IsolationError::parse(path, format!("expected a number, got {text:?}")))
}

/// A number or `max` (unlimited → `None`), as in v2 `memory.max` and `pids.max`.
pub(crate) fn read_max(path: &Path) -> Result<Option<u64>, IsolationError> {
    let text = read(path)?;
    match text.trim() {
        "max" => Ok(None),
        n => n.parse().map(Some).map_err(|_| {
            IsolationError::parse(path, format!("expected a number or 'max', got {text:?}"))
        }),
    }
}

/// `key value` lines (cpu.stat, memory.stat, cpuacct.stat, memory.events,
/// memory.oom_control). Lines whose value is not a number are skipped.
pub(crate) fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once(' ')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

pub(crate) fn read_flat_keyed(path: &Path) -> Result<BTreeMap<String, u64>, IsolationError> {
    read(path).map(|t| parse_flat_keyed(&t))
}

/// Pids listed in one `cgroup.procs` (or `tasks`, `cgroup.threads`) file.
pub(crate) fn read_ids(path: &Path) -> Result<Vec<u32>, IsolationError> {
    let text = read(path)?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse()
                .map_err(|_| IsolationError::parse(path, format!("bad pid {l:?}")))
        })
        .collect()
}

/// `dir` and every cgroup below it, deepest first (the order `rmdir` needs).
pub(crate) fn cgroup_tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.extend(cgroup_tree(&entry.path()));
            }
        }
    }
    out.push(dir.to_path_buf());
    out
}

/// Ids listed in `file` of `dir` and every cgroup below it; a cgroup removed meanwhile
/// counts as empty.
pub(crate) fn ids_recursive(dir: &Path, file: &str) -> Result<Vec<u32>, IsolationError> {
    let mut ids = Vec::new();
    for cgroup in cgroup_tree(dir) {
        match read_ids(&cgroup.join(file)) {
            Ok(found) => ids.extend(found),
            Err(IsolationError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Counts of processes and threads in `dir` and below (`threads_file`: v1 `tasks`,
/// v2 `cgroup.threads`).
pub(crate) fn process_counts(dir: &Path, threads_file: &str) -> Result<(u32, u32), IsolationError> {
    let count = |v: Vec<u32>| u32::try_from(v.len()).unwrap_or(u32::MAX);
    Ok((
        count(ids_recursive(dir, "cgroup.procs")?),
        count(ids_recursive(dir, threads_file)?),
    ))
}

/// Creates a container cgroup directory; an existing one means the container exists.
pub(crate) fn create_container_dir(id: &ContainerId, dir: &Path) -> Result<(), IsolationError> {
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(IsolationError::AlreadyExists(id.clone()))
        }
        Err(e) => Err(IsolationError::io("create", dir, e)),
    }
}

/// SIGKILLs every process in `dir` and below until none is left, then removes the
/// directories deepest first, retrying `EBUSY` (a cgroup can stay busy briefly after its
/// last process is gone). A missing `dir` is already clean.
pub(crate) async fn drain_and_remove(id: &ContainerId, dir: &Path) -> Result<(), IsolationError> {
    if !dir.exists() {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + CLEANUP_TIMEOUT;
    let mut delay = Duration::from_millis(1);
    loop {
        let pids = ids_recursive(dir, "cgroup.procs")?;
        if pids.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(IsolationError::CleanupIncomplete {
                id: id.clone(),
                path: dir.to_path_buf(),
                pids,
            });
        }
        for pid in pids {
            if let Ok(raw) = i32::try_from(pid) {
                // ESRCH: it exited between the read and the kill.
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(CLEANUP_DELAY_MAX);
    }
    for cgroup in cgroup_tree(dir) {
        remove_dir(id, &cgroup, deadline).await?;
    }
    Ok(())
}

async fn remove_dir(
    id: &ContainerId,
    dir: &Path,
    deadline: tokio::time::Instant,
) -> Result<(), IsolationError> {
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                if tokio::time::Instant::now() >= deadline {
                    let pids = read_ids(&dir.join("cgroup.procs")).unwrap_or_default();
                    return Err(IsolationError::CleanupIncomplete {
                        id: id.clone(),
                        path: dir.to_path_buf(),
                        pids,
                    });
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(CLEANUP_DELAY_MAX);
            }
            Err(e) => return Err(IsolationError::io("remove", dir, e)),
        }
    }
}

/// Checks a parent cgroup name (`strata`, `system.slice/strata`): relative, no `.`/`..`.
pub(crate) fn parent_path(parent: &str) -> Result<PathBuf, IsolationError> {
    let normal = parent
        .split('/')
        .all(|part| !part.is_empty() && part != "." && part != "..");
    if parent.is_empty() || !normal {
        return Err(IsolationError::Unavailable(format!(
            "parent cgroup '{parent}' must be a relative path such as 'strata' \
             (no leading '/', '.' or '..')"
        )));
    }
    Ok(PathBuf::from(parent))
}

/// Container ids of the cgroup directories directly under `parent`.
pub(crate) fn list_containers(parent: &Path) -> Result<Vec<ContainerId>, IsolationError> {
    let entries = match std::fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IsolationError::io("list", parent, e)),
    };
    let mut ids: Vec<ContainerId> = entries
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| ContainerId::new(e.file_name().to_string_lossy().into_owned()).ok())
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed() {
        let parsed = parse_flat_keyed("user 12\nsystem 3\nbogus line here\nempty\n");
        assert_eq!(parsed.get("user"), Some(&12));
        assert_eq!(parsed.get("system"), Some(&3));
        assert_eq!(parsed.len(), 2);
    }

    #[test]
    fn files_and_trees() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("n"), "42\n").unwrap();
        std::fs::write(p.join("m"), "max\n").unwrap();
        std::fs::write(p.join("cgroup.procs"), "5\n7\n").unwrap();
        std::fs::create_dir_all(p.join("a/b")).unwrap();
        std::fs::write(p.join("a/b/cgroup.procs"), "9\n5\n").unwrap();
        assert_eq!(read_u64(&p.join("n")).unwrap(), 42);
        assert_eq!(read_max(&p.join("n")).unwrap(), Some(42));
        assert_eq!(read_max(&p.join("m")).unwrap(), None);
        assert!(matches!(
            read_u64(&p.join("m")),
            Err(IsolationError::Parse { .. })
        ));
        assert_eq!(ids_recursive(p, "cgroup.procs").unwrap(), vec![5, 7, 9]);
        assert_eq!(
            cgroup_tree(p),
            vec![p.join("a/b"), p.join("a"), p.to_path_buf()]
        );
        // Control files are never created by a write.
        let err = write(&p.join("missing"), "1").unwrap_err();
        assert!(err.to_string().contains("cannot write"), "{err}");
        assert!(!p.join("missing").exists());
    }
}
