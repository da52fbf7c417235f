//! Process trees from /proc: finding and killing every descendant of a process, so
//! destroying a container reaches processes in other process groups too.

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeSet, HashMap};

/// Parent of each process, read from /proc/<pid>/stat.
fn parents() -> HashMap<u32, u32> {
    let mut map = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return map;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Format: pid (comm) state ppid …; comm may contain spaces and parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
            map.insert(pid, ppid);
        }
    }
    map
}

/// Every live descendant of `root` (not including it).
pub fn descendants(root: u32) -> BTreeSet<u32> {
    let parents = parents();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, ppid) in &parents {
        children.entry(*ppid).or_default().push(*pid);
    }
    let mut out = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(p) = stack.pop() {
        for c in children.get(&p).into_iter().flatten() {
            if out.insert(*c) {
                stack.push(*c);
            }
        }
    }
    out
}

/// SIGKILLs `root`, its process group, and every descendant and their groups.
pub fn kill_tree(root: u32) {
    let all: Vec<u32> = descendants(root)
        .into_iter()
        .chain(std::iter::once(root))
        .collect();
    for pid in &all {
        let Ok(raw) = i32::try_from(*pid) else {
            continue;
        };
        if raw <= 1 {
            continue;
        }
        let _ = kill(Pid::from_raw(raw), Signal::SIGSTOP);
    }
    for pid in &all {
        let Ok(raw) = i32::try_from(*pid) else {
            continue;
        };
        if raw <= 1 {
            continue;
        }
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
        let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

/// A process's start time (clock ticks since boot, field 22 of `/proc/PID/stat`); with the pid
/// it identifies a process across pid reuse. None if the process does not exist (or is a
/// zombie).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r)?;
    let mut fields = rest.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_identifies_live_processes() {
        let me = std::process::id();
        let t = start_time(me).expect("this process has a start time");
        assert_eq!(start_time(me), Some(t));
        assert_eq!(start_time(u32::MAX - 1), None);
    }
}
