//! How a task process ended, and the exact text Mesos writes for it (`WSTRINGIFY` in
//! `common/status_utils.hpp`, prefixed with "Command "): "Command exited with status N" or
//! "Command terminated with signal <strsignal text>". Also a Docker container's OOM kill
//! (`OomKill`) and the agent's wording for it ("Memory limit exceeded: …").

use nix::sys::signal::Signal;

/// How a task's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// Exited normally with this status.
    Exited(i32),
    /// Killed by this signal number.
    Signaled { signal: i32, core_dumped: bool },
}

impl Termination {
    /// From a std exit status. A status that is neither (cannot happen for a reaped child)
    /// is reported as a failed exit.
    pub fn from_status(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => Termination::Exited(code),
            (None, Some(signal)) => Termination::Signaled {
                signal,
                core_dumped: status.core_dumped(),
            },
            (None, None) => Termination::Exited(-1),
        }
    }

    /// Whether the process exited with status 0.
    pub fn is_success(self) -> bool {
        self == Termination::Exited(0)
    }

    /// Mesos' status message for this termination.
    pub fn message(self) -> String {
        match self {
            Termination::Exited(code) => format!("Command exited with status {code}"),
            Termination::Signaled {
                signal,
                core_dumped,
            } => {
                let dumped = if core_dumped { " (core dumped)" } else { "" };
                format!(
                    "Command terminated with signal {}{dumped}",
                    signal_description(signal)
                )
            }
        }
    }
}

/// The kernel's OOM killer killed a process of the task's Docker container (Docker's
/// `State.OOMKilled`), seen when the container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OomKill {
    /// The container's memory limit (`HostConfig.Memory`), when it had one.
    pub memory_limit_bytes: Option<u64>,
}

impl OomKill {
    /// The status message, worded like the agent's memory limitation of process tasks
    /// ("Memory limit exceeded: Requested: 32MB"), then how the container's command ended.
    pub fn message(self, termination: Termination) -> String {
        let requested = self
            .memory_limit_bytes
            .map(|limit| format!(": Requested: {}", format_bytes(limit)))
            .unwrap_or_default();
        format!(
            "Memory limit exceeded{requested} (the kernel's OOM killer ended a process of the \
             container; {})",
            termination.message()
        )
    }
}

/// Bytes the way Mesos' stout prints them: the largest unit with no loss ("32MB").
fn format_bytes(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "TB"),
        (1 << 30, "GB"),
        (1 << 20, "MB"),
        (1 << 10, "KB"),
    ];
    if bytes == 0 {
        return "0B".into();
    }
    UNITS
        .iter()
        .find(|(size, _)| bytes.is_multiple_of(*size))
        .map(|(size, unit)| format!("{}{unit}", bytes / size))
        .unwrap_or_else(|| format!("{bytes}B"))
}

/// glibc's `strsignal()` text for `signal` ("Killed", "Terminated"…); the `SIG` name for
/// signals without a well-known text; `Unknown signal N` otherwise.
pub fn signal_description(signal: i32) -> String {
    let Ok(sig) = Signal::try_from(signal) else {
        return format!("Unknown signal {signal}");
    };
    let text = match sig {
        Signal::SIGHUP => "Hangup",
        Signal::SIGINT => "Interrupt",
        Signal::SIGQUIT => "Quit",
        Signal::SIGILL => "Illegal instruction",
        Signal::SIGTRAP => "Trace/breakpoint trap",
        Signal::SIGABRT => "Aborted",
        Signal::SIGBUS => "Bus error",
        Signal::SIGFPE => "Floating point exception",
        Signal::SIGKILL => "Killed",
        Signal::SIGUSR1 => "User defined signal 1",
        Signal::SIGSEGV => "Segmentation fault",
        Signal::SIGUSR2 => "User defined signal 2",
        Signal::SIGPIPE => "Broken pipe",
        Signal::SIGALRM => "Alarm clock",
        Signal::SIGTERM => "Terminated",
        Signal::SIGCHLD => "Child exited",
        Signal::SIGCONT => "Continued",
        Signal::SIGSTOP => "Stopped (signal)",
        Signal::SIGTSTP => "Stopped",
        Signal::SIGTTIN => "Stopped (tty input)",
        Signal::SIGTTOU => "Stopped (tty output)",
        Signal::SIGURG => "Urgent I/O condition",
        Signal::SIGXCPU => "CPU time limit exceeded",
        Signal::SIGXFSZ => "File size limit exceeded",
        Signal::SIGVTALRM => "Virtual timer expired",
        Signal::SIGPROF => "Profiling timer expired",
        Signal::SIGWINCH => "Window changed",
        Signal::SIGIO => "I/O possible",
        Signal::SIGSYS => "Bad system call",
        other => other.as_str(),
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(t: Termination, expected: &str) {
        assert_eq!(t.message(), expected);
    }

    #[test]
    fn messages_match_mesos() {
        check(Termination::Exited(0), "Command exited with status 0");
        check(Termination::Exited(3), "Command exited with status 3");
        check(
            Termination::Signaled {
                signal: 9,
                core_dumped: false,
            },
            "Command terminated with signal Killed",
        );
        check(
            Termination::Signaled {
                signal: 15,
                core_dumped: false,
            },
            "Command terminated with signal Terminated",
        );
        check(
            Termination::Signaled {
                signal: 11,
                core_dumped: true,
            },
            "Command terminated with signal Segmentation fault (core dumped)",
        );
        check(
            Termination::Signaled {
                signal: 6,
                core_dumped: false,
            },
            "Command terminated with signal Aborted",
        );
        check(
            Termination::Signaled {
                signal: 1000,
                core_dumped: false,
            },
            "Command terminated with signal Unknown signal 1000",
        );
    }

    #[test]
    fn oom_kills_read_like_the_agents_memory_limitation() {
        let killed = Termination::Signaled {
            signal: 9,
            core_dumped: false,
        };
        let cases = [
            (Some(32 << 20), "Memory limit exceeded: Requested: 32MB (the kernel's OOM killer ended a process of the container; Command terminated with signal Killed)"),
            (Some((3 << 30) + (1 << 20)), "Memory limit exceeded: Requested: 3073MB (the kernel's OOM killer ended a process of the container; Command terminated with signal Killed)"),
            (Some(1000), "Memory limit exceeded: Requested: 1000B (the kernel's OOM killer ended a process of the container; Command terminated with signal Killed)"),
            (None, "Memory limit exceeded (the kernel's OOM killer ended a process of the container; Command terminated with signal Killed)"),
        ];
        for (limit, expected) in cases {
            let oom = OomKill {
                memory_limit_bytes: limit,
            };
            assert_eq!(oom.message(killed), expected, "{limit:?}");
        }
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(2 << 40), "2TB");
    }

    #[test]
    fn success_is_exit_zero_only() {
        assert!(Termination::Exited(0).is_success());
        assert!(!Termination::Exited(1).is_success());
        assert!(!Termination::Signaled {
            signal: 15,
            core_dumped: false
        }
        .is_success());
    }
}
