//! Master memory per agent and per task (issue 4: ≤ 4 KiB per agent, ≤ 1 KiB per task).
//!
//! A counting global allocator (`stats_alloc` around `System`) keeps the live heap. Each
//! shape builds a fresh `Master` by feeding real inputs through `Master::step` — agents
//! registering with realistic `AgentInfo`, a framework subscribing, ACCEPTs launching
//! command tasks on offers, the agents reporting TASK_STARTING and TASK_RUNNING, the
//! framework acknowledging both — and measures the master as the heap its `drop` frees (so
//! the driver's own bookkeeping is not counted). Per agent = (N agents − 0 agents) / N; per
//! task = (N agents + M running tasks − the same N agents and framework without tasks) / M.
//! Both task shapes end the same way: refusal filters expired and a full allocation cycle,
//! so each agent has one outstanding offer in both.
//!
//! Run with `cargo bench -p strata-master-core --bench memory` (add `-- quick` for the
//! small shape only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::time::Instant;
use strata_api::agent_link::{Hello, StatusUpdate, ToAgent, ToMaster, PROTOCOL_VERSION};
use strata_api::scheduler::Subscribe;
use strata_api::scheduler::{Accept, Acknowledge, Command, Decline, Event, Launch, Operation};
use strata_api::status::ContainerStatus;
use strata_api::{
    AgentId, AgentInfo, Capability, CommandInfo, ContainerId, FrameworkId, FrameworkInfo, Label,
    Labels, OfferId, Source, TaskId, TaskInfo, TaskState, TaskStatus,
};
use strata_master_core::{Config, ConnId, Effect, Input, Master, Reply};
use strata_registry::RegistryState;
use strata_resources::{parse_attributes, Resources, WireAttribute, WireFormat};

// ----- the counting allocator -------------------------------------------------------

#[global_allocator]
static ALLOC: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// glibc's malloc on x86-64 holds each block in a chunk with an 8-byte header rounded up
/// to 16 bytes: about 16 bytes more per block than requested, on average.
const MALLOC_OVERHEAD_PER_BLOCK: f64 = 16.0;

/// A heap footprint: requested bytes, blocks, and bytes with malloc's per-block overhead.
#[derive(Debug, Clone, Copy, Default)]
struct Heap {
    bytes: f64,
    blocks: f64,
    chunk_bytes: f64,
}

impl Heap {
    fn now() -> Heap {
        let s = ALLOC.stats();
        let bytes =
            s.bytes_allocated as f64 - s.bytes_deallocated as f64 + s.bytes_reallocated as f64;
        let blocks = s.allocations as f64 - s.deallocations as f64;
        Heap {
            bytes,
            blocks,
            chunk_bytes: bytes + blocks * MALLOC_OVERHEAD_PER_BLOCK,
        }
    }

    fn minus(self, o: Heap) -> Heap {
        Heap {
            bytes: self.bytes - o.bytes,
            blocks: self.blocks - o.blocks,
            chunk_bytes: self.chunk_bytes - o.chunk_bytes,
        }
    }

    fn per(self, n: usize) -> Heap {
        let n = n as f64;
        Heap {
            bytes: self.bytes / n,
            blocks: self.blocks / n,
            chunk_bytes: self.chunk_bytes / n,
        }
    }
}

/// The heap `value`'s drop frees: what it owned.
fn owned<T>(value: T) -> Heap {
    let before = Heap::now();
    drop(value);
    before.minus(Heap::now())
}

// ----- realistic inputs -------------------------------------------------------------

const MASTER_ID: &str = "5c3f0e1a-7b2d-4e8f-9a10-0123456789ab";
const AGENT_RES: &str = "cpus:32;mem:256000;disk:1000000;ports:[31000-32000]";
const TASK_RES: &str = "cpus:0.1;mem:128";

fn config() -> Config {
    Config {
        master_id: MASTER_ID.into(),
        hostname: "master-1.dc1.example.com".into(),
        ..Config::default()
    }
}

