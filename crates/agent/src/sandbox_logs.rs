//! Bounded sandbox logs: `stdout`/`stderr` of running containers (and of task-group tasks
//! under `tasks/<id>/`) are rotated when they pass a size, keeping a few older files, so
//! a task printing fast never fills the disk. Writers keep their file open (O_APPEND), so
//! rotation copies the head to `<file>.1` and then removes it from the live file: with
//! `FALLOC_FL_COLLAPSE_RANGE` where the filesystem has it (nothing lost), else by
//! truncation (bytes written between the copy and the truncation are lost).

use nix::fcntl::{fallocate, FallocateFlags};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Rotation settings.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    /// A log is rotated once it is larger than this.
    pub max_bytes: u64,
    /// Rotated files kept (`stdout.1` … `stdout.N`).
    pub keep: u32,
}

/// The log files of one sandbox: its own and those of task-group tasks.
pub fn log_files(sandbox: &Path) -> Vec<PathBuf> {
    let mut files = vec![sandbox.join("stdout"), sandbox.join("stderr")];
    if let Ok(dir) = std::fs::read_dir(sandbox.join("tasks")) {
        for e in dir.flatten() {
            files.push(e.path().join("stdout"));
            files.push(e.path().join("stderr"));
        }
    }
    files
}

fn numbered(file: &Path, n: u32) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Rotates `file` if it is over the limit; returns whether it did.
pub fn rotate_if_needed(file: &Path, r: Rotation) -> std::io::Result<bool> {
    let size = match std::fs::metadata(file) {
        Ok(m) => m.len(),
        Err(_) => return Ok(false),
    };
    if size <= r.max_bytes {
        return Ok(false);
    }
    if r.keep == 0 {
        std::fs::OpenOptions::new()
            .write(true)
            .open(file)?
            .set_len(0)?;
        return Ok(true);
    }
    let _ = std::fs::remove_file(numbered(file, r.keep));
    for n in (1..r.keep).rev() {
        let _ = std::fs::rename(numbered(file, n), numbered(file, n + 1));
    }
    let mut live = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)?;
    // Collapse works on whole filesystem blocks; 4 KiB is a multiple of common sizes.
    let cut = size - size % 4096;
    copy_head(&mut live, &numbered(file, 1), cut)?;
    let collapsed = cut > 0
        && fallocate(
            live.as_raw_fd(),
            FallocateFlags::FALLOC_FL_COLLAPSE_RANGE,
            0,
            cut as i64,
        )
        .is_ok();
    if !collapsed {
        // Copy what arrived since, then drop everything.
        let now = live.metadata()?.len();
        if now > cut {
            let mut rest = Vec::new();
            live.seek(SeekFrom::Start(cut))?;
            Read::by_ref(&mut live)
                .take(now - cut)
                .read_to_end(&mut rest)?;
            std::fs::OpenOptions::new()
                .append(true)
                .open(numbered(file, 1))?
                .write_all(&rest)?;
        }
        live.set_len(0)?;
    }
    Ok(true)
}

fn copy_head(live: &mut std::fs::File, to: &Path, len: u64) -> std::io::Result<()> {
    live.seek(SeekFrom::Start(0))?;
    let mut out = std::fs::File::create(to)?;
    std::io::copy(&mut Read::by_ref(live).take(len), &mut out)?;
    Ok(())
}

/// The last `max` bytes of a file as text (empty if missing).
pub fn tail(file: &Path, max: u64) -> String {
    let Ok(mut f) = std::fs::File::open(file) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
    let mut buf = Vec::new();
    let _ = f.take(max).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Rotates every log of the given sandboxes (called periodically by the agent).
pub fn rotate_all(sandboxes: &[String], r: Rotation) {
    for sb in sandboxes {
        for f in log_files(Path::new(sb)) {
            if let Err(e) = rotate_if_needed(&f, r) {
                tracing::warn!(file = %f.display(), error = %e, "cannot rotate a sandbox log");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_bounds_the_logs_and_keeps_the_newest_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("stdout");
        let mut w = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&f)
            .unwrap();
        let r = Rotation {
            max_bytes: 10_000,
            keep: 2,
        };
        for round in 0..5u8 {
            w.write_all(&vec![b'a' + round; 12_288]).unwrap();
            assert!(rotate_if_needed(&f, r).unwrap());
            let live = std::fs::metadata(&f).unwrap().len();
            assert!(live < 4096, "round {round}: {live} bytes left");
        }
        // The writer kept appending to the same file: its last bytes are the newest.
        w.write_all(b"tail").unwrap();
        assert!(tail(&f, 4).ends_with("tail"));
        assert!(numbered(&f, 1).exists() && numbered(&f, 2).exists() && !numbered(&f, 3).exists());
        let one = std::fs::read(numbered(&f, 1)).unwrap();
        assert!(
            one.iter().all(|b| *b == b'e'),
            "stdout.1 holds the latest rotated data"
        );
        assert!(
            !rotate_if_needed(&f, r).unwrap(),
            "under the limit: untouched"
        );
    }

    #[test]
    fn tails_and_task_group_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stdout"), "0123456789").unwrap();
        assert_eq!(tail(&dir.path().join("stdout"), 4), "6789");
        assert_eq!(tail(&dir.path().join("missing"), 4), "");
        std::fs::create_dir_all(dir.path().join("tasks/t1")).unwrap();
        assert_eq!(log_files(dir.path()).len(), 4);
    }
}
