//! Pid and mount namespaces for containers (`--isolation namespaces/pid`, and
//! `filesystem/linux` for a mount namespace alone), without `unsafe`: the container's
//! first process is `strata ns-init`, which waits at a gate until the agent has put it in
//! its cgroups, then becomes util-linux `unshare --pid --fork --mount-proc` (or `unshare
//! --mount --fork`), whose child (pid 1 of the new pid namespace, with its own `/proc`)
//! is `strata ns-init --pid1`: as root it bind-mounts the container's volumes
//! ([`crate::mounts`]), then runs the executor as the task's user, reaps orphans, forwards
//! signals, and exits with the executor's status, at which point the kernel kills
//! whatever is left in a pid namespace.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the agent writes to open the gate (anything else, or EOF, aborts the launch).
pub const GATE_OPEN: &[u8] = b"go\n";

/// How the container's first process is wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrap {
    /// The `strata` binary (it has the `ns-init` subcommand).
    pub strata: PathBuf,
    /// A pid namespace too (`namespaces/pid`); otherwise only a mount namespace.
    pub pid: bool,
}

impl Wrap {
    /// The gate's command line for `program args`, switching to `ids` inside the namespace.
    pub fn command_line(
        &self,
        program: &Path,
        args: &[String],
        ids: Option<(u32, u32)>,
    ) -> (PathBuf, Vec<String>) {
        let mut out = vec!["ns-init".to_string()];
        if !self.pid {
            out.push("--mount-only".into());
        }
        if let Some((uid, gid)) = ids {
            out.extend([
                "--uid".into(),
                uid.to_string(),
                "--gid".into(),
                gid.to_string(),
            ]);
        }
        out.push("--".into());
        out.push(program.display().to_string());
        out.extend(args.iter().cloned());
        (self.strata.clone(), out)
    }
}

/// The `unshare` invocation the gate becomes: `strata ns-init --pid1 -- argv` as pid 1 of
/// new pid and mount namespaces (a mount namespace only without `pid`), still as root
/// (it mounts the volumes), told to run `argv` as `ids` when given.
pub fn unshare_args(
    strata: &Path,
    argv: &[OsString],
    ids: Option<(u32, u32)>,
    pid: bool,
) -> Vec<OsString> {
    let namespaces: &[&str] = if pid {
        &["--pid", "--fork", "--mount-proc", "--kill-child"]
    } else {
        &["--mount", "--fork", "--kill-child"]
    };
    let mut out: Vec<OsString> = namespaces.iter().map(OsString::from).collect();
    out.extend(["--".into(), strata.as_os_str().to_owned()]);
    out.extend(["ns-init".into(), "--pid1".into()]);
    if let Some((uid, gid)) = ids {
        out.extend([
            "--uid".into(),
            uid.to_string().into(),
            "--gid".into(),
            gid.to_string().into(),
        ]);
    }
    out.push("--".into());
    out.extend(argv.iter().cloned());
    out
}

/// Stage 1 (the container's first process, already in its cgroups once the gate opens):
/// waits for [`GATE_OPEN`] on stdin, then becomes `unshare`. Returns only on failure.
pub fn gate(argv: &[OsString], ids: Option<(u32, u32)>, pid: bool) -> i32 {
    let mut got = Vec::new();
    let read = std::io::stdin()
        .take(GATE_OPEN.len() as u64)
        .read_to_end(&mut got);
    if read.is_err() || got != GATE_OPEN {
        eprintln!("strata ns-init: the agent closed the gate; not starting the container");
        return 1;
    }
    let strata = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("strata ns-init: cannot find its own binary: {e}");
            return 1;
        }
    };
    let err = Command::new("unshare")
        .args(unshare_args(&strata, argv, ids, pid))
        .stdin(std::process::Stdio::null())
        .exec();
    eprintln!("strata ns-init: cannot run unshare (util-linux): {err}");
    1
}

