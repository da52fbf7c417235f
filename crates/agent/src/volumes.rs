//! Persistent volumes on disk: creates and removes their directories under
//! `<work_dir>/volumes/roles/`, and links them into sandboxes. A volume is a symlink in
//! the sandbox (as Mesos does without a mount namespace), so removing a finished sandbox
//! never touches the volume's data; the link is refused if any directory on the way is a
//! symlink (a task could otherwise point it outside its sandbox). With
//! `--isolation filesystem/linux` a new container's volumes get an empty mount point
//! instead (same checks), bind-mounted inside the container's own mount namespace; for
//! a container already running, `strata ns-mount` makes the bind inside it.

use std::path::{Component, Path, PathBuf};
use strata_agent_core::volumes::VolumeOp;

/// Carries out one volume operation; failures are logged (the task then sees no volume).
pub fn apply(work_dir: &Path, op: &VolumeOp) {
    let result = match op {
        VolumeOp::Create { path } => create(work_dir, Path::new(path)),
        VolumeOp::Destroy { path } => destroy(work_dir, Path::new(path)),
        VolumeOp::Link {
            source,
            sandbox,
            container_path,
            read_only,
        } => link(
            work_dir,
            Path::new(source),
            Path::new(sandbox),
            container_path,
            *read_only,
        ),
        VolumeOp::MountPoint {
            source,
            sandbox,
            container_path,
        } => mount_point(
            work_dir,
            Path::new(source),
            Path::new(sandbox),
            container_path,
        ),
        VolumeOp::MountInto {
            pid,
            source,
            sandbox,
            container_path,
            read_only,
        } => mount_into(
            work_dir,
            *pid,
            Path::new(source),
            Path::new(sandbox),
            container_path,
            *read_only,
        ),
    };
    if let Err(e) = result {
        tracing::error!(?op, error = %e, "persistent volume operation failed");
    }
}

fn volumes_root(work_dir: &Path) -> PathBuf {
    work_dir.join("volumes").join("roles")
}

/// Only paths under `<work_dir>/volumes/roles/` are ever created or removed.
fn confined(work_dir: &Path, path: &Path) -> std::io::Result<()> {
    let inside = path.starts_with(volumes_root(work_dir))
        && path
            .components()
            .all(|c| !matches!(c, Component::ParentDir | Component::CurDir));
    if inside {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{} is not a volume directory of this agent",
            path.display()
        )))
    }
}

fn create(work_dir: &Path, path: &Path) -> std::io::Result<()> {
    confined(work_dir, path)?;
    std::fs::create_dir_all(path)?;
    tracing::info!(path = %path.display(), "created persistent volume");
    Ok(())
}

fn destroy(work_dir: &Path, path: &Path) -> std::io::Result<()> {
    confined(work_dir, path)?;
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => {
            tracing::info!(path = %path.display(), "destroyed persistent volume");
            Ok(())
        }
    }
}

/// `<sandbox>/<container_path>` → `source`, creating the sandbox and parent directories.
fn link(
    work_dir: &Path,
    source: &Path,
    sandbox: &Path,
    container_path: &str,
    read_only: bool,
) -> std::io::Result<()> {
    let target = prepare(work_dir, source, sandbox, container_path)?;
    if let Ok(meta) = std::fs::symlink_metadata(&target) {
        if !meta.file_type().is_symlink() {
            return Err(std::io::Error::other(format!(
                "{} already exists in the sandbox",
                target.display()
            )));
        }
        std::fs::remove_file(&target)?;
    }
    std::os::unix::fs::symlink(source, &target)?;
    if read_only {
        tracing::warn!(target = %target.display(), "read-only volume mode is not enforced for linked volumes (it is with --isolation filesystem/linux)");
    }
    Ok(())
}

/// The empty directory `<sandbox>/<container_path>` a volume is bind-mounted on.
fn mount_point(
    work_dir: &Path,
    source: &Path,
    sandbox: &Path,
    container_path: &str,
) -> std::io::Result<()> {
    let target = prepare(work_dir, source, sandbox, container_path)?;
    match std::fs::symlink_metadata(&target) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(std::io::Error::other(format!(
            "{} already exists in the sandbox and is not a directory",
            target.display()
        ))),
        Err(_) => std::fs::create_dir(&target),
    }
}

