//! Agent deactivation and draining (DEACTIVATE_AGENT, REACTIVATE_AGENT, DRAIN_AGENT): a
//! deactivated agent is not offered; a draining agent's tasks are killed (grace capped by
//! `max_grace_period`, updates tagged REASON_AGENT_DRAINING) and, once none remain, it
//! becomes DRAINED or, with `mark_gone`, gone.
//!
//! Mesos kills the tasks in the agent on a `DrainSlaveMessage`; Strata's master sends the
//! kills itself (and again when the agent re-registers) and tags the updates as they pass.

use crate::io::{CallError, Effect, Reply};
use crate::master::Master;
use strata_api::agent_link::{KillTask, StatusUpdate, ToAgent};
use strata_api::maintenance::{DrainConfig, DrainInfo, DrainState};
use strata_api::{AgentId, DurationInfo, KillPolicy, Reason, TaskState};
use strata_registry::{DeactivatedAgent, Op};

/// A deactivated agent, maybe draining.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DrainRecord {
    pub drain: Option<DrainInfo>,
    /// When it was deactivated (or, after a master restart, when the master started).
    pub since: f64,
}

/// The kill policy a draining agent uses for a task (Mesos' `calculateKillPolicy`):
/// `max_grace_period` caps the task's grace period; None = the task's own policy.
pub(crate) fn capped_kill_policy(
    task: Option<&KillPolicy>,
    max: Option<DurationInfo>,
) -> Option<KillPolicy> {
    let max = max?;
    let capped = Some(KillPolicy {
        grace_period: Some(max),
    });
    match task.and_then(|p| p.grace_period) {
        None => capped,
        Some(own) if max.nanoseconds < own.nanoseconds => capped,
        Some(_) => None,
    }
}

impl Master {
    /// Whether an operator deactivated (or is draining) this agent.
    pub(crate) fn is_deactivated(&self, aid: &AgentId) -> bool {
        self.maint.deactivated.contains_key(aid)
    }

    /// The agent's drain state and configuration, if it was drained.
    pub fn drain_info(&self, aid: &AgentId) -> Option<(DrainInfo, f64)> {
        let r = self.maint.deactivated.get(aid)?;
        r.drain.map(|d| (d, r.since))
    }

    fn known_agent(&self, aid: &AgentId) -> bool {
        self.agents.contains_key(aid) || self.unreachable.contains_key(aid)
    }

    /// DEACTIVATE_AGENT: no more offers for the agent (outstanding ones rescinded).
    pub(crate) fn deactivate_agent(
        &mut self,
        now: f64,
        aid: &AgentId,
        out: &mut Vec<Effect>,
    ) -> Reply {
        if !self.known_agent(aid) {
            return Reply::Error(CallError::bad_request("Unknown agent"));
        }
        let drain = self.maint.deactivated.get(aid).and_then(|r| r.drain);
        let since = self.maint.deactivated.get(aid).map_or(now, |r| r.since);
        self.record_deactivation(aid, DrainRecord { drain, since }, out);
        self.stop_offering(aid, out);
        Reply::Ok
    }

    /// REACTIVATE_AGENT: offers resume (a draining agent must finish first).
    pub(crate) fn reactivate_agent(&mut self, aid: &AgentId, out: &mut Vec<Effect>) -> Reply {
        let Some(record) = self.maint.deactivated.get(aid) else {
            return Reply::Error(CallError::bad_request("Agent is not deactivated"));
        };
        if record
            .drain
            .is_some_and(|d| d.state == DrainState::Draining)
        {
            return Reply::Error(CallError::bad_request(
                "Agent is still in the DRAINING state",
            ));
        }
        out.push(Effect::Persist(vec![Op::ReactivateAgent {
            id: aid.to_string(),
        }]));
        self.maint.deactivated.remove(aid);
        let Some(agent) = self.agents.get(aid) else {
            return Reply::Error(CallError::conflict(
                "Agent removed while processing the call",
            ));
        };
        if agent.connected() {
            self.allocator.set_agent_active(aid, true);
            self.dirty_agents.insert(aid.clone());
        }
        tracing::info!(agent_id = %aid, "agent reactivated");
        Reply::Ok
    }

    /// DRAIN_AGENT: deactivate, kill every task, then DRAINED (or gone).
    pub(crate) fn drain_agent(
        &mut self,
        now: f64,
        aid: &AgentId,
        config: DrainConfig,
        out: &mut Vec<Effect>,
    ) -> Reply {
        if let Err(e) = self.check_drain(aid) {
            return Reply::Error(CallError::bad_request(e));
        }
        let info = DrainInfo {
            state: DrainState::Draining,
            config,
        };
        let record = DrainRecord {
            drain: Some(info),
            since: now,
        };
        self.record_deactivation(aid, record, out);
        self.stop_offering(aid, out);
        tracing::info!(agent_id = %aid, mark_gone = config.mark_gone, "draining agent");
        self.send_drain_kills(aid, out);
        Reply::Ok
    }

    fn check_drain(&self, aid: &AgentId) -> Result<(), String> {
        if let Some(agent) = self.agents.get(aid) {
            let ip = agent.ip();
            let scheduled = self
                .maint
                .machines()
                .find(|(m, _)| m.matches(&agent.info.hostname, ip));
            if let Some((machine, _)) = scheduled {
                return Err(format!(
                    "Agent {aid} is part of a maintenance schedule under Machine {}",
                    machine.to_json_text()
                ));
            }
        }
        if !self.known_agent(aid) {
            return Err("Unknown agent".into());
        }
        Ok(())
    }

