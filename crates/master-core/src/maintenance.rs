//! Maintenance (Mesos' maintenance primitives): the schedule, machine modes (UP →
//! DRAINING → DOWN → UP) with Mesos' validation messages, and what each transition does
//! to agents and offers. Inverse offers live in `inverse_offers.rs`, agent draining and
//! deactivation in `drain.rs`.

use crate::drain::DrainRecord;
use crate::inverse_offers::InverseOffers;
use crate::io::{CallError, Effect, OperatorInput, Reply};
use crate::master::Master;
use crate::tasks::master_status;
use crate::views::operator_events;
use std::collections::{BTreeMap, BTreeSet};
use strata_api::agent_link::{Hello, ShutdownAgent, ToAgent};
use strata_api::maintenance::{MachineId, Schedule, Unavailability};
use strata_api::{AgentId, Reason, TaskState};
use strata_registry::{MaintenanceRecord, Op, RegistryState};

/// What Mesos tells an agent (and its tasks) when its machine goes DOWN.
const MACHINE_DOWN: &str = "Operator initiated 'Machine DOWN'";

/// Operator-driven state: the schedule, the DOWN machines, inverse offers and the
/// deactivated (or draining) agents.
#[derive(Debug, Default)]
pub(crate) struct MaintenanceState {
    pub schedule: Schedule,
    pub down: Vec<MachineId>,
    pub inverse: InverseOffers,
    pub deactivated: BTreeMap<AgentId, DrainRecord>,
}

impl MaintenanceState {
    /// The durable part, as the registry holds it.
    pub(crate) fn from_registry(reg: &RegistryState, now: f64) -> Self {
        let deactivated = reg
            .deactivated_agents
            .iter()
            .filter(|(id, _)| reg.agents.get(*id).is_some_and(|a| !a.gone))
            .map(|(id, r)| {
                let record = DrainRecord {
                    drain: r.drain,
                    since: now,
                };
                (AgentId::new(id.as_str()), record)
            })
            .collect();
        Self {
            schedule: reg.maintenance.schedule.clone(),
            down: reg.maintenance.down.clone(),
            inverse: InverseOffers::default(),
            deactivated,
        }
    }

    fn record(&self) -> MaintenanceRecord {
        MaintenanceRecord {
            schedule: self.schedule.clone(),
            down: self.down.clone(),
        }
    }

    /// Whether this exact machine is DOWN.
    pub(crate) fn is_down(&self, id: &MachineId) -> bool {
        self.down.iter().any(|d| d.key() == id.key())
    }

    /// Whether this exact machine is in the schedule.
    fn is_scheduled(&self, id: &MachineId) -> bool {
        self.machines().any(|(m, _)| m.key() == id.key())
    }

    /// Every scheduled machine with its window's unavailability, in schedule order.
    pub(crate) fn machines(&self) -> impl Iterator<Item = (&MachineId, Unavailability)> {
        self.schedule
            .windows
            .iter()
            .flat_map(|w| w.machine_ids.iter().map(|m| (m, w.unavailability)))
    }

    /// The unavailability an agent on `hostname`/`ip` is under: that of the first
    /// DRAINING machine it runs on.
    pub(crate) fn unavailability_for(&self, hostname: &str, ip: &str) -> Option<Unavailability> {
        self.machines()
            .find(|(m, _)| m.matches(hostname, ip) && !self.is_down(m))
            .map(|(_, u)| u)
    }

    /// Whether an agent on `hostname`/`ip` runs on a DOWN machine.
    pub(crate) fn agent_down(&self, hostname: &str, ip: &str) -> bool {
        self.down.iter().any(|m| m.matches(hostname, ip))
    }
}

/// Mesos' check of one machine id.
fn validate_machine(id: &MachineId) -> Result<(), String> {
    let (hostname, ip) = id.key();
    if hostname.is_empty() && ip.is_empty() {
        return Err("Both 'hostname' and 'ip' for a machine are empty".into());
    }
    if !ip.is_empty() && ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!("Failed to parse IP address '{ip}'"));
    }
    Ok(())
}

