//! The cgroups v2 backend (unified hierarchy). As Mesos' cgroups2 isolator lays it out,
//! each container has `<root>/<parent>/<id>` (limits are written here) and
//! `<root>/<parent>/<id>/leaf` (its processes), so the container may later create its
//! own sub-cgroups without breaking the "no internal processes" rule. Controllers are
//! enabled through `cgroup.subtree_control` from the root down to the parent.

mod cpu;
mod memory;
mod pids;

use super::files;
use crate::isolation::types::check_limits;
use crate::isolation::{
    ContainerId, ControllerSet, IsolationError, Isolator, Limitation, Limits, Usage,
};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use std::path::{Path, PathBuf};

/// The leaf cgroup holding a container's processes.
pub const LEAF: &str = "leaf";

/// Isolates containers with cgroups v2.
#[derive(Debug)]
pub struct CgroupsV2 {
    root: PathBuf,
    parent: PathBuf,
    controllers: ControllerSet,
    enable_cfs: bool,
}

fn names(set: ControllerSet) -> Vec<&'static str> {
    [("cpu", set.cpu), ("memory", set.memory), ("pids", set.pids)]
        .into_iter()
        .filter_map(|(n, on)| on.then_some(n))
        .collect()
}

impl CgroupsV2 {
    /// Checks that `root` is a unified mount offering the controllers, creates the parent
    /// cgroup and enables the controllers on the way down to it. An empty set is allowed:
    /// the backend then only groups, counts and kills processes.
    pub fn new(
        root: impl AsRef<Path>,
        parent: &str,
        controllers: ControllerSet,
        enable_cfs: bool,
    ) -> Result<Self, IsolationError> {
        let root = root.as_ref().to_path_buf();
        let parent_rel = files::parent_path(parent)?;
        let offered = files::read(&root.join("cgroup.controllers")).map_err(|e| {
            IsolationError::Unavailable(format!(
                "{} is not a cgroup v2 mount ({e}); mount cgroup2 there or pick the v1 root",
                root.display()
            ))
        })?;
        for name in names(controllers) {
            if !offered.split_whitespace().any(|c| c == name) {
                return Err(IsolationError::Unavailable(format!(
                    "cgroup v2 controller '{name}' is not offered at {} (cgroup.controllers: \
                     '{}'); enable it in the parent cgroup or remove its cgroups/* isolator",
                    root.display(),
                    offered.trim()
                )));
            }
        }
        let iso = Self {
            parent: root.join(&parent_rel),
            root,
            controllers,
            enable_cfs,
        };
        std::fs::create_dir_all(&iso.parent)
            .map_err(|e| IsolationError::io("create", &iso.parent, e))?;
        let mut level = iso.root.clone();
        enable_controllers(&level, controllers)?;
        for part in parent_rel.components() {
            level.push(part);
            enable_controllers(&level, controllers)?;
        }
        Ok(iso)
    }

