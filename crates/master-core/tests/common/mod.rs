//! Transcript harness for the master core: feed inputs at chosen times, keep the effects
//! of the last step, and check the master's invariants after every step.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use strata_api::agent_link::{Hello, StatusUpdate, ToAgent, ToMaster, PROTOCOL_VERSION};
use strata_api::scheduler::{Accept, Command, Event, Launch, Operation, Subscribe};
use strata_api::{
    AgentId, AgentInfo, Capability, CommandInfo, ExecutorInfo, Filters, FrameworkId, FrameworkInfo,
    Offer, OfferId, Source, Task, TaskId, TaskInfo, TaskState, TaskStatus,
};
use strata_master_core::{Config, ConnId, Effect, Input, Master, Reply};
use strata_registry::{Op, RegistryState};
use strata_resources::{Resources, WireFormat, WireResource};

pub const MASTER_ID: &str = "5c3f0e1a-7b2d-4e8f-9a10-0123456789ab";
/// Where every transcript starts.
pub const T0: f64 = 1_000.0;
pub const AGENT_RES: &str = "cpus:4;mem:4096;ports:[31000-32000]";

/// The test master's configuration (Mesos defaults scaled down to round numbers).
pub fn config() -> Config {
    Config {
        master_id: MASTER_ID.into(),
        hostname: "master.test".into(),
        ip: std::net::Ipv4Addr::new(10, 0, 0, 1),
        port: 5050,
        version: "1.11.0".into(),
        agent_ping_interval: 10.0,
        max_agent_ping_timeouts: 3,
        agent_reregister_timeout: 100.0,
        heartbeat_interval: 15.0,
        ..Config::default()
    }
}

/// Agent-flag resources (`cpus:1;mem:32`), unreserved.
pub fn res(flag: &str) -> Resources {
    Resources::parse_flag(flag, "*").unwrap()
}

/// `res(flag)` allocated to `role`.
pub fn res_in(flag: &str, role: &str) -> Resources {
    res(flag).with_allocation_role(role)
}

/// Wire resources as an agent reports them.
pub fn wire(flag: &str) -> Vec<WireResource> {
    res(flag).to_wire(WireFormat::PostRefinement)
}

/// Wire resources as a framework without RESERVATION_REFINEMENT sends them back.
pub fn wire_pre(flag: &str) -> Vec<WireResource> {
    res(flag).to_wire(WireFormat::PreRefinement)
}

pub fn uuid(n: u8) -> String {
    // 16 bytes [n; 16] in base64, as the agent would send them.
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = [n; 16];
    let mut s = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            s.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s.push_str("=="); // 16 bytes: 22 characters and two pads
    s
}

pub fn hello(host: &str, ip: &str, flag: &str) -> Hello {
    Hello {
        protocol: PROTOCOL_VERSION,
        agent_info: AgentInfo {
            hostname: host.into(),
            port: 5051,
            resources: wire(flag),
            attributes: Vec::new(),
            id: None,
            domain: None,
        },
        address: format!("{ip}:5051"),
        version: "1.11.0".into(),
        frameworks: Vec::new(),
        executors: Vec::new(),
        tasks: Vec::new(),
        checkpointed_resources: Vec::new(),
        oversubscribed_resources: Vec::new(),
    }
}

/// A plain framework: one role (`*`), no capabilities, failover_timeout 1 hour.
pub fn fw_info(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: "alice".into(),
        name: name.into(),
        id: None,
        failover_timeout: 3600.0,
        checkpoint: false,
        role: None,
        roles: Vec::new(),
        hostname: None,
        principal: None,
        webui_url: None,
        capabilities: Vec::new(),
        labels: None,
        offer_filters: None,
    }
}

pub fn with_caps(mut info: FrameworkInfo, caps: &[&str]) -> FrameworkInfo {
    info.capabilities.extend(caps.iter().map(|c| Capability {
        kind: c.to_string(),
    }));
    info
}

pub fn multi_role(name: &str, roles: &[&str]) -> FrameworkInfo {
    let mut info = with_caps(fw_info(name), &["MULTI_ROLE"]);
    info.roles = roles.iter().map(|r| r.to_string()).collect();
    info
}

