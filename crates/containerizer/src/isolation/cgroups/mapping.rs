//! Mesos' mapping from resources to cgroup values, shared by v1 and v2. Pure functions;
//! constants as in Mesos `isolators/cgroups/constants.hpp` and
//! `isolators/cgroups2/constants.hpp`, rules as in `subsystems/{cpu,memory}.cpp` and
//! `cgroups2/controllers/{cpu,memory}.cpp`.

use crate::isolation::Limits;

/// v1 `cpu.shares` per CPU, and the kernel's minimum.
pub const CPU_SHARES_PER_CPU: f64 = 1024.0;
pub const MIN_CPU_SHARES: u64 = 2;
/// v2 `cpu.weight` per CPU, and the kernel's range.
pub const CPU_WEIGHT_PER_CPU: f64 = 100.0;
pub const MIN_CPU_WEIGHT: u64 = 1;
pub const MAX_CPU_WEIGHT: u64 = 10_000;
/// CFS bandwidth period (the Linux default) and Mesos' minimum quota.
pub const CFS_PERIOD_US: u64 = 100_000;
pub const MIN_CFS_QUOTA_US: u64 = 1_000;
/// Mesos' smallest memory limit.
pub const MIN_MEMORY_BYTES: u64 = 32 << 20;
/// v1 reports an unlimited `memory.limit_in_bytes` as a huge page-aligned number
/// (9223372036854771712 on x86-64); anything this large means "no limit".
pub const V1_UNLIMITED_BYTES: u64 = 1 << 62;

/// v1 `cpu.shares` per CPU of revocable (low-priority) work (Mesos'
/// `CPU_SHARES_PER_CPU_REVOCABLE`), and the v2 weight per CPU Strata uses for it.
pub const CPU_SHARES_PER_CPU_REVOCABLE: f64 = 10.0;
pub const CPU_WEIGHT_PER_CPU_REVOCABLE: f64 = 1.0;

/// `cpu.shares` = cpus × 1024 (× 10 at low priority), at least 2 (truncated like Mesos'
/// integer cast).
pub fn cpu_shares(limits: &Limits) -> u64 {
    let per = if limits.low_priority {
        CPU_SHARES_PER_CPU_REVOCABLE
    } else {
        CPU_SHARES_PER_CPU
    };
    ((limits.cpus * per) as u64).max(MIN_CPU_SHARES)
}

/// `cpu.weight` = cpus × 100 (× 1 at low priority), within 1..=10000 (Mesos does not
/// clamp the top; the kernel would reject a larger value).
pub fn cpu_weight(limits: &Limits) -> u64 {
    let per = if limits.low_priority {
        CPU_WEIGHT_PER_CPU_REVOCABLE
    } else {
        CPU_WEIGHT_PER_CPU
    };
    ((limits.cpus * per) as u64).clamp(MIN_CPU_WEIGHT, MAX_CPU_WEIGHT)
}

/// CFS quota in µs per [`CFS_PERIOD_US`], or `None` for no quota: the CPU limit if given
/// (infinite = none), else the request when `enable_cfs`, else none. At least 1 ms.
pub fn cfs_quota_us(limits: &Limits, enable_cfs: bool) -> Option<u64> {
    let cpus = match limits.cpus_limit {
        Some(limit) if limit.is_infinite() => return None,
        Some(limit) => limit,
        None if enable_cfs => limits.cpus,
        None => return None,
    };
    Some(((cpus * CFS_PERIOD_US as f64) as u64).max(MIN_CFS_QUOTA_US))
}

/// Megabytes to bytes the way Mesos' `Resources::mem()` does: whole megabytes only.
fn mb_to_bytes(mb: f64) -> u64 {
    (mb as u64).saturating_mul(1 << 20)
}

/// Soft limit (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`): the request, ≥ 32 MB.
pub fn mem_soft_bytes(limits: &Limits) -> u64 {
    mb_to_bytes(limits.mem_mb).max(MIN_MEMORY_BYTES)
}

/// Hard limit (v1 `memory.limit_in_bytes`, v2 `memory.max`): the memory limit if given
/// (infinite = `None`, no limit), else the soft limit; ≥ 32 MB.
pub fn mem_hard_bytes(limits: &Limits) -> Option<u64> {
    match limits.mem_limit_mb {
        Some(limit) if limit.is_infinite() => None,
        Some(limit) => Some(mb_to_bytes(limit).max(MIN_MEMORY_BYTES)),
        None => Some(mem_soft_bytes(limits)),
    }
}

