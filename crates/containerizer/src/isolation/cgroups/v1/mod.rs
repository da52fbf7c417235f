//! The cgroups v1 backend: one hierarchy per controller at `<root>/<controller>`, each
//! container in `<root>/<controller>/<parent>/<container id>`, as Mesos'
//! `CgroupsIsolatorProcess` lays them out. One module per controller.

mod cpu;
mod cpuacct;
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

/// A v1 controller (Mesos: subsystem) Strata manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    Cpu,
    Cpuacct,
    Memory,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 4] = [Self::Cpu, Self::Cpuacct, Self::Memory, Self::Pids];

    /// The hierarchy's directory name under the mount root.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cpuacct => "cpuacct",
            Self::Memory => "memory",
            Self::Pids => "pids",
        }
    }

    /// The v1 controllers behind an isolator-level set (`cgroups/cpu` = cpu + cpuacct).
    pub fn for_set(set: ControllerSet) -> Vec<Controller> {
        let mut out = Vec::new();
        if set.cpu {
            out.extend([Self::Cpu, Self::Cpuacct]);
        }
        if set.memory {
            out.push(Self::Memory);
        }
        if set.pids {
            out.push(Self::Pids);
        }
        out
    }
}

/// Where the v1 hierarchies are: a mount root (`/sys/fs/cgroup`) and the parent cgroup
/// (`strata`) under which containers live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    root: PathBuf,
    parent: PathBuf,
}