/// A command task for `agent` using `flag` resources.
pub fn task(id: &str, agent: &AgentId, flag: &str) -> TaskInfo {
    TaskInfo {
        name: format!("task {id}"),
        task_id: TaskId::new(id),
        agent_id: Some(agent.clone()),
        slave_id: None,
        resources: wire_pre(flag),
        executor: None,
        command: Some(CommandInfo::shell("sleep 1000")),
        container: None,
        health_check: None,
        check: None,
        kill_policy: None,
        data: None,
        labels: None,
        discovery: None,
        max_completion_time: None,
        limits: None,
    }
}

pub fn custom_executor(id: &str, flag: &str) -> ExecutorInfo {
    ExecutorInfo {
        kind: None,
        executor_id: strata_api::ExecutorId::new(id),
        framework_id: None,
        command: Some(CommandInfo::shell("./my-executor")),
        container: None,
        resources: wire_pre(flag),
        name: None,
        source: None,
        data: None,
        discovery: None,
        shutdown_grace_period: None,
        labels: None,
    }
}

pub fn launch_op(tasks: Vec<TaskInfo>) -> Operation {
    Operation {
        kind: "LAUNCH".into(),
        id: None,
        launch: Some(Launch { task_infos: tasks }),
        launch_group: None,
        ..Default::default()
    }
}

pub fn refuse(seconds: f64) -> Option<Filters> {
    Some(Filters {
        refuse_seconds: Some(seconds),
    })
}

/// The wire `Task` an agent reports when re-registering.
pub fn reported_task(
    fid: &FrameworkId,
    aid: &AgentId,
    id: &str,
    flag: &str,
    role: &str,
    state: TaskState,
) -> Task {
    Task {
        name: format!("task {id}"),
        task_id: TaskId::new(id),
        framework_id: fid.clone(),
        executor_id: None,
        agent_id: aid.clone(),
        state,
        resources: res_in(flag, role).to_wire(WireFormat::PostRefinement),
        statuses: Vec::new(),
        status_update_state: None,
        status_update_uuid: None,
        labels: None,
        discovery: None,
        container: None,
        health_check: None,
        kill_policy: None,
        user: Some("alice".into()),
        limits: None,
        container_id: None,
    }
}

#[derive(Debug, Clone)]
pub struct AgentConn {
    pub conn: ConnId,
    pub session: String,
    pub hello: Hello,
}

#[derive(Debug, Clone)]
pub struct FwConn {
    pub conn: ConnId,
    pub stream: String,
}

