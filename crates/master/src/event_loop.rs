//! The one task that owns the master core. HTTP handlers and timers send it requests over
//! a bounded channel; it steps the core and carries out the effects in order (registry
//! writes before the messages that depend on them).

use crate::flags::MasterFlags;
use anyhow::Context;
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strata_api::recordio;
use strata_master_core::{Config, ConnId, Effect, Input, Master, Reply};
use strata_registry::{RedbRegistry, Registry};
use tokio::sync::{mpsc, oneshot};

/// Events queued per stream before a slow reader is disconnected.
pub const STREAM_BUFFER: usize = 16 * 1024;
const REQUEST_QUEUE: usize = 4096;

/// What kind of party reads a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Framework,
    Agent,
    Operator,
}

type ReadFn = Box<dyn FnOnce(&Master, f64) + Send>;
/// Builds a stream's first frame from the core (e.g. the operator SUBSCRIBED event).
pub type Prelude = Box<dyn FnOnce(&Master) -> Bytes + Send>;

/// A request to the event loop.
pub enum Request {
    /// Feed one input and answer with the reply.
    Step {
        input: Input,
        reply: oneshot::Sender<Reply>,
    },
    /// Register a stream's sink (after queueing the prelude frame built from the core, if
    /// any), then feed the input that opened it (if any).
    OpenStream {
        conn: ConnId,
        kind: StreamKind,
        sink: mpsc::Sender<Bytes>,
        prelude: Option<Prelude>,
        input: Option<Input>,
        reply: oneshot::Sender<Reply>,
    },
    /// Run a read-only closure on the core.
    Read(ReadFn),
    /// A stream's reader went away.
    StreamGone { conn: ConnId, kind: StreamKind },
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Step { input, .. } => f.debug_struct("Step").field("input", input).finish(),
            Request::OpenStream { conn, kind, .. } => f
                .debug_struct("OpenStream")
                .field("conn", conn)
                .field("kind", kind)
                .finish(),
            Request::Read(_) => f.write_str("Read"),
            Request::StreamGone { conn, kind } => f
                .debug_struct("StreamGone")
                .field("conn", conn)
                .field("kind", kind)
                .finish(),
        }
    }
}

/// A cloneable handle to the event loop.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: mpsc::Sender<Request>,
    next_conn: Arc<AtomicU64>,
    clock: Clock,
}

/// Wall-clock seconds that never go backwards (monotonic since start).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_wall: f64,
}

impl Clock {
    fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self {
            start: Instant::now(),
            start_wall: wall,
        }
    }

    /// Seconds since the epoch.
    pub fn now(&self) -> f64 {
        self.start_wall + self.start.elapsed().as_secs_f64()
    }
}

impl Handle {
    /// A fresh connection id.
    pub fn new_conn(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Steps the core with `input`.
    pub async fn step(&self, input: Input) -> Reply {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Request::Step { input, reply }).await.is_err() {
            return Reply::Error(stopped());
        }
        rx.await.unwrap_or(Reply::Error(stopped()))
    }

    /// Registers a stream and feeds the input that opened it.
    pub async fn open_stream(
        &self,
        conn: ConnId,
        kind: StreamKind,
        sink: mpsc::Sender<Bytes>,
        prelude: Option<Prelude>,
        input: Option<Input>,
    ) -> Reply {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Request::OpenStream {
                conn,
                kind,
                sink,
                prelude,
                input,
                reply,
            })
            .await
            .is_err()
        {
            return Reply::Error(stopped());
        }
        rx.await.unwrap_or(Reply::Error(stopped()))
    }

    /// Runs `f` on the core and returns its result (None if the loop stopped).
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Master, f64) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: ReadFn = Box::new(move |m, now| {
            let _ = tx.send(f(m, now));
        });
        self.tx.send(Request::Read(job)).await.ok()?;
        rx.await.ok()
    }

    /// Reports a stream whose reader went away (callable from `Drop`).
    pub fn stream_gone(&self, conn: ConnId, kind: StreamKind) {
        if let Err(mpsc::error::TrySendError::Full(req)) =
            self.tx.try_send(Request::StreamGone { conn, kind })
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(req).await;
            });
        }
    }

    /// The loop's clock.
    pub fn clock(&self) -> Clock {
        self.clock
    }
}

fn stopped() -> strata_master_core::CallError {
    strata_master_core::CallError {
        status: 503,
        message: "Master is shutting down".into(),
    }
}

fn core_config(flags: &MasterFlags, addr: SocketAddr) -> anyhow::Result<Config> {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v4) if !v4.is_unspecified() => v4,
        _ => std::net::Ipv4Addr::LOCALHOST,
    };
    Ok(Config {
        master_id: uuid::Uuid::new_v4().to_string(),
        hostname: flags.hostname.clone().unwrap_or_else(|| ip.to_string()),
        ip,
        port: addr.port(),
        version: crate::http::VERSION.to_string(),
        agent_ping_interval: flags.agent_ping_interval,
        max_agent_ping_timeouts: flags.max_agent_ping_timeouts,
        agent_reregister_timeout: flags.agent_reregister_timeout,
        heartbeat_interval: flags.heartbeat_interval,
        offer_timeout: flags.offer_timeout()?,
        preemption_grace: {
            let g = flags.preemption_grace_period;
            anyhow::ensure!(
                g.is_finite() && g >= 0.0,
                "--preemption_grace_period must be a number of seconds, got {g}"
            );
            g
        },
        domain: flags.domain()?,
        weights: flags.weights()?,
        flags: flags.as_pairs(),
        ..Config::default()
    })
}

