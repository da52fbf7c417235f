//! Unpacking fetched archives (`.tar`, `.tar.gz`/`.tgz`, `.zip`, single-file `.gz`) into the
//! sandbox, as the Mesos fetcher does, without ever writing outside it.
//!
//! Every entry path, symlink target and hardlink target goes through [`crate::confine`]; a
//! hostile entry stops the extraction with [`ExtractError::Unsafe`]. Entries extracted before
//! it stay in the sandbox (the task is failed anyway). Work is bounded by a [`Budget`]: total
//! bytes written and a deadline, so a decompression bomb or a huge archive ends in an error.
//! Synchronous: run it on a blocking thread.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use flate2::read::GzDecoder;

use crate::confine::{self, Refusal};

/// Why an archive could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// An entry would land outside the sandbox; nothing of it was written.
    #[error(
        "entry {entry:?} {reason}; refusing to extract an archive that reaches outside the sandbox"
    )]
    Unsafe { entry: String, reason: &'static str },
    /// The archive is corrupt or in a format variant we do not read.
    #[error(
        "the archive is unreadable ({message}); check that the file is a valid archive of its kind"
    )]
    Corrupt { message: String },
    /// Writing to the sandbox failed.
    #[error("cannot write {path}: {source}; check the sandbox's free space and permissions")]
    Write { path: PathBuf, source: io::Error },
    /// The extracted contents exceed the byte limit.
    #[error("the extracted contents exceed the limit of {max_bytes} bytes; raise the fetcher limit or ship a smaller archive")]
    TooLarge { max_bytes: u64 },
    /// The deadline passed while extracting.
    #[error("extraction did not finish before the fetch deadline; raise the fetcher timeout or ship a smaller archive")]
    Timeout,
}

/// The archive formats recognised by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    Tar,
    TarGz,
    Zip,
    /// A single gzip-compressed file, decompressed next to itself without the `.gz`.
    Gz,
}

impl ArchiveKind {
    /// Recognises an archive by the suffix of its file name (ASCII case-insensitive).
    pub(crate) fn detect(file_name: &str) -> Option<Self> {
        let name = file_name.to_ascii_lowercase();
        if name.ends_with(".tar") {
            Some(ArchiveKind::Tar)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(ArchiveKind::TarGz)
        } else if name.ends_with(".zip") {
            Some(ArchiveKind::Zip)
        } else if name.ends_with(".gz") && name.len() > ".gz".len() {
            Some(ArchiveKind::Gz)
        } else {
            None
        }
    }
}

/// Limits on one extraction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    max_bytes: u64,
    written: u64,
    /// `None` when the timeout is too far away to represent.
    deadline: Option<Instant>,
}

impl Budget {
    pub(crate) fn new(max_bytes: u64, deadline: Option<Instant>) -> Self {
        Self {
            max_bytes,
            written: 0,
            deadline,
        }
    }

    fn spend(&mut self, bytes: u64) -> Result<(), ExtractError> {
        self.written = self.written.saturating_add(bytes);
        if self.written > self.max_bytes {
            return Err(ExtractError::TooLarge {
                max_bytes: self.max_bytes,
            });
        }
        self.check_time()
    }

    fn check_time(&self) -> Result<(), ExtractError> {
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() > deadline)
        {
            return Err(ExtractError::Timeout);
        }
        Ok(())
    }
}

/// Extracts `archive` into `root`. `name` is the archive's path relative to `root` (where
/// it is, or where it would be when it is extracted straight from the fetcher cache): a
/// `.gz` file is decompressed to `name` without the `.gz`. Returns the number of bytes
/// written.
pub(crate) fn extract(
    kind: ArchiveKind,
    archive: &Path,
    name: &Path,
    root: &Path,
    mut budget: Budget,
) -> Result<u64, ExtractError> {
    let file = File::open(archive).map_err(corrupt)?;
    match kind {
        ArchiveKind::Tar => extract_tar(file, root, &mut budget)?,
        ArchiveKind::TarGz => extract_tar(GzDecoder::new(file), root, &mut budget)?,
        ArchiveKind::Zip => extract_zip(file, root, &mut budget)?,
        ArchiveKind::Gz => gunzip(file, name, root, &mut budget)?,
    }
    Ok(budget.written)
}

fn extract_tar<R: Read>(reader: R, root: &Path, budget: &mut Budget) -> Result<(), ExtractError> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        budget.check_time()?;
        let raw = entry.path().map_err(corrupt)?.into_owned();
        let Some(rel) = entry_path(&raw)? else {
            continue;
        };
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().ok();
        if kind.is_dir() || (kind.is_file() && raw.as_os_str().as_encoded_bytes().ends_with(b"/")) {
            make_dirs(root, &rel)?;
        } else if kind.is_file() || kind.is_contiguous() {
            write_file(root, &rel, &mut entry, mode, budget)?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(corrupt)?
                .ok_or_else(|| corrupt(format!("link {} has no target", rel.display())))?;
            if kind.is_symlink() {
                make_symlink(root, &rel, &target)?;
            } else {
                make_hard_link(root, &rel, &target)?;
            }
        } else {
            tracing::warn!(entry = %rel.display(), kind = ?kind, "skipping tar entry of unsupported type");
        }
    }
    Ok(())
}

