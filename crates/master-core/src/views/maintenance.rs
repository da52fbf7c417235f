//! Maintenance views: the schedule, the cluster's maintenance status (DRAINING machines
//! with the frameworks' inverse-offer answers, DOWN machines), and the per-agent
//! `deactivated`/`drain_info` fields of GET_AGENTS and `/master/state`.

use crate::master::Master;
use crate::state::AgentState;
use crate::tasks::to_time_info;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use strata_api::maintenance::{InverseOfferStatus, MachineId};
use strata_api::FrameworkId;

/// The schedule in Mesos' shape (`{}` when empty).
pub fn schedule(m: &Master) -> Value {
    json!(m.maint.schedule)
}

/// `maintenance.ClusterStatus`: DRAINING machines with the latest answer of each
/// framework holding an inverse offer or having answered one, and DOWN machines. Empty
/// lists are omitted, as Mesos' JSON writer does.
pub fn status(m: &Master) -> Value {
    let draining: Vec<Value> = m
        .maint
        .machines()
        .filter(|(id, _)| !m.maint.is_down(id))
        .map(|(id, _)| draining_machine(m, id))
        .collect();
    let mut o = Map::new();
    if !draining.is_empty() {
        o.insert("draining_machines".into(), json!(draining));
    }
    if !m.maint.down.is_empty() {
        o.insert("down_machines".into(), json!(m.maint.down));
    }
    Value::Object(o)
}

fn draining_machine(m: &Master, id: &MachineId) -> Value {
    let mut statuses: Vec<Value> = Vec::new();
    for a in m
        .agents
        .values()
        .filter(|a| id.matches(&a.info.hostname, a.ip()))
    {
        let mut latest: BTreeMap<FrameworkId, (InverseOfferStatus, f64)> = BTreeMap::new();
        for o in m
            .maint
            .inverse
            .offers
            .values()
            .filter(|o| o.agent_id == a.id)
        {
            latest.insert(
                o.framework_id.clone(),
                (InverseOfferStatus::Unknown, o.created),
            );
        }
        for (fid, answer) in m.maint.inverse.answers.get(&a.id).into_iter().flatten() {
            latest.insert(fid.clone(), (answer.status, answer.time));
        }
        statuses.extend(latest.into_iter().map(|(fid, (status, time))| {
            json!({"status": status, "framework_id": fid, "timestamp": to_time_info(time)})
        }));
    }
    let mut o = Map::new();
    o.insert("id".into(), json!(id));
    if !statuses.is_empty() {
        o.insert("statuses".into(), json!(statuses));
    }
    Value::Object(o)
}

/// Sets `active` (false while deactivated), `deactivated`, and when drained
/// `drain_info` with `estimated_drain_start_time` (a TimeInfo) or, for the legacy
/// endpoints, `estimated_drain_start_time_seconds`.
pub fn drain_fields(m: &Master, a: &AgentState, o: &mut Map<String, Value>, legacy: bool) {
    let deactivated = m.is_deactivated(&a.id);
    o.insert("active".into(), json!(a.connected() && !deactivated));
    o.insert("deactivated".into(), json!(deactivated));
    if let Some((info, since)) = m.drain_info(&a.id) {
        o.insert("drain_info".into(), json!(info));
        if legacy {
            o.insert("estimated_drain_start_time_seconds".into(), json!(since));
        } else {
            let start = json!(to_time_info(since));
            o.insert("estimated_drain_start_time".into(), start);
        }
    }
}
