//! Re-registration of agents: a known agent reconnecting (reconcile its tasks), an agent
//! returning from unreachability, and agents re-registering after a master restart
//! (tasks rebuilt from what the agent reports).

use crate::io::Effect;
use crate::master::{new_agent_state, new_framework_state, Master};
use crate::reservations::total_with;
use crate::state::{AgentPhase, TaskRecord};
use std::collections::{BTreeMap, BTreeSet};
use strata_api::agent_link::CheckpointResources;
use strata_api::agent_link::{Hello, KillTask, ReconcileTasks, ShutdownFramework, ToAgent};
use strata_api::scheduler::{Event, Update};
use strata_api::{AgentId, FrameworkId, Reason, Source, Task, TaskStatus};
use strata_registry::{AgentRecord, Op};
use strata_resources::operations::checkpointed;
use strata_resources::{Resources, WireFormat, WireResource};

fn ip_of(address: &str) -> &str {
    address
        .rsplit_once(':')
        .map(|(ip, _)| ip)
        .unwrap_or(address)
}

impl Master {
    /// Re-registration of an agent that names its id. Err = refuse with this message.
    pub(crate) fn reregister_agent(
        &mut self,
        now: f64,
        aid: &AgentId,
        mut hello: Hello,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        hello.agent_info.id = Some(aid.clone());
        let mut record = AgentRecord {
            info: hello.agent_info.clone(),
            address: hello.address.clone(),
            unreachable_since: None,
            gone: false,
            checkpointed_resources: hello.checkpointed_resources.clone(),
        };
        if let Some(agent) = self.agents.get(aid) {
            if agent.info.hostname != hello.agent_info.hostname
                || agent.ip() != ip_of(&hello.address)
            {
                return Err("Agent attempted to reregister with different IP / hostname".into());
            }
            let recovered = matches!(agent.phase, AgentPhase::Recovered { .. });
            let known = checkpointed(&agent.total).to_wire(WireFormat::PostRefinement);
            if !recovered {
                // A live agent gets the master's view (Mesos sends CheckpointResources).
                self.push_checkpointed_if_differs(aid, &hello, &known);
                record.checkpointed_resources = known.clone();
            }
            let agent = self.agents.get(aid).expect("checked above");
            if !agent.same_info(&hello.agent_info)
                || agent.address != hello.address
                || known != record.checkpointed_resources
            {
                out.push(Effect::Persist(vec![Op::AdmitAgent {
                    id: aid.to_string(),
                    record: record.clone(),
                }]));
            }
            let mut fresh = new_agent_state(
                aid.clone(),
                hello.agent_info.clone(),
                hello.address.clone(),
                agent.phase,
                now,
            );
            fresh.total = total_with(&fresh.total, &record.checkpointed_resources, aid);
            fresh.total =
                self.with_oversubscribed(&fresh.total, &hello.oversubscribed_resources, aid);
            let agent = self.agents.get_mut(aid).expect("checked above");
            let total_changed = agent.total != fresh.total;
            agent.info = fresh.info;
            agent.declared = std::mem::take(&mut fresh.declared);
            agent.address = fresh.address;
            agent.total = std::mem::take(&mut fresh.total);
            agent.attributes = fresh.attributes;
            agent.version = hello.version.clone();
            agent.reregistered_time = Some(now);
            if recovered {
                self.merge_reported(now, aid, &hello, None, out);
                self.readd_to_allocator(aid, out);
            } else {
                self.reconcile_known_agent(aid, &hello, total_changed, out);
            }
        } else {
            let message = if self.unreachable.remove(aid).is_some() {
                "Unreachable agent re-reregistered"
            } else {
                "Unknown agent reregistered"
            };
            out.push(Effect::Persist(vec![Op::AdmitAgent {
                id: aid.to_string(),
                record,
            }]));
            let mut agent = new_agent_state(
                aid.clone(),
                hello.agent_info.clone(),
                hello.address.clone(),
                AgentPhase::Connected,
                now,
            );
            agent.total = total_with(&agent.total, &hello.checkpointed_resources, aid);
            agent.total =
                self.with_oversubscribed(&agent.total, &hello.oversubscribed_resources, aid);
            agent.version = hello.version.clone();
            agent.reregistered_time = Some(now);
            self.agents.insert(aid.clone(), Box::new(agent));
            self.merge_reported(now, aid, &hello, Some(message), out);
            self.readd_to_allocator(aid, out);
        }
        self.metrics.slave_reregistrations += 1;
        tracing::info!(agent_id = %aid, tasks = hello.tasks.len(), "agent re-registered");
        Ok(())
    }

