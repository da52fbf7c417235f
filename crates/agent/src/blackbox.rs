//! The black-box store: one JSON record per ended task under `<work_dir>/blackbox/<fw>/`,
//! completed with the tail of the task's output, kept after its sandbox is
//! garbage-collected (the newest `max_records` are kept).

use crate::sandbox_logs::tail;
use std::path::{Path, PathBuf};
use strata_agent_core::blackbox::BlackBox;

/// Bytes of each of stdout and stderr kept in a record.
pub const TAIL_BYTES: u64 = 4096;

/// Where records live.
#[derive(Debug, Clone)]
pub struct BlackBoxStore {
    root: PathBuf,
    max_records: usize,
}

fn safe(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

impl BlackBoxStore {
    /// A store under `<work_dir>/blackbox`.
    pub fn new(work_dir: &Path, max_records: usize) -> Self {
        Self {
            root: work_dir.join("blackbox"),
            max_records,
        }
    }

    /// Adds the output tails and writes the record.
    pub fn put(&self, mut record: BlackBox) {
        let (fid, tid) = (record.framework_id.to_string(), record.task_id.to_string());
        if !safe(&fid) || !safe(&tid) {
            return;
        }
        let sandbox = Path::new(&record.directory);
        let task_dir = sandbox.join("tasks").join(&tid);
        let dir = if task_dir.is_dir() {
            task_dir
        } else {
            sandbox.to_path_buf()
        };
        record.stdout_tail = tail(&dir.join("stdout"), TAIL_BYTES);
        record.stderr_tail = tail(&dir.join("stderr"), TAIL_BYTES);
        let path = self.root.join(&fid).join(format!("{tid}.json"));
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().unwrap_or(&self.root))?;
            std::fs::write(
                &path,
                serde_json::to_vec(&record).map_err(std::io::Error::other)?,
            )
        };
        if let Err(e) = write() {
            tracing::warn!(task_id = %tid, error = %e, "cannot write the task's black box");
        }
    }

    /// Records of `task_id` (in any framework, or only `framework_id`).
    pub fn get(&self, task_id: &str, framework_id: Option<&str>) -> Vec<BlackBox> {
        if !safe(task_id) {
            return Vec::new();
        }
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| framework_id.is_none_or(|f| e.file_name().to_str() == Some(f)))
            .filter_map(|e| std::fs::read(e.path().join(format!("{task_id}.json"))).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect()
    }

    /// Keeps only the newest `max_records` records.
    pub fn prune(&self) {
        let mut all: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for fw in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            for rec in std::fs::read_dir(fw.path()).into_iter().flatten().flatten() {
                let mtime = rec
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                all.push((mtime, rec.path()));
            }
        }
        if all.len() <= self.max_records {
            return;
        }
        all.sort();
        let excess = all.len() - self.max_records;
        for (_, p) in all.into_iter().take(excess) {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::{ExecutorId, FrameworkId, TaskId, TaskState, TaskStatus};

    #[test]
    fn records_keep_output_tails_and_outlive_the_sandbox() {
        let work = tempfile::tempdir().unwrap();
        let sandbox = work.path().join("sb");
        std::fs::create_dir_all(&sandbox).unwrap();
        std::fs::write(sandbox.join("stdout"), "x".repeat(10_000) + "last words").unwrap();
        let mut s = TaskStatus::new(TaskId::new("t1"), TaskState::Failed);
        s.message = Some("Command exited with status 3".into());
        let rec = BlackBox::from_status(
            &FrameworkId::new("f"),
            &ExecutorId::new("t1"),
            &sandbox.display().to_string(),
            &s,
            1.0,
        );
        let store = BlackBoxStore::new(work.path(), 1);
        store.put(rec);
        std::fs::remove_dir_all(&sandbox).unwrap();
        let got = store.get("t1", None);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].exit_code, Some(3));
        assert!(
            got[0].stdout_tail.ends_with("last words")
                && got[0].stdout_tail.len() == TAIL_BYTES as usize
        );
        assert!(store.get("../etc", None).is_empty());
        let mut s2 = s.clone();
        s2.task_id = TaskId::new("t2");
        std::thread::sleep(std::time::Duration::from_millis(10));
        store.put(BlackBox::from_status(
            &FrameworkId::new("f"),
            &ExecutorId::new("t2"),
            "/nonexistent",
            &s2,
            2.0,
        ));
        store.prune();
        assert!(
            store.get("t1", None).is_empty() && store.get("t2", None).len() == 1,
            "only the newest is kept"
        );
    }
}
