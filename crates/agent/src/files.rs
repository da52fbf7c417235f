//! Sandbox file access for `/files/browse`, `/files/read` and `/files/download`: resolving
//! a requested path (real sandbox paths or Mesos' virtual `/frameworks/…/runs/latest`)
//! to a real file that is guaranteed to lie inside the agent's sandboxes.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Largest chunk `/files/read` returns.
pub const MAX_READ: u64 = 64 * 1024;

/// Why a path cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("Expecting 'path' to be present")]
    MissingPath,
    #[error("{0}")]
    BadRequest(String),
    #[error("No file or directory at '{0}' in any sandbox")]
    NotFound(String),
}

/// Resolves `requested` under `work_dir/slaves`. Symlinks are followed, and the result
/// must still be inside the sandboxes root, so nothing outside can be reached.
pub fn resolve(
    work_dir: &Path,
    agent_id: Option<&str>,
    requested: &str,
) -> Result<PathBuf, FileError> {
    if requested.is_empty() {
        return Err(FileError::MissingPath);
    }
    let root = work_dir.join("slaves");
    let candidate = match requested.strip_prefix("/frameworks/") {
        Some(rest) => {
            let aid = agent_id.ok_or_else(|| FileError::NotFound(requested.to_string()))?;
            if Path::new(rest)
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
            {
                return Err(FileError::NotFound(requested.to_string()));
            }
            root.join(aid).join("frameworks").join(rest)
        }
        None => PathBuf::from(requested),
    };
    let real = candidate
        .canonicalize()
        .map_err(|_| FileError::NotFound(requested.to_string()))?;
    let root = root
        .canonicalize()
        .map_err(|_| FileError::NotFound(requested.to_string()))?;
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(FileError::NotFound(requested.to_string()))
    }
}

/// `ls -l`-style mode text.
pub fn mode_string(meta: &std::fs::Metadata) -> String {
    let kind = if meta.is_dir() {
        'd'
    } else if meta.file_type().is_symlink() {
        'l'
    } else {
        '-'
    };
    let bits = meta.permissions().mode();
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6u32, 3, 0] {
        let b = (bits >> shift) & 7;
        s.push(if b & 4 != 0 { 'r' } else { '-' });
        s.push(if b & 2 != 0 { 'w' } else { '-' });
        s.push(if b & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
        .unwrap_or_else(|| gid.to_string())
}

/// One `/files/browse` entry.
pub fn entry_json(path: &Path, meta: &std::fs::Metadata) -> serde_json::Value {
    serde_json::json!({
        "path": path.display().to_string(), "nlink": meta.nlink(), "size": meta.len(),
        "mtime": meta.mtime(), "mode": mode_string(meta), "uid": user_name(meta.uid()), "gid": group_name(meta.gid()),
    })
}

/// `/files/browse`: the entries of a directory (or the file itself).
pub fn browse(path: &Path) -> Result<serde_json::Value, FileError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| FileError::NotFound(format!("{}: {e}", path.display())))?;
    if !meta.is_dir() {
        return Ok(serde_json::json!([entry_json(path, &meta)]));
    }
    let mut entries = Vec::new();
    let dir = std::fs::read_dir(path)
        .map_err(|e| FileError::NotFound(format!("{}: {e}", path.display())))?;
    for e in dir.flatten() {
        if let Ok(m) = e.metadata() {
            entries.push(entry_json(&e.path(), &m));
        }
    }
    entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Ok(serde_json::Value::Array(entries))
}

/// `/files/read`: `{data, offset}`; offset -1 (or length 0) returns the size in `offset`.
pub fn read(path: &Path, offset: i64, length: Option<u64>) -> Result<serde_json::Value, FileError> {
    use std::io::{Read, Seek, SeekFrom};
    let meta = std::fs::metadata(path)
        .map_err(|e| FileError::NotFound(format!("{}: {e}", path.display())))?;
    if meta.is_dir() {
        return Err(FileError::BadRequest(format!(
            "'{}' is a directory",
            path.display()
        )));
    }
    let size = meta.len();
    if offset < 0 || length == Some(0) {
        return Ok(serde_json::json!({"data": "", "offset": size}));
    }
    let start = (offset as u64).min(size);
    let want = length.unwrap_or(MAX_READ).min(MAX_READ);
    let mut f = std::fs::File::open(path)
        .map_err(|e| FileError::NotFound(format!("{}: {e}", path.display())))?;
    f.seek(SeekFrom::Start(start))
        .map_err(|e| FileError::BadRequest(e.to_string()))?;
    let mut buf = Vec::new();
    f.take(want)
        .read_to_end(&mut buf)
        .map_err(|e| FileError::BadRequest(e.to_string()))?;
    Ok(serde_json::json!({"data": String::from_utf8_lossy(&buf), "offset": start}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let sb = dir.path().join("slaves/A/frameworks/F/executors/E/runs/C");
        std::fs::create_dir_all(&sb).unwrap();
        std::fs::write(sb.join("stdout"), "hello world").unwrap();
        std::os::unix::fs::symlink("C", sb.parent().unwrap().join("latest")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", sb.join("evil")).unwrap();
        (dir, sb)
    }

    #[test]
    fn paths_resolve_only_inside_sandboxes() {
        let (dir, sb) = sandbox();
        let w = dir.path();
        let ok = |p: &str| resolve(w, Some("A"), p);
        assert_eq!(
            ok(&format!("{}/stdout", sb.display())).unwrap(),
            sb.join("stdout").canonicalize().unwrap()
        );
        assert_eq!(
            ok("/frameworks/F/executors/E/runs/latest/stdout").unwrap(),
            sb.join("stdout").canonicalize().unwrap()
        );
        let cases = [
            "".to_string(),
            "/etc/passwd".to_string(),
            format!("{}/../../../../../../../../etc/passwd", sb.display()),
            format!("{}/evil", sb.display()),
            "/frameworks/../../../etc/passwd".to_string(),
            format!("{}/nope", sb.display()),
            w.join("slaves/../secret").display().to_string(),
        ];
        for c in cases {
            assert!(ok(&c).is_err(), "{c} must not resolve");
        }
        assert_eq!(ok(""), Err(FileError::MissingPath));
    }

    #[test]
    fn read_and_browse() {
        let (_dir, sb) = sandbox();
        let f = sb.join("stdout");
        assert_eq!(
            read(&f, 0, None).unwrap(),
            serde_json::json!({"data": "hello world", "offset": 0})
        );
        assert_eq!(
            read(&f, 6, Some(3)).unwrap(),
            serde_json::json!({"data": "wor", "offset": 6})
        );
        assert_eq!(
            read(&f, -1, None).unwrap(),
            serde_json::json!({"data": "", "offset": 11})
        );
        assert_eq!(read(&f, 100, None).unwrap()["data"], "");
        let listing = browse(&sb).unwrap();
        let names: Vec<_> = listing
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["path"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["evil", "stdout"]);
        assert_eq!(listing[1]["mode"].as_str().unwrap().len(), 10);
    }
}