    /// Queues `CHECKPOINT_RESOURCES` (sent after REGISTERED) when a re-registering agent's
    /// reservations and volumes differ from the master's.
    fn push_checkpointed_if_differs(
        &mut self,
        aid: &AgentId,
        hello: &Hello,
        known: &[WireResource],
    ) {
        let reported = Resources::from_wire(&hello.checkpointed_resources).unwrap_or_default();
        let ours = Resources::from_wire(known).unwrap_or_default();
        if reported == ours {
            return;
        }
        tracing::info!(agent_id = %aid, reported = %reported, master = %ours, "sending the agent the master's reservations and volumes");
        if let Some(agent) = self.agents.get_mut(aid) {
            let message = CheckpointResources {
                resources: known.to_vec(),
            };
            agent
                .pending_messages
                .push(ToAgent::CheckpointResources(message));
        }
    }

    /// Adds the tasks and executors an agent reports (after a master restart or an
    /// unreachable period). With `notify`, frameworks get an update per live task.
    fn merge_reported(
        &mut self,
        now: f64,
        aid: &AgentId,
        hello: &Hello,
        notify: Option<&str>,
        out: &mut Vec<Effect>,
    ) {
        for info in &hello.frameworks {
            self.ensure_framework(now, info, out);
        }
        let mut shutdown = BTreeSet::new();
        for task in &hello.tasks {
            let fid = task.framework_id.clone();
            if self.completed_frameworks.iter().any(|f| f.id == fid) {
                shutdown.insert(fid);
                continue;
            }
            self.adopt_task(now, aid, task.clone(), notify, out);
        }
        for exec in &hello.executors {
            let Some(fid) = exec.framework_id.clone() else {
                continue;
            };
            if let Some(fw) = self.frameworks.get_mut(&fid) {
                fw.executors
                    .entry(aid.clone())
                    .or_default()
                    .insert(exec.executor_id.clone(), exec.clone());
            }
        }
        self.queue_shutdowns(aid, shutdown);
    }

    fn ensure_framework(
        &mut self,
        now: f64,
        info: &strata_api::FrameworkInfo,
        out: &mut Vec<Effect>,
    ) {
        let Some(fid) = info.id.clone() else { return };
        if self.frameworks.contains_key(&fid)
            || self.completed_frameworks.iter().any(|f| f.id == fid)
        {
            return;
        }
        out.push(Effect::Persist(vec![Op::PutFramework {
            id: fid.to_string(),
            info: info.clone(),
        }]));
        let mut fw = new_framework_state(fid.clone(), info.clone(), now, true);
        fw.failover_deadline =
            Some(now + info.failover_timeout.max(self.cfg.agent_reregister_timeout));
        self.allocator
            .add_framework(fid.clone(), &fw.roles, &[], false);
        self.frameworks.insert(fid, fw);
    }

    fn adopt_task(
        &mut self,
        now: f64,
        aid: &AgentId,
        task: Task,
        notify: Option<&str>,
        out: &mut Vec<Effect>,
    ) {
        let fid = task.framework_id.clone();
        let Some(fw) = self.frameworks.get_mut(&fid) else {
            return;
        };
        let tid = task.task_id.clone();
        fw.unreachable_tasks.remove(&tid);
        fw.completed_tasks.retain(|t| t.id != tid);
        let resources = Resources::from_wire(&task.resources).unwrap_or_default();
        let role = resources
            .iter()
            .find_map(|r| r.allocation_role.clone())
            .or_else(|| fw.roles.first().map(|r| r.as_str().into()))
            .unwrap_or_else(|| "*".into());
        let resources = resources.with_allocation_role(&role);
        let terminal = task.state.is_terminal();
        let mut update = None;
        if let (Some(message), false) = (notify, terminal) {
            let last = task.statuses.last();
            let mut s = TaskStatus::new(tid.clone(), task.state).with(
                Source::Master,
                Some(Reason::AgentReregistered),
                message,
            );
            s.agent_id = Some(aid.clone());
            s.executor_id = task.executor_id.clone();
            s.timestamp = Some(now);
            s.healthy = last.and_then(|l| l.healthy);
            s.container_status = last.and_then(|l| l.container_status.clone());
            s.state = fw.visible_state(s.state);
            update = Some(s);
        }
        let record = TaskRecord::new(task, resources, &role, terminal);
        fw.tasks.insert(tid.clone(), Box::new(record));
        if let Some(agent) = self.agents.get_mut(aid) {
            agent.tasks.insert((fid.clone(), tid));
        }
        if let Some(status) = update {
            self.send_framework(&fid, Event::Update(Update { status }), out);
        }
    }

