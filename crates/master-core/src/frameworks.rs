//! Framework lifecycle: SUBSCRIBE (new, resubscribe, failover), stream loss and failover
//! timeout, TEARDOWN / removal, UPDATE_FRAMEWORK, SUPPRESS and REVIVE.

use crate::io::{CallError, ConnId, Effect, Reply};
use crate::master::{new_framework_state, ConnOwner, Master};
use crate::state::TaskRecord;
use crate::views::operator_events;
use std::collections::BTreeSet;
use strata_api::agent_link::{ShutdownFramework, ToAgent, UpdateFramework as AgentUpdateFramework};
use strata_api::scheduler::{ErrorEvent, Event, Subscribe, Subscribed, UpdateFramework};
use strata_api::{AgentId, FrameworkId, FrameworkInfo, Reason, Source, TaskState, TaskStatus};
use strata_registry::Op;

/// Mesos' FrameworkInfo validation (roles, failover timeout); capabilities are not checked.
pub(crate) fn validate_framework_info(info: &FrameworkInfo) -> Result<(), String> {
    let multi_role = info.has_capability("MULTI_ROLE");
    if multi_role && info.role.is_some() {
        return Err(
            "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable".into(),
        );
    }
    if !multi_role && !info.roles.is_empty() {
        return Err(
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
                .into(),
        );
    }
    let unique: BTreeSet<&String> = info.roles.iter().collect();
    if unique.len() != info.roles.len() {
        return Err(format!(
            "'FrameworkInfo.roles' contains duplicate items: {:?}",
            info.roles
        ));
    }
    for role in &info.roles {
        strata_resources::validate_role(role)
            .map_err(|e| format!("'FrameworkInfo.roles' contains invalid role: {e}"))?;
    }
    if let Some(role) = &info.role {
        strata_resources::validate_role(role)
            .map_err(|e| format!("'FrameworkInfo.role' is not a valid role: {e}"))?;
    }
    if !(info.failover_timeout.is_finite() && info.failover_timeout >= 0.0) {
        return Err(format!(
            "The framework failover_timeout ({}) is invalid",
            info.failover_timeout
        ));
    }
    if info.user.is_empty() {
        return Err("'FrameworkInfo.user' must not be empty".into());
    }
    Ok(())
}

impl Master {
    /// SUBSCRIBE on a fresh stream. Errors go on the stream as one ERROR event.
    pub(crate) fn subscribe(
        &mut self,
        now: f64,
        conn: ConnId,
        stream_id: String,
        sub: Subscribe,
        out: &mut Vec<Effect>,
    ) -> Reply {
        let info = sub.framework_info;
        if let Err(message) = validate_framework_info(&info) {
            stream_error(conn, message, out);
            return Reply::Stream;
        }
        let fid = match info.id.clone().filter(|id| !id.as_str().is_empty()) {
            Some(fid) => {
                if self.completed_frameworks.iter().any(|f| f.id == fid) {
                    stream_error(conn, "Framework has been removed".into(), out);
                    return Reply::Stream;
                }
                if let Err(message) = self.resubscribe(now, &fid, info, out) {
                    stream_error(conn, message, out);
                    return Reply::Stream;
                }
                fid
            }
            None => self.add_framework(now, info, out),
        };
        self.attach_stream(now, &fid, conn, stream_id, sub.suppressed_roles, out);
        Reply::Stream
    }

    fn add_framework(
        &mut self,
        now: f64,
        mut info: FrameworkInfo,
        out: &mut Vec<Effect>,
    ) -> FrameworkId {
        let fid = self.next_framework_id();
        info.id = Some(fid.clone());
        out.push(Effect::Persist(vec![Op::PutFramework {
            id: fid.to_string(),
            info: info.clone(),
        }]));
        let fw = new_framework_state(fid.clone(), info, now, false);
        self.frameworks.insert(fid.clone(), fw);
        self.metrics.messages_register_framework += 1;
        fid
    }

