//! The agent's I/O shell (`strata agent`): HTTP server (executor API, state, files),
//! the master link, the launcher (sandboxes, fetcher, containerizer) and the event loop
//! that owns the agent core.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod blackbox;
mod checkpoint;
pub mod detect;
mod docker_gc;
mod event_loop;
mod files;
mod flags;
mod gc;
mod housekeeping;
mod http;
mod isolation;
mod launcher;
mod master_link;
mod oversubscription;
mod recovery;
mod sandbox_logs;
mod volumes;

pub use event_loop::Handle;
pub use flags::AgentFlags;

use anyhow::Context;
use rand::RngCore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use strata_agent_core::{Agent, Config};
use strata_api::{AgentId, AgentInfo};
use strata_resources::{parse_attributes, WireFormat};

/// A running agent.
pub struct RunningAgent {
    pub addr: SocketAddr,
    pub handle: Handle,
    /// Becomes `Some(reason)` if the master refused this agent.
    pub refused: tokio::sync::watch::Receiver<Option<String>>,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    isolator: Arc<dyn strata_containerizer::isolation::Isolator>,
}

impl std::fmt::Debug for RunningAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningAgent")
            .field("addr", &self.addr)
            .field("isolator", &self.isolator.name())
            .finish()
    }
}

impl RunningAgent {
    /// Kills every executor container and removes their isolation and the agent's parent
    /// cgroup (used when the agent is stopped for good: SIGUSR1 to `strata agent`, Ctrl-C
    /// on `strata dev`, so no task outlives it).
    pub async fn destroy_all(&self) {
        let pids = self
            .handle
            .read(|a, _| a.executor_pids())
            .await
            .unwrap_or_default();
        for (_, pid) in &pids {
            strata_containerizer::kill_tree(*pid);
        }
        for (container, _) in pids {
            if let Ok(id) = strata_containerizer::isolation::ContainerId::new(container.as_str()) {
                if let Err(e) = self.isolator.cleanup(&id).await {
                    tracing::warn!(container_id = %container, error = %e, "cannot clean up the container's isolation");
                }
            }
        }
        if let Err(e) = self.isolator.remove_parent().await {
            tracing::warn!(error = %e, "cannot remove the agent's parent cgroup");
        }
    }
}

fn agent_info(
    flags: &AgentFlags,
    addr: SocketAddr,
    work_dir: &std::path::Path,
) -> anyhow::Result<AgentInfo> {
    let resources = detect::total_resources(flags.resources.as_deref(), work_dir)?;
    let attributes = match flags.attributes.as_deref() {
        Some(text) => parse_attributes(text).map_err(|e| anyhow::anyhow!("--attributes: {e}"))?,
        None => Vec::new(),
    };
    Ok(AgentInfo {
        hostname: flags
            .hostname
            .clone()
            .unwrap_or_else(|| addr.ip().to_string()),
        port: u32::from(addr.port()),
        resources: resources.to_wire(WireFormat::PostRefinement),
        attributes: attributes.iter().map(|a| a.clone().into()).collect(),
        id: None,
        domain: flags.domain()?,
    })
}

fn core_config(
    flags: &AgentFlags,
    info: AgentInfo,
    addr: SocketAddr,
    work_dir: &std::path::Path,
) -> Config {
    let mut seed = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut seed);
    let mut cfg = Config::new(info, addr.to_string(), work_dir.display().to_string());
    cfg.id_prefix = uuid::Uuid::new_v4().to_string();
    cfg.uuid_seed = seed;
    cfg.executor_registration_timeout = flags.executor_registration_timeout;
    cfg.executor_reregistration_timeout = flags.executor_reregistration_timeout;
    cfg.executor_shutdown_grace_period = flags.executor_shutdown_grace_period;
    cfg.recovery_timeout = flags.recovery_timeout;
    cfg.status_update_retry_initial = flags.status_update_retry_interval;
    cfg.flags = flags.as_pairs();
    cfg
}

/// Starts an agent on the current runtime; returns once it listens.
pub async fn start(flags: AgentFlags) -> anyhow::Result<RunningAgent> {
    let oversubscription = oversubscription::Mode::from_flags(&flags)?;
    let work_dir = PathBuf::from(&flags.work_dir);
    std::fs::create_dir_all(work_dir.join("slaves"))
        .with_context(|| format!("cannot create --work_dir {}", flags.work_dir))?;
    let work_dir = work_dir.canonicalize()?;
    let listener = tokio::net::TcpListener::bind((flags.ip.as_str(), flags.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", flags.ip, flags.port))?;
    let addr = listener.local_addr()?;
    let info = agent_info(&flags, addr, &work_dir)?;
    let previous = std::fs::read_to_string(master_link::agent_id_path(&work_dir))
        .ok()
        .map(|s| AgentId::new(s.trim()));
    let exe = match &flags.executor_binary {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe().context("cannot find this binary to run executors")?,
    };
    let (containerizer, bind_volumes) = isolation::containerizer(&flags, &exe)?;
    let clock = event_loop::Clock::new();
    let mut cfg = core_config(&flags, info, addr, &work_dir);
    cfg.bind_volumes = bind_volumes;
    let mut core = Agent::new(cfg, previous, clock.now());
    let store = checkpoint::Store::new(&work_dir);
    core.recover_resources(&store.load_resources());
    let (recovered, survivors) = recovery::read(&store);
    let mut initial = Vec::new();
    core.recover(recovered, clock.now(), &mut initial);
    let (to_master_tx, to_master_rx) = tokio::sync::mpsc::unbounded_channel();
    let (refused_tx, refused_rx) = tokio::sync::watch::channel(None);
    let launcher = launcher::Launcher::new(
        Arc::new(containerizer),
        exe,
        &work_dir,
        flags.fetcher_cache_size,
    )?;
    let isolator = isolation::start(&flags, &work_dir, &survivors).await?;
    let launcher = launcher
        .with_store(store.clone())
        .with_isolator(isolator.clone())
        .with_pids_max(flags.cgroups_pids_max)
        .with_revocable_low_priority(flags.revocable_cpu_low_priority);
    let blackbox = blackbox::BlackBoxStore::new(&work_dir, 10_000);
    let outlets = event_loop::Outlets {
        to_master: to_master_tx,
        refused: refused_tx,
        launcher: launcher.clone(),
        store,
        blackbox: blackbox.clone(),
    };
    let handle = event_loop::spawn(core, clock, outlets, initial);
    housekeeping::spawn(&flags, work_dir.clone(), handle.clone(), blackbox.clone());
    docker_gc::spawn(&flags, &work_dir, &survivors, handle.clone());
    oversubscription::spawn(
        oversubscription,
        flags.oversubscribed_resources_interval,
        handle.clone(),
        isolator.clone(),
    );
    for record in survivors {
        launcher.watch_recovered(record, handle.clone());
    }
    tokio::spawn(master_link::run(
        flags.master.clone(),
        handle.clone(),
        to_master_rx,
        refused_rx.clone(),
        work_dir.clone(),
    ));
    let app = http::router(Arc::new(http::AppState {
        handle: handle.clone(),
        work_dir,
        isolator: isolator.clone(),
        blackbox,
    }));
    let (shutdown, mut stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let until = async move {
            let _ = stop.wait_for(|v| *v).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(until)
            .await
        {
            tracing::error!(error = %e, "agent HTTP server failed");
        }
    });
    tracing::info!(%addr, master = %flags.master, "agent listening");
    Ok(RunningAgent {
        addr,
        handle,
        refused: refused_rx,
        shutdown,
        isolator,
    })
}