fn extract_zip(file: File, root: &Path, budget: &mut Budget) -> Result<(), ExtractError> {
    let mut archive = zip::ZipArchive::new(file).map_err(corrupt)?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(corrupt)?;
        budget.check_time()?;
        let raw = PathBuf::from(entry.name());
        let Some(rel) = entry_path(&raw)? else {
            continue;
        };
        if entry.is_dir() {
            make_dirs(root, &rel)?;
        } else if entry.is_symlink() {
            let target = read_link_target(&mut entry)?;
            make_symlink(root, &rel, &target)?;
        } else {
            let mode = entry.unix_mode();
            write_file(root, &rel, &mut entry, mode, budget)?;
        }
    }
    Ok(())
}

/// A zip symlink stores its target as the entry's contents.
fn read_link_target(entry: &mut impl Read) -> Result<PathBuf, ExtractError> {
    const MAX_TARGET_BYTES: u64 = 4096;
    let mut target = String::new();
    entry
        .take(MAX_TARGET_BYTES)
        .read_to_string(&mut target)
        .map_err(corrupt)?;
    Ok(PathBuf::from(target))
}

fn gunzip(file: File, name: &Path, root: &Path, budget: &mut Budget) -> Result<(), ExtractError> {
    let rel = name
        .to_str()
        .and_then(|rel| rel.get(..rel.len().saturating_sub(".gz".len())))
        .map(PathBuf::from)
        .ok_or_else(|| corrupt(format!("{} has no name without .gz", name.display())))?;
    let rel = entry_path(&rel)?.ok_or_else(|| corrupt("empty name without .gz"))?;
    write_file(root, &rel, &mut GzDecoder::new(file), None, budget)
}

fn entry_path(raw: &Path) -> Result<Option<PathBuf>, ExtractError> {
    confine::relative(raw).map_err(|refusal| unsafe_entry(raw, refusal))
}

fn make_dirs(root: &Path, rel: &Path) -> Result<(), ExtractError> {
    confine::create_dirs(root, rel)
        .map_err(|source| write_error(root, rel, source))?
        .map_err(|refusal| unsafe_entry(rel, refusal))
}

fn prepare_leaf(root: &Path, rel: &Path) -> Result<PathBuf, ExtractError> {
    confine::prepare_leaf(root, rel)
        .map_err(|source| write_error(root, rel, source))?
        .map_err(|refusal| unsafe_entry(rel, refusal))
}

fn write_file(
    root: &Path,
    rel: &Path,
    contents: &mut impl Read,
    mode: Option<u32>,
    budget: &mut Budget,
) -> Result<(), ExtractError> {
    let path = prepare_leaf(root, rel)?;
    let write_err = |source| ExtractError::Write {
        path: path.clone(),
        source,
    };
    // `create_new` never follows a symlink, so nothing can redirect this write.
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(write_err)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = contents.read(&mut buf).map_err(corrupt)?;
        if n == 0 {
            break;
        }
        budget.spend(n as u64)?;
        out.write_all(&buf[..n]).map_err(write_err)?;
    }
    // Keep the permission bits (an executable stays executable) but never setuid/setgid.
    if let Some(mode) = mode.map(|m| m & 0o777).filter(|m| *m != 0) {
        let perms = std::fs::Permissions::from_mode(mode);
        std::fs::set_permissions(&path, perms).map_err(write_err)?;
    }
    Ok(())
}

fn make_symlink(root: &Path, rel: &Path, target: &Path) -> Result<(), ExtractError> {
    confine::check_symlink_target(rel, target).map_err(|refusal| unsafe_entry(rel, refusal))?;
    let path = prepare_leaf(root, rel)?;
    std::os::unix::fs::symlink(target, &path).map_err(|source| ExtractError::Write { path, source })
}

/// A hardlink target names another entry of the archive, relative to the root.
fn make_hard_link(root: &Path, rel: &Path, target: &Path) -> Result<(), ExtractError> {
    let Some(target_rel) = entry_path(target)? else {
        return Err(unsafe_entry(rel, Refusal::TargetEscapes));
    };
    match confine::inspect(root, &target_rel, false) {
        Ok(Ok(confine::Existing::Other)) => {}
        Ok(Err(refusal)) => return Err(unsafe_entry(rel, refusal)),
        Ok(Ok(_)) => {
            let message = format!(
                "hardlink {} -> {}: target is not a file extracted earlier",
                rel.display(),
                target.display()
            );
            return Err(corrupt(message));
        }
        Err(source) => return Err(write_error(root, &target_rel, source)),
    }
    let path = prepare_leaf(root, rel)?;
    std::fs::hard_link(root.join(&target_rel), &path)
        .map_err(|source| ExtractError::Write { path, source })
}

fn unsafe_entry(entry: &Path, refusal: Refusal) -> ExtractError {
    ExtractError::Unsafe {
        entry: entry.display().to_string(),
        reason: refusal.reason(),
    }
}

fn write_error(root: &Path, rel: &Path, source: io::Error) -> ExtractError {
    ExtractError::Write {
        path: root.join(rel),
        source,
    }
}

fn corrupt(err: impl ToString) -> ExtractError {
    ExtractError::Corrupt {
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, expected: Option<ArchiveKind>) {
        assert_eq!(ArchiveKind::detect(name), expected, "{name}");
    }

    #[test]
    fn detects_archives_by_suffix() {
        check("a.tar", Some(ArchiveKind::Tar));
        check("a.tar.gz", Some(ArchiveKind::TarGz));
        check("A.TGZ", Some(ArchiveKind::TarGz));
        check("a.zip", Some(ArchiveKind::Zip));
        check("a.txt.gz", Some(ArchiveKind::Gz));
        check(".gz", None);
        check("a.tar.bz2", None);
        check("a.txt", None);
        check("tar", None);
    }
}