    /// Re-subscription of a known id (failover), or of an id this master never saw
    /// (accepted and rebuilt, as Mesos does after a master failover).
    fn resubscribe(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        mut info: FrameworkInfo,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        self.metrics.messages_reregister_framework += 1;
        let Some(fw) = self.frameworks.get(fid) else {
            out.push(Effect::Persist(vec![Op::PutFramework {
                id: fid.to_string(),
                info: info.clone(),
            }]));
            let fw = new_framework_state(fid.clone(), info, now, false);
            self.frameworks.insert(fid.clone(), fw);
            return Ok(());
        };
        if fw.info.principal.is_some() && fw.info.principal != info.principal && !fw.recovered {
            return Err("Changing framework's principal is not allowed.".into());
        }
        // user and checkpoint silently keep their old values on resubscription.
        info.user = fw.info.user.clone();
        info.checkpoint = fw.info.checkpoint;
        if let Some(old) = fw.conn {
            out.push(Effect::Framework {
                conn: old,
                event: Box::new(Event::Error(ErrorEvent {
                    message: "Framework failed over".into(),
                })),
            });
            out.push(Effect::CloseFramework { conn: old });
            self.conns.remove(&old);
        }
        // Outstanding offers are discarded without RESCIND.
        let offers: Vec<_> = fw.offers.iter().cloned().collect();
        let changed = fw.info != info;
        for offer in offers {
            self.remove_offer(&offer, None);
        }
        let fw = self.frameworks.get_mut(fid).expect("checked above");
        fw.info = info.clone();
        fw.roles = info.effective_roles();
        fw.reregistered_time = Some(now);
        fw.recovered = false;
        if changed {
            out.push(Effect::Persist(vec![Op::PutFramework {
                id: fid.to_string(),
                info,
            }]));
        }
        Ok(())
    }

    fn attach_stream(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        conn: ConnId,
        stream_id: String,
        suppressed: Vec<String>,
        out: &mut Vec<Effect>,
    ) {
        let heartbeat = self.cfg.heartbeat_interval;
        let master_info = self.master_info();
        let Some(fw) = self.frameworks.get_mut(fid) else {
            return;
        };
        fw.conn = Some(conn);
        fw.stream_id = Some(stream_id);
        fw.failover_deadline = None;
        fw.unregistered_time = None;
        fw.suppressed_roles = suppressed.iter().cloned().collect();
        let roles = fw.roles.clone();
        let info = fw.info_with_id();
        self.conns.insert(conn, ConnOwner::Framework(fid.clone()));
        self.allocator
            .add_framework(fid.clone(), &roles, &suppressed, true);
        self.sync_revocable_capability(fid, out);
        self.sync_shared_capability(fid, out);
        self.sync_priority(fid);
        out.push(Effect::Framework {
            conn,
            event: Box::new(Event::Subscribed(Subscribed {
                framework_id: fid.clone(),
                heartbeat_interval_seconds: Some(heartbeat),
                master_info: Some(master_info),
            })),
        });
        out.push(Effect::Framework {
            conn,
            event: Box::new(Event::Heartbeat),
        });
        self.resend_operation_statuses(fid, out);
        self.broadcast_framework_info(&info, out);
        let fw = self.frameworks.get(fid).expect("attached above");
        let reregistered = fw.reregistered_time.is_some();
        self.operator_event(|| operator_events::framework(fw, reregistered, now), out);
        self.mark_all_agents_dirty();
    }

    /// Agents running this framework's executors learn its new FrameworkInfo.
    fn broadcast_framework_info(&self, info: &FrameworkInfo, out: &mut Vec<Effect>) {
        let Some(fid) = info.id.as_ref() else { return };
        let Some(fw) = self.frameworks.get(fid) else {
            return;
        };
        let agents: BTreeSet<_> = fw.tasks.values().map(|t| t.agent_id.clone()).collect();
        for aid in agents {
            let msg = ToAgent::UpdateFramework(AgentUpdateFramework {
                framework_info: info.clone(),
            });
            self.send_agent(&aid, msg, out);
        }
    }

    /// The scheduler's stream ended: deactivate, drop offers, start the failover timer.
    pub(crate) fn framework_stream_closed(
        &mut self,
        now: f64,
        conn: ConnId,
        out: &mut Vec<Effect>,
    ) {
        let Some(ConnOwner::Framework(fid)) = self.conns.remove(&conn) else {
            return;
        };
        let Some(fw) = self.frameworks.get_mut(&fid) else {
            return;
        };
        if fw.conn != Some(conn) {
            return; // an older stream of a framework that already failed over
        }
        fw.conn = None;
        fw.stream_id = None;
        fw.unregistered_time = Some(now);
        fw.failover_deadline = Some(now + fw.info.failover_timeout);
        let offers: Vec<_> = fw.offers.iter().cloned().collect();
        let timeout = fw.info.failover_timeout;
        self.metrics.messages_deactivate_framework += 1;
        self.allocator.set_framework_active(&fid, false);
        for offer in offers {
            self.remove_offer(&offer, None);
        }
        tracing::info!(framework_id = %fid, failover_timeout = timeout, "framework disconnected");
        if timeout <= 0.0 {
            self.remove_framework(now, &fid, out);
        }
    }

