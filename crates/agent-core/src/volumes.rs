//! Checkpointed resources on the agent: the dynamic reservations and persistent volumes
//! the master sends (`CHECKPOINT_RESOURCES`), applied to the configured total and
//! persisted; the directories of persistent volumes
//! (`<work_dir>/volumes/roles/<role>/<persistence id>`, `/` in roles written as a space
//! as Mesos does); and the links (or, with a mount namespace, bind mounts) that put a
//! volume into a task's sandbox.

use crate::agent::Agent;
use crate::checkpoint::CheckpointOp;
use crate::io::{Effect, ExecutorKind};
use strata_api::agent_link::CheckpointResources;
use strata_api::{ExecutorInfo, TaskInfo};
use strata_resources::operations::{apply_checkpointed, checkpointed, container_path_problem};
use strata_resources::{Resource, Resources, WireFormat, WireResource};

/// A filesystem change for persistent volumes, carried out by the shell in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeOp {
    /// Create the volume's directory (kept if it exists).
    Create { path: String },
    /// Remove the volume's directory and everything in it.
    Destroy { path: String },
    /// Make `<sandbox>/<container_path>` a link to the volume at `source`
    /// (`container_path` is relative and has no `..`).
    Link {
        source: String,
        sandbox: String,
        container_path: String,
        read_only: bool,
    },
    /// Create the volume at `source` and the empty directory `<sandbox>/<container_path>`
    /// it will be bind-mounted on (see [`VolumeBind`]).
    MountPoint {
        source: String,
        sandbox: String,
        container_path: String,
    },
    /// Like `MountPoint`, then bind-mount the volume there inside the mount namespace of
    /// the running container whose process is `pid` (read-only when asked): for tasks
    /// given to an executor that already runs.
    MountInto {
        pid: u32,
        source: String,
        sandbox: String,
        container_path: String,
        read_only: bool,
    },
}

/// A volume bind-mounted into a new container (`Config::bind_volumes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeBind {
    /// The volume's directory on the host.
    pub source: String,
    /// `<sandbox>/<container_path>`.
    pub target: String,
    /// `Volume.mode: RO`: the container cannot write to it.
    pub read_only: bool,
}

/// Where a persistent volume of `role` lives on the agent.
pub fn volume_path(work_dir: &str, role: &str, persistence_id: &str) -> String {
    format!(
        "{work_dir}/volumes/roles/{}/{persistence_id}",
        role.replace('/', " ")
    )
}

fn volume_ids(r: &Resources) -> Vec<(String, String)> {
    r.iter()
        .filter_map(|v| Some((v.role().to_string(), v.persistence_id()?.to_string())))
        .collect()
}

impl Agent {
    /// Dynamic reservations and volumes held now (what the Hello reports).
    pub fn checkpointed_wire(&self) -> Vec<WireResource> {
        checkpointed(&self.total).to_wire(WireFormat::PostRefinement)
    }

    /// At start: applies the checkpointed resources read back from disk. Resources that
    /// no longer fit the configured ones are dropped with an error in the log.
    pub fn recover_resources(&mut self, wire: &[WireResource]) {
        if wire.is_empty() {
            return;
        }
        let applied = Resources::from_wire(wire)
            .map_err(|e| e.to_string())
            .and_then(|cp| apply_checkpointed(&self.base_total, &cp));
        match applied {
            Ok(total) => self.total = total,
            Err(e) => tracing::error!(error = %e, "ignoring the checkpointed resources"),
        }
    }

