//! The data isolators exchange: container ids, limits, usage statistics, limitations and
//! the error type.

use super::fake::Op;
use std::fmt;
use std::path::PathBuf;

/// A container id, safe to use as a cgroup directory name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    /// Longest accepted id; a Mesos container id is a 36-character UUID.
    pub const MAX_LEN: usize = 200;

    /// Accepts letters, digits, `-`, `_` and `.`, not starting with `.`, so the id can
    /// never name a parent directory or a cgroup control file.
    pub fn new(id: impl Into<String>) -> Result<Self, IsolationError> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(Self(id))
        } else {
            Err(IsolationError::InvalidContainerId(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a container may use, in Mesos' terms: requests (`cpus`, `mem_mb`) and optional
/// limits (`cpus_limit`, `mem_limit_mb`; `f64::INFINITY` means unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// CPU request: v1 `cpu.shares` = cpus × 1024 (min 2); v2 `cpu.weight` = cpus × 100.
    pub cpus: f64,
    /// CPU limit: CFS quota = limit × 100 ms per 100 ms period (min 1 ms). Without it the
    /// quota is `cpus` when the backend enables CFS (`--cgroups_enable_cfs`), else none.
    pub cpus_limit: Option<f64>,
    /// Memory request: v1 `memory.soft_limit_in_bytes`, v2 `memory.low` (min 32 MB).
    pub mem_mb: f64,
    /// Memory limit: v1 `memory.limit_in_bytes`, v2 `memory.max`; defaults to `mem_mb`.
    pub mem_limit_mb: Option<f64>,
    /// `pids.max`; `None` = unlimited. (Mesos' pids isolator only tracks processes.)
    pub pids_max: Option<u64>,
    /// Revocable work at low CPU priority (Mesos' `--revocable_cpu_low_priority`): v1
    /// `cpu.shares` = cpus × 10 instead of × 1024, v2 `cpu.weight` = cpus × 1.
    pub low_priority: bool,
}

impl Limits {
    /// Rejects NaN, negative and infinite requests, and NaN or non-positive limits.
    pub fn validate(&self) -> Result<(), String> {
        let request = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be a finite number >= 0, got {v}"))
            }
        };
        let limit = |name: &str, v: Option<f64>| match v {
            Some(v) if v.is_nan() || v <= 0.0 => {
                Err(format!("{name} must be > 0 or infinity, got {v}"))
            }
            _ => Ok(()),
        };
        request("cpus", self.cpus)?;
        request("mem_mb", self.mem_mb)?;
        limit("cpus_limit", self.cpus_limit)?;
        limit("mem_limit_mb", self.mem_limit_mb)?;
        if self.pids_max == Some(0) {
            return Err("pids_max must be >= 1 (use None for unlimited)".into());
        }
        Ok(())
    }
}

/// [`Limits::validate`] as an [`IsolationError::InvalidLimits`] for container `id`.
pub(crate) fn check_limits(id: &ContainerId, limits: &Limits) -> Result<(), IsolationError> {
    limits
        .validate()
        .map_err(|reason| IsolationError::InvalidLimits {
            id: id.clone(),
            reason,
        })
}

/// Resource statistics, named as the fields of Mesos' `ResourceStatistics` (mesos.proto)
/// so the agent can serialise them for `/monitor/statistics`. `None` = not measured by
/// the enabled controllers (or unlimited, for the limit fields).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    /// Seconds since the Epoch when the snapshot was taken.
    pub timestamp: f64,
    pub processes: Option<u32>,
    pub threads: Option<u32>,
    pub cpus_user_time_secs: Option<f64>,
    pub cpus_system_time_secs: Option<f64>,
    /// CFS quota / period in force.
    pub cpus_limit: Option<f64>,
    pub cpus_nr_periods: Option<u32>,
    pub cpus_nr_throttled: Option<u32>,
    pub cpus_throttled_time_secs: Option<f64>,
    /// Memory charged to the container (v1 `memory.usage_in_bytes`, v2 `memory.current`).
    pub mem_total_bytes: Option<u64>,
    /// Hard limit in force; `None` when unlimited.
    pub mem_limit_bytes: Option<u64>,
    pub mem_soft_limit_bytes: Option<u64>,
    pub mem_cache_bytes: Option<u64>,
    pub mem_rss_bytes: Option<u64>,
    pub mem_mapped_file_bytes: Option<u64>,
    pub mem_swap_bytes: Option<u64>,
    pub mem_unevictable_bytes: Option<u64>,
}

impl Usage {
    /// An empty snapshot stamped with the current wall-clock time.
    pub fn now() -> Self {
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self {
            timestamp,
            ..Self::default()
        }
    }
}