impl Hierarchy {
    pub fn new(root: impl AsRef<Path>, parent: &str) -> Result<Self, IsolationError> {
        Ok(Self {
            root: root.as_ref().to_path_buf(),
            parent: files::parent_path(parent)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<controller>`.
    pub fn controller_root(&self, c: Controller) -> PathBuf {
        self.root.join(c.name())
    }

    /// `<root>/<controller>/<parent>`.
    pub fn parent_dir(&self, c: Controller) -> PathBuf {
        self.controller_root(c).join(&self.parent)
    }

    /// `<root>/<controller>/<parent>/<id>`.
    pub fn container_dir(&self, c: Controller, id: &ContainerId) -> PathBuf {
        self.parent_dir(c).join(id.as_str())
    }
}

/// Isolates containers with cgroups v1.
#[derive(Debug)]
pub struct CgroupsV1 {
    hierarchy: Hierarchy,
    /// Each enabled controller with its parent directory, canonicalised so co-mounted
    /// controllers (`cpu,cpuacct` behind two symlinks) share one directory.
    parents: Vec<(Controller, PathBuf)>,
    enable_cfs: bool,
}

impl CgroupsV1 {
    /// Checks that each controller of `set` is mounted, creates the parent cgroups and
    /// makes sure the kernel OOM killer is enabled for them (as Mesos does).
    pub fn new(
        hierarchy: Hierarchy,
        set: ControllerSet,
        enable_cfs: bool,
    ) -> Result<Self, IsolationError> {
        if set.is_empty() {
            return Err(IsolationError::Unavailable(
                "no cgroup controller enabled; name at least one cgroups/* isolator".into(),
            ));
        }
        let mut parents = Vec::new();
        for c in Controller::for_set(set) {
            let mount = hierarchy.controller_root(c);
            if !mount.join("cgroup.procs").is_file() {
                return Err(IsolationError::Unavailable(format!(
                    "cgroup v1 controller '{}' is not mounted at {}; mount it or remove \
                     its cgroups/* isolator from --isolation",
                    c.name(),
                    mount.display()
                )));
            }
            let dir = hierarchy.parent_dir(c);
            std::fs::create_dir_all(&dir).map_err(|e| IsolationError::io("create", &dir, e))?;
            let dir = dir
                .canonicalize()
                .map_err(|e| IsolationError::io("resolve", &dir, e))?;
            if c == Controller::Memory {
                memory::enable_oom_killer(&dir)?;
            }
            parents.push((c, dir));
        }
        Ok(Self {
            hierarchy,
            parents,
            enable_cfs,
        })
    }

    pub fn hierarchy(&self) -> &Hierarchy {
        &self.hierarchy
    }

    /// The controllers in use.
    pub fn controllers(&self) -> Vec<Controller> {
        self.parents.iter().map(|(c, _)| *c).collect()
    }

    /// Removes the (empty) parent cgroups; for tests and uninstalling.
    pub fn remove_parent(&self) -> Result<(), IsolationError> {
        for dir in self.distinct(self.parents.iter().map(|(_, d)| d.clone())) {
            match std::fs::remove_dir(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(IsolationError::io("remove", &dir, e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn distinct(&self, dirs: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for d in dirs {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out
    }

    /// The container's directory in each distinct hierarchy.
    fn dirs(&self, id: &ContainerId) -> Vec<PathBuf> {
        self.distinct(self.parents.iter().map(|(_, p)| p.join(id.as_str())))
    }

    fn dir(&self, c: Controller, id: &ContainerId) -> Option<PathBuf> {
        self.parents
            .iter()
            .find(|(pc, _)| *pc == c)
            .map(|(_, p)| p.join(id.as_str()))
    }

    /// The first hierarchy's directory, after checking the container exists.
    fn existing(&self, id: &ContainerId) -> Result<PathBuf, IsolationError> {
        let first = self.dirs(id).into_iter().next();
        first
            .filter(|d| d.is_dir())
            .ok_or_else(|| IsolationError::UnknownContainer(id.clone()))
    }

    fn apply(
        &self,
        id: &ContainerId,
        limits: &Limits,
        initial: bool,
    ) -> Result<(), IsolationError> {
        for (c, parent) in &self.parents {
            let dir = parent.join(id.as_str());
            match c {
                Controller::Cpu => cpu::apply(&dir, limits, self.enable_cfs)?,
                Controller::Cpuacct => {}
                Controller::Memory => memory::apply(&dir, limits, initial)?,
                Controller::Pids => pids::apply(&dir, limits)?,
            }
        }
        Ok(())
    }

    fn prepare_now(&self, id: &ContainerId, limits: &Limits) -> Result<(), IsolationError> {
        check_limits(id, limits)?;
        if self.existing(id).is_ok() {
            return Err(IsolationError::AlreadyExists(id.clone()));
        }
        let mut created = Vec::new();
        let result = self.dirs(id).into_iter().try_for_each(|dir| {
            files::create_container_dir(id, &dir)?;
            created.push(dir);
            Ok(())
        });
        let result = result.and_then(|()| self.apply(id, limits, true));
        if result.is_err() {
            // Leave nothing half-made behind; the directories hold no processes yet.
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
        }
        result
    }

    fn isolate_now(&self, id: &ContainerId, pid: u32) -> Result<(), IsolationError> {
        self.existing(id)?;
        for dir in self.dirs(id) {
            files::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn usage_now(&self, id: &ContainerId) -> Result<Usage, IsolationError> {
        let first = self.existing(id)?;
        let mut usage = Usage::now();
        let (processes, threads) = files::process_counts(&first, "tasks")?;
        usage.processes = Some(processes);
        usage.threads = Some(threads);
        for (c, parent) in &self.parents {
            let dir = parent.join(id.as_str());
            match c {
                Controller::Cpu => cpu::usage(&dir, &mut usage)?,
                Controller::Cpuacct => cpuacct::usage(&dir, &mut usage)?,
                Controller::Memory => memory::usage(&dir, &mut usage)?,
                Controller::Pids => {}
            }
        }
        Ok(usage)
    }

    fn limitation_now(&self, id: &ContainerId) -> Result<Option<Limitation>, IsolationError> {
        self.existing(id)?;
        match self.dir(Controller::Memory, id) {
            Some(dir) => memory::limitation(&dir),
            None => Ok(None),
        }
    }
}

impl Isolator for CgroupsV1 {
    fn name(&self) -> &'static str {
        "cgroups-v1"
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
        async move { self.isolate_now(id, pid) }.boxed()
    }

    fn update<'a>(
        &'a self,
        id: &'a ContainerId,
        limits: &'a Limits,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        async move {
            check_limits(id, limits)?;
            self.existing(id)?;
            self.apply(id, limits, false)
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
        async move { self.limitation_now(id) }.boxed()
    }

    fn cleanup<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), IsolationError>> {
        async move {
            for dir in self.dirs(id) {
                files::drain_and_remove(id, &dir).await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn recover(&self) -> BoxFuture<'_, Result<Vec<ContainerId>, IsolationError>> {
        async move {
            let mut ids = Vec::new();
            for dir in self.distinct(self.parents.iter().map(|(_, d)| d.clone())) {
                ids.extend(files::list_containers(&dir)?);
            }
            ids.sort();
            ids.dedup();
            Ok(ids)
        }
        .boxed()
    }

    fn remove_parent(&self) -> BoxFuture<'_, Result<(), IsolationError>> {
        async move {
            for dir in self.distinct(self.parents.iter().map(|(_, d)| d.clone())) {
                crate::isolation::remove_empty_dir(&dir)?;
            }
            Ok(())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests;