fn agent_hello(i: usize) -> Hello {
    let attributes = parse_attributes(&format!("rack:r{:03};zone:us-east-1{}", i / 40, i % 3))
        .expect("valid attributes")
        .iter()
        .map(WireAttribute::from)
        .collect();
    let resources = Resources::parse_flag(AGENT_RES, "*").expect("valid resources");
    Hello {
        protocol: PROTOCOL_VERSION,
        agent_info: AgentInfo {
            hostname: format!("agent-{i:05}.dc1.example.com"),
            port: 5051,
            resources: resources.to_wire(WireFormat::PostRefinement),
            attributes,
            id: None,
            domain: None,
        },
        address: format!("10.{}.{}.{}:5051", i >> 16, (i >> 8) & 255, i & 255),
        version: "1.11.0".into(),
        frameworks: Vec::new(),
        executors: Vec::new(),
        tasks: Vec::new(),
        checkpointed_resources: Vec::new(),
        oversubscribed_resources: Vec::new(),
    }
}

fn framework_info() -> FrameworkInfo {
    FrameworkInfo {
        user: "svc-web".into(),
        name: "marathon".into(),
        id: None,
        failover_timeout: 604_800.0,
        checkpoint: true,
        role: None,
        roles: Vec::new(),
        hostname: Some("marathon-1.dc1.example.com".into()),
        principal: Some("marathon".into()),
        webui_url: Some("http://marathon-1.dc1.example.com:8080".into()),
        capabilities: ["PARTITION_AWARE", "TASK_KILLING_STATE"]
            .iter()
            .map(|c| Capability {
                kind: c.to_string(),
            })
            .collect(),
        labels: None,
        offer_filters: None,
    }
}

/// A Marathon-style id: `<app>.<uuid>` (the uuid made from `n`).
fn task_id(n: usize) -> TaskId {
    TaskId::new(format!(
        "web-frontend.{:08x}-1f2e-11ef-9c4d-0242ac11{:04x}",
        n,
        n & 0xffff
    ))
}

fn task_info(n: usize, agent: &AgentId) -> TaskInfo {
    let resources = Resources::parse_flag(TASK_RES, "*").expect("valid resources");
    TaskInfo {
        name: "web-frontend".into(),
        task_id: task_id(n),
        agent_id: Some(agent.clone()),
        slave_id: None,
        resources: resources.to_wire(WireFormat::PreRefinement),
        executor: None,
        command: Some(CommandInfo::shell("sleep 1000")),
        container: None,
        health_check: None,
        check: None,
        kill_policy: None,
        data: None,
        labels: Some(Labels {
            labels: vec![Label {
                key: "team".into(),
                value: Some("web-platform".into()),
            }],
        }),
        discovery: None,
        max_completion_time: None,
        limits: None,
    }
}

/// A status update as the agent forwards it from the command executor.
fn executor_status(
    tid: &TaskId,
    aid: &AgentId,
    state: TaskState,
    uuid: u64,
    now: f64,
) -> TaskStatus {
    let mut status = TaskStatus::new(tid.clone(), state);
    status.source = Some(Source::Executor);
    status.agent_id = Some(aid.clone());
    status.executor_id = Some(strata_api::ExecutorId::new(tid.as_str()));
    status.timestamp = Some(now);
    status.uuid = Some(format!("{uuid:022x}=="));
    // The executor's container: one per task, the same in every status it sends.
    let h = tid
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    status.container_status = Some(ContainerStatus {
        container_id: Some(ContainerId::new(format!(
            "{:08x}-5a3b-4c2d-9e1f-{:012x}",
            h >> 32,
            h & 0xffff_ffff_ffff
        ))),
        network_infos: Vec::new(),
        executor_pid: Some(40_000 + (h % 20_000) as u32),
    });
    status
}

// ----- driving the master -----------------------------------------------------------

/// The master plus what a shell would remember: agent sessions, the framework's stream.
struct Driver {
    m: Master,
    now: f64,
    out: Vec<Effect>,
    next_conn: u64,
    /// Agent id and session, in registration order.
    agents: Vec<(AgentId, String)>,
    framework: Option<(FrameworkId, String)>,
    next_uuid: u64,
}

impl Driver {
    fn new() -> Driver {
        let now = 1_700_000_000.0;
        Driver {
            m: Master::new(config(), RegistryState::default(), now),
            now,
            out: Vec::new(),
            next_conn: 1,
            agents: Vec::new(),
            framework: None,
            next_uuid: 1,
        }
    }

    fn step(&mut self, input: Input) -> Reply {
        self.out.clear();
        self.m.step(self.now, input, &mut self.out)
    }

    fn conn(&mut self) -> ConnId {
        self.next_conn += 1;
        ConnId(self.next_conn)
    }

