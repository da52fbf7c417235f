//! The `Master` struct: construction from the registry, the `step` dispatcher, and the
//! small helpers every handler uses to emit effects.

use crate::config::Config;
use crate::io::{CallError, ConnId, Effect, Input, OperatorInput, Reply};
use crate::metrics::Metrics;
use crate::state::{AgentPhase, AgentState, FrameworkState, OfferRecord, UnreachableAgent};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use strata_allocator::Allocator;
use strata_api::agent_link::ToAgent;
use strata_api::scheduler::{Command, Event};
use strata_api::{AgentId, FrameworkId, MasterInfo, OfferId};
use strata_registry::RegistryState;
use strata_resources::{Attribute, Resources};

/// Who owns a streaming connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ConnOwner {
    Framework(FrameworkId),
    Agent(AgentId),
}

/// The master's whole state. Owned by one task; see the crate docs.
#[derive(Debug)]
pub struct Master {
    pub(crate) cfg: Config,
    pub(crate) frameworks: BTreeMap<FrameworkId, FrameworkState>,
    pub(crate) completed_frameworks: VecDeque<FrameworkState>,
    pub(crate) agents: BTreeMap<AgentId, Box<AgentState>>,
    pub(crate) unreachable: BTreeMap<AgentId, UnreachableAgent>,
    pub(crate) gone: BTreeSet<AgentId>,
    pub(crate) offers: BTreeMap<OfferId, OfferRecord>,
    pub(crate) allocator: Allocator<FrameworkId, AgentId>,
    pub(crate) conns: HashMap<ConnId, ConnOwner>,
    pub(crate) sessions: HashMap<String, AgentId>,
    pub(crate) metrics: Metrics,
    pub(crate) start_time: f64,
    /// Agents whose free resources changed since the last allocation.
    pub(crate) dirty_agents: BTreeSet<AgentId>,
    pub(crate) operator_subscribers: usize,
    /// Operations sent with an `id` whose latest status is unacknowledged, by
    /// (framework, operation id).
    pub(crate) operations: BTreeMap<(FrameworkId, String), crate::operations::OperationRecord>,
    pub(crate) next_operation_uuid: u64,
    /// Revocable tasks chosen for eviction, by (framework, task).
    pub(crate) preemptions:
        BTreeMap<(FrameworkId, strata_api::TaskId), crate::preemption::PendingPreemption>,
    /// Maintenance schedule, inverse offers, deactivated and draining agents.
    pub(crate) maint: crate::maintenance::MaintenanceState,
    next_framework: u64,
    next_agent: u64,
    next_offer: u64,
}

impl Master {
    /// A master starting at `now` with the durable state read from the registry.
    pub fn new(cfg: Config, registry: RegistryState, now: f64) -> Self {
        let mut allocator = Allocator::new(strata_allocator::Config::default());
        for (role, weight) in &cfg.weights {
            allocator.set_weight(role, *weight);
        }
        let mut m = Self {
            cfg,
            frameworks: BTreeMap::new(),
            completed_frameworks: VecDeque::new(),
            agents: BTreeMap::new(),
            unreachable: BTreeMap::new(),
            gone: BTreeSet::new(),
            offers: BTreeMap::new(),
            allocator,
            conns: HashMap::new(),
            sessions: HashMap::new(),
            metrics: Metrics::default(),
            start_time: now,
            dirty_agents: BTreeSet::new(),
            operator_subscribers: 0,
            operations: BTreeMap::new(),
            next_operation_uuid: 0,
            preemptions: BTreeMap::new(),
            maint: Default::default(),
            next_framework: 0,
            next_agent: 0,
            next_offer: 0,
        };
        m.recover_registry(registry, now);
        m
    }

