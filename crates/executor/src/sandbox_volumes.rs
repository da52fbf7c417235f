//! `SANDBOX_PATH` volumes of process tasks: how the tasks of a group share a directory of
//! the executor's sandbox. Without mount namespaces the volume is a symlink, as Mesos'
//! `volume/sandbox_path` isolator makes it when bind mounts are unavailable.

use std::path::{Component, Path, PathBuf};
use strata_api::TaskInfo;

/// One volume to create: `target` (in the task's sandbox) links to `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLink {
    pub source: PathBuf,
    pub target: PathBuf,
}

/// The links `task`'s `SANDBOX_PATH` volumes need. `parent` is the executor's sandbox
/// (`None` for a task that has no parent container, i.e. a command executor's task);
/// `own` is the task's sandbox. Other volume kinds are left to their containerizer.
pub fn links(
    task: &TaskInfo,
    parent: Option<&Path>,
    own: &Path,
) -> Result<Vec<SandboxLink>, String> {
    let Some(container) = &task.container else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for volume in &container.volumes {
        let Some(source) = &volume.source else {
            continue;
        };
        if source.kind.as_deref() != Some("SANDBOX_PATH") {
            continue;
        }
        let spec = source.sandbox_path.as_ref();
        let kind = spec.and_then(|s| s["type"].as_str()).unwrap_or("SELF");
        let path = spec.and_then(|s| s["path"].as_str()).unwrap_or_default();
        let path = relative("sandbox_path.path", path)?;
        let base = match kind {
            "SELF" => own,
            "PARENT" => parent.ok_or_else(|| {
                "a PARENT sandbox_path volume needs a task group (this task has no parent \
                 container)"
                    .to_string()
            })?,
            other => return Err(format!("unknown sandbox_path type '{other}'")),
        };
        if Path::new(&volume.container_path).is_absolute() {
            return Err(format!(
                "container_path '{}' is absolute: that needs a mount namespace, which \
                 process tasks do not have; use a path relative to the sandbox",
                volume.container_path
            ));
        }
        let target = relative("container_path", &volume.container_path)?;
        out.push(SandboxLink {
            source: base.join(path),
            target: own.join(target),
        });
    }
    Ok(out)
}

/// `text` as a non-empty relative path that stays below its base.
fn relative<'a>(what: &str, text: &'a str) -> Result<&'a Path, String> {
    let path = Path::new(text);
    let inside = path.components().all(|c| matches!(c, Component::Normal(_)));
    if text.is_empty() || !inside {
        return Err(format!(
            "{what} '{text}' must be a relative path without '..' or '.'"
        ));
    }
    Ok(path)
}

/// Creates the source directories (owned like their sandbox) and the links.
pub fn create(links: &[SandboxLink], ids: Option<(u32, u32)>) -> std::io::Result<()> {
    for link in links {
        if !link.source.exists() {
            std::fs::create_dir_all(&link.source)?;
            if let Some((uid, gid)) = ids {
                std::os::unix::fs::chown(&link.source, Some(uid), Some(gid))?;
            }
        }
        if let Some(dir) = link.target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::symlink_metadata(&link.target) {
            Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(&link.target)?,
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a volume link", link.target.display()),
                ))
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&link.source, &link.target)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(volumes: serde_json::Value) -> TaskInfo {
        serde_json::from_value(json!({
            "name": "t", "task_id": {"value": "t"}, "agent_id": {"value": "a"},
            "command": {"value": "true"},
            "container": {"type": "MESOS", "volumes": volumes},
        }))
        .unwrap()
    }

    fn parent_volume(path: &str, container_path: &str) -> serde_json::Value {
        json!([{"mode": "RW", "container_path": container_path,
                "source": {"type": "SANDBOX_PATH",
                           "sandbox_path": {"type": "PARENT", "path": path}}}])
    }

    #[test]
    fn a_parent_volume_links_into_the_executor_sandbox() {
        let t = task(parent_volume("shared", "data"));
        let got = links(&t, Some(Path::new("/ex")), Path::new("/ex/tasks/t")).unwrap();
        assert_eq!(
            got,
            vec![SandboxLink {
                source: "/ex/shared".into(),
                target: "/ex/tasks/t/data".into()
            }]
        );
    }

    #[test]
    fn a_parent_volume_needs_a_parent() {
        let t = task(parent_volume("shared", "data"));
        let err = links(&t, None, Path::new("/sb")).unwrap_err();
        assert!(err.contains("task group"), "{err}");
    }

    #[test]
    fn hostile_and_absolute_paths_are_refused() {
        for (path, cpath) in [
            ("../../etc", "data"),
            ("/etc", "data"),
            ("shared", "../outside"),
            ("shared", "/data"),
            ("", "data"),
            ("shared", "./data"),
        ] {
            let t = task(parent_volume(path, cpath));
            assert!(
                links(&t, Some(Path::new("/ex")), Path::new("/ex/tasks/t")).is_err(),
                "{path} {cpath}"
            );
        }
    }

    #[test]
    fn other_volumes_and_tasks_without_a_container_need_nothing() {
        let t = task(json!([{"mode": "RO", "container_path": "/x", "host_path": "/tmp"}]));
        assert!(links(&t, None, Path::new("/sb")).unwrap().is_empty());
        let mut bare = t.clone();
        bare.container = None;
        assert!(links(&bare, None, Path::new("/sb")).unwrap().is_empty());
    }

    #[test]
    fn created_links_are_shared_and_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let t = task(parent_volume("shared", "data"));
        let own = dir.path().join("tasks/t");
        let got = links(&t, Some(dir.path()), &own).unwrap();
        create(&got, None).unwrap();
        std::fs::write(own.join("data/f"), "hi").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("shared/f")).unwrap(),
            "hi"
        );
        create(&got, None).unwrap();
        std::fs::create_dir_all(own.join("plain")).unwrap();
        let clash = vec![SandboxLink {
            source: dir.path().join("shared"),
            target: own.join("plain"),
        }];
        assert!(create(&clash, None).is_err());
    }
}
