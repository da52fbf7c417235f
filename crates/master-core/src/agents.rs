//! Agent lifecycle: registration, session messages, disconnection, health pings,
//! unreachability and operator removal ("gone").

use crate::io::{CallError, ConnId, Effect, Reply};
use crate::master::{new_agent_state, ConnOwner, Master};
use crate::reservations::total_with;
use crate::state::{AgentPhase, UnreachableAgent};
use crate::tasks::{master_status, to_time_info};
use crate::views::operator_events;
use strata_api::agent_link::{
    Hello, Registered, ShutdownAgent, ToAgent, ToMaster, PROTOCOL_VERSION,
};
use strata_api::scheduler::{Event, Failure, Update};
use strata_api::{AgentId, Reason, TaskState};
use strata_registry::{AgentRecord, Op};

impl Master {
    /// An agent opened its session stream with a Hello (register or re-register).
    pub(crate) fn agent_connect(
        &mut self,
        now: f64,
        conn: ConnId,
        session: String,
        hello: Hello,
        out: &mut Vec<Effect>,
    ) -> Reply {
        if hello.protocol != PROTOCOL_VERSION {
            return Reply::Error(CallError::bad_request(format!(
                "Agent protocol version {} is not supported; this master speaks version {PROTOCOL_VERSION}",
                hello.protocol
            )));
        }
        if hello.address.rsplit_once(':').is_none() {
            return Reply::Error(CallError::bad_request(format!(
                "Agent address '{}' is not ip:port",
                hello.address
            )));
        }
        if let Some(reply) = self.refuse_by_machine_or_domain(conn, &hello, out) {
            return reply;
        }
        let aid = match hello.agent_info.id.clone() {
            None => {
                self.metrics.messages_register_slave += 1;
                self.register_new_agent(now, hello, out)
            }
            Some(aid) => {
                self.metrics.messages_reregister_slave += 1;
                if self.gone.contains(&aid) {
                    refuse(conn, "Agent has been marked gone", out);
                    return Reply::Stream;
                }
                if let Err(why) = self.reregister_agent(now, &aid, hello, out) {
                    refuse(conn, &why, out);
                    return Reply::Stream;
                }
                aid
            }
        };
        self.attach_agent(now, &aid, conn, session, out);
        Reply::Stream
    }

    fn register_new_agent(&mut self, now: f64, mut hello: Hello, out: &mut Vec<Effect>) -> AgentId {
        let aid = self.next_agent_id();
        hello.agent_info.id = Some(aid.clone());
        let record = AgentRecord {
            info: hello.agent_info.clone(),
            address: hello.address.clone(),
            unreachable_since: None,
            gone: false,
            checkpointed_resources: hello.checkpointed_resources.clone(),
        };
        out.push(Effect::Persist(vec![Op::AdmitAgent {
            id: aid.to_string(),
            record,
        }]));
        let mut agent = new_agent_state(
            aid.clone(),
            hello.agent_info,
            hello.address,
            AgentPhase::Connected,
            now,
        );
        agent.total = total_with(&agent.total, &hello.checkpointed_resources, &aid);
        agent.total = self.with_oversubscribed(&agent.total, &hello.oversubscribed_resources, &aid);
        agent.version = hello.version;
        self.allocator
            .add_agent(aid.clone(), agent.total.clone(), Vec::new());
        self.agents.insert(aid.clone(), Box::new(agent));
        self.metrics.slave_registrations += 1;
        tracing::info!(agent_id = %aid, "agent registered");
        aid
    }

