//! How a task process ended, and the exact text Mesos writes for it (`WSTRINGIFY` in
//! `common/status_utils.hpp`, prefixed with "Command "): "Command exited with status N" or
//! "Command terminated with signal <strsignal text>".

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
