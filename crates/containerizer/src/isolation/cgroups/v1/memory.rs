//! The v1 `memory` controller: soft and hard limits, usage from `memory.usage_in_bytes`
//! and `memory.stat`, and OOM detection by polling `memory.oom_control` (Mesos
//! `subsystems/memory.cpp`, which listens with an eventfd instead).

use crate::isolation::cgroups::{files, mapping};
use crate::isolation::types::memory_limitation;
use crate::isolation::{IsolationError, Limitation, Limits, Usage};
use std::path::Path;

/// A v1 byte limit; the kernel's "unlimited" sentinel becomes `None`.
fn read_limit(path: &Path) -> Result<Option<u64>, IsolationError> {
    let v = files::read_u64(path)?;
    Ok((v < mapping::V1_UNLIMITED_BYTES).then_some(v))
}

pub(super) fn apply(dir: &Path, limits: &Limits, initial: bool) -> Result<(), IsolationError> {
    files::write(
        &dir.join("memory.soft_limit_in_bytes"),
        &mapping::mem_soft_bytes(limits).to_string(),
    )?;
    let hard_file = dir.join("memory.limit_in_bytes");
    let new = mapping::mem_hard_bytes(limits);
    let current = read_limit(&hard_file)?;
    if mapping::should_write_hard_limit(initial, new, current) {
        let value = new.map_or_else(|| "-1".to_string(), |b| b.to_string());
        files::write(&hard_file, &value)?;
    }
    Ok(())
}

pub(super) fn usage(dir: &Path, usage: &mut Usage) -> Result<(), IsolationError> {
    usage.mem_total_bytes = Some(files::read_u64(&dir.join("memory.usage_in_bytes"))?);
    usage.mem_limit_bytes = read_limit(&dir.join("memory.limit_in_bytes"))?;
    usage.mem_soft_limit_bytes = read_limit(&dir.join("memory.soft_limit_in_bytes"))?;
    // The hierarchical `total_*` counters include child cgroups, as Mesos reads them.
    let stat = files::read_flat_keyed(&dir.join("memory.stat"))?;
    usage.mem_cache_bytes = stat.get("total_cache").copied();
    usage.mem_rss_bytes = stat.get("total_rss").copied();
    usage.mem_mapped_file_bytes = stat.get("total_mapped_file").copied();
    usage.mem_swap_bytes = stat.get("total_swap").copied();
    usage.mem_unevictable_bytes = stat.get("total_unevictable").copied();
    Ok(())
}

/// An OOM kill happened in the container: `oom_kill` > 0 (Linux ≥ 4.13), or the cgroup
/// is `under_oom` (older kernels report only that state).
pub(super) fn limitation(dir: &Path) -> Result<Option<Limitation>, IsolationError> {
    let oom = files::read_flat_keyed(&dir.join("memory.oom_control"))?;
    let hit = oom.get("oom_kill").copied().unwrap_or(0) > 0 || oom.get("under_oom") == Some(&1);
    if !hit {
        return Ok(None);
    }
    let limit = read_limit(&dir.join("memory.limit_in_bytes"))
        .ok()
        .flatten();
    let max_usage = files::read_u64(&dir.join("memory.max_usage_in_bytes")).ok();
    Ok(Some(memory_limitation(limit, max_usage)))
}

/// Mesos refuses to run with the kernel OOM killer disabled; Strata re-enables it on the
/// parent cgroup (children inherit the setting when created).
pub(super) fn enable_oom_killer(parent: &Path) -> Result<(), IsolationError> {
    let file = parent.join("memory.oom_control");
    let oom = files::read_flat_keyed(&file)?;
    if oom.get("oom_kill_disable") == Some(&1) {
        files::write(&file, "0")?;
    }
    Ok(())
}
