//! v1 operator API response bodies (GET_STATE, GET_AGENTS, GET_FRAMEWORKS, GET_TASKS,
//! GET_EXECUTORS, GET_ROLES, GET_MASTER), in Mesos' v1 JSON shapes.

use super::common::{framework_used, offered_on_agent, used_on_agent};
use crate::master::Master;
use crate::state::{AgentPhase, AgentState, FrameworkState};
use crate::tasks::to_time_info;
use serde_json::{json, Value};
use strata_resources::{Resources, WireFormat};

fn wire(r: &Resources) -> Value {
    json!(r.to_wire(WireFormat::PostRefinement))
}

/// One agent entry of GET_AGENTS (also AGENT_ADDED).
pub fn agent_entry(m: &Master, a: &AgentState) -> Value {
    let mut info = a.agent_info();
    info.id = Some(a.id.clone());
    let mut v = json!({
        "agent_info": info, "active": a.connected(), "deactivated": false, "version": a.version, "pid": a.pid(),
        "registered_time": to_time_info(a.registered_time),
        "total_resources": wire(&a.total), "allocated_resources": wire(&used_on_agent(m, &a.id)),
        "offered_resources": wire(&offered_on_agent(m, &a.id)),
        "capabilities": [{"type": "MULTI_ROLE"}, {"type": "HIERARCHICAL_ROLE"}, {"type": "RESERVATION_REFINEMENT"}],
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(t) = a.reregistered_time {
            o.insert("reregistered_time".into(), json!(to_time_info(t)));
        }
        super::maintenance::drain_fields(m, a, o, false);
    }
    v
}

/// GET_AGENTS body.
pub fn get_agents(m: &Master) -> Value {
    let (recovered, registered): (Vec<&AgentState>, Vec<&AgentState>) = m
        .agents
        .values()
        .map(|a| &**a)
        .partition(|a| matches!(a.phase, AgentPhase::Recovered { .. }));
    json!({
        "agents": registered.into_iter().map(|a| agent_entry(m, a)).collect::<Vec<_>>(),
        "recovered_agents": recovered.into_iter().map(|a| { let mut i = a.agent_info(); i.id = Some(a.id.clone()); i }).collect::<Vec<_>>(),
    })
}

/// One framework entry of GET_FRAMEWORKS (also FRAMEWORK_ADDED/UPDATED).
pub fn framework_entry(m: &Master, fw: &FrameworkState) -> Value {
    let offers: Vec<Value> = fw
        .offers
        .iter()
        .filter_map(|id| m.offers.get(id))
        .map(|o| json!({"id": o.id, "framework_id": o.framework_id, "agent_id": o.agent_id, "allocation_info": {"role": o.role}, "resources": wire(&o.resources)}))
        .collect();
    let offered = fw
        .offers
        .iter()
        .filter_map(|id| m.offers.get(id))
        .fold(Resources::new(), |acc, o| acc + o.resources.clone());
    let mut v = json!({
        "framework_info": fw.info_with_id(), "active": fw.connected(), "connected": fw.connected(), "recovered": fw.recovered,
        "registered_time": to_time_info(fw.registered_time),
        "offers": offers, "allocated_resources": wire(&framework_used(m, fw)), "offered_resources": wire(&offered),
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(t) = fw.reregistered_time {
            o.insert("reregistered_time".into(), json!(to_time_info(t)));
        }
        if let Some(t) = fw.unregistered_time {
            o.insert("unregistered_time".into(), json!(to_time_info(t)));
        }
    }
    v
}

/// GET_FRAMEWORKS body.
pub fn get_frameworks(m: &Master) -> Value {
    json!({
        "frameworks": m.frameworks.values().map(|f| framework_entry(m, f)).collect::<Vec<_>>(),
        "completed_frameworks": m.completed_frameworks.iter().map(|f| framework_entry(m, f)).collect::<Vec<_>>(),
    })
}

/// GET_TASKS body.
pub fn get_tasks(m: &Master) -> Value {
    let fws = || m.frameworks.values().chain(m.completed_frameworks.iter());
    json!({
        "tasks": fws().flat_map(|f| f.tasks.values()).map(|t| t.to_json()).collect::<Vec<_>>(),
        "unreachable_tasks": fws().flat_map(|f| f.unreachable_tasks.values()).map(|t| t.to_json()).collect::<Vec<_>>(),
        "completed_tasks": fws().flat_map(|f| f.completed_tasks.iter()).map(|t| t.to_json()).collect::<Vec<_>>(),
    })
}

/// GET_EXECUTORS body.
pub fn get_executors(m: &Master) -> Value {
    let list: Vec<Value> = m
        .frameworks
        .values()
        .flat_map(|f| {
            f.executors.iter().flat_map(|(aid, e)| {
                e.values()
                    .map(move |info| json!({"executor_info": info, "agent_id": aid}))
            })
        })
        .collect();
    json!({"executors": list})
}

/// GET_ROLES body.
pub fn get_roles(m: &Master) -> Value {
    let roles: Vec<Value> = m
        .allocator
        .roles()
        .into_iter()
        .map(|name| {
            let frameworks: Vec<_> = m.frameworks.values().filter(|f| f.roles.contains(&name)).map(|f| json!(f.id)).collect();
            let used = m.frameworks.values().fold(Resources::new(), |acc, f| acc + framework_used(m, f).allocated_to(&name));
            json!({"name": name, "weight": m.allocator.weight(&name), "frameworks": frameworks, "resources": wire(&used),
                   "quota": super::allocation::role_quota(m, &name)})
        })
        .collect();
    json!({"roles": roles})
}

/// GET_MASTER body.
pub fn get_master(m: &Master) -> Value {
    json!({"master_info": m.master_info(), "start_time": m.start_time, "elected_time": m.start_time})
}

/// GET_STATE body.
pub fn get_state(m: &Master) -> Value {
    json!({
        "get_tasks": get_tasks(m), "get_executors": get_executors(m),
        "get_frameworks": get_frameworks(m), "get_agents": get_agents(m),
    })
}