    fn attach_agent(
        &mut self,
        now: f64,
        aid: &AgentId,
        conn: ConnId,
        session: String,
        out: &mut Vec<Effect>,
    ) {
        let master_info = self.master_info();
        let interval = self.cfg.agent_ping_interval;
        let Some(agent) = self.agents.get_mut(aid) else {
            return;
        };
        if let Some(old) = agent.conn.replace(conn) {
            out.push(Effect::CloseAgent { conn: old });
            self.conns.remove(&old);
        }
        if let Some(old) = agent.session.replace(session.clone()) {
            self.sessions.remove(&old);
        }
        agent.phase = AgentPhase::Connected;
        agent.last_seen = now;
        agent.next_ping = now + interval;
        self.conns.insert(conn, ConnOwner::Agent(aid.clone()));
        self.sessions.insert(session.clone(), aid.clone());
        let registered = Registered {
            agent_id: aid.clone(),
            session,
            ping_interval_seconds: interval,
            master_info,
        };
        out.push(Effect::Agent {
            conn,
            message: Box::new(ToAgent::Registered(registered)),
        });
        self.allocator.set_agent_active(aid, true);
        self.dirty_agents.insert(aid.clone());
        let agent = self.agents.get(aid).expect("attached above");
        self.operator_event(|| operator_events::agent_added(agent), out);
        self.resend_pending(aid, out);
        self.resume_deactivation(aid, out);
    }

    /// A message on an agent session.
    pub(crate) fn agent_message(
        &mut self,
        now: f64,
        session: &str,
        message: ToMaster,
        out: &mut Vec<Effect>,
    ) -> Reply {
        let Some(aid) = self.sessions.get(session).cloned() else {
            return Reply::Error(CallError::conflict(
                "Unknown or stale agent session; the agent must reconnect",
            ));
        };
        if let Some(agent) = self.agents.get_mut(&aid) {
            agent.last_seen = now;
        }
        match message {
            ToMaster::StatusUpdate(u) => {
                let u = self.drain_rewrite(&aid, u);
                self.status_update(now, &aid, u, out)
            }
            ToMaster::ExecutorExited(e) => self.executor_exited(&aid, e, out),
            ToMaster::ExecutorMessage(m) => self.executor_message(&aid, m, out),
            ToMaster::UpdateOversubscribed(u) => {
                self.update_oversubscribed(&aid, &u.resources, out)
            }
            ToMaster::Pong => {}
        }
        Reply::Accepted
    }

    /// The session stream broke: deactivate; non-checkpointing frameworks lose their tasks.
    pub(crate) fn agent_stream_closed(&mut self, now: f64, conn: ConnId, out: &mut Vec<Effect>) {
        let Some(ConnOwner::Agent(aid)) = self.conns.remove(&conn) else {
            return;
        };
        let Some(agent) = self.agents.get_mut(&aid) else {
            return;
        };
        if agent.conn != Some(conn) {
            return;
        }
        agent.conn = None;
        if let Some(s) = agent.session.take() {
            self.sessions.remove(&s);
        }
        agent.phase = AgentPhase::Disconnected { since: now };
        let hostname = agent.info.hostname.clone();
        let offers: Vec<_> = agent.offers.iter().cloned().collect();
        let tasks: Vec<_> = agent.tasks.iter().cloned().collect();
        tracing::warn!(agent_id = %aid, "agent disconnected");
        for offer in offers {
            self.rescind_offer(&offer, out);
        }
        self.allocator.set_agent_active(&aid, false);
        let message = format!("Agent {hostname} disconnected");
        for (fid, tid) in tasks {
            let checkpointing = self.frameworks.get(&fid).is_some_and(|f| f.info.checkpoint);
            if !checkpointing {
                let status = master_status(
                    tid,
                    TaskState::Lost,
                    Reason::AgentDisconnected,
                    &message,
                    now,
                );
                self.terminate_task(now, &aid, &fid, status, out);
            }
        }
        self.remove_executors_of_non_checkpointing(&aid);
    }

    fn remove_executors_of_non_checkpointing(&mut self, aid: &AgentId) {
        for fw in self.frameworks.values_mut().filter(|f| !f.info.checkpoint) {
            if let Some(execs) = fw.executors.remove(aid) {
                for info in execs.values() {
                    let res =
                        strata_resources::Resources::from_wire(&info.resources).unwrap_or_default();
                    self.allocator.recover(&fw.id, aid, &res, None);
                }
            }
        }
    }

