//! Keeping every write inside the sandbox.
//!
//! The rules here are the only place that decides whether a path taken from outside (an
//! `output_file`, an archive entry name, a symlink or hardlink target) may be written.
//! They are deliberately strict and purely lexical where possible:
//!
//! * a written path is relative and made of plain components only (no `..`, no root);
//! * nothing is ever written *through* an existing symlink, so the lexical path is the
//!   physical path;
//! * a symlink target is relative, its `..` components all come first and never climb above
//!   the sandbox root, measured from the symlink's own (physical) directory.
//!
//! Together these mean a symlink can only ever resolve to a place inside the sandbox (every
//! symlink it passes through obeys the same rule), whatever order the entries come in.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Why a path was refused. The text completes "entry {path} ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Absolute,
    ParentDir,
    Empty,
    ThroughSymlink,
    TargetAbsolute,
    TargetEscapes,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Absolute => "is an absolute path",
            Refusal::ParentDir => "contains a `..` component",
            Refusal::Empty => "is empty",
            Refusal::ThroughSymlink => "would be written through a symlink",
            Refusal::TargetAbsolute => "links to an absolute path",
            Refusal::TargetEscapes => "links to a path outside the sandbox",
        }
    }
}

/// Normalizes a path taken from outside into plain components. `.` components are dropped;
/// `Ok(None)` means the path named the root itself (such as an archive's `./` entry).
pub(crate) fn relative(path: &Path) -> Result<Option<PathBuf>, Refusal> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(Refusal::ParentDir),
            Component::RootDir | Component::Prefix(_) => return Err(Refusal::Absolute),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Checks that a symlink placed at `link` (relative to the root, already normalized) with
/// the given target resolves inside the root.
pub(crate) fn check_symlink_target(link: &Path, target: &Path) -> Result<(), Refusal> {
    let depth = link.components().count().saturating_sub(1);
    let mut climbs = 0usize;
    let mut seen_normal = false;
    for component in target.components() {
        match component {
            Component::Normal(_) => seen_normal = true,
            Component::CurDir => {}
            // A `..` after a plain component could climb out of a directory reached through
            // another symlink, which no lexical check can see; refuse it.
            Component::ParentDir if seen_normal => return Err(Refusal::TargetEscapes),
            Component::ParentDir => climbs += 1,
            Component::RootDir | Component::Prefix(_) => return Err(Refusal::TargetAbsolute),
        }
    }
    if target.as_os_str().is_empty() {
        return Err(Refusal::Empty);
    }
    if climbs > depth {
        return Err(Refusal::TargetEscapes);
    }
    Ok(())
}

/// What, if anything, is at a path (without following a final symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    Nothing,
    Dir,
    Other,
}

/// Checks that no existing component of `root/rel` is a symlink, and reports what is at the
/// full path. Writing is refused through a symlink, including one at the final component
/// when `final_may_be_symlink` is false.
pub(crate) fn inspect(
    root: &Path,
    rel: &Path,
    final_may_be_symlink: bool,
) -> io::Result<Result<Existing, Refusal>> {
    let mut current = root.to_path_buf();
    let count = rel.components().count();
    for (index, component) in rel.components().enumerate() {
        current.push(component);
        let meta = match std::fs::symlink_metadata(&current) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Ok(Existing::Nothing)),
            Err(err) => return Err(err),
        };
        let is_final = index + 1 == count;
        if meta.file_type().is_symlink() && !(is_final && final_may_be_symlink) {
            return Ok(Err(Refusal::ThroughSymlink));
        }
        if is_final {
            return Ok(Ok(if meta.is_dir() {
                Existing::Dir
            } else {
                Existing::Other
            }));
        }
    }
    Ok(Ok(Existing::Dir))
}

/// Creates `root/rel` and its parents as directories, refusing to pass through a symlink.
pub(crate) fn create_dirs(root: &Path, rel: &Path) -> io::Result<Result<(), Refusal>> {
    if let Err(refusal) = inspect(root, rel, false)? {
        return Ok(Err(refusal));
    }
    std::fs::create_dir_all(root.join(rel))?;
    Ok(Ok(()))
}

/// Prepares `root/rel` to receive a new file or link: its parent directories exist (and are
/// not reached through symlinks) and nothing but a directory is in the way. An existing file
/// or symlink at the final component is removed, so the new one never writes through it.
pub(crate) fn prepare_leaf(root: &Path, rel: &Path) -> io::Result<Result<PathBuf, Refusal>> {
    if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Err(refusal) = create_dirs(root, parent)? {
            return Ok(Err(refusal));
        }
    }
    let full = root.join(rel);
    match inspect(root, rel, true)? {
        Err(refusal) => Ok(Err(refusal)),
        Ok(Existing::Nothing) => Ok(Ok(full)),
        Ok(Existing::Other) => {
            std::fs::remove_file(&full)?;
            Ok(Ok(full))
        }
        Ok(Existing::Dir) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists as a directory", full.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<Option<&str>, Refusal>) {
        let got = relative(Path::new(input));
        let expected = expected.map(|p| p.map(PathBuf::from));
        assert_eq!(got, expected, "relative({input:?})");
    }

    #[test]
    fn relative_paths() {
        check("a", Ok(Some("a")));
        check("a/b/c.txt", Ok(Some("a/b/c.txt")));
        check("./a/./b/", Ok(Some("a/b")));
        check(".", Ok(None));
        check("./", Ok(None));
        check("", Ok(None));
        check("../evil", Err(Refusal::ParentDir));
        check("a/../../evil", Err(Refusal::ParentDir));
        check("a/..", Err(Refusal::ParentDir));
        check("/etc/passwd", Err(Refusal::Absolute));
    }

    fn check_target(link: &str, target: &str, expected: Result<(), Refusal>) {
        let got = check_symlink_target(Path::new(link), Path::new(target));
        assert_eq!(got, expected, "{link} -> {target}");
    }

    #[test]
    fn symlink_targets() {
        check_target("link", "file", Ok(()));
        check_target("link", "./dir/file", Ok(()));
        check_target("a/link", "../file", Ok(()));
        check_target("a/b/link", "../../file", Ok(()));
        check_target("a/b/link", ".", Ok(()));
        check_target("link", "../file", Err(Refusal::TargetEscapes));
        check_target("a/link", "../../file", Err(Refusal::TargetEscapes));
        check_target("a/link", "x/../../y", Err(Refusal::TargetEscapes));
        check_target("a/b/link", "x/../y", Err(Refusal::TargetEscapes));
        check_target("link", "/etc", Err(Refusal::TargetAbsolute));
        check_target("link", "", Err(Refusal::Empty));
    }

    #[test]
    fn inspect_refuses_symlinked_parents() -> io::Result<()> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join("dir"))?;
        std::os::unix::fs::symlink("dir", root.path().join("link"))?;
        let cases = [
            ("dir", false, Ok(Existing::Dir)),
            ("dir/new", false, Ok(Existing::Nothing)),
            ("missing/deeper", false, Ok(Existing::Nothing)),
            ("link", true, Ok(Existing::Other)),
            ("link", false, Err(Refusal::ThroughSymlink)),
            ("link/new", true, Err(Refusal::ThroughSymlink)),
        ];
        for (rel, final_may_be_symlink, expected) in cases {
            let got = inspect(root.path(), Path::new(rel), final_may_be_symlink)?;
            assert_eq!(got, expected, "{rel}");
        }
        Ok(())
    }
}
