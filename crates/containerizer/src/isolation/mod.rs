//! Resource isolation of containers: the [`Isolator`] trait and its backends (cgroups v1,
//! cgroups v2, no isolation, and a fake for tests), plus `--isolation` flag parsing.
//!
//! An isolator owns the kernel-side accounting of a container (its cgroups), never the
//! processes' lifecycle: the containerizer starts the executor, then hands its pid to
//! [`Isolator::isolate`]. The lifecycle, as in Mesos' `MesosContainerizer`, is
//! `prepare` → spawn → `isolate` → (`update`, `usage`, `watch`)* → `cleanup`.
//!
//! # Using it from the agent
//! 1. Startup: [`parse_isolation`] the `--isolation` flag, then [`build`]; on `Err`, log
//!    a warning and use [`NoIsolation`]. Then [`Isolator::recover`] and `cleanup` every
//!    container the agent's checkpoint does not know.
//! 2. Launch: `prepare(id, limits)` → spawn → `isolate(id, pid)`; if `isolate` fails,
//!    destroy the process and `cleanup`.
//! 3. Spawn a task awaiting `watch(id)`: `Ok(limitation)` means destroy the container and
//!    fail its tasks with `REASON_CONTAINER_LIMITATION_MEMORY` and the message;
//!    `Err(UnknownContainer)` is the normal end after cleanup.
//! 4. `update` on resource changes; `usage` for `/monitor/statistics`.
//! 5. Termination: `cleanup(id)` kills everything left in the cgroups (also processes
//!    that escaped the process tree), then removes them.
//!
//! Memory a process allocated before `isolate` stays charged to its old cgroup (v2
//! never moves charges; v1 does not by default), which is one more reason to isolate
//! right after spawn.
//!
//! # Joining the cgroup: the race
//! `isolate` writes the pid into `cgroup.procs` right after spawn, without `unsafe`.
//! A process that forks between spawn and `isolate` leaves that child outside the cgroup.
//! Strata's own executor forks its task only after it has subscribed to the agent, so it
//! cannot race. A custom executor may; the remedies are `clone3(CLONE_INTO_CGROUP)`
//! (cgroups v2, Linux 5.7) or writing the pid from a `pre_exec` hook between fork and
//! exec. Both need `unsafe` and are the agent's call to make. Containers in pid
//! namespaces ([`crate::namespaces`]) close the race without `unsafe`: their first
//! process waits at a gate the launcher opens only after `isolate`.

mod fake;
mod flags;
mod noop;
mod types;

pub mod cgroups;

pub use fake::{Call, FakeIsolator, Op};
pub use flags::{parse_isolation, ControllerSet, FlagError, IsolationConfig};
pub use noop::NoIsolation;
pub use types::{ContainerId, IsolationError, Limitation, LimitationKind, Limits, Usage};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use std::time::Duration;

/// How often the default [`Isolator::watch`] polls [`Isolator::limitation`]. Polling a
/// small cgroup file is cheap; the eventfd interface Mesos uses needs `unsafe`.
pub const WATCH_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// A container's resource isolation. Object-safe: the agent holds a `Box<dyn Isolator>`
/// (see [`build`]). Every method is idempotent where the text says so, and fails with
/// [`IsolationError::UnknownContainer`] for a container that was never prepared.
pub trait Isolator: Send + Sync {
    /// Short backend name for logs: `cgroups-v1`, `cgroups-v2`, `none`, `fake`.
    fn name(&self) -> &'static str;

