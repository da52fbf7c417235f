//! The v1 `cpuacct` controller: user and system CPU time from `cpuacct.stat`, in clock
//! ticks (Mesos `subsystems/cpuacct.cpp`).

use crate::isolation::cgroups::files;
use crate::isolation::{IsolationError, Usage};
use std::path::Path;

/// USER_HZ, the unit of `cpuacct.stat`.
fn ticks_per_sec() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        // USER_HZ is 100 on every architecture Strata runs on.
        _ => 100.0,
    }
}

pub(super) fn usage(dir: &Path, usage: &mut Usage) -> Result<(), IsolationError> {
    let stat = files::read_flat_keyed(&dir.join("cpuacct.stat"))?;
    if let (Some(user), Some(system)) = (stat.get("user"), stat.get("system")) {
        let ticks = ticks_per_sec();
        usage.cpus_user_time_secs = Some(*user as f64 / ticks);
        usage.cpus_system_time_secs = Some(*system as f64 / ticks);
    }
    Ok(())
}
