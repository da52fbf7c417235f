//! Carries out Launch and Destroy effects: sandbox creation, URI fetching, starting the
//! executor through the containerizer, and reporting start, failure and exit back to the
//! agent loop.

use crate::checkpoint::{ContainerRecord, Store};
use crate::event_loop::Handle;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use strata_agent_core::{ContainerSpec, ExecutorKind, Input};
use strata_api::ContainerId;
use strata_containerizer::isolation::{self, Isolator, NoIsolation};
use strata_containerizer::{mounts, Containerizer, ProcessSpec};
use tokio::sync::oneshot;

/// Starts and destroys containers.
#[derive(Clone)]
pub struct Launcher {
    containerizer: Arc<dyn Containerizer>,
    client: reqwest::Client,
    /// The agent's fetcher cache (`<work_dir>/fetch-cache`), shared by every launch.
    fetch_cache: strata_fetcher::FetchCache,
    executor_binary: PathBuf,
    /// Destroy requests for containers being launched or running.
    kill_switches: Arc<Mutex<HashMap<ContainerId, oneshot::Sender<()>>>>,
    /// Where executor processes of checkpointing frameworks are recorded.
    store: Option<Store>,
    /// Resource isolation (cgroups, or none).
    isolator: Arc<dyn Isolator>,
    /// `--cgroups_pids_max`: the process limit of every container.
    pids_max: Option<u64>,
    /// `--revocable_cpu_low_priority`: containers on revocable cpus get low cpu shares.
    revocable_low_priority: bool,
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launcher")
            .field("executor_binary", &self.executor_binary)
            .finish()
    }
}

impl Launcher {
    /// Clears and creates the fetcher cache `<work_dir>/fetch-cache` of at most
    /// `fetcher_cache_bytes` (as in Mesos, cached files do not survive an agent restart).
    pub fn new(
        containerizer: Arc<dyn Containerizer>,
        executor_binary: PathBuf,
        work_dir: &Path,
        fetcher_cache_bytes: u64,
    ) -> Result<Self, strata_fetcher::CacheError> {
        let fetch_cache =
            strata_fetcher::FetchCache::new(work_dir.join("fetch-cache"), fetcher_cache_bytes)?;
        Ok(Self {
            containerizer,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap_or_default(),
            fetch_cache,
            executor_binary,
            kill_switches: Arc::new(Mutex::new(HashMap::new())),
            store: None,
            isolator: Arc::new(NoIsolation),
            pids_max: None,
            revocable_low_priority: true,
        })
    }

    /// Isolates containers with `isolator`.
    pub fn with_isolator(mut self, isolator: Arc<dyn Isolator>) -> Self {
        self.isolator = isolator;
        self
    }

    /// Caps every container at `pids_max` processes (with the pids isolator).
    pub fn with_pids_max(mut self, pids_max: Option<u64>) -> Self {
        self.pids_max = pids_max;
        self
    }

    /// Whether containers on revocable cpus run at low CPU priority.
    pub fn with_revocable_low_priority(mut self, low: bool) -> Self {
        self.revocable_low_priority = low;
        self
    }

    /// Records executor processes of checkpointing frameworks in `store`.
    pub fn with_store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// Watches an executor process that survived an agent restart: its exit (noticed by
    /// polling, as it is not our child) comes back as `ContainerExited` with status -1, and
    /// `destroy` kills its process tree.
    pub fn watch_recovered(&self, record: ContainerRecord, handle: Handle) {
        let (tx, mut destroy) = oneshot::channel();
        if let Ok(mut map) = self.kill_switches.lock() {
            map.insert(record.container_id.clone(), tx);
        }
        let me = self.clone();
        tokio::spawn(async move {
            let alive = || strata_containerizer::start_time(record.pid) == Some(record.start_time);
            let iso_id = isolation::ContainerId::new(record.container_id.as_str()).ok();
            let limit = async {
                match &iso_id {
                    Some(i) => watch_limit(me.isolator.as_ref(), i).await,
                    None => None,
                }
            };
            tokio::pin!(limit);
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
            loop {
                let kill = tokio::select! {
                    _ = tick.tick() => {
                        if alive() { continue } else { break }
                    }
                    _ = &mut destroy => true,
                    Some(l) = &mut limit => {
                        let input = Input::ContainerLimited {
                            container_id: record.container_id.clone(),
                            reason: strata_api::Reason::ContainerLimitationMemory,
                            message: l.message,
                        };
                        handle.tell(input).await;
                        true
                    }
                };
                // Only a process that is still the recorded one is killed (pids get reused).
                if kill && alive() {
                    me.containerizer.destroy(record.pid).await;
                    while alive() {
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }
                break;
            }
            if let Some(i) = &iso_id {
                let _ = me.isolator.cleanup(i).await;
            }
            if let Ok(mut map) = me.kill_switches.lock() {
                map.remove(&record.container_id);
            }
            if let Some(store) = &me.store {
                store.remove_container(&record.container_id);
            }
            handle
                .tell(Input::ContainerExited {
                    container_id: record.container_id,
                    status: -1,
                })
                .await;
        });
    }

    /// Launches in the background; the outcome comes back to the loop as inputs.
    pub fn launch(&self, spec: ContainerSpec, handle: Handle) {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut map) = self.kill_switches.lock() {
            map.insert(spec.container_id.clone(), tx);
        }
        let me = self.clone();
        tokio::spawn(async move {
            let id = spec.container_id.clone();
            let input = me.run(spec, &handle, rx).await;
            if let Ok(mut map) = me.kill_switches.lock() {
                map.remove(&id);
            }
            handle.tell(input).await;
        });
    }

