//! Choosing and starting the agent's isolator from its flags: cgroups when asked for and
//! usable, otherwise none (with a warning, so a machine without cgroup access still runs
//! tasks); pid namespaces likewise; and removing isolation state left by an earlier run
//! that nothing recovers.

use crate::checkpoint::ContainerRecord;
use crate::flags::AgentFlags;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use strata_containerizer::isolation::{self, cgroups::CgroupsOptions, Isolator, NoIsolation};
use strata_containerizer::{namespaces, PosixContainerizer};

/// The process containerizer: every container in its own pid and mount namespaces with
/// `namespaces/pid`, in its own mount namespace with `filesystem/linux`, when this machine
/// allows them (needs root and util-linux `unshare`), otherwise plain processes and a
/// warning. Also says whether volumes are bind-mounted (`filesystem/linux` in effect).
pub fn containerizer(
    flags: &AgentFlags,
    strata: &Path,
) -> anyhow::Result<(PosixContainerizer, bool)> {
    let config = isolation::parse_isolation(&flags.isolation)
        .map_err(|e| anyhow::anyhow!("--isolation: {e}"))?;
    if !config.pid_namespace && !config.filesystem_linux {
        return Ok((PosixContainerizer::new(), false));
    }
    match namespaces::probe() {
        Ok(()) if config.pid_namespace => {
            tracing::info!(
                bind_volumes = config.filesystem_linux,
                "containers get their own pid and mount namespaces"
            );
            let c = PosixContainerizer::with_pid_namespace(strata.to_path_buf());
            Ok((c, config.filesystem_linux))
        }
        Ok(()) => {
            tracing::info!("containers get their own mount namespace; volumes are bind-mounted");
            let c = PosixContainerizer::with_mount_namespace(strata.to_path_buf());
            Ok((c, true))
        }
        Err(e) => {
            tracing::warn!(error = %e, "namespaces unavailable; containers share the host's, volumes are linked and RO is not enforced");
            Ok((PosixContainerizer::new(), false))
        }
    }
}

/// `strata/<16 hex digits of a hash of the work dir>`: stable across restarts of the same
/// agent, distinct between agents sharing a machine.
fn default_parent(work_dir: &Path) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    work_dir.hash(&mut h);
    format!("strata/{:016x}", h.finish())
}

/// Builds the isolator and cleans up containers of earlier runs that are not `survivors`.
pub async fn start(
    flags: &AgentFlags,
    work_dir: &Path,
    survivors: &[ContainerRecord],
) -> anyhow::Result<Arc<dyn Isolator>> {
    let config = isolation::parse_isolation(&flags.isolation)
        .map_err(|e| anyhow::anyhow!("--isolation: {e}"))?;
    if flags.cgroups_pids_max.is_some() && !(config.cgroups.pids || config.all) {
        anyhow::bail!("--cgroups_pids_max needs cgroups/pids (or cgroups/all) in --isolation");
    }
    let options = CgroupsOptions {
        root: flags.cgroups_hierarchy.clone().into(),
        parent: flags
            .cgroups_root
            .clone()
            .unwrap_or_else(|| default_parent(work_dir)),
        enable_cfs: flags.cgroups_enable_cfs,
    };
    let isolator: Arc<dyn Isolator> = match isolation::build(&config, &options) {
        Ok(i) => Arc::from(i),
        Err(e) => {
            tracing::warn!(error = %e, isolation = %flags.isolation, "resource isolation unavailable; tasks run without limits");
            Arc::new(NoIsolation)
        }
    };
    tracing::info!(isolator = isolator.name(), parent = %options.parent, "isolation ready");
    match isolator.recover().await {
        Ok(left) => {
            for id in left {
                if !survivors
                    .iter()
                    .any(|s| s.container_id.as_str() == id.as_str())
                {
                    tracing::info!(container_id = %id.as_str(), "cleaning up isolation left by an earlier run");
                    let _ = isolator.cleanup(&id).await;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list containers left by an earlier run"),
    }
    Ok(isolator)
}