/// The exit code that reports `status` of the executor from pid 1 (which cannot die of
/// its own signals): its code, or 128 + the signal as a shell reports it.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Stage 2, pid 1 of the namespace: mounts the container's volumes, runs `argv` (as
/// `ids` when given), forwards termination signals to it, reaps every orphan, and exits
/// with its status. A volume that cannot be mounted fails the container.
pub fn pid1(argv: &[OsString], ids: Option<(u32, u32)>) -> i32 {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    use nix::unistd::Pid;
    let Some((program, args)) = argv.split_first() else {
        eprintln!("strata ns-init: nothing to run");
        return 1;
    };
    let binds = crate::mounts::parse(std::env::var(crate::mounts::MOUNTS_ENV).ok().as_deref())
        .and_then(|b| crate::mounts::apply(&b));
    if let Err(e) = binds {
        eprintln!("strata ns-init: {e}; not starting the container");
        return 1;
    }
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove(crate::mounts::MOUNTS_ENV);
    if let Some((uid, gid)) = ids {
        // As root, std also drops the supplementary groups before switching.
        cmd.uid(uid).gid(gid);
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "strata ns-init: cannot start {}: {e}",
                program.to_string_lossy()
            );
            return 127;
        }
    };
    let main = Pid::from_raw(child.id() as i32);
    forward_signals(main);
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::__WALL)) {
            Ok(status) if status.pid() == Some(main) => {
                if let Some(code) = exit_code(status) {
                    return code;
                }
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                eprintln!("strata ns-init: waitpid: {e}");
                return 1;
            }
        }
    }
}

/// Passes SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 on to `pid` (pid 1 gets
/// no signal it has no handler for).
fn forward_signals(pid: nix::unistd::Pid) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
    let mut signals = match signal_hook::iterator::Signals::new([
        SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("strata ns-init: cannot forward signals: {e}");
            return;
        }
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(pid, s);
            }
        }
    });
}

/// Whether this machine can run containers in pid namespaces: `unshare` exists and a
/// trial `unshare --pid --fork --mount-proc true` succeeds (it needs root).
pub fn probe() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run unshare (util-linux): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "unshare --pid --fork --mount-proc failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::WaitStatus;
    use nix::unistd::Pid;

    #[test]
    fn the_gate_command_carries_the_user_and_the_program() {
        let w = Wrap {
            strata: "/usr/bin/strata".into(),
            pid: true,
        };
        let (p, a) = w.command_line(Path::new("/bin/sh"), &["-c".into(), "x".into()], None);
        assert_eq!(p, PathBuf::from("/usr/bin/strata"));
        assert_eq!(a, ["ns-init", "--", "/bin/sh", "-c", "x"]);
        let (_, a) = w.command_line(Path::new("/bin/true"), &[], Some((1000, 100)));
        assert_eq!(
            a,
            [
                "ns-init",
                "--uid",
                "1000",
                "--gid",
                "100",
                "--",
                "/bin/true"
            ]
        );
    }

    #[test]
    fn the_second_stage_switches_to_the_user_after_mounting() {
        let argv: Vec<OsString> = vec!["/bin/sh".into(), "-c".into(), "x".into()];
        let text = |v: Vec<OsString>| -> String {
            let v: Vec<_> = v.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            v.join(" ")
        };
        assert_eq!(
            text(unshare_args(Path::new("/s"), &argv, Some((7, 8)), true)),
            "--pid --fork --mount-proc --kill-child -- /s ns-init --pid1 --uid 7 --gid 8 -- /bin/sh -c x"
        );
        assert_eq!(
            text(unshare_args(Path::new("/s"), &argv, None, false)),
            "--mount --fork --kill-child -- /s ns-init --pid1 -- /bin/sh -c x"
        );
        let w = Wrap {
            strata: "/s".into(),
            pid: false,
        };
        let (_, a) = w.command_line(Path::new("/bin/true"), &[], None);
        assert_eq!(a, ["ns-init", "--mount-only", "--", "/bin/true"]);
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        let p = Pid::from_raw(2);
        assert_eq!(exit_code(WaitStatus::Exited(p, 3)), Some(3));
        assert_eq!(
            exit_code(WaitStatus::Signaled(p, nix::sys::signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(exit_code(WaitStatus::StillAlive), None);
    }
}