/// The master plus the shell's bookkeeping of connections.
pub struct Harness {
    pub m: Master,
    pub now: f64,
    /// Effects of the last step.
    pub out: Vec<Effect>,
    /// Every effect since the harness was built (or `clear_log`).
    pub log: Vec<Effect>,
    next_conn: u64,
    pub agents: BTreeMap<AgentId, AgentConn>,
    pub fws: BTreeMap<FrameworkId, FwConn>,
    /// Every offer sent so far.
    pub seen_offers: Vec<Offer>,
    next_ip: u8,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_registry(RegistryState::default())
    }

    pub fn with_registry(reg: RegistryState) -> Self {
        Self::from_master(Master::new(config(), reg, T0))
    }

    pub fn from_master(m: Master) -> Self {
        Self {
            m,
            now: T0,
            out: Vec::new(),
            log: Vec::new(),
            next_conn: 1,
            agents: BTreeMap::new(),
            fws: BTreeMap::new(),
            seen_offers: Vec::new(),
            next_ip: 10,
        }
    }

    // ----- driving ------------------------------------------------------------------

    /// Feeds one input at the current time; checks invariants afterwards.
    pub fn step(&mut self, input: Input) -> Reply {
        let mut out = Vec::new();
        let reply = self.m.step(self.now, input, &mut out);
        if let Err(e) = self.m.check_invariants() {
            panic!("invariant broken at t={}: {e}\neffects: {out:#?}", self.now);
        }
        self.log.extend(out.iter().cloned());
        self.out = out;
        let sent: Vec<Offer> = self.all_offers().into_values().flatten().collect();
        self.seen_offers.extend(sent);
        reply
    }

    pub fn advance(&mut self, secs: f64) {
        self.now += secs;
    }

    pub fn at(&mut self, t: f64) {
        assert!(t >= self.now, "time goes forward");
        self.now = t;
    }

    pub fn tick(&mut self) {
        assert_eq!(self.step(Input::Tick), Reply::None);
    }

    pub fn allocate(&mut self) {
        assert_eq!(self.step(Input::Allocate), Reply::None);
    }

    pub fn conn(&mut self) -> ConnId {
        let c = ConnId(self.next_conn);
        self.next_conn += 1;
        c
    }

    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    // ----- agents -------------------------------------------------------------------

    /// Registers a new agent `host` with `flag` resources; returns its id.
    pub fn add_agent(&mut self, host: &str, flag: &str) -> AgentId {
        self.next_ip += 1;
        let h = hello(host, &format!("10.0.1.{}", self.next_ip), flag);
        let (reply, aid) = self.connect_agent(h);
        assert_eq!(reply, Reply::Stream);
        aid.expect("agent registered")
    }

    /// Opens an agent session with `hello`; returns the reply and the id from REGISTERED.
    pub fn connect_agent(&mut self, hello: Hello) -> (Reply, Option<AgentId>) {
        let conn = self.conn();
        let session = format!("session-{}", conn.0);
        let reply = self.step(Input::AgentConnect {
            conn,
            session: session.clone(),
            hello: Box::new(hello.clone()),
        });
        let registered = self.out.iter().find_map(|e| match e {
            Effect::Agent { conn: c, message } if *c == conn => match message.as_ref() {
                ToAgent::Registered(r) => Some(r.clone()),
                _ => None,
            },
            _ => None,
        });
        let aid = registered.map(|r| {
            assert_eq!(r.session, session);
            let mut hello = hello;
            hello.agent_info.id = Some(r.agent_id.clone());
            self.agents.insert(
                r.agent_id.clone(),
                AgentConn {
                    conn,
                    session,
                    hello,
                },
            );
            r.agent_id
        });
        (reply, aid)
    }

    /// Re-registers a known agent (same host and address) reporting `tasks`.
    pub fn reregister(
        &mut self,
        aid: &AgentId,
        tasks: Vec<Task>,
        frameworks: Vec<FrameworkInfo>,
    ) -> Reply {
        let mut h = self.agents[aid].hello.clone();
        h.agent_info.id = Some(aid.clone());
        h.tasks = tasks;
        h.frameworks = frameworks;
        let (reply, got) = self.connect_agent(h);
        assert_eq!(
            got.as_ref(),
            Some(aid),
            "re-registration keeps the agent id"
        );
        reply
    }

    pub fn agent_conn(&self, aid: &AgentId) -> ConnId {
        self.agents[aid].conn
    }

    pub fn agent_send(&mut self, aid: &AgentId, message: ToMaster) -> Reply {
        let session = self.agents[aid].session.clone();
        self.step(Input::AgentMessage {
            session,
            message: Box::new(message),
        })
    }

    pub fn close_agent(&mut self, aid: &AgentId) {
        let conn = self.agent_conn(aid);
        assert_eq!(self.step(Input::AgentStreamClosed { conn }), Reply::None);
    }

    /// A status update from the agent's executor, with `uuid(n)` when `uuid` is given.
    pub fn status(
        &mut self,
        aid: &AgentId,
        fid: &FrameworkId,
        tid: &str,
        state: TaskState,
        uuid_n: Option<u8>,
    ) -> Reply {
        let mut status = TaskStatus::new(TaskId::new(tid), state);
        status.source = Some(Source::Executor);
        status.uuid = uuid_n.map(uuid);
        status.timestamp = Some(self.now);
        let msg = ToMaster::StatusUpdate(StatusUpdate {
            framework_id: fid.clone(),
            status,
            latest_state: None,
        });
        self.agent_send(aid, msg)
    }

    /// Messages sent to agent `aid` (on its current connection) in the last step.
    pub fn agent_msgs(&self, aid: &AgentId) -> Vec<ToAgent> {
        self.msgs_on(self.agent_conn(aid))
    }

    pub fn msgs_on(&self, conn: ConnId) -> Vec<ToAgent> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::Agent { conn: c, message } if *c == conn => Some((**message).clone()),
                _ => None,
            })
            .collect()
    }

    /// Message kinds sent to `aid` in the last step (`"PING"`, `"RUN_TASK"`…).
    pub fn agent_kinds(&self, aid: &AgentId) -> Vec<String> {
        self.agent_msgs(aid).iter().map(kind_of_msg).collect()
    }

    // ----- frameworks ---------------------------------------------------------------

    /// SUBSCRIBE on a fresh connection; returns the connection and the reply.
    pub fn subscribe_raw(&mut self, info: FrameworkInfo) -> (ConnId, String, Reply) {
        let conn = self.conn();
        let stream = format!("stream-{}", conn.0);
        let sub = Subscribe {
            framework_info: info,
            suppressed_roles: Vec::new(),
            offer_constraints: None,
        };
        let reply = self.step(Input::Subscribe {
            conn,
            stream_id: stream.clone(),
            subscribe: Box::new(sub),
        });
        (conn, stream, reply)
    }

    /// Subscribes (or resubscribes, when `info.id` is set); returns the id from SUBSCRIBED.
    pub fn subscribe(&mut self, info: FrameworkInfo) -> FrameworkId {
        let (conn, stream, reply) = self.subscribe_raw(info);
        assert_eq!(reply, Reply::Stream);
        let fid = self
            .events_on(conn)
            .into_iter()
            .find_map(|e| match e {
                Event::Subscribed(s) => Some(s.framework_id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no SUBSCRIBED: {:#?}", self.out));
        self.fws.insert(fid.clone(), FwConn { conn, stream });
        fid
    }

    pub fn fw_conn(&self, fid: &FrameworkId) -> ConnId {
        self.fws[fid].conn
    }

    /// A scheduler call with the framework's current stream id.
    pub fn call(&mut self, fid: &FrameworkId, command: Command) -> Reply {
        let stream = self.fws.get(fid).map(|f| f.stream.clone());
        self.call_raw(fid, stream, command)
    }

    pub fn call_raw(
        &mut self,
        fid: &FrameworkId,
        stream_id: Option<String>,
        command: Command,
    ) -> Reply {
        self.step(Input::Call {
            stream_id,
            framework_id: fid.clone(),
            command: Box::new(command),
        })
    }

    pub fn close_fw(&mut self, fid: &FrameworkId) {
        let conn = self.fw_conn(fid);
        assert_eq!(
            self.step(Input::FrameworkStreamClosed { conn }),
            Reply::None
        );
    }

    pub fn accept(
        &mut self,
        fid: &FrameworkId,
        offer_ids: Vec<OfferId>,
        ops: Vec<Operation>,
        filters: Option<Filters>,
    ) -> Reply {
        self.call(
            fid,
            Command::Accept(Accept {
                offer_ids,
                operations: ops,
                filters,
            }),
        )
    }

    /// Launches `tasks` on one offer (default filter).
    pub fn launch(&mut self, fid: &FrameworkId, offer: &Offer, tasks: Vec<TaskInfo>) -> Reply {
        self.accept(fid, vec![offer.id.clone()], vec![launch_op(tasks)], None)
    }

    /// Launches one task on `aid` from an outstanding offer (allocating first if the
    /// framework holds none there) and checks that RUN_TASK went out.
    pub fn run_task(&mut self, fid: &FrameworkId, aid: &AgentId, tid: &str, flag: &str) {
        let offer = match self.outstanding_offer(fid, aid) {
            Some(o) => o,
            None => {
                self.allocate();
                self.outstanding_offer(fid, aid)
                    .unwrap_or_else(|| panic!("no offer on {aid}: {:#?}", self.out))
            }
        };
        assert_eq!(
            self.launch(fid, &offer, vec![task(tid, aid, flag)]),
            Reply::Accepted
        );
        assert_eq!(self.agent_kinds(aid), ["RUN_TASK"], "{:#?}", self.out);
    }

    /// The newest offer `fid` received on `aid` that the master still lists as outstanding.
    pub fn outstanding_offer(&self, fid: &FrameworkId, aid: &AgentId) -> Option<Offer> {
        let listed: Vec<String> = self.fw_state(fid)["offers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        self.seen_offers
            .iter()
            .rev()
            .find(|o| {
                &o.framework_id == fid
                    && &o.agent_id == aid
                    && listed.iter().any(|l| l == o.id.as_str())
            })
            .cloned()
    }

    pub fn events_on(&self, conn: ConnId) -> Vec<Event> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::Framework { conn: c, event } if *c == conn => Some((**event).clone()),
                _ => None,
            })
            .collect()
    }

    /// Events sent to the framework's current connection in the last step.
    pub fn events(&self, fid: &FrameworkId) -> Vec<Event> {
        self.events_on(self.fw_conn(fid))
    }

    /// Event kinds (`"SUBSCRIBED"`, `"OFFERS"`…) sent to `fid` in the last step.
    pub fn kinds(&self, fid: &FrameworkId) -> Vec<String> {
        self.events(fid).iter().map(kind_of_event).collect()
    }

    pub fn offers(&self, fid: &FrameworkId) -> Vec<Offer> {
        self.events(fid)
            .into_iter()
            .flat_map(|e| match e {
                Event::Offers(o) => o.offers,
                _ => Vec::new(),
            })
            .collect()
    }

    /// Offers sent to anyone in the last step, by framework.
    pub fn all_offers(&self) -> BTreeMap<FrameworkId, Vec<Offer>> {
        let mut map: BTreeMap<FrameworkId, Vec<Offer>> = BTreeMap::new();
        for e in &self.out {
            if let Effect::Framework { event, .. } = e {
                if let Event::Offers(o) = event.as_ref() {
                    for offer in &o.offers {
                        map.entry(offer.framework_id.clone())
                            .or_default()
                            .push(offer.clone());
                    }
                }
            }
        }
        map
    }

    pub fn updates(&self, fid: &FrameworkId) -> Vec<TaskStatus> {
        self.events(fid)
            .into_iter()
            .filter_map(|e| match e {
                Event::Update(u) => Some(u.status),
                _ => None,
            })
            .collect()
    }

    /// The one UPDATE the framework got in the last step.
    pub fn update(&self, fid: &FrameworkId) -> TaskStatus {
        let mut u = self.updates(fid);
        assert_eq!(u.len(), 1, "expected exactly one UPDATE, got {u:#?}");
        u.remove(0)
    }

    /// Registry operations persisted in the last step, in order.
    pub fn persisted(&self) -> Vec<Op> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::Persist(ops) => Some(ops.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Position of the first effect matching `pred` in the last step.
    pub fn position(&self, pred: impl Fn(&Effect) -> bool) -> Option<usize> {
        self.out.iter().position(pred)
    }

    /// Framework connections closed in the last step.
    pub fn closed_fw_conns(&self) -> Vec<ConnId> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::CloseFramework { conn } => Some(*conn),
                _ => None,
            })
            .collect()
    }

    pub fn closed_agent_conns(&self) -> Vec<ConnId> {
        self.out
            .iter()
            .filter_map(|e| match e {
                Effect::CloseAgent { conn } => Some(*conn),
                _ => None,
            })
            .collect()
    }

    // ----- views --------------------------------------------------------------------

    pub fn state(&self) -> serde_json::Value {
        strata_master_core::views::legacy::state(&self.m)
    }

    /// The legacy-state JSON of framework `fid` (active or completed).
    pub fn fw_state(&self, fid: &FrameworkId) -> serde_json::Value {
        let s = self.state();
        for key in ["frameworks", "completed_frameworks"] {
            if let Some(f) = s[key]
                .as_array()
                .and_then(|a| a.iter().find(|f| f["id"] == fid.as_str()))
            {
                return f.clone();
            }
        }
        panic!("framework {fid} not in /master/state");
    }

    /// `(task id, state)` pairs in `list` (`tasks`, `unreachable_tasks`, `completed_tasks`).
    pub fn task_states(&self, fid: &FrameworkId, list: &str) -> Vec<(String, String)> {
        self.fw_state(fid)[list]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap().to_string(),
                    t["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn slave_state(&self, aid: &AgentId) -> serde_json::Value {
        self.state()["slaves"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["id"] == aid.as_str()).cloned())
            .unwrap_or(serde_json::Value::Null)
    }

    pub fn metric(&self, name: &str) -> f64 {
        let snap = strata_master_core::views::metrics::snapshot(&self.m, self.now);
        *snap.get(name).unwrap_or_else(|| panic!("no metric {name}"))
    }
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

pub fn kind_of_event(e: &Event) -> String {
    serde_json::to_value(e).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn kind_of_msg(m: &ToAgent) -> String {
    serde_json::to_value(m).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Scalar quantity of `name` in wire resources.
pub fn scalar(res: &[WireResource], name: &str) -> f64 {
    Resources::from_wire(res).unwrap().scalar(name).as_f64()
}
