//! Bind mounts of persistent volumes into a container's sandbox (`--isolation
//! filesystem/linux`, like Mesos' `filesystem/linux` isolator): the agent names them in
//! the container's environment ([`MOUNTS_ENV`]); pid 1 of the container's mount namespace
//! bind-mounts each volume onto its mount point in the sandbox, and remounts the read-only
//! ones read-only, before the executor starts. The host sees none of these mounts (the
//! namespace's propagation is private), so a RO volume stays writable for the agent.

use nix::mount::{mount, MsFlags};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The environment variable carrying the container's mounts (a JSON array of [`Bind`]).
pub const MOUNTS_ENV: &str = "STRATA_MOUNTS";

/// One volume to bind-mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// The volume's directory on the host.
    pub source: PathBuf,
    /// Its mount point in the sandbox (an existing directory).
    pub target: PathBuf,
    /// Remount read-only (Mesos `Volume.mode: RO`).
    pub read_only: bool,
}

/// What went wrong setting up a container's mounts.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("{MOUNTS_ENV} is not a JSON list of mounts: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("mount paths must be absolute: {volume} -> {target}")]
    Relative { volume: String, target: String },
    #[error("cannot bind-mount {volume} at {target}: {errno}")]
    Bind {
        volume: String,
        target: String,
        errno: nix::errno::Errno,
    },
    #[error("cannot make {target} read-only: {errno}")]
    ReadOnly {
        target: String,
        errno: nix::errno::Errno,
    },
}

/// The environment entry that asks for `binds` (None when there are none).
pub fn env_entry(binds: &[Bind]) -> Option<(String, String)> {
    if binds.is_empty() {
        return None;
    }
    let text = serde_json::to_string(binds).expect("paths and bools always serialize");
    Some((MOUNTS_ENV.to_string(), text))
}

/// Parses the mounts named in [`MOUNTS_ENV`] (empty or unset: none).
pub fn parse(value: Option<&str>) -> Result<Vec<Bind>, MountError> {
    let Some(text) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let binds: Vec<Bind> = serde_json::from_str(text)?;
    for b in &binds {
        if !b.source.is_absolute() || !b.target.is_absolute() {
            return Err(MountError::Relative {
                volume: b.source.display().to_string(),
                target: b.target.display().to_string(),
            });
        }
    }
    Ok(binds)
}

/// Bind-mounts every volume (read-only ones remounted read-only). Must run inside the
/// container's own mount namespace, as root.
pub fn apply(binds: &[Bind]) -> Result<(), MountError> {
    for b in binds {
        bind(&b.source, &b.target)?;
        if b.read_only {
            read_only(&b.target)?;
        }
    }
    Ok(())
}

/// `strata ns-mount --pid P`: enters the mount namespace of process `pid` (a running
/// container's) and makes the binds named in [`MOUNTS_ENV`] there, for tasks given to an
/// executor that already runs. Must run as root in a single-threaded process (setns of
/// a mount namespace refuses threaded callers). Returns the exit code.
pub fn enter_and_mount(pid: u32) -> i32 {
    let path = format!("/proc/{pid}/ns/mnt");
    let ns = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("strata ns-mount: cannot open {path}: {e}");
            return 1;
        }
    };
    if let Err(errno) = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS) {
        eprintln!("strata ns-mount: cannot enter the mount namespace of {pid}: {errno}");
        return 1;
    }
    match parse(std::env::var(MOUNTS_ENV).ok().as_deref()).and_then(|b| apply(&b)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("strata ns-mount: {e}");
            1
        }
    }
}

fn bind(source: &Path, target: &Path) -> Result<(), MountError> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| MountError::Bind {
        volume: source.display().to_string(),
        target: target.display().to_string(),
        errno,
    })
}

/// A bind mount becomes read-only only by remounting it (the first mount ignores RDONLY).
fn read_only(target: &Path) -> Result<(), MountError> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|errno| MountError::ReadOnly {
        target: target.display().to_string(),
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let binds = vec![Bind {
            source: "/w/volumes/roles/eng/v1".into(),
            target: "/w/sandbox/data".into(),
            read_only: true,
        }];
        let (key, value) = env_entry(&binds).unwrap();
        assert_eq!(key, MOUNTS_ENV);
        assert_eq!(parse(Some(&value)).unwrap(), binds);
        assert!(env_entry(&[]).is_none());
        assert!(parse(None).unwrap().is_empty());
        assert!(parse(Some("")).unwrap().is_empty());
        assert!(matches!(parse(Some("{")), Err(MountError::Parse(_))));
        let relative = r#"[{"source":"v","target":"/t","read_only":false}]"#;
        assert!(matches!(
            parse(Some(relative)),
            Err(MountError::Relative { .. })
        ));
    }
}