    /// A known agent reconnected: ask it about tasks it did not report, kill tasks the
    /// master no longer knows, forget executors it no longer runs.
    fn reconcile_known_agent(
        &mut self,
        aid: &AgentId,
        hello: &Hello,
        total_changed: bool,
        out: &mut Vec<Effect>,
    ) {
        let reported: BTreeSet<_> = hello
            .tasks
            .iter()
            .map(|t| (t.framework_id.clone(), t.task_id.clone()))
            .collect();
        let known = self
            .agents
            .get(aid)
            .map(|a| a.tasks.clone())
            .unwrap_or_default();
        let mut missing: BTreeMap<FrameworkId, Vec<strata_api::TaskId>> = BTreeMap::new();
        for (fid, tid) in known.iter().filter(|k| !reported.contains(*k)) {
            missing.entry(fid.clone()).or_default().push(tid.clone());
        }
        let mut pending = Vec::new();
        for (fid, task_ids) in missing {
            if let Some(fw) = self.frameworks.get(&fid) {
                pending.push(ToAgent::ReconcileTasks(ReconcileTasks {
                    framework: fw.info_with_id(),
                    task_ids,
                }));
            }
        }
        let mut shutdown = BTreeSet::new();
        for t in hello.tasks.iter().filter(|t| !t.state.is_terminal()) {
            let key = (t.framework_id.clone(), t.task_id.clone());
            if known.contains(&key) {
                continue;
            }
            if self.frameworks.contains_key(&t.framework_id) {
                pending.push(ToAgent::KillTask(KillTask {
                    framework_id: key.0,
                    task_id: key.1,
                    kill_policy: None,
                }));
            } else {
                shutdown.insert(t.framework_id.clone());
            }
        }
        self.forget_unreported_executors(aid, hello);
        if let Some(agent) = self.agents.get_mut(aid) {
            agent.pending_messages.extend(pending);
        }
        self.queue_shutdowns(aid, shutdown);
        if total_changed {
            self.readd_to_allocator(aid, out);
        }
    }

    fn forget_unreported_executors(&mut self, aid: &AgentId, hello: &Hello) {
        let reported: BTreeSet<_> = hello
            .executors
            .iter()
            .filter_map(|e| e.framework_id.clone().map(|f| (f, e.executor_id.clone())))
            .collect();
        for fw in self.frameworks.values_mut() {
            let Some(execs) = fw.executors.get_mut(aid) else {
                continue;
            };
            let gone: Vec<_> = execs
                .keys()
                .filter(|e| !reported.contains(&(fw.id.clone(), (*e).clone())))
                .cloned()
                .collect();
            for eid in gone {
                if let Some(info) = execs.remove(&eid) {
                    let res = Resources::from_wire(&info.resources).unwrap_or_default();
                    self.allocator.recover(&fw.id, aid, &res, None);
                }
            }
        }
    }

    fn queue_shutdowns(&mut self, aid: &AgentId, frameworks: BTreeSet<FrameworkId>) {
        if let Some(agent) = self.agents.get_mut(aid) {
            for fid in frameworks {
                agent
                    .pending_messages
                    .push(ToAgent::ShutdownFramework(ShutdownFramework {
                        framework_id: fid,
                    }));
            }
        }
    }

    /// (Re)adds an agent to the allocator with what its tasks and executors use.
    fn readd_to_allocator(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        let offers: Vec<_> = self
            .agents
            .get(aid)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default();
        for o in offers {
            self.rescind_offer(&o, out);
        }
        let Some(agent) = self.agents.get(aid) else {
            return;
        };
        let mut used: BTreeMap<FrameworkId, Resources> = BTreeMap::new();
        for (fid, tid) in &agent.tasks {
            if let Some(t) = self
                .frameworks
                .get(fid)
                .and_then(|f| f.tasks.get(tid))
                .filter(|t| !t.released)
            {
                *used.entry(fid.clone()).or_default() += t.resources.clone();
            }
        }
        for fw in self.frameworks.values() {
            for info in fw.executors.get(aid).into_iter().flat_map(|m| m.values()) {
                *used.entry(fw.id.clone()).or_default() +=
                    Resources::from_wire(&info.resources).unwrap_or_default();
            }
        }
        let total = agent.total.clone();
        self.allocator
            .add_agent(aid.clone(), total, used.into_iter().collect());
        self.dirty_agents.insert(aid.clone());
    }

    /// After REGISTERED: queued messages, then kills asked for while disconnected.
    pub(crate) fn resend_pending(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        let Some(agent) = self.agents.get_mut(aid) else {
            return;
        };
        let messages = std::mem::take(&mut agent.pending_messages);
        let kills = std::mem::take(&mut agent.pending_kills);
        for m in messages {
            self.send_agent(aid, m, out);
        }
        for (fid, tid) in kills {
            let live = self
                .frameworks
                .get(&fid)
                .and_then(|f| f.tasks.get(&tid))
                .is_some_and(|t| !t.state().is_terminal());
            if live {
                self.send_agent(
                    aid,
                    ToAgent::KillTask(KillTask {
                        framework_id: fid,
                        task_id: tid,
                        kill_policy: None,
                    }),
                    out,
                );
            }
        }
    }
}