    /// Registers `n` agents, then runs an allocation cycle (which clears the set of
    /// agents waiting for one).
    fn add_agents(&mut self, n: usize) {
        for i in 0..n {
            let conn = self.conn();
            let session = format!("session-{:016x}", conn.0);
            let reply = self.step(Input::AgentConnect {
                conn,
                session: session.clone(),
                hello: Box::new(agent_hello(i)),
            });
            assert_eq!(reply, Reply::Stream);
            let aid = self
                .out
                .iter()
                .find_map(|e| match e {
                    Effect::Agent { message, .. } => match message.as_ref() {
                        ToAgent::Registered(r) => Some(r.agent_id.clone()),
                        _ => None,
                    },
                    _ => None,
                })
                .expect("REGISTERED");
            self.agents.push((aid, session));
        }
        self.step(Input::Allocate);
    }

    fn subscribe(&mut self) {
        let conn = self.conn();
        let stream = format!("stream-{:016x}", conn.0);
        let subscribe = Subscribe {
            framework_info: framework_info(),
            suppressed_roles: Vec::new(),
            offer_constraints: None,
        };
        let reply = self.step(Input::Subscribe {
            conn,
            stream_id: stream.clone(),
            subscribe: Box::new(subscribe),
        });
        assert_eq!(reply, Reply::Stream);
        let fid = self
            .events()
            .find_map(|e| match e {
                Event::Subscribed(s) => Some(s.framework_id.clone()),
                _ => None,
            })
            .expect("SUBSCRIBED");
        self.framework = Some((fid, stream));
    }

    fn events(&self) -> impl Iterator<Item = &Event> {
        self.out.iter().filter_map(|e| match e {
            Effect::Framework { event, .. } => Some(event.as_ref()),
            _ => None,
        })
    }