    /// Removes frameworks whose failover timeout ran out.
    pub(crate) fn expire_failovers(&mut self, now: f64, out: &mut Vec<Effect>) {
        let expired: Vec<FrameworkId> = self
            .frameworks
            .values()
            .filter(|f| !f.connected() && f.failover_deadline.is_some_and(|d| d <= now))
            .map(|f| f.id.clone())
            .collect();
        for fid in expired {
            tracing::info!(framework_id = %fid, "framework failover timeout expired");
            self.remove_framework(now, &fid, out);
        }
    }

    /// TEARDOWN, failover timeout or operator removal: kill everything, forget the id.
    pub(crate) fn remove_framework(&mut self, now: f64, fid: &FrameworkId, out: &mut Vec<Effect>) {
        let Some(mut fw) = self.frameworks.remove(fid) else {
            return;
        };
        self.operations.retain(|(f, _), _| f != fid);
        // Every registered agent is told, as Mesos does: one may hold tasks the master
        // has not heard of yet (a launch in flight).
        let agents: Vec<_> = self.agents.keys().cloned().collect();
        for aid in &agents {
            let msg = ToAgent::ShutdownFramework(ShutdownFramework {
                framework_id: fid.clone(),
            });
            self.send_agent(aid, msg, out);
            if let Some(agent) = self.agents.get_mut(aid) {
                let had = agent.tasks.iter().any(|(f, _)| f == fid);
                agent.tasks.retain(|(f, _)| f != fid);
                agent.pending_kills.retain(|(f, _)| f != fid);
                if had {
                    self.dirty_agents.insert(aid.clone());
                }
            }
        }
        for offer in fw.offers.clone() {
            self.remove_offer(&offer, None);
        }
        let message = format!("Framework {fid} removed");
        let live = std::mem::take(&mut fw.tasks)
            .into_values()
            .map(|t| (t, false));
        let unreachable = std::mem::take(&mut fw.unreachable_tasks)
            .into_values()
            .map(|t| (t, true));
        let tasks: Vec<(Box<TaskRecord>, bool)> = live.chain(unreachable).collect();
        for (mut t, unreachable) in tasks {
            // Unreachable tasks become TASK_KILLED even when recorded as TASK_LOST.
            if unreachable || !t.state().is_terminal() {
                let status = TaskStatus::new(t.id.clone(), TaskState::Killed).with(
                    Source::Master,
                    Some(Reason::FrameworkRemoved),
                    message.clone(),
                );
                let old = t.apply(&status, None, now);
                t.set_state(TaskState::Killed);
                self.metrics.transition(old, &t);
            }
            fw.push_completed(t, self.cfg.max_completed_tasks_per_framework);
        }
        self.allocator.remove_framework(fid);
        if let Some(conn) = fw.conn.take() {
            out.push(Effect::CloseFramework { conn });
            self.conns.remove(&conn);
        }
        fw.unregistered_time = Some(now);
        out.push(Effect::Persist(vec![Op::RemoveFramework {
            id: fid.to_string(),
        }]));
        let info = fw.info_with_id();
        self.operator_event(|| operator_events::framework_removed(&info), out);
        self.completed_frameworks.push_back(fw);
        while self.completed_frameworks.len() > self.cfg.max_completed_frameworks {
            self.completed_frameworks.pop_front();
        }
        self.metrics.messages_unregister_framework += 1;
    }

    /// UPDATE_FRAMEWORK: all or nothing; 200 once applied.
    pub(crate) fn update_framework(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        u: UpdateFramework,
        out: &mut Vec<Effect>,
    ) -> Reply {
        let info = u.framework_info;
        if info.id.as_ref() != Some(fid) {
            return Reply::Error(CallError::bad_request(
                "'framework_info.id' must equal the call's 'framework_id'",
            ));
        }
        if let Err(e) = validate_framework_info(&info) {
            return Reply::Error(CallError::bad_request(e));
        }
        let Some(fw) = self.frameworks.get(fid) else {
            return Reply::Error(CallError::conflict("Framework has been removed"));
        };
        if fw.info.user != info.user {
            return Reply::Error(CallError::bad_request(format!(
                "Updating 'FrameworkInfo.user' is unsupported; attempted to update from '{}' to '{}'",
                fw.info.user, info.user
            )));
        }
        if fw.info.checkpoint != info.checkpoint {
            return Reply::Error(CallError::bad_request(
                "Updating 'FrameworkInfo.checkpoint' is unsupported",
            ));
        }
        if fw.info.principal != info.principal {
            return Reply::Error(CallError::bad_request(
                "Changing framework's principal is not allowed.",
            ));
        }
        let roles = info.effective_roles();
        let dropped: Vec<_> = fw
            .offers
            .iter()
            .filter(|o| {
                self.offers
                    .get(*o)
                    .is_some_and(|r| !roles.contains(&r.role))
            })
            .cloned()
            .collect();
        for offer in dropped {
            self.rescind_offer(&offer, out);
        }
        let fw = self.frameworks.get_mut(fid).expect("checked above");
        fw.info = info.clone();
        fw.roles = roles.clone();
        fw.suppressed_roles = u.suppressed_roles.iter().cloned().collect();
        self.allocator
            .add_framework(fid.clone(), &roles, &u.suppressed_roles, true);
        self.sync_revocable_capability(fid, out);
        self.sync_shared_capability(fid, out);
        self.sync_priority(fid);
        out.push(Effect::Persist(vec![Op::PutFramework {
            id: fid.to_string(),
            info: info.clone(),
        }]));
        self.broadcast_framework_info(&info, out);
        let fw = self.frameworks.get(fid).expect("checked above");
        self.operator_event(|| operator_events::framework(fw, true, now), out);
        self.mark_all_agents_dirty();
        Reply::Ok
    }