    /// `<root>/<parent>`.
    pub fn parent_dir(&self) -> &Path {
        &self.parent
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<parent>/<id>`: where the limits are.
    pub fn container_dir(&self, id: &ContainerId) -> PathBuf {
        self.parent.join(id.as_str())
    }

    /// Removes the (empty) parent cgroup; for tests and uninstalling.
    pub fn remove_parent(&self) -> Result<(), IsolationError> {
        match std::fs::remove_dir(&self.parent) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(IsolationError::io("remove", &self.parent, e))
            }
            _ => Ok(()),
        }
    }

    fn existing(&self, id: &ContainerId) -> Result<PathBuf, IsolationError> {
        let dir = self.container_dir(id);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(IsolationError::UnknownContainer(id.clone()))
        }
    }

    fn apply(&self, dir: &Path, limits: &Limits, initial: bool) -> Result<(), IsolationError> {
        if self.controllers.cpu {
            cpu::apply(dir, limits, self.enable_cfs)?;
        }
        if self.controllers.memory {
            memory::apply(dir, limits, initial)?;
        }
        if self.controllers.pids {
            pids::apply(dir, limits)?;
        }
        Ok(())
    }

    fn prepare_now(&self, id: &ContainerId, limits: &Limits) -> Result<(), IsolationError> {
        check_limits(id, limits)?;
        let dir = self.container_dir(id);
        files::create_container_dir(id, &dir)?;
        let leaf = dir.join(LEAF);
        let result = std::fs::create_dir(&leaf)
            .map_err(|e| IsolationError::io("create", &leaf, e))
            .and_then(|()| self.apply(&dir, limits, true));
        if result.is_err() {
            let _ = std::fs::remove_dir(&leaf);
            let _ = std::fs::remove_dir(&dir);
        }
        result
    }

    fn usage_now(&self, id: &ContainerId) -> Result<Usage, IsolationError> {
        let dir = self.existing(id)?;
        let mut usage = Usage::now();
        let (processes, threads) = files::process_counts(&dir, "cgroup.threads")?;
        usage.processes = Some(processes);
        usage.threads = Some(threads);
        cpu::usage(&dir, &mut usage)?;
        if self.controllers.memory {
            memory::usage(&dir, &mut usage)?;
        }
        Ok(usage)
    }

    async fn cleanup_now(&self, id: &ContainerId) -> Result<(), IsolationError> {
        let dir = self.container_dir(id);
        let kill = dir.join("cgroup.kill");
        // cgroup.kill (Linux 5.14) SIGKILLs the whole subtree at once, forks included;
        // the drain loop below covers older kernels and confirms it.
        if kill.exists() {
            files::write(&kill, "1")?;
        }
        files::drain_and_remove(id, &dir).await
    }
}

/// Enables in `dir/cgroup.subtree_control` the controllers not yet enabled there, in
/// one write (`+cpu +memory +pids`).
fn enable_controllers(dir: &Path, set: ControllerSet) -> Result<(), IsolationError> {
    let file = dir.join("cgroup.subtree_control");
    let enabled = files::read(&file)?;
    let missing: Vec<String> = names(set)
        .into_iter()
        .filter(|n| !enabled.split_whitespace().any(|c| c == *n))
        .map(|n| format!("+{n}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    files::write(&file, &missing.join(" ")).map_err(|e| {
        IsolationError::Unavailable(format!(
            "{e}; a cgroup that holds processes cannot hand controllers to children, \
             so no process may run directly in {} (move the agent elsewhere or pick \
             another parent cgroup)",
            dir.display()
        ))
    })
}

impl Isolator for CgroupsV2 {
    fn name(&self) -> &'static str {
        "cgroups-v2"
    }

    fn prepare<'a>(
        &'a self,
        id: &'a ContainerId,
        limits: &'a Limits,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        async move { self.prepare_now(id, limits) }.boxed()
    }

    fn isolate<'a>(
        &'a self,
        id: &'a ContainerId,
        pid: u32,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        async move {
            let dir = self.existing(id)?;
            files::write(&dir.join(LEAF).join("cgroup.procs"), &pid.to_string())
        }
        .boxed()
    }

    fn update<'a>(
        &'a self,
        id: &'a ContainerId,
        limits: &'a Limits,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        async move {
            check_limits(id, limits)?;
            let dir = self.existing(id)?;
            self.apply(&dir, limits, false)
        }
        .boxed()
    }

    fn usage<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<Usage, IsolationError>> {
        async move { self.usage_now(id) }.boxed()
    }

    fn limitation<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<Limitation>, IsolationError>> {
        async move {
            let dir = self.existing(id)?;
            if self.controllers.memory {
                memory::limitation(&dir)
            } else {
                Ok(None)
            }
        }
        .boxed()
    }

    fn cleanup<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), IsolationError>> {
        self.cleanup_now(id).boxed()
    }

    fn recover(&self) -> BoxFuture<'_, Result<Vec<ContainerId>, IsolationError>> {
        async move { files::list_containers(&self.parent) }.boxed()
    }

    fn remove_parent(&self) -> BoxFuture<'_, Result<(), IsolationError>> {
        async move { crate::isolation::remove_empty_dir(&self.parent) }.boxed()
    }
}

#[cfg(test)]
mod tests;