/// Mesos' checks of a schedule: non-empty windows, non-negative durations, valid and
/// unique machines, and no DOWN machine left out.
pub(crate) fn validate_schedule(schedule: &Schedule, down: &[MachineId]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for window in &schedule.windows {
        if window.machine_ids.is_empty() {
            return Err("List of machines in the maintenance window is empty".into());
        }
        if window
            .unavailability
            .duration
            .is_some_and(|d| d.nanoseconds < 0)
        {
            return Err("Unavailability 'duration' is negative".into());
        }
        for id in &window.machine_ids {
            validate_machine(id)?;
            if !seen.insert(id.key()) {
                return Err(format!(
                    "Machine '{}' appears more than once in the schedule",
                    id.to_json_text()
                ));
            }
        }
    }
    if let Some(id) = down.iter().find(|d| !seen.contains(&d.key())) {
        return Err(format!(
            "Machine '{}' is deactivated and cannot be removed from the schedule",
            id.to_json_text()
        ));
    }
    Ok(())
}

/// Mesos' checks of a machine list (START/STOP_MAINTENANCE): non-empty, valid, unique.
pub(crate) fn validate_machines(ids: &[MachineId]) -> Result<(), String> {
    if ids.is_empty() {
        return Err("List of machines is empty".into());
    }
    let mut seen = BTreeSet::new();
    for id in ids {
        validate_machine(id)?;
        if !seen.insert(id.key()) {
            return Err(format!(
                "Machine '{}' appears more than once in the schedule",
                id.to_json_text()
            ));
        }
    }
    Ok(())
}

impl Master {
    /// The maintenance and agent-draining operator calls.
    pub(crate) fn maintenance_call(
        &mut self,
        now: f64,
        op: OperatorInput,
        out: &mut Vec<Effect>,
    ) -> Reply {
        match op {
            OperatorInput::UpdateMaintenanceSchedule { schedule } => {
                self.update_schedule(schedule, out)
            }
            OperatorInput::StartMaintenance { machines } => {
                self.start_maintenance(now, machines, out)
            }
            OperatorInput::StopMaintenance { machines } => self.stop_maintenance(machines, out),
            OperatorInput::DrainAgent { agent_id, config } => {
                self.drain_agent(now, &agent_id, config, out)
            }
            OperatorInput::DeactivateAgent { agent_id } => {
                self.deactivate_agent(now, &agent_id, out)
            }
            OperatorInput::ReactivateAgent { agent_id } => self.reactivate_agent(&agent_id, out),
            other => unreachable!("not a maintenance call: {other:?}"),
        }
    }

    /// UPDATE_MAINTENANCE_SCHEDULE: replaces the schedule. Machines added become DRAINING,
    /// machines left out become UP; agents whose unavailability changed have their offers
    /// and inverse offers rescinded so frameworks hear of it at once.
    pub(crate) fn update_schedule(&mut self, schedule: Schedule, out: &mut Vec<Effect>) -> Reply {
        if let Err(e) = validate_schedule(&schedule, &self.maint.down) {
            return Reply::Error(CallError::bad_request(e));
        }
        let before = self.agent_unavailabilities();
        self.maint.schedule = schedule;
        out.push(Effect::Persist(vec![Op::SetMaintenance {
            record: self.maint.record(),
        }]));
        let after = self.agent_unavailabilities();
        for (aid, u) in &after {
            if before.get(aid) != Some(u) {
                self.unavailability_changed(aid, out);
            }
        }
        tracing::info!(
            windows = self.maint.schedule.windows.len(),
            "maintenance schedule updated"
        );
        Reply::Ok
    }

    fn agent_unavailabilities(&self) -> BTreeMap<AgentId, Option<Unavailability>> {
        self.agents
            .values()
            .map(|a| {
                let u = self.maint.unavailability_for(&a.info.hostname, a.ip());
                (a.id.clone(), u)
            })
            .collect()
    }

    /// Offers are re-sent with the new unavailability; inverse offers start over.
    fn unavailability_changed(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        let offers: Vec<_> = self
            .agents
            .get(aid)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default();
        for offer in offers {
            self.rescind_offer(&offer, out);
        }
        self.rescind_inverse_offers_on(aid, out);
        self.maint.inverse.forget_agent(aid);
        self.dirty_agents.insert(aid.clone());
    }