    /// `CHECKPOINT_RESOURCES`: persist the new set, then create new volumes' directories
    /// and remove destroyed ones (unless a live task still uses them).
    pub(crate) fn checkpoint_resources(&mut self, msg: CheckpointResources, out: &mut Vec<Effect>) {
        let new = match Resources::from_wire(&msg.resources) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the master sent invalid checkpointed resources");
                return;
            }
        };
        let total = match apply_checkpointed(&self.base_total, &new) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "the master's checkpointed resources do not fit this agent");
                return;
            }
        };
        let old = checkpointed(&self.total);
        self.total = total;
        let op = CheckpointOp::Resources {
            resources: new.to_wire(WireFormat::PostRefinement),
        };
        out.push(Effect::Checkpoint(Box::new(op)));
        let (before, after) = (volume_ids(&old), volume_ids(&new));
        for (role, id) in after.iter().filter(|v| !before.contains(v)) {
            let path = volume_path(&self.cfg.work_dir, role, id);
            out.push(Effect::Volume(VolumeOp::Create { path }));
        }
        for (role, id) in before.iter().filter(|v| !after.contains(v)) {
            if self.volume_in_use(role, id) {
                tracing::warn!(role, persistence_id = %id, "keeping the directory of a destroyed volume a live task still uses");
                continue;
            }
            let path = volume_path(&self.cfg.work_dir, role, id);
            out.push(Effect::Volume(VolumeOp::Destroy { path }));
        }
    }

    fn volume_in_use(&self, role: &str, id: &str) -> bool {
        let uses = |wire: &[WireResource]| {
            Resources::from_wire(wire)
                .unwrap_or_default()
                .iter()
                .any(|r| r.role() == role && r.persistence_id() == Some(id))
        };
        self.frameworks
            .values()
            .flat_map(|f| f.executors.values())
            .any(|ex| {
                ex.phase != crate::state::ExecutorPhase::Terminated
                    && (uses(&ex.info.resources)
                        || ex.launched.values().any(|t| uses(&t.info.resources))
                        || ex.queued.iter().flatten().any(|t| uses(&t.resources)))
            })
    }

    /// Links for the persistent volumes used by `tasks` (and a new executor), pushed
    /// before the tasks reach the executor. Group tasks get them in their own sandbox.
    /// With `bind_volumes`, a new container (`executor` given) gets mount points instead
    /// and the binds to make in its mount namespace are returned; tasks sent to a running
    /// container (`running`: its process) get theirs mounted into its namespace; a
    /// container not started yet (no pid) still gets links.
    pub(crate) fn link_volumes(
        &self,
        directory: &str,
        kind: &ExecutorKind,
        executor: Option<&ExecutorInfo>,
        running: Option<u32>,
        tasks: &[TaskInfo],
        out: &mut Vec<Effect>,
    ) -> Vec<VolumeBind> {
        let bind = self.cfg.bind_volumes && executor.is_some();
        let mount_into = running.filter(|_| self.cfg.bind_volumes && executor.is_none());
        let mut wanted: Vec<(String, Resource)> = Vec::new();
        let mut add = |dir: String, wire: &[WireResource]| {
            for r in Resources::from_wire(wire).unwrap_or_default() {
                if r.is_persistent_volume() {
                    wanted.push((dir.clone(), r));
                }
            }
        };
        if let Some(e) = executor {
            add(directory.to_string(), &e.resources);
        }
        for t in tasks.iter().filter(|t| !is_docker(t)) {
            let dir = match kind {
                ExecutorKind::Default => format!("{directory}/tasks/{}", t.task_id),
                _ => directory.to_string(),
            };
            add(dir, &t.resources);
        }
        let mut binds = Vec::new();
        for (dir, v) in wanted {
            let Some(op) = self.link_for(&dir, &v) else {
                continue;
            };
            match (op, mount_into) {
                (
                    VolumeOp::Link {
                        source,
                        sandbox,
                        container_path,
                        read_only,
                    },
                    _,
                ) if bind => {
                    binds.push(VolumeBind {
                        source: source.clone(),
                        target: format!("{sandbox}/{container_path}"),
                        read_only,
                    });
                    out.push(Effect::Volume(VolumeOp::MountPoint {
                        source,
                        sandbox,
                        container_path,
                    }));
                }
                (
                    VolumeOp::Link {
                        source,
                        sandbox,
                        container_path,
                        read_only,
                    },
                    Some(pid),
                ) => out.push(Effect::Volume(VolumeOp::MountInto {
                    pid,
                    source,
                    sandbox,
                    container_path,
                    read_only,
                })),
                (op, _) => out.push(Effect::Volume(op)),
            }
        }
        binds
    }

    /// For DOCKER tasks, which get their volumes as bind mounts instead of links: the
    /// `STRATA_VOLUMES` variable for the executor, a JSON object of container path →
    /// host directory (`None` when no DOCKER task uses a volume).
    pub(crate) fn docker_volumes_env(&self, tasks: &[TaskInfo]) -> Option<(String, String)> {
        let mut map = serde_json::Map::new();
        for t in tasks.iter().filter(|t| is_docker(t)) {
            for v in Resources::from_wire(&t.resources)
                .unwrap_or_default()
                .iter()
            {
                let (Some(id), Some(path)) = (v.persistence_id(), v.volume_container_path()) else {
                    continue;
                };
                if container_path_problem(path).is_some() {
                    continue;
                }
                let host = volume_path(&self.cfg.work_dir, v.role(), id);
                map.insert(path.to_string(), serde_json::Value::String(host));
            }
        }
        (!map.is_empty()).then(|| {
            (
                "STRATA_VOLUMES".to_string(),
                serde_json::Value::Object(map).to_string(),
            )
        })
    }

    fn link_for(&self, dir: &str, v: &Resource) -> Option<VolumeOp> {
        let id = v.persistence_id()?;
        let path = v.volume_container_path().unwrap_or_default();
        if let Some(problem) = container_path_problem(path) {
            tracing::warn!(
                persistence_id = id,
                container_path = path,
                problem,
                "not linking a volume with an unusable container path"
            );
            return None;
        }
        Some(VolumeOp::Link {
            source: volume_path(&self.cfg.work_dir, v.role(), id),
            sandbox: dir.to_string(),
            container_path: path.to_string(),
            read_only: v.volume_read_only(),
        })
    }
}

fn is_docker(t: &TaskInfo) -> bool {
    t.container.as_ref().is_some_and(|c| c.is_docker())
}