    fn recover_registry(&mut self, registry: RegistryState, now: f64) {
        self.maint = crate::maintenance::MaintenanceState::from_registry(&registry, now);
        self.recover_allocation(&registry);
        for (id, record) in registry.agents {
            let id = AgentId::new(id);
            if record.gone {
                self.gone.insert(id);
            } else if let Some(since) = record.unreachable_since {
                self.unreachable.insert(
                    id,
                    UnreachableAgent {
                        info: record.info,
                        address: record.address,
                        since,
                    },
                );
            } else {
                let mut agent = new_agent_state(
                    id.clone(),
                    record.info,
                    record.address,
                    AgentPhase::Recovered { since: now },
                    now,
                );
                agent.total = crate::reservations::total_with(
                    &agent.total,
                    &record.checkpointed_resources,
                    &id,
                );
                self.agents.insert(id, Box::new(agent));
            }
        }
        for (id, info) in registry.frameworks {
            let fw = new_framework_state(FrameworkId::new(id), info, now, true);
            self.allocator
                .add_framework(fw.id.clone(), &fw.roles, &[], false);
            self.frameworks.insert(fw.id.clone(), fw);
        }
    }

    /// Feeds one input; effects are appended to `out` in the order they must happen.
    pub fn step(&mut self, now: f64, input: Input, out: &mut Vec<Effect>) -> Reply {
        let reply = self.dispatch(now, input, out);
        self.prune_inverse_offers(out);
        self.progress_drains(now, out);
        reply
    }

    fn dispatch(&mut self, now: f64, input: Input, out: &mut Vec<Effect>) -> Reply {
        match input {
            Input::Subscribe {
                conn,
                stream_id,
                subscribe,
            } => self.subscribe(now, conn, stream_id, *subscribe, out),
            Input::Call {
                stream_id,
                framework_id,
                command,
            } => self.scheduler_call(now, stream_id, framework_id, *command, out),
            Input::FrameworkStreamClosed { conn } => {
                self.framework_stream_closed(now, conn, out);
                Reply::None
            }
            Input::AgentConnect {
                conn,
                session,
                hello,
            } => self.agent_connect(now, conn, session, *hello, out),
            Input::AgentMessage { session, message } => {
                self.agent_message(now, &session, *message, out)
            }
            Input::AgentStreamClosed { conn } => {
                self.agent_stream_closed(now, conn, out);
                Reply::None
            }
            Input::Operator(op) => self.operator(now, op, out),
            Input::Tick => {
                self.tick(now, out);
                Reply::None
            }
            Input::Allocate => {
                self.allocate(now, true, out);
                Reply::None
            }
            Input::AllocateChanged => {
                self.allocate(now, false, out);
                Reply::None
            }
        }
    }

    fn scheduler_call(
        &mut self,
        now: f64,
        stream_id: Option<String>,
        fid: FrameworkId,
        command: Command,
        out: &mut Vec<Effect>,
    ) -> Reply {
        if let Err(e) = self.check_caller(&fid, stream_id.as_deref()) {
            return Reply::Error(e);
        }
        self.metrics.count_call(&command);
        match command {
            Command::Subscribe(_) => Reply::Error(CallError::bad_request(
                "Subscribe calls should not include the 'Mesos-Stream-Id' header",
            )),
            Command::Teardown => {
                self.remove_framework(now, &fid, out);
                Reply::Accepted
            }
            Command::Accept(a) => {
                self.accept(now, &fid, a, out);
                Reply::Accepted
            }
            Command::Decline(d) => {
                self.decline(now, &fid, &d.offer_ids, d.filters.as_ref());
                Reply::Accepted
            }
            Command::Revive(r) => {
                self.revive(&fid, &r.roles);
                Reply::Accepted
            }
            Command::Suppress(r) => {
                self.suppress(&fid, &r.roles);
                Reply::Accepted
            }
            Command::Kill(k) => {
                self.kill(now, &fid, k, out);
                Reply::Accepted
            }
            Command::Shutdown(s) => {
                self.shutdown_executor(&fid, s, out);
                Reply::Accepted
            }
            Command::Acknowledge(a) => {
                self.acknowledge(now, &fid, a, out);
                Reply::Accepted
            }
            Command::Reconcile(r) => {
                self.reconcile(now, &fid, r, out);
                Reply::Accepted
            }
            Command::Message(m) => {
                self.framework_message(&fid, m, out);
                Reply::Accepted
            }
            Command::UpdateFramework(u) => self.update_framework(now, &fid, u, out),
            Command::AcceptInverseOffers(payload) => self.answer_inverse_offers(
                now,
                &fid,
                payload,
                strata_api::maintenance::InverseOfferStatus::Accept,
            ),
            Command::DeclineInverseOffers(payload) => self.answer_inverse_offers(
                now,
                &fid,
                payload,
                strata_api::maintenance::InverseOfferStatus::Decline,
            ),
            Command::Request(payload) => {
                self.request(&fid, &payload);
                Reply::Accepted
            }
            Command::AcknowledgeOperationStatus(payload) => {
                self.acknowledge_operation(&fid, &payload);
                Reply::Accepted
            }
            Command::ReconcileOperations(payload) => {
                self.reconcile_operations(&fid, &payload, out);
                Reply::Accepted
            }
        }
    }