    /// A full allocation cycle; returns the offers sent, by agent.
    fn allocate(&mut self) -> Vec<(OfferId, AgentId)> {
        self.step(Input::Allocate);
        self.events()
            .flat_map(|e| match e {
                Event::Offers(o) => o
                    .offers
                    .iter()
                    .map(|o| (o.id.clone(), o.agent_id.clone()))
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    fn call(&mut self, command: Command) {
        let (fid, stream) = self.framework.clone().expect("subscribed");
        let reply = self.step(Input::Call {
            stream_id: Some(stream),
            framework_id: fid,
            command: Box::new(command),
        });
        assert_eq!(reply, Reply::Accepted);
    }
}

impl Driver {
    /// Declines every offer (default filter), as a framework with nothing to launch does.
    fn decline_all(&mut self, offers: Vec<(OfferId, AgentId)>) {
        for (offer, _) in offers {
            self.call(Command::Decline(Decline {
                offer_ids: vec![offer],
                filters: None,
            }));
        }
    }

    /// Launches `tasks` command tasks spread evenly over the offers, one ACCEPT per offer;
    /// returns each task with its agent.
    fn launch(&mut self, offers: Vec<(OfferId, AgentId)>, tasks: usize) -> Vec<(TaskId, usize)> {
        let by_agent: std::collections::HashMap<AgentId, usize> = self
            .agents
            .iter()
            .enumerate()
            .map(|(i, (aid, _))| (aid.clone(), i))
            .collect();
        let mut launched = Vec::with_capacity(tasks);
        let n = offers.len();
        for (k, (offer, aid)) in offers.into_iter().enumerate() {
            let range = (k * tasks / n)..((k + 1) * tasks / n);
            let infos: Vec<TaskInfo> = range.clone().map(|t| task_info(t, &aid)).collect();
            launched.extend(range.map(|t| (task_id(t), by_agent[&aid])));
            let launch = Operation {
                kind: "LAUNCH".into(),
                launch: Some(Launch { task_infos: infos }),
                ..Default::default()
            };
            self.call(Command::Accept(Accept {
                offer_ids: vec![offer],
                operations: vec![launch],
                filters: None,
            }));
            assert!(
                self.out.iter().any(|e| matches!(e, Effect::Agent { message, .. } if matches!(message.as_ref(), ToAgent::RunTask(_)))),
                "RUN_TASK sent"
            );
        }
        launched
    }

    /// The agent forwards `state` for the task (with a uuid); the framework acknowledges.
    fn report(&mut self, tid: &TaskId, agent: usize, state: TaskState) {
        let (aid, session) = self.agents[agent].clone();
        let fid = self.framework.clone().expect("subscribed").0;
        let uuid = self.next_uuid;
        self.next_uuid += 1;
        let status = executor_status(tid, &aid, state, uuid, self.now);
        let uuid = status.uuid.clone().expect("set above");
        let reply = self.step(Input::AgentMessage {
            session,
            message: Box::new(ToMaster::StatusUpdate(StatusUpdate {
                framework_id: fid,
                status,
                latest_state: None,
            })),
        });
        assert_eq!(reply, Reply::Accepted);
        assert!(
            self.events().any(|e| matches!(e, Event::Update(_))),
            "UPDATE forwarded"
        );
        self.call(Command::Acknowledge(Acknowledge {
            agent_id: aid,
            task_id: tid.clone(),
            uuid,
        }));
    }
}

// ----- shapes -----------------------------------------------------------------------

/// What one built master holds.
struct Built {
    master: Heap,
    allocator: Heap,
    build_secs: f64,
}

/// A master with `agents` agents and, when `tasks` is given, a framework holding that
/// many running tasks (0: declined every offer), refusal filters expired and a full
/// allocation cycle run.
fn build(agents: usize, tasks: Option<usize>) -> Built {
    let t = Instant::now();
    let mut d = Driver::new();
    d.add_agents(agents);
    if let Some(tasks) = tasks {
        d.subscribe();
        let offers = d.allocate();
        assert_eq!(offers.len(), agents, "one offer per agent");
        if tasks == 0 {
            d.decline_all(offers);
        } else {
            let launched = d.launch(offers, tasks);
            for (tid, agent) in &launched {
                d.report(tid, *agent, TaskState::Starting);
                d.report(tid, *agent, TaskState::Running);
            }
        }
        d.now += 10.0; // past the default 5 s refusal filters
        let again = d.allocate();
        assert_eq!(again.len(), agents, "every agent offered again");
    }
    let build_secs = t.elapsed().as_secs_f64();
    d.out = Vec::new();
    let allocator = owned(d.m.allocator().clone());
    Built {
        master: owned(d.m),
        allocator,
        build_secs,
    }
}

fn kib(bytes: f64) -> String {
    format!("{:.2} KiB", bytes / 1024.0)
}

fn show(what: &str, h: Heap, alloc: Heap) {
    println!(
        "  {what:<10} {:>10} requested ({:.1} blocks; {} with malloc's per-block overhead); allocator's share {}",
        kib(h.bytes),
        h.blocks,
        kib(h.chunk_bytes),
        kib(alloc.bytes),
    );
}

fn shape(empty: &Built, agents: usize, tasks: usize) {
    println!(
        "{agents} agents, {tasks} running tasks ({} per agent):",
        tasks / agents
    );
    let only_agents = build(agents, None);
    let baseline = build(agents, Some(0));
    let with_tasks = build(agents, Some(tasks));
    let per_agent = only_agents.master.minus(empty.master).per(agents);
    let per_agent_alloc = only_agents.allocator.minus(empty.allocator).per(agents);
    let per_task = with_tasks.master.minus(baseline.master).per(tasks);
    let per_task_alloc = with_tasks.allocator.minus(baseline.allocator).per(tasks);
    // Not a target: what a subscribed framework holding one offer per agent adds.
    let per_offer = baseline.master.minus(only_agents.master).per(agents);
    let per_offer_alloc = baseline.allocator.minus(only_agents.allocator).per(agents);
    show("per agent", per_agent, per_agent_alloc);
    show("per task", per_task, per_task_alloc);
    show("per offer", per_offer, per_offer_alloc);
    println!(
        "  whole master: {:.1} MiB with agents only, {:.1} MiB with the framework and its tasks (built in {:.1} s)",
        only_agents.master.bytes / 1048576.0,
        with_tasks.master.bytes / 1048576.0,
        with_tasks.build_secs,
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let empty = build(0, None);
    println!(
        "master-core memory (live heap a Master owns; targets: per agent <= 4 KiB, per task <= 1 KiB)"
    );
    let shapes: &[(usize, usize)] = if quick {
        &[(1_000, 10_000)]
    } else {
        &[
            (1_000, 10_000),
            (1_000, 50_000),
            (10_000, 50_000),
            (50_000, 100_000),
        ]
    };
    for &(agents, tasks) in shapes {
        shape(&empty, agents, tasks);
    }
}