    /// START_MAINTENANCE: DRAINING machines go DOWN; their agents are shut down and
    /// removed (tasks LOST, or GONE_BY_OPERATOR for partition-aware frameworks).
    pub(crate) fn start_maintenance(
        &mut self,
        now: f64,
        machines: Vec<MachineId>,
        out: &mut Vec<Effect>,
    ) -> Reply {
        if let Err(e) = self.check_start(&machines) {
            return Reply::Error(CallError::bad_request(e));
        }
        self.maint.down.extend(machines.iter().cloned());
        out.push(Effect::Persist(vec![Op::SetMaintenance {
            record: self.maint.record(),
        }]));
        let doomed: Vec<AgentId> = self
            .agents
            .values()
            .filter(|a| machines.iter().any(|m| m.matches(&a.info.hostname, a.ip())))
            .map(|a| a.id.clone())
            .collect();
        for aid in doomed {
            self.take_agent_down(now, &aid, out);
        }
        Reply::Ok
    }

    fn check_start(&self, machines: &[MachineId]) -> Result<(), String> {
        validate_machines(machines)?;
        for id in machines {
            if !self.maint.is_scheduled(id) {
                return Err(not_scheduled(id));
            }
            if self.maint.is_down(id) {
                return Err(format!(
                    "Machine '{}' is not in DRAINING mode and cannot be brought down",
                    id.to_json_text()
                ));
            }
        }
        Ok(())
    }

    /// STOP_MAINTENANCE: DOWN machines go UP and leave the schedule.
    pub(crate) fn stop_maintenance(
        &mut self,
        machines: Vec<MachineId>,
        out: &mut Vec<Effect>,
    ) -> Reply {
        if let Err(e) = self.check_stop(&machines) {
            return Reply::Error(CallError::bad_request(e));
        }
        let keys: BTreeSet<_> = machines.iter().map(MachineId::key).collect();
        self.maint.down.retain(|m| !keys.contains(&m.key()));
        for window in &mut self.maint.schedule.windows {
            window.machine_ids.retain(|m| !keys.contains(&m.key()));
        }
        self.maint
            .schedule
            .windows
            .retain(|w| !w.machine_ids.is_empty());
        out.push(Effect::Persist(vec![Op::SetMaintenance {
            record: self.maint.record(),
        }]));
        Reply::Ok
    }

    fn check_stop(&self, machines: &[MachineId]) -> Result<(), String> {
        validate_machines(machines)?;
        for id in machines {
            if !self.maint.is_scheduled(id) {
                return Err(not_scheduled(id));
            }
            if !self.maint.is_down(id) {
                return Err(format!(
                    "Machine '{}' is not in DOWN mode and cannot be brought up",
                    id.to_json_text()
                ));
            }
        }
        Ok(())
    }

    /// Whether a registering agent runs on a DOWN machine (Mesos refuses it).
    pub(crate) fn on_down_machine(&self, hello: &Hello) -> bool {
        let ip = hello
            .address
            .rsplit_once(':')
            .map(|(ip, _)| ip)
            .unwrap_or(&hello.address);
        self.maint.agent_down(&hello.agent_info.hostname, ip)
    }

    /// The unavailability offers of this agent carry.
    pub(crate) fn agent_unavailability(&self, aid: &AgentId) -> Option<Unavailability> {
        let a = self.agents.get(aid)?;
        self.maint.unavailability_for(&a.info.hostname, a.ip())
    }

    /// Removes an agent whose machine went DOWN, as Mesos' `removeSlave`: removed from
    /// the registry (it may register again once the machine is UP), told to shut down,
    /// its tasks ended, FAILURE to every framework.
    fn take_agent_down(&mut self, now: f64, aid: &AgentId, out: &mut Vec<Effect>) {
        let Some(agent) = self.agents.get(aid) else {
            return;
        };
        tracing::warn!(agent_id = %aid, "machine DOWN: removing agent");
        let offers: Vec<_> = agent.offers.iter().cloned().collect();
        let tasks: Vec<_> = agent.tasks.iter().cloned().collect();
        let (conn, session) = (agent.conn, agent.session.clone());
        out.push(Effect::Persist(vec![Op::RemoveAgent {
            id: aid.to_string(),
        }]));
        for offer in offers {
            self.rescind_offer(&offer, out);
        }
        self.rescind_inverse_offers_on(aid, out);
        for (fid, tid) in tasks {
            let aware = self
                .frameworks
                .get(&fid)
                .is_some_and(|f| f.partition_aware());
            let (state, reason) = if aware {
                (TaskState::GoneByOperator, Reason::AgentRemovedByOperator)
            } else {
                (TaskState::Lost, Reason::AgentRemoved)
            };
            let status = master_status(tid, state, reason, MACHINE_DOWN, now);
            self.terminate_task(now, aid, &fid, status, out);
        }
        if let Some(conn) = conn {
            let msg = ToAgent::Shutdown(ShutdownAgent {
                message: MACHINE_DOWN.into(),
            });
            out.push(Effect::Agent {
                conn,
                message: Box::new(msg),
            });
            out.push(Effect::CloseAgent { conn });
            self.conns.remove(&conn);
        }
        if let Some(s) = session {
            self.sessions.remove(&s);
        }
        self.forget_removed_agent(aid, out);
    }