    pub(crate) fn suppress(&mut self, fid: &FrameworkId, roles: &[String]) {
        self.metrics.messages_suppress_offers += 1;
        self.allocator.suppress(fid, roles);
        if let Some(fw) = self.frameworks.get_mut(fid) {
            let roles = if roles.is_empty() {
                fw.roles.clone()
            } else {
                roles.to_vec()
            };
            fw.suppressed_roles.extend(roles);
        }
    }

    /// REQUEST: Mesos passes it to an allocator that ignores it; Strata keeps the
    /// latest one as the framework's stated demand, which `strata why` measures against
    /// the free resources of the agents each entry may use (its `agent_id`, and Strata's
    /// Marathon-style `constraints`). A REQUEST with an entry that does not parse is
    /// ignored as a whole.
    pub(crate) fn request(&mut self, fid: &FrameworkId, payload: &serde_json::Value) {
        let empty = Vec::new();
        let requests = match payload.get("requests") {
            None | Some(serde_json::Value::Null) => &empty,
            Some(serde_json::Value::Array(list)) => list,
            Some(_) => {
                tracing::warn!(framework_id = %fid, "ignoring a REQUEST whose 'requests' is not a list");
                return;
            }
        };
        let mut demand = Vec::new();
        let mut placements = Vec::new();
        for r in requests {
            let parsed = r
                .get("resources")
                .cloned()
                .and_then(|v| serde_json::from_value::<Vec<strata_resources::WireResource>>(v).ok())
                .and_then(|items| strata_resources::Resources::from_wire(&items).ok());
            let placement = demand_placement(r);
            match (parsed, placement) {
                (Some(res), Ok(p)) => {
                    demand.push(res);
                    placements.push(p);
                }
                // A request we cannot read must not read as "no pending work".
                (None, _) => {
                    tracing::warn!(framework_id = %fid, "ignoring a REQUEST with unreadable resources");
                    return;
                }
                (_, Err(e)) => {
                    tracing::warn!(framework_id = %fid, "ignoring a REQUEST with an invalid placement: {e}");
                    return;
                }
            }
        }
        self.allocator.set_demand(fid, demand);
        if let Some(fw) = self.frameworks.get_mut(fid) {
            fw.demand_placements = placements;
        }
    }

    pub(crate) fn revive(&mut self, fid: &FrameworkId, roles: &[String]) {
        self.metrics.messages_revive_offers += 1;
        self.allocator.revive(fid, roles);
        if let Some(fw) = self.frameworks.get_mut(fid) {
            if roles.is_empty() {
                fw.suppressed_roles.clear();
            } else {
                fw.suppressed_roles.retain(|r| !roles.contains(r));
            }
        }
        self.mark_all_agents_dirty();
    }

    pub(crate) fn mark_all_agents_dirty(&mut self) {
        let ids: Vec<_> = self.agents.keys().cloned().collect();
        self.dirty_agents.extend(ids);
    }
}

/// A REQUEST entry's `agent_id` and `constraints` (`None` when it has neither).
fn demand_placement(
    entry: &serde_json::Value,
) -> Result<Option<crate::state::DemandPlacement>, String> {
    let agent_id = match entry.get("agent_id").or_else(|| entry.get("slave_id")) {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<AgentId>(v.clone()).map_err(|e| format!("agent_id: {e}"))?,
        ),
    };
    let constraints = match entry.get("constraints") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .map(strata_resources::constraints::Constraint::parse)
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("constraints must be a list, got {other}")),
    };
    Ok(
        (agent_id.is_some() || !constraints.is_empty()).then_some(crate::state::DemandPlacement {
            agent_id,
            constraints,
        }),
    )
}

fn stream_error(conn: ConnId, message: String, out: &mut Vec<Effect>) {
    out.push(Effect::Framework {
        conn,
        event: Box::new(Event::Error(ErrorEvent { message })),
    });
    out.push(Effect::CloseFramework { conn });
}
