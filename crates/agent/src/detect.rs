//! Resource detection: cpus, memory and disk of this machine, merged with `--resources`
//! the way Mesos does (given names win; the rest is detected; ports default to
//! `[31000-32000]`).

use std::path::Path;
use strata_resources::{Resource, Resources, Scalar};

/// Memory in MB from /proc/meminfo, minus Mesos' reserve (1 GB, or half below 2 GB).
fn detect_mem_mb() -> f64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<f64>().ok())
        });
    let Some(kb) = total_kb else { return 1024.0 };
    let mb = kb / 1024.0;
    if mb >= 2048.0 {
        (mb - 1024.0).floor()
    } else {
        (mb / 2.0).floor()
    }
}

/// Disk in MB of the filesystem holding `dir`, minus Mesos' reserve (5 GB, or half).
fn detect_disk_mb(dir: &Path) -> f64 {
    let Ok(st) = nix::sys::statvfs::statvfs(dir) else {
        return 10240.0;
    };
    let mb = (st.blocks() as f64) * (st.fragment_size() as f64) / (1024.0 * 1024.0);
    if mb >= 10240.0 {
        (mb - 5120.0).floor()
    } else {
        (mb / 2.0).floor()
    }
}

/// NVIDIA GPUs present: `/dev/nvidia<N>` device files (0 when there are none).
fn detect_gpus(dev: &Path) -> f64 {
    let Ok(dir) = std::fs::read_dir(dev) else {
        return 0.0;
    };
    dir.flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix("nvidia")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .count() as f64
}

/// The agent's total resources: `--resources` plus detected defaults for what it omits.
pub fn total_resources(flag: Option<&str>, work_dir: &Path) -> anyhow::Result<Resources> {
    let mut given = match flag {
        Some(text) => {
            Resources::parse_flag(text, "*").map_err(|e| anyhow::anyhow!("--resources: {e}"))?
        }
        None => Resources::new(),
    };
    let has = |r: &Resources, name: &str| r.iter().any(|x| x.name == name);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0);
    let defaults = [
        ("cpus", cpus),
        ("mem", detect_mem_mb()),
        ("disk", detect_disk_mb(work_dir)),
        ("gpus", detect_gpus(Path::new("/dev"))),
    ];
    let mut extra = Resources::new();
    for (name, value) in defaults {
        if !has(&given, name) {
            extra.add_resource(Resource::scalar(name, value));
        }
    }
    if !has(&given, "ports") {
        extra.add_resource(Resource::ranges(
            "ports",
            strata_resources::Ranges::single(31000, 32000),
        ));
    }
    given += extra;
    anyhow::ensure!(
        given.cpus() > Scalar::ZERO || given.mem_mb() > Scalar::ZERO,
        "the agent has no cpus and no memory to offer"
    );
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_are_counted_from_nvidia_device_files() {
        let dev = tempfile::tempdir().unwrap();
        assert_eq!(detect_gpus(dev.path()), 0.0);
        for f in ["nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"] {
            std::fs::write(dev.path().join(f), "").unwrap();
        }
        assert_eq!(detect_gpus(dev.path()), 2.0);
    }

    #[test]
    fn given_resources_win_and_the_rest_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let r = total_resources(Some("cpus:2;gpus:1;disk(ops):100"), dir.path()).unwrap();
        assert_eq!(r.cpus(), Scalar::from_f64(2.0));
        assert_eq!(r.gpus(), Scalar::from_f64(1.0));
        assert!(r.mem_mb() > Scalar::ZERO);
        assert_eq!(r.ports().count(), 1001);
        assert!(r.reserved_for("ops").disk_mb() == Scalar::from_f64(100.0));
        assert!(total_resources(Some("cpus:x"), dir.path()).is_err());
    }
}