/// Opens the registry, builds the core and starts the loop and its timers.
pub async fn spawn(flags: &MasterFlags, addr: SocketAddr) -> anyhow::Result<Handle> {
    std::fs::create_dir_all(&flags.work_dir)
        .with_context(|| format!("cannot create --work_dir {}", flags.work_dir))?;
    let path = std::path::Path::new(&flags.work_dir).join("registry.redb");
    let registry = RedbRegistry::open(&path)
        .with_context(|| format!("cannot open the registry at {}", path.display()))?;
    let state = registry.load()?;
    let clock = Clock::new();
    let cfg = core_config(flags, addr)?;
    tracing::info!(master_id = %cfg.master_id, agents = state.agents.len(), frameworks = state.frameworks.len(), "master recovered registry");
    let core = Master::new(cfg, state, clock.now());
    let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
    let handle = Handle {
        tx,
        next_conn: Arc::new(AtomicU64::new(1)),
        clock,
    };
    tokio::spawn(run(core, rx, Box::new(registry), clock));
    spawn_timer(handle.clone(), Duration::from_millis(200), || Input::Tick);
    spawn_timer(
        handle.clone(),
        Duration::from_secs_f64(flags.allocation_interval.max(0.01)),
        || Input::Allocate,
    );
    Ok(handle)
}

fn spawn_timer(handle: Handle, every: Duration, input: fn() -> Input) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Reply::Error(e) = handle.step(input()).await {
                if e.status == 503 {
                    return;
                }
            }
        }
    });
}

struct Shell {
    core: Master,
    registry: Box<dyn Registry>,
    sinks: HashMap<ConnId, (StreamKind, mpsc::Sender<Bytes>)>,
    clock: Clock,
    effects: Vec<Effect>,
}

async fn run(
    core: Master,
    mut rx: mpsc::Receiver<Request>,
    registry: Box<dyn Registry>,
    clock: Clock,
) {
    let mut shell = Shell {
        core,
        registry,
        sinks: HashMap::new(),
        clock,
        effects: Vec::new(),
    };
    while let Some(req) = rx.recv().await {
        shell.handle(req);
        // Resources freed by this request are offered as soon as the queue is drained,
        // which batches bursts and keeps single events fast.
        if shell.core.wants_allocation() && rx.is_empty() {
            shell.step(Input::AllocateChanged);
        }
    }
}

impl Shell {
    fn handle(&mut self, req: Request) {
        match req {
            Request::Step { input, reply } => {
                let r = self.step(input);
                let _ = reply.send(r);
            }
            Request::OpenStream {
                conn,
                kind,
                sink,
                prelude,
                input,
                reply,
            } => {
                if let Some(prelude) = prelude {
                    let _ = sink.try_send(prelude(&self.core));
                }
                self.sinks.insert(conn, (kind, sink));
                self.sync_operator_count();
                let r = match input {
                    Some(input) => self.step(input),
                    None => Reply::Stream,
                };
                let _ = reply.send(r);
            }
            Request::Read(f) => f(&self.core, self.clock.now()),
            Request::StreamGone { conn, kind } => {
                self.sinks.remove(&conn);
                self.sync_operator_count();
                match kind {
                    StreamKind::Framework => {
                        self.step(Input::FrameworkStreamClosed { conn });
                    }
                    StreamKind::Agent => {
                        self.step(Input::AgentStreamClosed { conn });
                    }
                    StreamKind::Operator => {}
                }
            }
        }
    }

    fn sync_operator_count(&mut self) {
        let n = self
            .sinks
            .values()
            .filter(|(k, _)| *k == StreamKind::Operator)
            .count();
        self.core.set_operator_subscribers(n);
    }

    fn step(&mut self, input: Input) -> Reply {
        let now = self.clock.now();
        let mut effects = std::mem::take(&mut self.effects);
        let reply = self.core.step(now, input, &mut effects);
        for effect in effects.drain(..) {
            self.apply(effect);
        }
        self.effects = effects;
        reply
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Persist(ops) => {
                if let Err(e) = self.registry.apply(&ops) {
                    // A master that cannot persist must not answer as if it had: stop.
                    tracing::error!(error = %e, "registry write failed; the master stops");
                    eprintln!("strata master: registry write failed: {e}");
                    std::process::exit(70);
                }
            }
            Effect::Framework { conn, event } => self.send(conn, &event),
            Effect::Agent { conn, message } => self.send(conn, &message),
            Effect::CloseFramework { conn } | Effect::CloseAgent { conn } => {
                self.sinks.remove(&conn);
            }
            Effect::Operator { event } => {
                let frame = recordio::encode(&strata_api::to_ascii_json_bytes(&event));
                let conns: Vec<ConnId> = self
                    .sinks
                    .iter()
                    .filter(|(_, (k, _))| *k == StreamKind::Operator)
                    .map(|(c, _)| *c)
                    .collect();
                for conn in conns {
                    self.push(conn, frame.clone());
                }
            }
        }
    }

    fn send<T: serde::Serialize>(&mut self, conn: ConnId, value: &T) {
        let frame = recordio::encode(&strata_api::to_ascii_json_bytes(value));
        self.push(conn, frame);
    }

    fn push(&mut self, conn: ConnId, frame: Bytes) {
        let Some((kind, sink)) = self.sinks.get(&conn) else {
            return;
        };
        if let Err(e) = sink.try_send(frame) {
            if let mpsc::error::TrySendError::Full(_) = e {
                tracing::warn!(
                    conn = conn.0,
                    ?kind,
                    "stream reader too slow; closing its stream"
                );
            }
            self.sinks.remove(&conn);
        }
    }
}