    /// Destroys a container (no-op if it already ended).
    pub fn destroy(&self, id: &ContainerId) {
        let switch = self
            .kill_switches
            .lock()
            .ok()
            .and_then(|mut m| m.remove(id));
        if let Some(tx) = switch {
            let _ = tx.send(());
        }
    }

    /// Runs one container to its end; returns the final input (failed or exited).
    async fn run(
        &self,
        spec: ContainerSpec,
        handle: &Handle,
        mut destroy: oneshot::Receiver<()>,
    ) -> Input {
        let id = spec.container_id.clone();
        let failed = |message: String| Input::ContainerFailed {
            container_id: id.clone(),
            message,
        };
        let sandbox = PathBuf::from(&spec.directory);
        if let Err(e) = prepare_sandbox(&sandbox) {
            return failed(format!("cannot create sandbox {}: {e}", sandbox.display()));
        }
        let limits = strata_fetcher::FetchLimits::default();
        tokio::select! {
            r = strata_fetcher::fetch_all(
                &self.client, &spec.uris, &sandbox, &limits, Some(&self.fetch_cache),
            ) => {
                if let Err(e) = r {
                    return failed(format!("Failed to fetch URIs: {e}"));
                }
            }
            _ = &mut destroy => return failed("destroyed while fetching".into()),
        }
        let iso_id = match isolation::ContainerId::new(id.as_str()) {
            Ok(i) => i,
            Err(e) => return failed(format!("container id unusable for isolation: {e}")),
        };
        if let Err(e) = self
            .isolator
            .prepare(
                &iso_id,
                &to_isolation(&spec.limits, self.pids_max, self.revocable_low_priority),
            )
            .await
        {
            return failed(format!("Failed to prepare isolation: {e}"));
        }
        let process = self.process_spec(&spec, sandbox);
        let launched = match self.containerizer.launch(process).await {
            Ok(l) => l,
            Err(e) => {
                let _ = self.isolator.cleanup(&iso_id).await;
                return failed(e.to_string());
            }
        };
        if let Err(e) = self.isolator.isolate(&iso_id, launched.pid).await {
            // An executor that already ended (it exits at once) cannot be isolated: that is
            // an ordinary exit, reported as such, not a launch failure.
            if strata_containerizer::start_time(launched.pid).is_none() {
                handle
                    .tell(Input::ContainerStarted {
                        container_id: id.clone(),
                        pid: launched.pid,
                    })
                    .await;
                let status = launched.exit.await.unwrap_or(-1);
                let _ = self.isolator.cleanup(&iso_id).await;
                return Input::ContainerExited {
                    container_id: id,
                    status,
                };
            }
            self.containerizer.destroy(launched.pid).await;
            let _ = launched.exit.await;
            let _ = self.isolator.cleanup(&iso_id).await;
            return failed(format!("Failed to isolate the executor: {e}"));
        }
        launched.gate.open().await;
        self.record(&spec, launched.pid);
        handle
            .tell(Input::ContainerStarted {
                container_id: id.clone(),
                pid: launched.pid,
            })
            .await;
        let status = self
            .supervise(&iso_id, &id, launched.pid, launched.exit, destroy, handle)
            .await;
        if let (Some(store), true) = (&self.store, spec.checkpoint) {
            store.remove_container(&id);
        }
        Input::ContainerExited {
            container_id: id,
            status,
        }
    }

