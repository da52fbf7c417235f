//! The built-in Strata executor (`strata executor`): the Mesos command executor (one task
//! per LAUNCH) and the default executor (task groups per LAUNCH_GROUP), speaking the v1
//! executor HTTP API to the agent exactly like any custom executor.
//!
//! Layout: `core` is the pure state machine (tasks, unacknowledged updates, the agent
//! link, deadlines); `shell` runs it against real HTTP (`agent`), processes (`process`)
//! and timers; `probe` runs health checks and checks; `docker` runs DOCKER tasks in Docker
//! containers. `config` reads the `MESOS_*` environment, `duration` parses stout durations
//! and `termination` renders exit statuses the way Mesos does.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod agent;
pub mod config;
pub mod core;
pub mod docker;
pub mod duration;
pub mod probe;
pub mod process;
pub mod sandbox_volumes;
mod shell;
pub mod termination;

pub use config::{Config, ConfigError};
pub use shell::run;

/// Entry point of `strata executor`: reads the environment, runs the executor on a
/// current-thread runtime and returns the process exit code (0 once every task is terminal
/// and acknowledged; 1 on a bad environment, a lost agent, an ERROR event or a missing ACK).
pub fn main_from_env() -> i32 {
    init_tracing();
    let config = match Config::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("strata executor: {e}");
            return 1;
        }
    };
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(config)),
        Err(e) => {
            eprintln!("strata executor: cannot start the async runtime: {e}");
            1
        }
    }
}

/// Logs to stderr (the sandbox's `stderr` file) unless the caller installed a subscriber.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never into sandbox or service log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
