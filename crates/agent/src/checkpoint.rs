//! The agent's checkpoint store under `<work_dir>/meta`: applies the core's checkpoint
//! operations durably (write a temp file, fsync, rename) and reads them back after a
//! restart; plus container records (pid and start time of every executor process) used
//! to find still-running executors and orphans.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use strata_agent_core::checkpoint::{
    CheckpointOp, ExecutorRecord, RecoveredExecutor, RecoveredFramework, RecoveredState,
    RecoveredTask,
};
use strata_api::{
    ContainerId, ExecutorId, FrameworkId, FrameworkInfo, TaskId, TaskInfo, TaskStatus,
};

/// Latest status and pending updates of one task, as stored.
#[derive(Debug, Serialize, Deserialize)]
struct UpdatesFile {
    latest: Option<TaskStatus>,
    pending: Vec<TaskStatus>,
}

/// Every executor process the agent started, so a restarted agent can find it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub container_id: ContainerId,
    pub framework_id: FrameworkId,
    pub executor_id: ExecutorId,
    pub pid: u32,
    /// /proc start time, to tell the process from a later one with the same pid.
    pub start_time: u64,
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    write_atomic(path, &bytes)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice(&bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring a corrupt checkpoint");
            None
        }
    }
}

fn remove_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn subdirs(path: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = dir
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// The checkpoint directory tree.
#[derive(Debug, Clone)]
pub struct Store {
    meta: PathBuf,
}

impl Store {
    /// A store under `<work_dir>/meta`.
    pub fn new(work_dir: &Path) -> Self {
        Self {
            meta: work_dir.join("meta"),
        }
    }

    fn framework_dir(&self, fid: &FrameworkId) -> PathBuf {
        self.meta.join("frameworks").join(fid.as_str())
    }

    fn executor_dir(&self, fid: &FrameworkId, eid: &ExecutorId) -> PathBuf {
        self.framework_dir(fid).join("executors").join(eid.as_str())
    }

    fn task_dir(&self, fid: &FrameworkId, eid: &ExecutorId, tid: &TaskId) -> PathBuf {
        self.executor_dir(fid, eid).join("tasks").join(tid.as_str())
    }

    /// Applies one operation durably.
    pub fn apply(&self, op: &CheckpointOp) -> std::io::Result<()> {
        match op {
            CheckpointOp::Framework { info } => {
                let Some(fid) = info.id.as_ref() else {
                    return Ok(());
                };
                write_json(&self.framework_dir(fid).join("framework.json"), info)
            }
            CheckpointOp::Executor {
                framework_id,
                record,
            } => {
                let dir = self.executor_dir(framework_id, &record.info.executor_id);
                remove_dir(&dir)?;
                write_json(&dir.join("executor.json"), record)
            }
            CheckpointOp::Task {
                framework_id,
                executor_id,
                task,
            } => write_json(
                &self
                    .task_dir(framework_id, executor_id, &task.task_id)
                    .join("task.json"),
                task,
            ),
            CheckpointOp::Updates {
                framework_id,
                executor_id,
                task_id,
                latest,
                pending,
            } => {
                let file = UpdatesFile {
                    latest: latest.clone(),
                    pending: pending.clone(),
                };
                write_json(
                    &self
                        .task_dir(framework_id, executor_id, task_id)
                        .join("updates.json"),
                    &file,
                )
            }
            CheckpointOp::RemoveTask {
                framework_id,
                executor_id,
                task_id,
            } => remove_dir(&self.task_dir(framework_id, executor_id, task_id)),
            CheckpointOp::RemoveExecutor {
                framework_id,
                executor_id,
            } => remove_dir(&self.executor_dir(framework_id, executor_id)),
            CheckpointOp::RemoveFramework { framework_id } => {
                remove_dir(&self.framework_dir(framework_id))
            }
            CheckpointOp::Resources { resources } => write_json(&self.resources_file(), resources),
        }
    }

    /// The agent's work dir (the parent of `meta`).
    pub fn work_dir(&self) -> &Path {
        self.meta.parent().unwrap_or(&self.meta)
    }

    /// `meta/resources/resources.json`: the dynamic reservations and persistent volumes.
    fn resources_file(&self) -> PathBuf {
        self.meta.join("resources").join("resources.json")
    }

    /// The checkpointed resources written last (none if never written or unreadable).
    pub fn load_resources(&self) -> Vec<strata_api::WireResource> {
        read_json(&self.resources_file()).unwrap_or_default()
    }

    /// Reads every checkpointed framework, executor and task (pids not yet resolved).
    pub fn load(&self) -> RecoveredState {
        let mut state = RecoveredState::default();
        for fdir in subdirs(&self.meta.join("frameworks")) {
            let Some(info) = read_json::<FrameworkInfo>(&fdir.join("framework.json")) else {
                continue;
            };
            let mut executors = Vec::new();
            for edir in subdirs(&fdir.join("executors")) {
                let Some(record) = read_json::<ExecutorRecord>(&edir.join("executor.json")) else {
                    continue;
                };
                let tasks = subdirs(&edir.join("tasks"))
                    .into_iter()
                    .filter_map(|t| load_task(&t))
                    .collect();
                executors.push(RecoveredExecutor {
                    record,
                    tasks,
                    pid: None,
                });
            }
            state
                .frameworks
                .push(RecoveredFramework { info, executors });
        }
        state
    }

    fn containers_dir(&self) -> PathBuf {
        self.meta.join("containers")
    }

    /// Records a started executor process.
    pub fn put_container(&self, record: &ContainerRecord) -> std::io::Result<()> {
        write_json(
            &self
                .containers_dir()
                .join(format!("{}.json", record.container_id)),
            record,
        )
    }

    /// Forgets an executor process that ended.
    pub fn remove_container(&self, id: &ContainerId) {
        let _ = std::fs::remove_file(self.containers_dir().join(format!("{id}.json")));
    }

    /// Every recorded executor process.
    pub fn containers(&self) -> Vec<ContainerRecord> {
        let Ok(dir) = std::fs::read_dir(self.containers_dir()) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| read_json(&e.path()))
            .collect()
    }
}