/// A mount point in the sandbox, then the bind mount made inside the mount namespace of
/// the running container `pid` by `strata ns-mount` (setns needs a single-threaded
/// process). A container that turns out to share the agent's mount namespace gets a
/// link instead: a mount there would show on the host.
fn mount_into(
    work_dir: &Path,
    pid: u32,
    source: &Path,
    sandbox: &Path,
    container_path: &str,
    read_only: bool,
) -> std::io::Result<()> {
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/mnt")).ok();
    let theirs = ns(&pid.to_string());
    if theirs.is_none() || theirs == ns("self") {
        tracing::warn!(
            pid,
            "the container has no mount namespace of its own; linking the volume instead"
        );
        return link(work_dir, source, sandbox, container_path, read_only);
    }
    mount_point(work_dir, source, sandbox, container_path)?;
    let bind = strata_containerizer::mounts::Bind {
        source: source.to_path_buf(),
        target: sandbox.join(container_path),
        read_only,
    };
    let Some((key, value)) = strata_containerizer::mounts::env_entry(&[bind]) else {
        return Ok(());
    };
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["ns-mount", "--pid", &pid.to_string()])
        .env(key, value)
        .stdin(std::process::Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "strata ns-mount failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Checks the paths, creates the volume, the sandbox and the parents of
/// `<sandbox>/<container_path>` (none of them a symlink), and returns that path.
fn prepare(
    work_dir: &Path,
    source: &Path,
    sandbox: &Path,
    container_path: &str,
) -> std::io::Result<PathBuf> {
    confined(work_dir, source)?;
    let rel = Path::new(container_path);
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(std::io::Error::other(format!(
            "container_path '{container_path}' must be relative without '..'"
        )));
    }
    std::fs::create_dir_all(source)?;
    std::fs::create_dir_all(sandbox)?;
    let target = sandbox.join(rel);
    let mut dir = sandbox.to_path_buf();
    let parents: Vec<Component> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for c in parents {
        dir.push(c);
        if std::fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(std::io::Error::other(format!(
                "{} is a symlink; refusing to link a volume through it",
                dir.display()
            )));
        }
        std::fs::create_dir_all(&dir)?;
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_op(source: &Path, sandbox: &Path, path: &str) -> VolumeOp {
        VolumeOp::Link {
            source: source.display().to_string(),
            sandbox: sandbox.display().to_string(),
            container_path: path.into(),
            read_only: false,
        }
    }

    #[test]
    fn mount_points_are_empty_directories() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path();
        let vol = work.join("volumes/roles/eng/v1");
        let sandbox = work.join("sandbox");
        let op = VolumeOp::MountPoint {
            source: vol.display().to_string(),
            sandbox: sandbox.display().to_string(),
            container_path: "a/data".into(),
        };
        apply(work, &op);
        apply(work, &op);
        assert!(vol.is_dir());
        let target = sandbox.join("a/data");
        assert!(std::fs::symlink_metadata(&target).unwrap().is_dir());
        std::fs::write(sandbox.join("file"), "x").unwrap();
        assert!(mount_point(work, &vol, &sandbox, "file").is_err());
    }

    #[test]
    fn create_link_destroy() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path();
        let vol = work.join("volumes/roles/eng/v1");
        let sandbox = work.join("sandbox");
        apply(
            work,
            &VolumeOp::Create {
                path: vol.display().to_string(),
            },
        );
        assert!(vol.is_dir());
        apply(work, &link_op(&vol, &sandbox, "data/v"));
        std::fs::write(sandbox.join("data/v/f"), "x").unwrap();
        assert_eq!(std::fs::read_to_string(vol.join("f")).unwrap(), "x");
        std::fs::remove_dir_all(&sandbox).unwrap();
        assert!(
            vol.join("f").is_file(),
            "removing the sandbox keeps the data"
        );
        apply(
            work,
            &VolumeOp::Destroy {
                path: vol.display().to_string(),
            },
        );
        assert!(!vol.exists());
    }

    #[test]
    fn hostile_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path();
        let vol = work.join("volumes/roles/eng/v1");
        let sandbox = work.join("sandbox");
        let outside = work.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(&sandbox).unwrap();
        std::os::unix::fs::symlink(&outside, sandbox.join("evil")).unwrap();
        for path in ["../x", "/abs", "evil/x", ""] {
            assert!(
                link(work, &vol, &sandbox, path, false).is_err(),
                "{path} must be refused"
            );
        }
        for path in ["../x", "/abs", "evil/x", ""] {
            assert!(
                mount_point(work, &vol, &sandbox, path).is_err(),
                "{path} must be refused"
            );
        }
        assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
        let elsewhere = work.join("not-a-volume");
        assert!(create(work, &elsewhere).is_err());
        assert!(destroy(work, &work.join("volumes/roles/../../x")).is_err());
    }
}