    /// Mesos' checks on a non-SUBSCRIBE call: known framework, subscribed, same stream.
    fn check_caller(&self, fid: &FrameworkId, stream_id: Option<&str>) -> Result<(), CallError> {
        let fw = self
            .frameworks
            .get(fid)
            .ok_or_else(|| CallError::bad_request("Framework cannot be found"))?;
        let Some(current) = fw.stream_id.as_deref().filter(|_| fw.connected()) else {
            return Err(CallError::forbidden("Framework is not subscribed"));
        };
        match stream_id {
            None => Err(CallError::bad_request("All non-subscribe calls should include the 'Mesos-Stream-Id' header")),
            Some(s) if s != current => Err(CallError::bad_request(format!(
                "The stream ID '{s}' included in this request didn't match the stream ID currently associated with framework ID {fid}"
            ))),
            Some(_) => Ok(()),
        }
    }

    fn operator(&mut self, now: f64, op: OperatorInput, out: &mut Vec<Effect>) -> Reply {
        match op {
            OperatorInput::Teardown { framework_id } => {
                if !self.frameworks.contains_key(&framework_id) {
                    return Reply::Error(CallError::bad_request(format!(
                        "No framework found with specified ID {framework_id}"
                    )));
                }
                self.remove_framework(now, &framework_id, out);
                Reply::Ok
            }
            OperatorInput::MarkAgentGone { agent_id } => self.mark_agent_gone(now, &agent_id, out),
            op @ (OperatorInput::UpdateMaintenanceSchedule { .. }
            | OperatorInput::StartMaintenance { .. }
            | OperatorInput::StopMaintenance { .. }
            | OperatorInput::DrainAgent { .. }
            | OperatorInput::DeactivateAgent { .. }
            | OperatorInput::ReactivateAgent { .. }) => self.maintenance_call(now, op, out),
            OperatorInput::ResourceOperation {
                agent_id,
                operation,
            } => self.operator_resource_operation(&agent_id, &operation, out),
            OperatorInput::KillTask {
                task_id,
                framework_id,
            } => self.operator_kill(now, task_id, framework_id, out),
            OperatorInput::UpdateQuota { configs, force } => self.update_quota(configs, force, out),
            OperatorInput::UpdateWeights { weights } => {
                for (role, weight) in &weights {
                    if let Err(e) = crate::quota::validate_role(role) {
                        return Reply::Error(CallError::bad_request(e));
                    }
                    if !(weight.is_finite() && *weight > 0.0) {
                        return Reply::Error(CallError::bad_request(format!(
                            "Invalid weight {weight} for role '{role}': weights must be positive"
                        )));
                    }
                }
                // All or nothing: nothing is applied unless every weight is valid.
                for (role, weight) in &weights {
                    self.allocator.set_weight(role, *weight);
                }
                let ops = weights
                    .into_iter()
                    .map(|(role, weight)| strata_registry::Op::SetWeight { role, weight })
                    .collect();
                out.push(Effect::Persist(ops));
                Reply::Ok
            }
        }
    }

    /// Kills a task by id (searching every framework unless one is named).
    fn operator_kill(
        &mut self,
        now: f64,
        task_id: strata_api::TaskId,
        fid: Option<FrameworkId>,
        out: &mut Vec<Effect>,
    ) -> Reply {
        let owner = self
            .frameworks
            .values()
            .filter(|f| fid.as_ref().is_none_or(|id| &f.id == id))
            .find(|f| {
                f.tasks
                    .get(&task_id)
                    .is_some_and(|t| !t.state().is_terminal())
            })
            .map(|f| f.id.clone());
        let Some(owner) = owner else {
            return Reply::Error(CallError {
                status: 404,
                message: format!("No live task '{task_id}' found"),
            });
        };
        let kill = strata_api::scheduler::Kill {
            task_id,
            agent_id: None,
            kill_policy: None,
        };
        self.kill(now, &owner, kill, out);
        Reply::Ok
    }

