//! Linux control groups: version detection, the Mesos resource → cgroup-file mapping, and
//! the two backends ([`v1::CgroupsV1`], one module per controller; [`v2::CgroupsV2`]).
//! Every path is derived from a root directory passed in, so unit tests run on a temp dir
//! that imitates a hierarchy, without root.

pub(crate) mod files;
pub mod mapping;
pub mod v1;
pub mod v2;

use super::ControllerSet;
use std::path::{Path, PathBuf};

/// Which cgroup interface a root directory offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller, mounted at `<root>/<controller>`.
    V1,
    /// The unified hierarchy mounted at `<root>`.
    V2,
}

/// Where and how the cgroups backends work (Mesos: `--cgroups_hierarchy`,
/// `--cgroups_root`, `--cgroups_enable_cfs`).
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupsOptions {
    /// Mount root of the hierarchies; `/sys/fs/cgroup` on every mainstream distribution.
    pub root: PathBuf,
    /// Cgroup (relative to the root, may be nested: `system.slice/strata`) under which
    /// each container gets `<parent>/<container id>`.
    pub parent: String,
    /// Set a CFS quota from the CPU request when a task has no CPU limit.
    pub enable_cfs: bool,
}

impl Default for CgroupsOptions {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/sys/fs/cgroup"),
            parent: "strata".into(),
            enable_cfs: false,
        }
    }
}

/// The cgroup version at `root`: v2 if `root` is a unified mount (it has
/// `cgroup.controllers`), v1 if any controller Strata uses is mounted beneath it. A hybrid
/// host (v1 controllers plus an empty v2 mount at `<root>/unified`) is v1.
pub fn detect(root: &Path) -> Option<CgroupVersion> {
    if root.join("cgroup.controllers").is_file() {
        return Some(CgroupVersion::V2);
    }
    let any_v1 = v1::Controller::ALL
        .iter()
        .any(|c| root.join(c.name()).join("cgroup.procs").is_file());
    any_v1.then_some(CgroupVersion::V1)
}

/// Controllers Strata supports that the host offers at `root`.
pub fn available(root: &Path, version: CgroupVersion) -> ControllerSet {
    match version {
        CgroupVersion::V1 => {
            let has = |c: v1::Controller| root.join(c.name()).join("cgroup.procs").is_file();
            ControllerSet {
                cpu: has(v1::Controller::Cpu) && has(v1::Controller::Cpuacct),
                memory: has(v1::Controller::Memory),
                pids: has(v1::Controller::Pids),
            }
        }
        CgroupVersion::V2 => {
            let text = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let has = |name: &str| text.split_whitespace().any(|c| c == name);
            ControllerSet {
                cpu: has("cpu"),
                memory: has("memory"),
                pids: has("pids"),
            }
        }
    }
}

/// A cgroup filesystem mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub version: CgroupVersion,
    pub mount_point: PathBuf,
    /// Super options: for v1 the controllers (`cpu`, `cpuacct`, `name=systemd`, `rw`).
    pub options: Vec<String>,
}

/// The cgroup mounts listed in a `/proc/<pid>/mountinfo` text.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            // Format: id parent major:minor root mount_point options [tags…] - fstype source super
            let (left, right) = line.split_once(" - ")?;
            let mount_point = left.split_whitespace().nth(4)?;
            let mut right = right.split_whitespace();
            let version = match right.next()? {
                "cgroup" => CgroupVersion::V1,
                "cgroup2" => CgroupVersion::V2,
                _ => return None,
            };
            let options = right
                .nth(1)
                .unwrap_or("")
                .split(',')
                .map(String::from)
                .collect();
            Some(CgroupMount {
                version,
                mount_point: PathBuf::from(mount_point),
                options,
            })
        })
        .collect()
}

/// The cgroup mounts of this process's mount namespace (empty if unreadable).
pub fn mounts() -> Vec<CgroupMount> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_versions_on_temp_dirs() {
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(detect(empty.path()), None);

        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        assert_eq!(detect(v2.path()), Some(CgroupVersion::V2));
        assert_eq!(available(v2.path(), CgroupVersion::V2), ControllerSet::ALL);

        let v1 = tempfile::tempdir().unwrap();
        for c in ["memory", "pids"] {
            std::fs::create_dir(v1.path().join(c)).unwrap();
            std::fs::write(v1.path().join(c).join("cgroup.procs"), "").unwrap();
        }
        // A hybrid host's empty unified mount does not make it v2.
        std::fs::create_dir(v1.path().join("unified")).unwrap();
        std::fs::write(v1.path().join("unified/cgroup.controllers"), "").unwrap();
        assert_eq!(detect(v1.path()), Some(CgroupVersion::V1));
        assert_eq!(
            available(v1.path(), CgroupVersion::V1),
            ControllerSet {
                cpu: false,
                memory: true,
                pids: true
            }
        );
    }

    #[test]
    fn parses_mountinfo() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
        let mounts = parse_mountinfo(text);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].version, CgroupVersion::V1);
        assert_eq!(
            mounts[1].mount_point,
            PathBuf::from("/sys/fs/cgroup/memory")
        );
        assert!(mounts[1].options.contains(&"memory".to_string()));
        assert_eq!(mounts[2].version, CgroupVersion::V2);
        assert_eq!(
            mounts[2].mount_point,
            PathBuf::from("/sys/fs/cgroup/unified")
        );
    }
}
