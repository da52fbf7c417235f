//! The one task that owns the agent core: requests from HTTP handlers, the master link,
//! the launcher and timers come in over a bounded channel; effects go out in order.

use crate::launcher::Launcher;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strata_agent_core::{Agent, ConnId, Effect, Input, Reply};
use strata_api::agent_link::ToMaster;
use strata_api::recordio;
use tokio::sync::{mpsc, oneshot, watch};

const REQUEST_QUEUE: usize = 4096;
/// Events queued per executor stream.
pub const STREAM_BUFFER: usize = 4096;

type ReadFn = Box<dyn FnOnce(&Agent, f64) + Send>;

/// A request to the agent loop.
pub enum Request {
    Step {
        input: Input,
        reply: Option<oneshot::Sender<Reply>>,
    },
    OpenStream {
        conn: ConnId,
        sink: mpsc::Sender<Bytes>,
        input: Input,
        reply: oneshot::Sender<Reply>,
    },
    Read(ReadFn),
    StreamGone {
        conn: ConnId,
    },
}

/// Wall-clock seconds that never go backwards.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    start_wall: f64,
}

impl Clock {
    pub fn new() -> Self {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self {
            start: Instant::now(),
            start_wall: wall,
        }
    }

    pub fn now(&self) -> f64 {
        self.start_wall + self.start.elapsed().as_secs_f64()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A cloneable handle to the agent loop.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Request>,
    next_conn: Arc<AtomicU64>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("agent::Handle")
    }
}

impl Handle {
    pub fn new_conn(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    pub async fn step(&self, input: Input) -> Reply {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Request::Step {
                input,
                reply: Some(reply),
            })
            .await
            .is_err()
        {
            return Reply::Error(503, "Agent is shutting down".into());
        }
        rx.await
            .unwrap_or(Reply::Error(503, "Agent is shutting down".into()))
    }

    /// Feeds an input without waiting for the reply.
    pub async fn tell(&self, input: Input) {
        let _ = self.tx.send(Request::Step { input, reply: None }).await;
    }

    pub async fn open_stream(
        &self,
        conn: ConnId,
        sink: mpsc::Sender<Bytes>,
        input: Input,
    ) -> Reply {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Request::OpenStream {
                conn,
                sink,
                input,
                reply,
            })
            .await
            .is_err()
        {
            return Reply::Error(503, "Agent is shutting down".into());
        }
        rx.await
            .unwrap_or(Reply::Error(503, "Agent is shutting down".into()))
    }

    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Agent, f64) -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        let job: ReadFn = Box::new(move |a, now| {
            let _ = tx.send(f(a, now));
        });
        self.tx.send(Request::Read(job)).await.ok()?;
        rx.await.ok()
    }

    /// Callable from `Drop`.
    pub fn stream_gone(&self, conn: ConnId) {
        if let Err(mpsc::error::TrySendError::Full(req)) =
            self.tx.try_send(Request::StreamGone { conn })
        {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(req).await;
            });
        }
    }
}

/// Outputs of the loop that other tasks carry out.
pub struct Outlets {
    /// Messages for the master, posted in order by the master link.
    pub to_master: mpsc::UnboundedSender<ToMaster>,
    /// Set when the master refused this agent.
    pub refused: watch::Sender<Option<String>>,
    pub launcher: Launcher,
    /// Checkpoints of checkpointing frameworks.
    pub store: crate::checkpoint::Store,
    /// Records of ended tasks.
    pub blackbox: crate::blackbox::BlackBoxStore,
}

/// Starts the loop and its tick timer.
/// Starts the loop (after carrying out `initial`, the effects of recovery) and its tick timer.
pub fn spawn(core: Agent, clock: Clock, outlets: Outlets, initial: Vec<Effect>) -> Handle {
    let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
    let handle = Handle {
        tx,
        next_conn: Arc::new(AtomicU64::new(1)),
    };
    let mut shell = Shell {
        core,
        clock,
        sinks: HashMap::new(),
        outlets,
        handle: handle.clone(),
        effects: Vec::new(),
    };
    for effect in initial {
        shell.apply(effect);
    }
    tokio::spawn(shell.run(rx));
    let ticker = handle.clone();
    tokio::spawn(async move {
        let mut i = tokio::time::interval(Duration::from_millis(200));
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            i.tick().await;
            if ticker
                .tx
                .send(Request::Step {
                    input: Input::Tick,
                    reply: None,
                })
                .await
                .is_err()
            {
                return;
            }
        }
    });
    handle
}

struct Shell {
    core: Agent,
    clock: Clock,
    sinks: HashMap<ConnId, mpsc::Sender<Bytes>>,
    outlets: Outlets,
    handle: Handle,
    effects: Vec<Effect>,
}

impl Shell {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(req) = rx.recv().await {
            match req {
                Request::Step { input, reply } => {
                    let r = self.step(input);
                    if let Some(reply) = reply {
                        let _ = reply.send(r);
                    }
                }
                Request::OpenStream {
                    conn,
                    sink,
                    input,
                    reply,
                } => {
                    self.sinks.insert(conn, sink);
                    let r = self.step(input);
                    if !matches!(r, Reply::Stream) {
                        self.sinks.remove(&conn);
                    }
                    let _ = reply.send(r);
                }
                Request::Read(f) => f(&self.core, self.clock.now()),
                Request::StreamGone { conn } => {
                    self.sinks.remove(&conn);
                    self.step(Input::ExecutorStreamClosed { conn });
                }
            }
        }
    }

    fn step(&mut self, input: Input) -> Reply {
        let mut effects = std::mem::take(&mut self.effects);
        let reply = self.core.step(self.clock.now(), input, &mut effects);
        for e in effects.drain(..) {
            self.apply(e);
        }
        self.effects = effects;
        reply
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Master(msg) => {
                let _ = self.outlets.to_master.send(*msg);
            }
            Effect::Executor { conn, event } => {
                let frame = recordio::encode(&strata_api::to_ascii_json_bytes(&event));
                if let Some(sink) = self.sinks.get(&conn) {
                    if sink.try_send(frame).is_err() {
                        tracing::warn!(conn = conn.0, "executor stream full or closed; closing it");
                        self.sinks.remove(&conn);
                    }
                }
            }
            Effect::CloseExecutor { conn } => {
                self.sinks.remove(&conn);
            }
            Effect::Launch(spec) => self.outlets.launcher.launch(*spec, self.handle.clone()),
            Effect::Destroy { container_id } => self.outlets.launcher.destroy(&container_id),
            Effect::Shutdown { message } => {
                tracing::error!(%message, "the master refused this agent");
                let _ = self.outlets.refused.send(Some(message));
            }
            Effect::BlackBox(record) => self.outlets.blackbox.put(*record),
            Effect::Volume(op) => crate::volumes::apply(self.outlets.store.work_dir(), &op),
            Effect::Checkpoint(op) => {
                if let Err(e) = self.outlets.store.apply(&op) {
                    // Keep running: the tasks are fine, only their recovery after an agent
                    // restart is at risk. Operators see this at error level.
                    tracing::error!(error = %e, ?op, "checkpoint write failed");
                }
            }
        }
    }
}