/// Which limit a container hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitationKind {
    /// The kernel OOM-killed a process of the container. Mesos reports this as
    /// `TASK_FAILED` with `REASON_CONTAINER_LIMITATION_MEMORY`.
    Memory,
}

/// A limit the container hit, with Mesos' message ("Memory limit exceeded: …").
#[derive(Debug, Clone, PartialEq)]
pub struct Limitation {
    pub kind: LimitationKind,
    pub message: String,
    /// The hard limit in force, when known.
    pub mem_limit_bytes: Option<u64>,
    /// Peak usage (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`), when known.
    pub mem_max_usage_bytes: Option<u64>,
}

/// Why an isolator operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    #[error(
        "invalid container id '{0}': use 1-200 letters, digits, '-', '_' or '.', \
         not starting with '.'"
    )]
    InvalidContainerId(String),
    #[error("invalid limits for container {id}: {reason}")]
    InvalidLimits { id: ContainerId, reason: String },
    #[error("container {0} is already prepared; clean it up before preparing it again")]
    AlreadyExists(ContainerId),
    #[error("unknown container {0}: it was never prepared or has been cleaned up")]
    UnknownContainer(ContainerId),
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse {path}: {detail}")]
    Parse { path: PathBuf, detail: String },
    #[error("cgroups unavailable: {0}")]
    Unavailable(String),
    #[error(
        "container {id}: processes {pids:?} are still in {path} after SIGKILL; \
         check for processes stuck in uninterruptible sleep (state D) and retry cleanup"
    )]
    CleanupIncomplete {
        id: ContainerId,
        path: PathBuf,
        pids: Vec<u32>,
    },
    #[error("injected failure in {op:?} for container {id}: {message}")]
    Injected { op: Op, id: String, message: String },
}

impl IsolationError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Self::Parse {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

/// `Bytes` printed the way Mesos' stout does: the largest unit with no loss ("32MB").
pub(crate) fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ];
    if bytes == 0 {
        return "0B".into();
    }
    for (size, unit) in UNITS {
        if (bytes / size) * size == bytes {
            return format!("{}{unit}", bytes / size);
        }
    }
    format!("{bytes}B")
}

/// Mesos' OOM message: "Memory limit exceeded: Requested: 32MB Maximum Used: 32MB".
pub(crate) fn memory_limitation(limit: Option<u64>, max_usage: Option<u64>) -> Limitation {
    let mut message = String::from("Memory limit exceeded: ");
    if let Some(l) = limit {
        message.push_str(&format!("Requested: {} ", format_bytes(l)));
    }
    if let Some(u) = max_usage {
        message.push_str(&format!("Maximum Used: {}", format_bytes(u)));
    }
    Limitation {
        kind: LimitationKind::Memory,
        message: message.trim_end().to_string(),
        mem_limit_bytes: limit,
        mem_max_usage_bytes: max_usage,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        for ok in ["c1", "0b3f-44_a.b", &"a".repeat(200)] {
            assert!(ContainerId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            "cgroup\0",
            &"a".repeat(201),
        ] {
            assert!(ContainerId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_validation() {
        let ok = Limits {
            cpus: 0.5,
            mem_mb: 64.0,
            cpus_limit: Some(f64::INFINITY),
            mem_limit_mb: Some(128.0),
            pids_max: Some(10),
            low_priority: false,
        };
        assert_eq!(ok.validate(), Ok(()));
        let check = |l: Limits, needle: &str| {
            let err = l.validate().unwrap_err();
            assert!(err.contains(needle), "{err}");
        };
        check(
            Limits {
                cpus: f64::NAN,
                ..ok
            },
            "cpus",
        );
        check(Limits { mem_mb: -1.0, ..ok }, "mem_mb");
        check(
            Limits {
                mem_mb: f64::INFINITY,
                ..ok
            },
            "mem_mb",
        );
        check(
            Limits {
                cpus_limit: Some(0.0),
                ..ok
            },
            "cpus_limit",
        );
        check(
            Limits {
                mem_limit_mb: Some(f64::NAN),
                ..ok
            },
            "mem_limit_mb",
        );
        check(
            Limits {
                pids_max: Some(0),
                ..ok
            },
            "pids_max",
        );
    }

    #[test]
    fn bytes_like_stout() {
        for (b, s) in [
            (0, "0B"),
            (1000, "1000B"),
            (2048, "2KB"),
            (32 << 20, "32MB"),
            ((32 << 20) + 1024, "32769KB"),
            (3 << 30, "3GB"),
        ] {
            assert_eq!(format_bytes(b), s);
        }
        assert_eq!(
            memory_limitation(Some(32 << 20), Some(32 << 20)).message,
            "Memory limit exceeded: Requested: 32MB Maximum Used: 32MB"
        );
    }
}