    /// Periodic housekeeping: pings, unreachability, failover and offer timeouts.
    pub(crate) fn tick(&mut self, now: f64, out: &mut Vec<Effect>) {
        let timeout = self.cfg.agent_ping_timeout();
        let rereg = self.cfg.agent_reregister_timeout;
        let mut lost = Vec::new();
        for agent in self.agents.values_mut() {
            match agent.phase {
                AgentPhase::Connected if now - agent.last_seen > timeout => {
                    lost.push((agent.id.clone(), "health check timed out".to_string(), true))
                }
                AgentPhase::Connected if now >= agent.next_ping => {
                    agent.next_ping = now + self.cfg.agent_ping_interval;
                    if let Some(conn) = agent.conn {
                        out.push(Effect::Agent {
                            conn,
                            message: Box::new(ToAgent::Ping),
                        });
                    }
                }
                AgentPhase::Disconnected { since } if now - since > rereg => lost.push((
                    agent.id.clone(),
                    format!(
                        "agent did not reregister within {} after disconnecting",
                        mesos_duration(rereg)
                    ),
                    true,
                )),
                AgentPhase::Recovered { since } if now - since > rereg => lost.push((
                    agent.id.clone(),
                    format!(
                        "did not reregister within {} after master failover",
                        mesos_duration(rereg)
                    ),
                    false,
                )),
                _ => {}
            }
        }
        for (aid, why, notify_tasks) in lost {
            self.mark_unreachable(now, &aid, &why, notify_tasks, out);
        }
        self.expire_failovers(now, out);
        self.expire_offers(now, out);
        self.fire_preemptions(now, out);
    }

    /// Marks an agent unreachable: persisted first; its tasks go UNREACHABLE (LOST for
    /// frameworks that are not partition-aware); offers rescinded; FAILURE to frameworks.
    pub(crate) fn mark_unreachable(
        &mut self,
        now: f64,
        aid: &AgentId,
        why: &str,
        notify_tasks: bool,
        out: &mut Vec<Effect>,
    ) {
        let Some(agent) = self.agents.get(aid) else {
            return;
        };
        tracing::warn!(agent_id = %aid, reason = why, "marking agent unreachable");
        out.push(Effect::Persist(vec![Op::MarkUnreachable {
            id: aid.to_string(),
            time: now,
        }]));
        let offers: Vec<_> = agent.offers.iter().cloned().collect();
        let tasks: Vec<_> = agent.tasks.iter().cloned().collect();
        let (info, address, conn, session) = (
            agent.agent_info(),
            agent.address.clone(),
            agent.conn,
            agent.session.clone(),
        );
        for offer in offers {
            self.rescind_offer(&offer, out);
        }
        for (fid, tid) in tasks {
            self.move_task_to_unreachable(now, aid, &fid, &tid, why, notify_tasks, out);
        }
        for fw in self.frameworks.values_mut() {
            fw.executors.remove(aid);
        }
        self.allocator.remove_agent(aid);
        self.agents.remove(aid);
        if let Some(conn) = conn {
            out.push(Effect::CloseAgent { conn });
            self.conns.remove(&conn);
        }
        if let Some(s) = session {
            self.sessions.remove(&s);
        }
        self.unreachable.insert(
            aid.clone(),
            UnreachableAgent {
                info,
                address,
                since: now,
            },
        );
        self.metrics.slave_removals += 1;
        self.metrics.slave_removals_reason_unhealthy += 1;
        self.metrics.slave_unreachable_completed += 1;
        self.agent_lost_to_frameworks(aid, out);
    }