    // ----- small helpers shared by the handlers -------------------------------------

    /// Sends an event to a framework if it is connected.
    pub(crate) fn send_framework(&self, fid: &FrameworkId, event: Event, out: &mut Vec<Effect>) {
        if let Some(conn) = self.frameworks.get(fid).and_then(|f| f.conn) {
            out.push(Effect::Framework {
                conn,
                event: Box::new(event),
            });
        }
    }

    /// Sends a message to an agent if it is connected; returns whether it was sent.
    pub(crate) fn send_agent(
        &self,
        aid: &AgentId,
        message: ToAgent,
        out: &mut Vec<Effect>,
    ) -> bool {
        match self.agents.get(aid) {
            Some(a) if a.connected() => {
                if let Some(conn) = a.conn {
                    out.push(Effect::Agent {
                        conn,
                        message: Box::new(message),
                    });
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    /// Emits an operator event when anyone listens.
    pub(crate) fn operator_event(
        &self,
        event: impl FnOnce() -> serde_json::Value,
        out: &mut Vec<Effect>,
    ) {
        if self.operator_subscribers > 0 {
            out.push(Effect::Operator { event: event() });
        }
    }

    pub(crate) fn next_framework_id(&mut self) -> FrameworkId {
        let id = FrameworkId::new(format!("{}-{:04}", self.cfg.master_id, self.next_framework));
        self.next_framework += 1;
        id
    }

    pub(crate) fn next_agent_id(&mut self) -> AgentId {
        let id = AgentId::new(format!("{}-S{}", self.cfg.master_id, self.next_agent));
        self.next_agent += 1;
        id
    }

    pub(crate) fn next_offer_id(&mut self) -> OfferId {
        let id = OfferId::new(format!("{}-O{}", self.cfg.master_id, self.next_offer));
        self.next_offer += 1;
        id
    }

    /// `MasterInfo` as advertised to frameworks and agents.
    pub fn master_info(&self) -> MasterInfo {
        MasterInfo {
            id: self.cfg.master_id.clone(),
            ip: u32::from_le_bytes(self.cfg.ip.octets()),
            port: u32::from(self.cfg.port),
            pid: Some(format!("master@{}:{}", self.cfg.ip, self.cfg.port)),
            hostname: Some(self.cfg.hostname.clone()),
            version: Some(self.cfg.version.clone()),
            address: Some(strata_api::Address {
                hostname: Some(self.cfg.hostname.clone()),
                ip: Some(self.cfg.ip.to_string()),
                port: u32::from(self.cfg.port),
            }),
            domain: self.cfg.domain.clone(),
            capabilities: vec![strata_api::Capability {
                kind: "AGENT_UPDATE".into(),
            }],
        }
    }

    /// Tells the core how many operator event subscribers the shell holds.
    pub fn set_operator_subscribers(&mut self, n: usize) {
        self.operator_subscribers = n;
    }

    /// Whether freed resources are waiting to be offered.
    pub fn wants_allocation(&self) -> bool {
        !self.dirty_agents.is_empty()
    }

    /// Configuration in use.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The allocator, read-only (the memory benchmark measures its share).
    #[doc(hidden)]
    pub fn allocator(&self) -> &Allocator<FrameworkId, AgentId> {
        &self.allocator
    }

    /// Consistency checks for tests: the allocator's own invariants (no agent
    /// over-committed), offers and tasks cross-referenced between frameworks and agents,
    /// and the allocator holding, per framework and agent, exactly the live tasks,
    /// executors and offers there.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.allocator.check_invariants()?;
        self.check_agent_totals()?;
        for (id, o) in &self.offers {
            let fw = self
                .frameworks
                .get(&o.framework_id)
                .ok_or(format!("offer {id}: no framework {}", o.framework_id))?;
            let agent = self
                .agents
                .get(&o.agent_id)
                .ok_or(format!("offer {id}: no agent {}", o.agent_id))?;
            if !fw.offers.contains(id) || !agent.offers.contains(id) {
                return Err(format!("offer {id} not indexed by its framework and agent"));
            }
        }
        for fw in self.frameworks.values() {
            if let Some(id) = fw.offers.iter().find(|id| !self.offers.contains_key(*id)) {
                return Err(format!("framework {} lists unknown offer {id}", fw.id));
            }
            for (tid, t) in &fw.tasks {
                let on_agent = self
                    .agents
                    .get(&t.agent_id)
                    .is_some_and(|a| a.tasks.contains(&(fw.id.clone(), tid.clone())));
                if !on_agent {
                    return Err(format!(
                        "task {tid} of {} not listed on agent {}",
                        fw.id, t.agent_id
                    ));
                }
            }
        }
        for agent in self.agents.values() {
            if let Some(id) = agent
                .offers
                .iter()
                .find(|id| !self.offers.contains_key(*id))
            {
                return Err(format!("agent {} lists unknown offer {id}", agent.id));
            }
            for (fid, tid) in &agent.tasks {
                let t = self.frameworks.get(fid).and_then(|f| f.tasks.get(tid));
                if t.is_none_or(|t| t.agent_id != agent.id) {
                    return Err(format!(
                        "agent {} lists task {tid} unknown to framework {fid}",
                        agent.id
                    ));
                }
            }
        }
        for aid in self.allocator.agents() {
            let mut expected: BTreeMap<FrameworkId, Resources> = BTreeMap::new();
            for fw in self.frameworks.values() {
                let mut r = Resources::new();
                for t in fw
                    .tasks
                    .values()
                    .filter(|t| t.agent_id == aid && !t.released)
                {
                    r += t.resources.clone();
                }
                for info in fw.executors.get(&aid).into_iter().flat_map(|m| m.values()) {
                    r += Resources::from_wire(&info.resources).unwrap_or_default();
                }
                for o in fw
                    .offers
                    .iter()
                    .filter_map(|id| self.offers.get(id))
                    .filter(|o| o.agent_id == aid)
                {
                    r += o.resources.clone();
                }
                if !r.is_empty() {
                    expected.insert(fw.id.clone(), r);
                }
            }
            let held = self.allocator.allocated_by_framework(&aid);
            if held != expected {
                return Err(format!("agent {aid}: allocator holds {held:?} but tasks, executors and offers use {expected:?}"));
            }
        }
        Ok(())
    }
}

/// A fresh agent record.
pub(crate) fn new_agent_state(
    id: AgentId,
    info: strata_api::AgentInfo,
    address: String,
    phase: AgentPhase,
    now: f64,
) -> AgentState {
    let mut info = info;
    let total = Resources::from_wire(&std::mem::take(&mut info.resources)).unwrap_or_default();
    let attributes: Vec<Attribute> = info
        .attributes
        .iter()
        .filter_map(|a| Attribute::try_from(a.clone()).ok())
        .collect();
    AgentState {
        id,
        info,
        declared: total.clone(),
        address,
        total,
        attributes,
        phase,
        conn: None,
        session: None,
        version: String::new(),
        registered_time: now,
        reregistered_time: None,
        last_seen: now,
        next_ping: now,
        tasks: Default::default(),
        offers: BTreeSet::new(),
        pending_kills: BTreeSet::new(),
        pending_messages: Vec::new(),
    }
}

/// A fresh framework record.
pub(crate) fn new_framework_state(
    id: FrameworkId,
    info: strata_api::FrameworkInfo,
    now: f64,
    recovered: bool,
) -> FrameworkState {
    let roles = info.effective_roles();
    FrameworkState {
        id,
        info,
        roles,
        conn: None,
        stream_id: None,
        recovered,
        registered_time: now,
        reregistered_time: None,
        unregistered_time: None,
        failover_deadline: None,
        tasks: BTreeMap::new(),
        unreachable_tasks: BTreeMap::new(),
        completed_tasks: VecDeque::new(),
        offers: BTreeSet::new(),
        executors: BTreeMap::new(),
        suppressed_roles: BTreeSet::new(),
        demand_placements: Vec::new(),
    }
}