    fn record_deactivation(&mut self, aid: &AgentId, record: DrainRecord, out: &mut Vec<Effect>) {
        out.push(Effect::Persist(vec![Op::DeactivateAgent {
            id: aid.to_string(),
            record: DeactivatedAgent {
                drain: record.drain,
            },
        }]));
        self.maint.deactivated.insert(aid.clone(), record);
    }

    /// Mesos' `deactivate(slave)`: the allocator skips it, offers and inverse offers go.
    fn stop_offering(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        let Some(agent) = self.agents.get(aid) else {
            return;
        };
        let offers: Vec<_> = agent.offers.iter().cloned().collect();
        for offer in offers {
            self.rescind_offer(&offer, out);
        }
        self.rescind_inverse_offers_on(aid, out);
        self.allocator.set_agent_active(aid, false);
        self.dirty_agents.remove(aid);
    }

    /// Sends a kill for every live task of a draining agent (if it is connected).
    fn send_drain_kills(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        let Some((info, _)) = self.drain_info(aid) else {
            return;
        };
        if info.state != DrainState::Draining {
            return;
        }
        let Some(agent) = self.agents.get(aid) else {
            return;
        };
        let mut kills = Vec::new();
        for (fid, tid) in &agent.tasks {
            let Some(t) = self.frameworks.get(fid).and_then(|f| f.tasks.get(tid)) else {
                continue;
            };
            if t.state().is_terminal() {
                continue;
            }
            let policy = capped_kill_policy(t.kill_policy(), info.config.max_grace_period);
            kills.push(ToAgent::KillTask(KillTask {
                framework_id: fid.clone(),
                task_id: tid.clone(),
                kill_policy: policy,
            }));
        }
        for kill in kills {
            self.send_agent(aid, kill, out);
        }
    }

    /// After an agent (re-)registered: keep it inactive if deactivated, resume draining.
    pub(crate) fn resume_deactivation(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        if self.is_deactivated(aid) {
            self.allocator.set_agent_active(aid, false);
            self.dirty_agents.remove(aid);
            self.send_drain_kills(aid, out);
        }
    }

    /// Moves draining agents without tasks to DRAINED (or marks them gone).
    pub(crate) fn progress_drains(&mut self, now: f64, out: &mut Vec<Effect>) {
        let done: Vec<(AgentId, DrainInfo)> = self
            .maint
            .deactivated
            .iter()
            .filter_map(|(aid, r)| Some((aid, r.drain?)))
            .filter(|(_, d)| d.state == DrainState::Draining)
            .filter(|(aid, _)| {
                self.agents.get(*aid).is_some_and(|a| {
                    !matches!(a.phase, crate::state::AgentPhase::Recovered { .. })
                        && a.tasks.is_empty()
                })
            })
            .map(|(aid, d)| (aid.clone(), d))
            .collect();
        for (aid, info) in done {
            if info.config.mark_gone {
                tracing::info!(agent_id = %aid, "agent drained; marking it gone");
                self.maint.deactivated.remove(&aid);
                out.push(Effect::Persist(vec![Op::ReactivateAgent {
                    id: aid.to_string(),
                }]));
                self.mark_agent_gone(now, &aid, out);
                continue;
            }
            tracing::info!(agent_id = %aid, "agent drained");
            let drained = DrainInfo {
                state: DrainState::Drained,
                ..info
            };
            let since = self.maint.deactivated.get(&aid).map_or(now, |r| r.since);
            let record = DrainRecord {
                drain: Some(drained),
                since,
            };
            self.record_deactivation(&aid, record, out);
        }
    }

    /// Tags the KILLING/KILLED updates of a draining agent as Mesos' agent does:
    /// REASON_AGENT_DRAINING, and TASK_GONE_BY_OPERATOR for partition-aware frameworks
    /// when the agent will be marked gone.
    pub(crate) fn drain_rewrite(&self, aid: &AgentId, mut upd: StatusUpdate) -> StatusUpdate {
        let Some((info, _)) = self.drain_info(aid) else {
            return upd;
        };
        if !matches!(upd.status.state, TaskState::Killing | TaskState::Killed) {
            return upd;
        }
        upd.status.reason = Some(Reason::AgentDraining);
        let aware = self
            .frameworks
            .get(&upd.framework_id)
            .is_some_and(|f| f.partition_aware());
        if info.config.mark_gone && aware && upd.status.state == TaskState::Killed {
            upd.status.state = TaskState::GoneByOperator;
            if upd.latest_state == Some(TaskState::Killed) {
                upd.latest_state = Some(TaskState::GoneByOperator);
            }
        }
        upd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(ns: i64) -> KillPolicy {
        KillPolicy {
            grace_period: Some(DurationInfo { nanoseconds: ns }),
        }
    }

    fn check(task: Option<KillPolicy>, max: Option<i64>, expected: Option<i64>) {
        let got = capped_kill_policy(task.as_ref(), max.map(|n| DurationInfo { nanoseconds: n }));
        assert_eq!(got, expected.map(policy), "task {task:?} max {max:?}");
    }

    #[test]
    fn max_grace_period_caps_the_task_policy() {
        check(None, None, None);
        check(Some(policy(5)), None, None);
        check(None, Some(3), Some(3));
        check(Some(KillPolicy { grace_period: None }), Some(3), Some(3));
        check(Some(policy(5)), Some(3), Some(3));
        check(Some(policy(2)), Some(3), None);
    }
}
