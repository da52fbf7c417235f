//! The v2 `cpu` controller: `cpu.weight` from the CPU request, `cpu.max` from the CPU
//! limit, and times and throttling from `cpu.stat` (Mesos `cgroups2/controllers/cpu.cpp`).

use crate::isolation::cgroups::{files, mapping};
use crate::isolation::{IsolationError, Limits, Usage};
use std::path::Path;

pub(super) fn apply(dir: &Path, limits: &Limits, enable_cfs: bool) -> Result<(), IsolationError> {
    files::write(
        &dir.join("cpu.weight"),
        &mapping::cpu_weight(limits).to_string(),
    )?;
    let max = match mapping::cfs_quota_us(limits, enable_cfs) {
        Some(quota) => format!("{quota} {}", mapping::CFS_PERIOD_US),
        // Like Mesos: "max" alone lifts the quota and keeps the period.
        None => "max".to_string(),
    };
    files::write(&dir.join("cpu.max"), &max)
}

/// `cpu.stat`'s times exist in every cgroup; the throttling fields and `cpu.max` only
/// where the cpu controller is enabled.
pub(super) fn usage(dir: &Path, usage: &mut Usage) -> Result<(), IsolationError> {
    let stat = files::read_flat_keyed(&dir.join("cpu.stat"))?;
    let secs = |k: &str| stat.get(k).map(|us| *us as f64 / 1e6);
    let u32_of = |k: &str| stat.get(k).map(|v| u32::try_from(*v).unwrap_or(u32::MAX));
    usage.cpus_user_time_secs = secs("user_usec");
    usage.cpus_system_time_secs = secs("system_usec");
    usage.cpus_nr_periods = u32_of("nr_periods");
    usage.cpus_nr_throttled = u32_of("nr_throttled");
    usage.cpus_throttled_time_secs = secs("throttled_usec");
    let max_file = dir.join("cpu.max");
    if max_file.exists() {
        let text = files::read(&max_file)?;
        let mut parts = text.split_whitespace();
        let quota = parts.next().and_then(|q| q.parse::<u64>().ok());
        let period = parts.next().and_then(|p| p.parse::<u64>().ok());
        if let (Some(q), Some(p)) = (quota, period.filter(|p| *p > 0)) {
            usage.cpus_limit = Some(q as f64 / p as f64);
        }
    }
    Ok(())
}
