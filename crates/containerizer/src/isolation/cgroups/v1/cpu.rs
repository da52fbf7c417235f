//! The v1 `cpu` controller: `cpu.shares` from the CPU request, the CFS quota
//! (`cpu.cfs_period_us`, `cpu.cfs_quota_us`) from the CPU limit, and throttling
//! statistics from `cpu.stat` (Mesos `subsystems/cpu.cpp`).

use crate::isolation::cgroups::{files, mapping};
use crate::isolation::{IsolationError, Limits, Usage};
use std::path::Path;

pub(super) fn apply(dir: &Path, limits: &Limits, enable_cfs: bool) -> Result<(), IsolationError> {
    files::write(
        &dir.join("cpu.shares"),
        &mapping::cpu_shares(limits).to_string(),
    )?;
    let quota_file = dir.join("cpu.cfs_quota_us");
    match mapping::cfs_quota_us(limits, enable_cfs) {
        Some(quota) => {
            files::write(
                &dir.join("cpu.cfs_period_us"),
                &mapping::CFS_PERIOD_US.to_string(),
            )?;
            files::write(&quota_file, &quota.to_string())
        }
        // No quota wanted: lift one set earlier (kernels without CFS have no file).
        None if quota_file.exists() => files::write(&quota_file, "-1"),
        None => Ok(()),
    }
}

pub(super) fn usage(dir: &Path, usage: &mut Usage) -> Result<(), IsolationError> {
    let stat = files::read_flat_keyed(&dir.join("cpu.stat"))?;
    let u32_of = |k: &str| stat.get(k).map(|v| u32::try_from(*v).unwrap_or(u32::MAX));
    usage.cpus_nr_periods = u32_of("nr_periods");
    usage.cpus_nr_throttled = u32_of("nr_throttled");
    usage.cpus_throttled_time_secs = stat.get("throttled_time").map(|ns| *ns as f64 / 1e9);
    let quota_file = dir.join("cpu.cfs_quota_us");
    if quota_file.exists() {
        let quota = files::read_i64(&quota_file)?;
        let period = files::read_u64(&dir.join("cpu.cfs_period_us"))?;
        if quota > 0 && period > 0 {
            usage.cpus_limit = Some(quota as f64 / period as f64);
        }
    }
    Ok(())
}
