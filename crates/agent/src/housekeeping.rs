//! Periodic sandbox housekeeping: log rotation for running containers (every second) and
//! garbage collection of finished sandboxes plus black-box pruning (every
//! `--disk_watch_interval`). File work runs on blocking threads, off the event loop.

use crate::blackbox::BlackBoxStore;
use crate::event_loop::Handle;
use crate::flags::AgentFlags;
use crate::gc::{self, GcPolicy};
use crate::sandbox_logs::{self, Rotation};
use std::path::PathBuf;
use std::time::Duration;

/// Starts the housekeeping tasks.
pub fn spawn(flags: &AgentFlags, work_dir: PathBuf, handle: Handle, blackbox: BlackBoxStore) {
    let rotation = Rotation {
        max_bytes: flags.sandbox_log_max_size,
        keep: flags.sandbox_log_max_files,
    };
    let rotate_handle = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(live) = rotate_handle.read(|a, _| a.live_sandboxes()).await else {
                return;
            };
            let _ = tokio::task::spawn_blocking(move || sandbox_logs::rotate_all(&live, rotation))
                .await;
        }
    });
    let policy = GcPolicy {
        delay: Duration::from_secs_f64(flags.gc_delay.max(0.0)),
        disk_headroom: flags.gc_disk_headroom,
    };
    let every = Duration::from_secs_f64(flags.disk_watch_interval.max(0.1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(live) = handle.read(|a, _| a.live_sandboxes()).await else {
                return;
            };
            let (dir, bb) = (work_dir.clone(), blackbox.clone());
            let _ = tokio::task::spawn_blocking(move || {
                gc::collect(&dir, &live, policy);
                bb.prune();
            })
            .await;
        }
    });
}
