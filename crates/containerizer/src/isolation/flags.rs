//! The agent's `--isolation` flag: which isolators (and so which cgroup controllers) are
//! enabled, with Mesos' names and deprecated aliases.

/// Cgroup controllers an isolator manages. `cpu` covers v1 `cpu` + `cpuacct` (as Mesos'
/// `cgroups/cpu` does) and v2 `cpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControllerSet {
    pub cpu: bool,
    pub memory: bool,
    pub pids: bool,
}

impl ControllerSet {
    pub const ALL: Self = Self {
        cpu: true,
        memory: true,
        pids: true,
    };

    pub fn is_empty(&self) -> bool {
        !(self.cpu || self.memory || self.pids)
    }

    pub fn intersect(self, other: Self) -> Self {
        Self {
            cpu: self.cpu && other.cpu,
            memory: self.memory && other.memory,
            pids: self.pids && other.pids,
        }
    }
}

/// What `--isolation` enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IsolationConfig {
    pub cgroups: ControllerSet,
    /// `cgroups/all`: every supported controller the host has (see [`super::build`]).
    pub all: bool,
    /// `posix/cpu`, `posix/mem`: no enforcement (usage comes from the process tree).
    pub posix_cpu: bool,
    pub posix_mem: bool,
    /// `namespaces/pid`: each container in its own pid namespace, with its own `/proc`
    /// (so a mount namespace too; see [`crate::namespaces`]).
    pub pid_namespace: bool,
    /// `filesystem/linux`: each container in its own mount namespace, persistent volumes
    /// bind-mounted into its sandbox and `RO` ones read-only (see [`crate::mounts`]).
    pub filesystem_linux: bool,
}

/// A name `--isolation` cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error(
        "Unknown or unsupported isolator '{0}'; Strata supports {SUPPORTED} \
         (and the aliases 'cgroups', 'process')"
    )]
    Unknown(String),
    #[error(
        "isolator '{0}' exists in Mesos but Strata does not implement it yet; \
         remove it from --isolation"
    )]
    NotImplemented(String),
}

const SUPPORTED: &str = "cgroups/cpu, cgroups/mem, cgroups/pids, cgroups/all, posix/cpu, \
                         posix/mem, filesystem/posix, filesystem/linux, namespaces/pid, \
                         volume/sandbox_path";

/// Mesos isolators Strata knows by name but does not provide.
const MESOS_ONLY: &[&str] = &[
    "appc/runtime",
    "cgroups/blkio",
    "cgroups/cpuset",
    "cgroups/devices",
    "cgroups/hugetlb",
    "cgroups/net_cls",
    "cgroups/net_prio",
    "cgroups/perf_event",
    "disk/du",
    "disk/xfs",
    "docker/runtime",
    "docker/volume",
    "environment_secret",
    "filesystem/shared",
    "gpu/nvidia",
    "linux/capabilities",
    "linux/devices",
    "linux/nnp",
    "linux/seccomp",
    "namespaces/ipc",
    "network/cni",
    "network/port_mapping",
    "network/ports",
    "posix/disk",
    "posix/rlimits",
    "volume/csi",
    "volume/host_path",
    "volume/image",
    "volume/secret",
    "windows/cpu",
    "windows/mem",
];

/// Parses a comma-separated `--isolation` value, e.g.
/// `cgroups/cpu,cgroups/mem,cgroups/pids,posix/cpu`. Blank entries are ignored; an empty
/// value enables nothing.
pub fn parse_isolation(value: &str) -> Result<IsolationConfig, FlagError> {
    let mut config = IsolationConfig::default();
    for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match name {
            "cgroups/cpu" => config.cgroups.cpu = true,
            "cgroups/mem" => config.cgroups.memory = true,
            "cgroups/pids" => config.cgroups.pids = true,
            "cgroups/all" => {
                config.cgroups = ControllerSet::ALL;
                config.all = true;
            }
            // Deprecated in Mesos: "cgroups" = cgroups/cpu,cgroups/mem.
            "cgroups" => {
                config.cgroups.cpu = true;
                config.cgroups.memory = true;
            }
            "posix/cpu" => config.posix_cpu = true,
            "posix/mem" => config.posix_mem = true,
            // Deprecated in Mesos: "process" = posix/cpu,posix/mem.
            "process" => {
                config.posix_cpu = true;
                config.posix_mem = true;
            }
            // Mesos always adds it; the sandbox is a plain directory either way.
            "filesystem/posix" => {}
            "namespaces/pid" => config.pid_namespace = true,
            "filesystem/linux" => config.filesystem_linux = true,
            // Always on: the executor links SANDBOX_PATH volumes into task sandboxes.
            "volume/sandbox_path" => {}
            other if MESOS_ONLY.contains(&other) => {
                return Err(FlagError::NotImplemented(other.to_string()))
            }
            other => return Err(FlagError::Unknown(other.to_string())),
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: &str, expected: Result<(bool, bool, bool, bool, bool), FlagError>) {
        let got = parse_isolation(value).map(|c| {
            (
                c.cgroups.cpu,
                c.cgroups.memory,
                c.cgroups.pids,
                c.posix_cpu,
                c.posix_mem,
            )
        });
        assert_eq!(got, expected, "{value}");
    }

    #[test]
    fn names() {
        check("", Ok((false, false, false, false, false)));
        check(
            "cgroups/cpu,cgroups/mem,cgroups/pids,posix/cpu",
            Ok((true, true, true, true, false)),
        );
        check(
            " cgroups/mem , ,posix/mem",
            Ok((false, true, false, false, true)),
        );
        check("cgroups/all", Ok((true, true, true, false, false)));
        check("cgroups", Ok((true, true, false, false, false)));
        check(
            "process,filesystem/posix",
            Ok((false, false, false, true, true)),
        );
        check(
            "cgroups/cpu,cgroups/memory",
            Err(FlagError::Unknown("cgroups/memory".into())),
        );
        check(
            "cgroups/cpu,namespaces/ipc",
            Err(FlagError::NotImplemented("namespaces/ipc".into())),
        );
        let ns = parse_isolation("cgroups/cpu,namespaces/pid,volume/sandbox_path").unwrap();
        assert!(ns.pid_namespace && ns.cgroups.cpu);
        assert!(!parse_isolation("cgroups/cpu").unwrap().pid_namespace);
        let fs = parse_isolation("filesystem/linux").unwrap();
        assert!(fs.filesystem_linux && !fs.pid_namespace);
        assert!(!ns.filesystem_linux);
        assert!(parse_isolation("cgroups/all").unwrap().all);
        assert!(!parse_isolation("cgroups/cpu").unwrap().all);
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = parse_isolation("bogus").unwrap_err().to_string();
        assert!(
            e.starts_with("Unknown or unsupported isolator 'bogus'"),
            "{e}"
        );
        assert!(e.contains("cgroups/pids"), "{e}");
        let e = parse_isolation("network/cni").unwrap_err().to_string();
        assert!(e.contains("remove it from --isolation"), "{e}");
    }
}