/// Whether to write a new hard memory limit: always the first time; afterwards only to
/// raise it (or lift it), since lowering it below usage would OOM-kill the container.
/// `None` means unlimited in both arguments.
pub fn should_write_hard_limit(initial: bool, new: Option<u64>, current: Option<u64>) -> bool {
    initial
        || match (new, current) {
            (None, _) => true,
            (Some(new), Some(current)) => new > current,
            (Some(_), None) => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(
        cpus: f64,
        cpus_limit: Option<f64>,
        mem_mb: f64,
        mem_limit_mb: Option<f64>,
    ) -> Limits {
        Limits {
            cpus,
            cpus_limit,
            mem_mb,
            mem_limit_mb,
            pids_max: None,
            low_priority: false,
        }
    }

    #[test]
    fn revocable_work_gets_low_cpu_priority() {
        let low = Limits {
            low_priority: true,
            ..limits(2.0, None, 64.0, None)
        };
        assert_eq!(cpu_shares(&low), 20);
        assert_eq!(cpu_weight(&low), 2);
        assert_eq!(cpu_shares(&limits(2.0, None, 64.0, None)), 2048);
        let tiny = Limits {
            low_priority: true,
            ..limits(0.1, None, 64.0, None)
        };
        assert_eq!(
            (cpu_shares(&tiny), cpu_weight(&tiny)),
            (2, 1),
            "kernel minimums"
        );
    }

    #[test]
    fn cpu() {
        // (cpus, shares, weight)
        for (cpus, shares, weight) in [
            (0.0, 2, 1),
            (0.001, 2, 1),
            (0.1, 102, 10),
            (0.5, 512, 50),
            (1.0, 1024, 100),
            (2.5, 2560, 250),
            (200.0, 204_800, 10_000),
        ] {
            let l = limits(cpus, None, 0.0, None);
            assert_eq!(cpu_shares(&l), shares, "shares for {cpus}");
            assert_eq!(cpu_weight(&l), weight, "weight for {cpus}");
        }
    }

    #[test]
    fn cfs_quota() {
        let inf = f64::INFINITY;
        // (cpus, cpus_limit, enable_cfs, quota)
        for (cpus, limit, cfs, quota) in [
            (1.0, None, false, None),
            (1.0, None, true, Some(100_000)),
            (0.25, None, true, Some(25_000)),
            (0.001, None, true, Some(1_000)),
            (1.0, Some(0.2), false, Some(20_000)),
            (1.0, Some(2.0), true, Some(200_000)),
            (1.0, Some(inf), true, None),
            (1.0, Some(0.000_01), false, Some(1_000)),
        ] {
            assert_eq!(
                cfs_quota_us(&limits(cpus, limit, 0.0, None), cfs),
                quota,
                "{cpus} {limit:?} {cfs}"
            );
        }
    }

    #[test]
    fn memory() {
        let mb = 1u64 << 20;
        // (mem_mb, mem_limit_mb, soft, hard)
        for (mem, limit, soft, hard) in [
            (64.0, None, 64 * mb, Some(64 * mb)),
            (64.9, None, 64 * mb, Some(64 * mb)),
            (8.0, None, 32 * mb, Some(32 * mb)),
            (64.0, Some(128.0), 64 * mb, Some(128 * mb)),
            (64.0, Some(1.0), 64 * mb, Some(32 * mb)),
            (64.0, Some(f64::INFINITY), 64 * mb, None),
        ] {
            let l = limits(0.0, None, mem, limit);
            assert_eq!(mem_soft_bytes(&l), soft, "soft {mem} {limit:?}");
            assert_eq!(mem_hard_bytes(&l), hard, "hard {mem} {limit:?}");
        }
    }

    #[test]
    fn hard_limit_only_rises_after_the_first_write() {
        for (initial, new, current, write) in [
            (true, Some(10), Some(20), true),
            (false, Some(10), Some(20), false),
            (false, Some(30), Some(20), true),
            (false, Some(20), Some(20), false),
            (false, None, Some(20), true),
            (false, Some(30), None, false),
            (false, None, None, true),
        ] {
            assert_eq!(
                should_write_hard_limit(initial, new, current),
                write,
                "{initial} {new:?} {current:?}"
            );
        }
    }
}