    /// Waits for the executor to exit, destroying it when asked or when it hits a limit
    /// (reported first as `ContainerLimited`); then cleans up its isolation.
    async fn supervise(
        &self,
        iso_id: &isolation::ContainerId,
        id: &ContainerId,
        pid: u32,
        mut exit: oneshot::Receiver<i32>,
        mut destroy: oneshot::Receiver<()>,
        handle: &Handle,
    ) -> i32 {
        let status = tokio::select! {
            s = &mut exit => s.unwrap_or(-1),
            _ = &mut destroy => {
                // Never signal a pid whose process already ended (it may be reused).
                if let Ok(s) = exit.try_recv() {
                    s
                } else {
                    self.containerizer.destroy(pid).await;
                    exit.await.unwrap_or(-1)
                }
            }
            Some(limit) = watch_limit(self.isolator.as_ref(), iso_id) => {
                tracing::warn!(container_id = %id, message = %limit.message, "container hit a resource limit");
                let input = Input::ContainerLimited {
                    container_id: id.clone(),
                    reason: strata_api::Reason::ContainerLimitationMemory,
                    message: limit.message,
                };
                handle.tell(input).await;
                self.containerizer.destroy(pid).await;
                exit.await.unwrap_or(-1)
            }
        };
        // An OOM kill is often seen as the executor's exit first: ask once more before the
        // exit is reported, so the tasks get the limitation as their reason.
        if let Ok(Some(limit)) = self.isolator.limitation(iso_id).await {
            let input = Input::ContainerLimited {
                container_id: id.clone(),
                reason: strata_api::Reason::ContainerLimitationMemory,
                message: limit.message,
            };
            handle.tell(input).await;
        }
        if let Err(e) = self.isolator.cleanup(iso_id).await {
            tracing::warn!(container_id = %id, error = %e, "cannot clean up the container's isolation");
        }
        status
    }

    fn record(&self, spec: &ContainerSpec, pid: u32) {
        let (Some(store), true) = (&self.store, spec.checkpoint) else {
            return;
        };
        let Some(start_time) = strata_containerizer::start_time(pid) else {
            return;
        };
        let record = ContainerRecord {
            container_id: spec.container_id.clone(),
            framework_id: spec.framework_id.clone(),
            executor_id: spec.executor_id.clone(),
            pid,
            start_time,
        };
        if let Err(e) = store.put_container(&record) {
            tracing::error!(container_id = %spec.container_id, error = %e, "cannot record the executor process");
        }
    }

    fn process_spec(&self, spec: &ContainerSpec, sandbox: PathBuf) -> ProcessSpec {
        let (program, args) = match &spec.kind {
            ExecutorKind::Command | ExecutorKind::Default => {
                (self.executor_binary.clone(), vec!["executor".to_string()])
            }
            ExecutorKind::Custom(cmd) if cmd.shell => (
                "/bin/sh".into(),
                vec!["-c".to_string(), cmd.value.clone().unwrap_or_default()],
            ),
            ExecutorKind::Custom(cmd) => {
                let args = cmd.arguments.iter().skip(1).cloned().collect();
                (PathBuf::from(cmd.value.clone().unwrap_or_default()), args)
            }
        };
        let binds: Vec<mounts::Bind> = spec
            .binds
            .iter()
            .map(|b| mounts::Bind {
                source: b.source.clone().into(),
                target: b.target.clone().into(),
                read_only: b.read_only,
            })
            .collect();
        let mut env = spec.env.clone();
        env.extend(mounts::env_entry(&binds));
        ProcessSpec {
            id: spec.container_id.to_string(),
            program,
            args,
            env,
            sandbox,
            user: spec.user.clone(),
        }
    }
}

/// Creates the sandbox and points `runs/latest` at it, as Mesos does.
/// How often a running container is checked for a limit it hit. An OOM kill that ends
/// the executor is caught by the check at its exit; this slower poll catches one that
/// killed only a child (thousands of containers polled at 200 ms cost real CPU).
const LIMIT_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Resolves when the container hits a limit; never if the isolator cannot tell.
async fn watch_limit(
    isolator: &dyn Isolator,
    id: &isolation::ContainerId,
) -> Option<isolation::Limitation> {
    loop {
        tokio::time::sleep(LIMIT_POLL).await;
        match isolator.limitation(id).await {
            Ok(Some(l)) => return Some(l),
            Ok(None) => {}
            Err(_) => return None,
        }
    }
}

/// The isolator's view of a container's resources.
fn to_isolation(
    l: &strata_agent_core::ContainerLimits,
    pids_max: Option<u64>,
    revocable_low_priority: bool,
) -> isolation::Limits {
    isolation::Limits {
        cpus: l.cpus,
        cpus_limit: l.cpus_limit,
        mem_mb: l.mem_mb,
        mem_limit_mb: l.mem_limit_mb,
        pids_max,
        low_priority: revocable_low_priority && l.revocable_cpus,
    }
}

fn prepare_sandbox(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if let (Some(runs), Some(name)) = (dir.parent(), dir.file_name()) {
        let latest = runs.join("latest");
        let tmp = runs.join(format!(".latest-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(name, &tmp)?;
        std::fs::rename(&tmp, &latest)?;
    }
    Ok(())
}