    /// Mesos `sendSlaveLost`: a FAILURE event naming only the agent, to every framework.
    pub(crate) fn agent_lost_to_frameworks(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        let fids: Vec<_> = self.frameworks.keys().cloned().collect();
        for fid in fids {
            let failure = Failure {
                agent_id: Some(aid.clone()),
                executor_id: None,
                status: None,
            };
            self.send_framework(&fid, Event::Failure(failure), out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn move_task_to_unreachable(
        &mut self,
        now: f64,
        aid: &AgentId,
        fid: &strata_api::FrameworkId,
        tid: &strata_api::TaskId,
        why: &str,
        notify: bool,
        out: &mut Vec<Effect>,
    ) {
        let limit = self.cfg.max_unreachable_tasks_per_framework;
        let completed_limit = self.cfg.max_completed_tasks_per_framework;
        let Some(fw) = self.frameworks.get_mut(fid) else {
            return;
        };
        let Some(mut t) = fw.tasks.remove(tid) else {
            return;
        };
        if t.state().is_terminal() {
            fw.push_completed(t, completed_limit);
            return;
        }
        // Non-partition-aware frameworks' tasks are recorded as TASK_LOST (still kept in
        // `unreachable_tasks`), as Mesos' `__removeSlave` does.
        let state = fw.visible_state(TaskState::Unreachable);
        let mut status = master_status(tid.clone(), state, Reason::AgentRemoved, why, now);
        status.agent_id = Some(aid.clone());
        status.executor_id = t.executor_id.clone();
        status.unreachable_time = Some(to_time_info(now));
        let old = t.apply(&status, None, now);
        self.metrics.transition(old, &t);
        t.unreachable_time = Some(now);
        fw.unreachable_tasks.insert(tid.clone(), t);
        while fw.unreachable_tasks.len() > limit {
            fw.unreachable_tasks.pop_first();
        }
        if notify {
            self.send_framework(fid, Event::Update(Update { status }), out);
        }
    }

    /// MARK_AGENT_GONE: permanent. Idempotent for agents already gone.
    pub(crate) fn mark_agent_gone(
        &mut self,
        now: f64,
        aid: &AgentId,
        out: &mut Vec<Effect>,
    ) -> Reply {
        if self.gone.contains(aid) {
            return Reply::Ok;
        }
        if !self.agents.contains_key(aid) && !self.unreachable.contains_key(aid) {
            return Reply::Error(CallError {
                status: 404,
                message: format!("Agent {aid} not found"),
            });
        }
        out.push(Effect::Persist(vec![Op::MarkGone {
            id: aid.to_string(),
        }]));
        if let Some(agent) = self.agents.get(aid) {
            let tasks: Vec<_> = agent.tasks.iter().cloned().collect();
            let offers: Vec<_> = agent.offers.iter().cloned().collect();
            let conn = agent.conn;
            for offer in offers {
                self.rescind_offer(&offer, out);
            }
            for (fid, tid) in tasks {
                let status = master_status(
                    tid,
                    TaskState::GoneByOperator,
                    Reason::AgentRemovedByOperator,
                    "Agent marked gone by operator",
                    now,
                );
                self.terminate_task(now, aid, &fid, status, out);
            }
            if let Some(conn) = conn {
                let msg = ToAgent::Shutdown(ShutdownAgent {
                    message: "Agent has been marked gone".into(),
                });
                out.push(Effect::Agent {
                    conn,
                    message: Box::new(msg),
                });
                out.push(Effect::CloseAgent { conn });
            }
        }
        for fw in self.frameworks.values_mut() {
            fw.executors.remove(aid);
            let ids: Vec<_> = fw
                .unreachable_tasks
                .iter()
                .filter(|(_, t)| &t.agent_id == aid)
                .map(|(k, _)| k.clone())
                .collect();
            for id in ids {
                if let Some(t) = fw.unreachable_tasks.remove(&id) {
                    fw.push_completed(t, self.cfg.max_completed_tasks_per_framework);
                }
            }
        }
        self.allocator.remove_agent(aid);
        if let Some(agent) = self.agents.remove(aid) {
            if let Some(s) = agent.session {
                self.sessions.remove(&s);
            }
        }
        self.unreachable.remove(aid);
        self.gone.insert(aid.clone());
        self.operator_event(|| operator_events::agent_removed(aid), out);
        Reply::Ok
    }

    /// Ends a task at the master (LOST on disconnect, GONE_BY_OPERATOR…): records the
    /// status, frees resources, moves it to completed and tells the framework.
    pub(crate) fn terminate_task(
        &mut self,
        now: f64,
        aid: &AgentId,
        fid: &strata_api::FrameworkId,
        mut status: strata_api::TaskStatus,
        out: &mut Vec<Effect>,
    ) {
        let limit = self.cfg.max_completed_tasks_per_framework;
        let tid = status.task_id.clone();
        if let Some(agent) = self.agents.get_mut(aid) {
            agent.tasks.remove(&(fid.clone(), tid.clone()));
        }
        let Some(fw) = self.frameworks.get_mut(fid) else {
            return;
        };
        let Some(mut t) = fw.tasks.remove(&tid) else {
            return;
        };
        status.agent_id = Some(aid.clone());
        status.executor_id = t.executor_id.clone();
        let old = t.apply(&status, None, now);
        self.metrics.transition(old, &t);
        let res = (!t.released).then(|| t.resources.clone());
        t.released = true;
        fw.push_completed(t, limit);
        status.state = fw.visible_state(status.state);
        if let Some(res) = res {
            self.allocator.recover(fid, aid, &res, None);
        }
        self.send_framework(fid, Event::Update(Update { status }), out);
    }
}

/// A duration in seconds as stout prints a `Duration`: in the largest unit it reaches,
/// or the next smaller one when that gives a whole number (`10mins`, `90secs`,
/// `1.5days`), with up to 15 significant digits.
fn mesos_duration(secs: f64) -> String {
    const UNITS: [(f64, &str); 5] = [
        (604_800.0, "weeks"),
        (86_400.0, "days"),
        (3_600.0, "hrs"),
        (60.0, "mins"),
        (1.0, "secs"),
    ];
    let whole = |v: f64| (v - v.round()).abs() < 1e-9;
    let Some(i) = UNITS.iter().position(|(size, _)| secs >= *size) else {
        return format!("{}ms", (secs * 1000.0).round());
    };
    let (mut size, mut name) = UNITS[i];
    if let Some(&(lower, lower_name)) = UNITS.get(i + 1) {
        if !whole(secs / size) && whole(secs / lower) {
            (size, name) = (lower, lower_name);
        }
    }
    let v = secs / size;
    let digits = v.abs().log10().floor().max(0.0) as usize + 1;
    let text = format!("{:.*}", 15usize.saturating_sub(digits), v);
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{name}")
}

impl Master {
    /// Mesos' registration checks that do not depend on the agent's id: an agent on a
    /// DOWN machine is told to shut down; one with a domain is ignored (it retries) while
    /// this master has none.
    fn refuse_by_machine_or_domain(
        &self,
        conn: ConnId,
        hello: &Hello,
        out: &mut Vec<Effect>,
    ) -> Option<Reply> {
        if self.on_down_machine(hello) {
            refuse(conn, "Machine is `DOWN`", out);
            return Some(Reply::Stream);
        }
        if hello.agent_info.domain.is_some() && self.cfg.domain.is_none() {
            return Some(Reply::Error(CallError::bad_request(
                "Agent is configured with a domain but the master has none; start the master with --domain (or the agent without it)",
            )));
        }
        None
    }
}

fn refuse(conn: ConnId, why: &str, out: &mut Vec<Effect>) {
    tracing::warn!(reason = why, "refusing agent");
    out.push(Effect::Agent {
        conn,
        message: Box::new(ToAgent::Shutdown(ShutdownAgent {
            message: why.to_string(),
        })),
    });
    out.push(Effect::CloseAgent { conn });
}