    fn forget_removed_agent(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        for fw in self.frameworks.values_mut() {
            fw.executors.remove(aid);
        }
        self.allocator.remove_agent(aid);
        self.agents.remove(aid);
        self.dirty_agents.remove(aid);
        self.maint.inverse.forget_agent(aid);
        self.metrics.slave_removals += 1;
        self.agent_lost_to_frameworks(aid, out);
        self.operator_event(|| operator_events::agent_removed(aid), out);
    }
}

fn not_scheduled(id: &MachineId) -> String {
    format!(
        "Machine '{}' is not part of a maintenance schedule",
        id.to_json_text()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(text: &str) -> MachineId {
        serde_json::from_str(text).unwrap()
    }

    fn schedule(text: &str) -> Schedule {
        serde_json::from_str(text).unwrap()
    }

    fn check(s: &str, down: &[&str], expected: Result<(), &str>) {
        let down: Vec<_> = down.iter().map(|d| machine(d)).collect();
        let got = validate_schedule(&schedule(s), &down);
        assert_eq!(got, expected.map_err(str::to_string), "schedule {s}");
    }

    const U: &str = r#""unavailability":{"start":{"nanoseconds":0}}"#;

    #[test]
    fn schedules_are_validated_like_mesos() {
        check(r#"{}"#, &[], Ok(()));
        check(
            &format!(r#"{{"windows":[{{"machine_ids":[],{U}}}]}}"#),
            &[],
            Err("List of machines in the maintenance window is empty"),
        );
        check(
            r#"{"windows":[{"machine_ids":[{"hostname":"a"}],"unavailability":{"start":{"nanoseconds":0},"duration":{"nanoseconds":-1}}}]}"#,
            &[],
            Err("Unavailability 'duration' is negative"),
        );
        check(
            &format!(r#"{{"windows":[{{"machine_ids":[{{}}],{U}}}]}}"#),
            &[],
            Err("Both 'hostname' and 'ip' for a machine are empty"),
        );
        check(
            &format!(r#"{{"windows":[{{"machine_ids":[{{"ip":"1.2.3"}}],{U}}}]}}"#),
            &[],
            Err("Failed to parse IP address '1.2.3'"),
        );
        check(
            &format!(
                r#"{{"windows":[{{"machine_ids":[{{"hostname":"A"}}],{U}}},{{"machine_ids":[{{"hostname":"a"}}],{U}}}]}}"#
            ),
            &[],
            Err(r#"Machine '{"hostname":"a"}' appears more than once in the schedule"#),
        );
        check(
            &format!(r#"{{"windows":[{{"machine_ids":[{{"hostname":"a"}}],{U}}}]}}"#),
            &[r#"{"hostname":"b"}"#],
            Err(
                r#"Machine '{"hostname":"b"}' is deactivated and cannot be removed from the schedule"#,
            ),
        );
    }

    #[test]
    fn machine_lists_are_validated_like_mesos() {
        assert_eq!(
            validate_machines(&[]),
            Err("List of machines is empty".to_string())
        );
        let a = machine(r#"{"hostname":"a","ip":"10.0.0.1"}"#);
        assert_eq!(validate_machines(std::slice::from_ref(&a)), Ok(()));
        assert!(validate_machines(&[a.clone(), a])
            .unwrap_err()
            .contains("appears more than once"));
    }
}
