//! The `strata` binary: `master`, `agent`, `executor` and `dev` run the cluster; `run`,
//! `agents`, `frameworks`, `tasks`, `logs`, `kill` and `bench` use it.

mod bench;
mod dev;
mod locate;
mod query;
mod run;
mod table;
mod why;

use clap::{Parser, Subcommand};

/// Strata: one computer out of many machines.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a master (port 5050).
    Master(strata_master::MasterFlags),
    /// Run an agent (port 5051) that registers with a master.
    Agent(Box<strata_agent::AgentFlags>),
    /// The built-in executor (started by agents; speaks the v1 executor API).
    Executor,
    /// Run a whole cluster (master and agents) in this process.
    Dev(dev::DevArgs),
    /// Run a command as a one-off task and stream its output.
    Run(run::RunArgs),
    /// List agents.
    Agents(query::QueryArgs),
    /// List frameworks.
    Frameworks(query::QueryArgs),
    /// List tasks.
    Tasks(query::TasksArgs),
    /// Explain why a role or framework is (not) getting offers.
    Why(why::WhyArgs),
    /// Print (or follow) a task's stdout or stderr.
    Logs(query::LogsArgs),
    /// Kill a task.
    Kill(query::KillArgs),
    /// Benchmarks that print figures.
    Bench(bench::BenchArgs),
    /// Starts a container in its own pid and mount namespaces (run by agents with
    /// `--isolation namespaces/pid` or `filesystem/linux`).
    #[command(name = "ns-init", hide = true)]
    NsInit(NsInitArgs),
    /// Bind-mounts volumes (named in `STRATA_MOUNTS`) inside a running container's mount
    /// namespace (run by agents with `--isolation filesystem/linux`).
    #[command(name = "ns-mount", hide = true)]
    NsMount(NsMountArgs),
}

#[derive(Debug, clap::Args)]
struct NsMountArgs {
    /// A process of the container.
    #[arg(long)]
    pid: u32,
}

#[derive(Debug, clap::Args)]
struct NsInitArgs {
    /// Second stage: be pid 1 of the namespace and run the program.
    #[arg(long)]
    pid1: bool,
    /// A mount namespace only (`filesystem/linux` without `namespaces/pid`).
    #[arg(long)]
    mount_only: bool,
    /// Run the program as this uid inside the namespace (with --gid).
    #[arg(long, requires = "gid")]
    uid: Option<u32>,
    #[arg(long, requires = "uid")]
    gid: Option<u32>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    argv: Vec<std::ffi::OsString>,
}

fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STRATA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, never into sandbox or service log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, so daemons stop cleanly under a terminal and
/// under a service manager alike.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Executor => {
            init_tracing("warn");
            strata_executor::main_from_env()
        }
        // Before any runtime exists: the gate execs, pid 1 forks.
        Command::NsInit(a) if a.pid1 => {
            strata_containerizer::namespaces::pid1(&a.argv, a.uid.zip(a.gid))
        }
        Command::NsInit(a) => {
            strata_containerizer::namespaces::gate(&a.argv, a.uid.zip(a.gid), !a.mount_only)
        }
        // Single-threaded, as setns of a mount namespace requires.
        Command::NsMount(a) => strata_containerizer::mounts::enter_and_mount(a.pid),
        other => {
            let quiet = matches!(
                other,
                Command::Run(_)
                    | Command::Agents(_)
                    | Command::Frameworks(_)
                    | Command::Tasks(_)
                    | Command::Why(_)
                    | Command::Logs(_)
                    | Command::Kill(_)
                    | Command::Bench(_)
            );
            init_tracing(if quiet { "warn" } else { "info" });
            match runtime().and_then(|rt| rt.block_on(dispatch(other))) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("strata: {e:#}");
                    1
                }
            }
        }
    };
    std::process::exit(code);
}

async fn dispatch(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Master(flags) => {
            let m = strata_master::start(flags).await?;
            println!("strata master listening on http://{}", m.addr);
            shutdown_signal().await;
            let _ = m.shutdown.send(true);
            Ok(0)
        }
        Command::Agent(flags) => {
            let a = strata_agent::start(*flags).await?;
            println!("strata agent listening on http://{}", a.addr);
            let mut refused = a.refused.clone();
            let mut usr1 =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
            // As a Mesos agent: SIGTERM/SIGINT stop the agent alone (an upgrade or restart;
            // checkpointing frameworks' tasks keep running and are recovered), SIGUSR1 stops
            // it for good, killing every task.
            tokio::select! {
                _ = shutdown_signal() => {
                    tracing::info!("agent stopping; executors keep running for the next agent run");
                }
                _ = usr1.recv() => {
                    tracing::info!("SIGUSR1: killing every task and stopping the agent");
                    a.destroy_all().await;
                }
                r = refused.wait_for(|r| r.is_some()) => {
                    let why = r.ok().and_then(|r| r.clone()).unwrap_or_default();
                    eprintln!("strata agent: the master refused this agent: {why}");
                    // Mesos' ShutdownMessage: the agent kills its executors before exiting
                    // (its tasks were already ended at the master).
                    a.destroy_all().await;
                    return Ok(2);
                }
            }
            let _ = a.shutdown.send(true);
            Ok(0)
        }
        Command::Executor => Ok(strata_executor::main_from_env()),
        Command::NsInit(_) | Command::NsMount(_) => Ok(1),
        Command::Dev(args) => dev::run(args).await,
        Command::Run(args) => run::run(args).await,
        Command::Agents(args) => query::agents(args).await,
        Command::Frameworks(args) => query::frameworks(args).await,
        Command::Tasks(args) => query::tasks(args).await,
        Command::Why(args) => why::why(args).await,
        Command::Logs(args) => query::logs(args).await,
        Command::Kill(args) => query::kill(args).await,
        Command::Bench(args) => bench::run(args).await,
    }
}
