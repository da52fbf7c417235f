//! The v2 `memory` controller: `memory.low` and `memory.max`, usage from
//! `memory.current` and `memory.stat`, and OOM kills from `memory.events` (Mesos
//! `cgroups2/controllers/memory.cpp`, which waits on the file with inotify instead).

use crate::isolation::cgroups::{files, mapping};
use crate::isolation::types::memory_limitation;
use crate::isolation::{IsolationError, Limitation, Limits, Usage};
use std::path::Path;

pub(super) fn apply(dir: &Path, limits: &Limits, initial: bool) -> Result<(), IsolationError> {
    files::write(
        &dir.join("memory.low"),
        &mapping::mem_soft_bytes(limits).to_string(),
    )?;
    let max_file = dir.join("memory.max");
    let new = mapping::mem_hard_bytes(limits);
    let current = files::read_max(&max_file)?;
    if mapping::should_write_hard_limit(initial, new, current) {
        let value = new.map_or_else(|| "max".to_string(), |b| b.to_string());
        files::write(&max_file, &value)?;
    }
    Ok(())
}

pub(super) fn usage(dir: &Path, usage: &mut Usage) -> Result<(), IsolationError> {
    usage.mem_total_bytes = Some(files::read_u64(&dir.join("memory.current"))?);
    usage.mem_limit_bytes = files::read_max(&dir.join("memory.max"))?;
    usage.mem_soft_limit_bytes = files::read_max(&dir.join("memory.low"))?;
    let stat = files::read_flat_keyed(&dir.join("memory.stat"))?;
    usage.mem_rss_bytes = stat.get("anon").copied();
    usage.mem_cache_bytes = stat.get("file").copied();
    usage.mem_mapped_file_bytes = stat.get("file_mapped").copied();
    usage.mem_unevictable_bytes = stat.get("unevictable").copied();
    let swap = dir.join("memory.swap.current");
    if swap.exists() {
        usage.mem_swap_bytes = Some(files::read_u64(&swap)?);
    }
    Ok(())
}

/// `memory.events` counts OOM kills in the cgroup and its descendants.
pub(super) fn limitation(dir: &Path) -> Result<Option<Limitation>, IsolationError> {
    let events = files::read_flat_keyed(&dir.join("memory.events"))?;
    if events.get("oom_kill").copied().unwrap_or(0) == 0 {
        return Ok(None);
    }
    let limit = files::read_max(&dir.join("memory.max")).ok().flatten();
    // memory.peak exists from Linux 5.19.
    let peak = files::read_u64(&dir.join("memory.peak")).ok();
    Ok(Some(memory_limitation(limit, peak)))
}