fn load_task(dir: &Path) -> Option<RecoveredTask> {
    let info = read_json::<TaskInfo>(&dir.join("task.json"))?;
    let updates = read_json::<UpdatesFile>(&dir.join("updates.json")).unwrap_or(UpdatesFile {
        latest: None,
        pending: Vec::new(),
    });
    Some(RecoveredTask {
        info,
        latest: updates.latest,
        pending: updates.pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_agent_core::ExecutorKind;
    use strata_api::{ExecutorInfo, TaskState};

    fn fw() -> FrameworkInfo {
        serde_json::from_value(serde_json::json!({"user": "u", "name": "n", "id": {"value": "f1"}, "checkpoint": true})).unwrap()
    }

    fn task(id: &str) -> TaskInfo {
        serde_json::from_value(
            serde_json::json!({"name": id, "task_id": {"value": id}, "command": {"value": "true"}}),
        )
        .unwrap()
    }

    #[test]
    fn operations_round_trip_through_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let fid = FrameworkId::new("f1");
        let eid = ExecutorId::new("e1");
        let info: ExecutorInfo =
            serde_json::from_value(serde_json::json!({"executor_id": {"value": "e1"}})).unwrap();
        let record = ExecutorRecord {
            info,
            kind: ExecutorKind::Command,
            container_id: ContainerId::new("c1"),
            directory: "/sb".into(),
        };
        let running = TaskStatus::new(TaskId::new("t1"), TaskState::Running);
        let ops = vec![
            CheckpointOp::Framework { info: fw() },
            CheckpointOp::Executor {
                framework_id: fid.clone(),
                record: record.clone(),
            },
            CheckpointOp::Task {
                framework_id: fid.clone(),
                executor_id: eid.clone(),
                task: task("t1"),
            },
            CheckpointOp::Task {
                framework_id: fid.clone(),
                executor_id: eid.clone(),
                task: task("t2"),
            },
            CheckpointOp::Updates {
                framework_id: fid.clone(),
                executor_id: eid.clone(),
                task_id: TaskId::new("t1"),
                latest: Some(running.clone()),
                pending: vec![running.clone()],
            },
            CheckpointOp::RemoveTask {
                framework_id: fid.clone(),
                executor_id: eid.clone(),
                task_id: TaskId::new("t2"),
            },
        ];
        for op in &ops {
            store.apply(op).unwrap();
        }
        let state = store.load();
        assert_eq!(state.frameworks.len(), 1);
        let ex = &state.frameworks[0].executors[0];
        assert_eq!(ex.record, record);
        assert_eq!(ex.tasks.len(), 1);
        assert_eq!(ex.tasks[0].latest, Some(running.clone()));
        assert_eq!(ex.tasks[0].pending, vec![running]);
        store
            .apply(&CheckpointOp::RemoveFramework { framework_id: fid })
            .unwrap();
        assert!(store.load().frameworks.is_empty());
    }

    #[test]
    fn container_records_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let r = ContainerRecord {
            container_id: ContainerId::new("c1"),
            framework_id: FrameworkId::new("f"),
            executor_id: ExecutorId::new("e"),
            pid: 42,
            start_time: 7,
        };
        store.put_container(&r).unwrap();
        std::fs::write(dir.path().join("meta/containers/bad.json"), b"{").unwrap();
        assert_eq!(store.containers(), vec![r.clone()]);
        store.remove_container(&r.container_id);
        assert!(store.containers().is_empty());
    }
}