    /// Creates the container's cgroups and applies `limits` (the hard memory limit is
    /// always written here). Fails with `AlreadyExists` if the container exists, and with
    /// `InvalidLimits` before touching anything if a limit is NaN or negative.
    fn prepare<'a>(
        &'a self,
        id: &'a ContainerId,
        limits: &'a Limits,
    ) -> BoxFuture<'a, Result<(), IsolationError>>;

    /// Moves process `pid` (and so its future children) into the container.
    fn isolate<'a>(
        &'a self,
        id: &'a ContainerId,
        pid: u32,
    ) -> BoxFuture<'a, Result<(), IsolationError>>;

    /// Applies new limits. As in Mesos, the hard memory limit is only raised here, never
    /// lowered (lowering it below current usage would OOM-kill the container); the soft
    /// limit, CPU shares/weight, CFS quota and pids limit always follow `limits`.
    fn update<'a>(
        &'a self,
        id: &'a ContainerId,
        limits: &'a Limits,
    ) -> BoxFuture<'a, Result<(), IsolationError>>;

    /// Current resource statistics of the container.
    fn usage<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<Usage, IsolationError>>;

    /// Whether the container has hit a limit (today: it was OOM-killed), checked now.
    fn limitation<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<Limitation>, IsolationError>>;

    /// Resolves when the container hits a limit; resolves with `UnknownContainer` once the
    /// container is cleaned up, so a task awaiting it ends. The default polls
    /// [`Isolator::limitation`] every [`WATCH_POLL_INTERVAL`].
    fn watch<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Limitation, IsolationError>> {
        async move {
            loop {
                if let Some(limitation) = self.limitation(id).await? {
                    return Ok(limitation);
                }
                tokio::time::sleep(WATCH_POLL_INTERVAL).await;
            }
        }
        .boxed()
    }

    /// Kills every process left in the container and removes its cgroups. Idempotent:
    /// cleaning up an unknown or already-removed container succeeds.
    fn cleanup<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), IsolationError>>;

    /// Containers this isolator still holds state for (e.g. cgroups left by a previous
    /// agent run). The agent cleans up those it does not recover.
    fn recover(&self) -> BoxFuture<'_, Result<Vec<ContainerId>, IsolationError>>;

    /// Removes the agent's own parent cgroup once it holds no container (an agent stopped
    /// for good, or a test's agent); a parent that still has containers is left alone.
    fn remove_parent(&self) -> BoxFuture<'_, Result<(), IsolationError>> {
        async { Ok(()) }.boxed()
    }
}

/// Removes an empty cgroup directory; a missing one is fine, a busy one is kept.
pub(crate) fn remove_empty_dir(dir: &std::path::Path) -> Result<(), IsolationError> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        // EBUSY, ENOTEMPTY: it still holds containers (or another agent's).
        Err(e) if matches!(e.raw_os_error(), Some(16) | Some(39)) => Ok(()),
        Err(e) => Err(IsolationError::io("remove", dir, e)),
    }
}

/// Builds the isolator the flags ask for: [`NoIsolation`] when no `cgroups/*` isolator is
/// named, otherwise the cgroups backend of the version found at `options.root`.
/// `cgroups/all` keeps only the controllers the host has. An error means cgroups were
/// asked for but cannot be used; the agent may log it and fall back to [`NoIsolation`].
pub fn build(
    config: &IsolationConfig,
    options: &cgroups::CgroupsOptions,
) -> Result<Box<dyn Isolator>, IsolationError> {
    if config.cgroups.is_empty() {
        return Ok(Box::new(NoIsolation));
    }
    let version = cgroups::detect(&options.root).ok_or_else(|| {
        IsolationError::Unavailable(format!(
            "no cgroup hierarchy found at {}; mount cgroups there, pass the right root, \
             or drop cgroups/* from --isolation",
            options.root.display()
        ))
    })?;
    let mut controllers = config.cgroups;
    if config.all {
        controllers = controllers.intersect(cgroups::available(&options.root, version));
    }
    Ok(match version {
        cgroups::CgroupVersion::V1 => Box::new(cgroups::v1::CgroupsV1::new(
            cgroups::v1::Hierarchy::new(&options.root, &options.parent)?,
            controllers,
            options.enable_cfs,
        )?),
        cgroups::CgroupVersion::V2 => Box::new(cgroups::v2::CgroupsV2::new(
            &options.root,
            &options.parent,
            controllers,
            options.enable_cfs,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_picks_the_backend() {
        let opts = |root: &std::path::Path| cgroups::CgroupsOptions {
            root: root.to_path_buf(),
            ..cgroups::CgroupsOptions::default()
        };
        let empty = tempfile::tempdir().unwrap();
        let none = build(
            &parse_isolation("posix/cpu,posix/mem").unwrap(),
            &opts(empty.path()),
        );
        assert_eq!(none.unwrap().name(), "none");
        let err = build(
            &parse_isolation("cgroups/mem").unwrap(),
            &opts(empty.path()),
        )
        .err()
        .unwrap();
        assert!(
            err.to_string().contains("no cgroup hierarchy found"),
            "{err}"
        );

        // A v2 root without pids: cgroups/all drops it, cgroups/pids is an error.
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        std::fs::write(v2.path().join("cgroup.subtree_control"), "").unwrap();
        std::fs::create_dir(v2.path().join("strata")).unwrap();
        std::fs::write(v2.path().join("strata/cgroup.subtree_control"), "").unwrap();
        let all = build(&parse_isolation("cgroups/all").unwrap(), &opts(v2.path()));
        assert_eq!(all.unwrap().name(), "cgroups-v2");
        let pids = build(&parse_isolation("cgroups/pids").unwrap(), &opts(v2.path()));
        assert!(pids
            .err()
            .unwrap()
            .to_string()
            .contains("'pids' is not offered"));
    }
}
