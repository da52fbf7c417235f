//! The unversioned JSON endpoints tools scrape (`/master/state`, `/master/frameworks`,
//! `/master/slaves`, `/master/tasks`, `/master/roles`, `/master/state-summary`): plain
//! string ids, "slave" names, flattened resources.

use super::common::{framework_used, offered_on_agent, used_on_agent};
use crate::master::Master;
use crate::state::{AgentPhase, AgentState, FrameworkState, TaskRecord};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use strata_api::{FrameworkId, TaskState};
use strata_resources::{attributes_to_flat, Resources};

fn flat(r: &Resources) -> Value {
    Value::Object(r.without_allocation_role().to_flat_json())
}

/// A task in the legacy shape.
pub fn task_json(t: &TaskRecord) -> Value {
    let statuses: Vec<Value> = t
        .statuses()
        .iter()
        .map(|s| {
            let mut o = Map::new();
            o.insert("state".into(), json!(s.state));
            o.insert("timestamp".into(), json!(s.timestamp));
            if let Some(l) = s.labels() {
                o.insert("labels".into(), json!(l.labels));
            }
            if let Some(cs) = t.container_status(s) {
                o.insert("container_status".into(), json!(cs));
            }
            if let Some(h) = s.healthy {
                o.insert("healthy".into(), json!(h));
            }
            Value::Object(o)
        })
        .collect();
    let mut o = Map::new();
    o.insert("id".into(), json!(t.id.as_str()));
    o.insert("name".into(), json!(t.name.as_str()));
    o.insert("framework_id".into(), json!(t.framework_id.as_str()));
    o.insert(
        "executor_id".into(),
        json!(t.executor_id.as_ref().map(|e| e.as_str()).unwrap_or("")),
    );
    o.insert("slave_id".into(), json!(t.agent_id.as_str()));
    o.insert("state".into(), json!(t.state()));
    o.insert("resources".into(), flat(&t.resources));
    o.insert("role".into(), json!(t.role.as_str()));
    o.insert("statuses".into(), Value::Array(statuses));
    // Strata extension: why the task is in its state (the statuses above keep Mesos'
    // shape, which has no message or reason).
    let last = t.statuses().last();
    let optional = [
        ("message", last.and_then(|s| s.message()).map(|m| json!(m))),
        ("reason", last.and_then(|s| s.reason).map(|r| json!(r))),
        ("user", t.user.as_ref().map(|u| json!(u.as_str()))),
        ("labels", t.labels().map(|l| json!(l.labels))),
        ("container", t.container().map(|c| json!(c))),
        ("discovery", t.discovery().cloned()),
        ("health_check", t.health_check().map(|h| json!(h))),
        ("kill_policy", t.kill_policy().map(|k| json!(k))),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            o.insert(k.into(), v);
        }
    }
    Value::Object(o)
}

/// A framework in the legacy shape (with its tasks, offers and executors).
pub fn framework_json(m: &Master, fw: &FrameworkState) -> Value {
    let used = framework_used(m, fw);
    let offered = fw
        .offers
        .iter()
        .filter_map(|id| m.offers.get(id))
        .fold(Resources::new(), |acc, o| acc + o.resources.clone());
    let offers: Vec<Value> = fw
        .offers
        .iter()
        .filter_map(|id| m.offers.get(id))
        .map(|o| {
            json!({"id": o.id.as_str(), "framework_id": o.framework_id.as_str(), "slave_id": o.agent_id.as_str(),
                   "allocation_info": {"role": o.role}, "resources": flat(&o.resources)})
        })
        .collect();
    let executors: Vec<Value> = fw
        .executors
        .iter()
        .flat_map(|(aid, m)| m.values().map(move |e| (aid, e)))
        .map(|(aid, e)| {
            let res = Resources::from_wire(&e.resources).unwrap_or_default();
            json!({"executor_id": e.executor_id.as_str(), "name": e.name.clone().unwrap_or_default(),
                   "framework_id": fw.id.as_str(), "command": e.command, "resources": flat(&res), "slave_id": aid.as_str()})
        })
        .collect();
    let info = &fw.info;
    let mut o = json!({
        "id": fw.id.as_str(), "name": info.name,
        "used_resources": flat(&used), "offered_resources": flat(&offered), "resources": flat(&(used.clone() + offered)),
        "capabilities": info.capabilities.iter().map(|c| c.kind.clone()).collect::<Vec<_>>(),
        "hostname": info.hostname.clone().unwrap_or_default(), "webui_url": info.webui_url.clone().unwrap_or_default(),
        "active": fw.connected(), "connected": fw.connected(), "recovered": fw.recovered,
        "user": info.user, "failover_timeout": info.failover_timeout, "checkpoint": info.checkpoint,
        "registered_time": fw.registered_time, "unregistered_time": fw.unregistered_time.unwrap_or(0.0),
        "tasks": fw.tasks.values().map(|t| task_json(t)).collect::<Vec<_>>(),
        "unreachable_tasks": fw.unreachable_tasks.values().map(|t| task_json(t)).collect::<Vec<_>>(),
        "completed_tasks": fw.completed_tasks.iter().map(|t| task_json(t)).collect::<Vec<_>>(),
        "offers": offers, "executors": executors,
    });
    let extra = o.as_object_mut().expect("built as an object");
    if info.has_capability("MULTI_ROLE") {
        extra.insert("roles".into(), json!(fw.roles));
    } else {
        extra.insert(
            "role".into(),
            json!(fw.roles.first().cloned().unwrap_or_else(|| "*".into())),
        );
    }
    if let Some(t) = fw.reregistered_time {
        extra.insert("reregistered_time".into(), json!(t));
    }
    if let Some(p) = &info.principal {
        extra.insert("principal".into(), json!(p));
    }
    if let Some(l) = &info.labels {
        extra.insert("labels".into(), json!(l.labels));
    }
    o
}

/// An agent in the legacy shape.
pub fn slave_json(m: &Master, a: &AgentState) -> Value {
    let used = used_on_agent(m, &a.id);
    let offered = offered_on_agent(m, &a.id);
    let mut o = json!({
        "id": a.id.as_str(), "hostname": a.info.hostname, "port": a.port(),
        "attributes": attributes_to_flat(&a.attributes), "pid": a.pid(),
        "registered_time": a.registered_time,
        "resources": flat(&a.total), "used_resources": flat(&used), "offered_resources": flat(&offered),
        "reserved_resources": a.total.reserved_by_role_flat(), "unreserved_resources": flat(&a.total.unreserved()),
        "resources_full": a.total.to_wire(strata_resources::WireFormat::Endpoint),
        "reserved_resources_full": a.total.reserved_by_role_wire(strata_resources::WireFormat::Endpoint),
        "unreserved_resources_full": a.total.unreserved().to_wire(strata_resources::WireFormat::Endpoint),
        "used_resources_full": used.to_wire(strata_resources::WireFormat::Endpoint),
        "active": a.connected(), "deactivated": false, "version": a.version,
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
    });
    if let Some(obj) = o.as_object_mut() {
        if let Some(t) = a.reregistered_time {
            obj.insert("reregistered_time".into(), json!(t));
        }
        if let Some(d) = &a.info.domain {
            obj.insert("domain".into(), d.clone());
        }
        super::maintenance::drain_fields(m, a, obj, true);
    }
    o
}

fn recovered_slaves(m: &Master) -> Vec<Value> {
    m.agents
        .values()
        .filter(|a| matches!(a.phase, AgentPhase::Recovered { .. }))
        .map(|a| json!({"id": a.id.as_str(), "hostname": a.info.hostname, "port": a.port(), "resources": flat(&a.total), "attributes": attributes_to_flat(&a.attributes)}))
        .collect()
}

fn registered_slaves(m: &Master) -> impl Iterator<Item = &AgentState> {
    m.agents
        .values()
        .map(|a| &**a)
        .filter(|a| !matches!(a.phase, AgentPhase::Recovered { .. }))
}

/// `/master/state`.
pub fn state(m: &Master) -> Value {
    let c = &m.cfg;
    let active = registered_slaves(m)
        .filter(|a| a.connected() && !m.is_deactivated(&a.id))
        .count();
    let deactivated = registered_slaves(m).count() - active;
    json!({
        "version": c.version, "build_date": "", "build_time": 0, "build_user": "strata",
        "start_time": m.start_time, "elected_time": m.start_time,
        "id": c.master_id, "pid": format!("master@{}:{}", c.ip, c.port), "hostname": c.hostname,
        "capabilities": ["AGENT_UPDATE"],
        "activated_slaves": active, "deactivated_slaves": deactivated, "unreachable_slaves": m.unreachable.len(),
        "leader": format!("master@{}:{}", c.ip, c.port),
        "leader_info": m.master_info(),
        "flags": c.flags.iter().cloned().collect::<BTreeMap<_, _>>(),
        "slaves": registered_slaves(m).map(|a| slave_json(m, a)).collect::<Vec<_>>(),
        "recovered_slaves": recovered_slaves(m),
        "frameworks": m.frameworks.values().map(|f| framework_json(m, f)).collect::<Vec<_>>(),
        "completed_frameworks": m.completed_frameworks.iter().map(|f| framework_json(m, f)).collect::<Vec<_>>(),
        "orphan_tasks": [], "unregistered_frameworks": [],
    })
}

/// `/master/frameworks` (optionally one framework).
pub fn frameworks(m: &Master, only: Option<&FrameworkId>) -> Value {
    let keep = |f: &&FrameworkState| only.is_none_or(|id| &f.id == id);
    json!({
        "frameworks": m.frameworks.values().filter(keep).map(|f| framework_json(m, f)).collect::<Vec<_>>(),
        "completed_frameworks": m.completed_frameworks.iter().filter(keep).map(|f| framework_json(m, f)).collect::<Vec<_>>(),
        "unregistered_frameworks": [],
    })
}

/// `/master/slaves`.
pub fn slaves(m: &Master) -> Value {
    json!({"slaves": registered_slaves(m).map(|a| slave_json(m, a)).collect::<Vec<_>>(), "recovered_slaves": recovered_slaves(m)})
}

/// Query of `/master/tasks`.
#[derive(Debug, Clone, Default)]
pub struct TasksQuery {
    /// At most this many (default 100; negative = all).
    pub limit: Option<i64>,
    pub offset: usize,
    /// Ascending by start time when true; descending by default.
    pub ascending: bool,
    pub framework_id: Option<String>,
    pub task_id: Option<String>,
}

/// `/master/tasks`: live, unreachable and completed tasks of every framework.
pub fn tasks(m: &Master, q: &TasksQuery) -> Value {
    let mut all: Vec<&TaskRecord> = m
        .frameworks
        .values()
        .chain(m.completed_frameworks.iter())
        .filter(|f| {
            q.framework_id
                .as_deref()
                .is_none_or(|id| f.id.as_str() == id)
        })
        .flat_map(|f| {
            f.tasks
                .values()
                .chain(f.unreachable_tasks.values())
                .chain(f.completed_tasks.iter())
        })
        .map(|t| &**t)
        .filter(|t| q.task_id.as_deref().is_none_or(|id| t.id.as_str() == id))
        .collect();
    let start = |t: &&TaskRecord| t.statuses().first().map_or(f64::MAX, |s| s.timestamp);
    all.sort_by(|a, b| start(a).total_cmp(&start(b)).then_with(|| a.id.cmp(&b.id)));
    if !q.ascending {
        all.reverse();
    }
    let limit = match q.limit {
        Some(n) if n < 0 => usize::MAX,
        Some(n) => n as usize,
        None => 100,
    };
    json!({"tasks": all.into_iter().skip(q.offset).take(limit).map(task_json).collect::<Vec<_>>()})
}

/// Resources reserved for `role` on every registered agent.
fn reserved_for_role(m: &Master, role: &str) -> Resources {
    m.agents
        .values()
        .fold(Resources::new(), |acc, a| acc + a.total.reserved_for(role))
}

/// `/master/roles`.
pub fn roles(m: &Master) -> Value {
    let mut roles: BTreeMap<String, (Vec<String>, Resources)> = BTreeMap::new();
    for role in m.allocator.roles() {
        roles.entry(role).or_default();
    }
    for fw in m.frameworks.values() {
        for role in &fw.roles {
            roles
                .entry(role.clone())
                .or_default()
                .0
                .push(fw.id.to_string());
        }
        let used = framework_used(m, fw);
        for role in fw.roles.iter() {
            roles.entry(role.clone()).or_default().1 += used.allocated_to(role);
        }
    }
    let offered_by_role = |role: &str| {
        m.offers
            .values()
            .filter(|o| o.role == role)
            .fold(Resources::new(), |acc, o| acc + o.resources.clone())
    };
    let list: Vec<Value> = roles
        .into_iter()
        .map(|(name, (frameworks, allocated))| {
            let offered = offered_by_role(&name);
            json!({"name": name, "weight": m.allocator.weight(&name), "frameworks": frameworks,
                   "resources": flat(&(allocated.clone() + offered.clone())), "allocated": flat(&allocated),
                   "offered": flat(&offered), "reserved": flat(&reserved_for_role(m, &name)), "quota": {"role": name, "guarantee": {}, "limit": {}, "consumed": {}}})
        })
        .collect();
    json!({"roles": list})
}

/// `/master/state-summary`: agents and frameworks with per-state task counts.
pub fn state_summary(m: &Master) -> Value {
    let counts = |tasks: &mut dyn Iterator<Item = &TaskRecord>| {
        let mut c: BTreeMap<String, u64> = TaskState::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), 0))
            .collect();
        for t in tasks {
            *c.entry(t.state().as_str().to_string()).or_default() += 1;
        }
        c
    };
    let slaves: Vec<Value> = registered_slaves(m)
        .map(|a| {
            let mut v = slave_json(m, a);
            let mut it = a.tasks.iter().filter_map(|(f, t)| {
                m.frameworks
                    .get(f)
                    .and_then(|fw| fw.tasks.get(t))
                    .map(|t| &**t)
            });
            if let Some(o) = v.as_object_mut() {
                for (k, n) in counts(&mut it) {
                    o.insert(k, json!(n));
                }
                o.insert(
                    "framework_ids".into(),
                    json!(a
                        .tasks
                        .iter()
                        .map(|(f, _)| f.as_str())
                        .collect::<std::collections::BTreeSet<_>>()),
                );
            }
            v
        })
        .collect();
    let frameworks: Vec<Value> = m
        .frameworks
        .values()
        .map(|f| {
            let mut it = f.tasks.values().chain(f.unreachable_tasks.values()).chain(f.completed_tasks.iter()).map(|t| &**t);
            let mut o = json!({"id": f.id.as_str(), "name": f.info.name, "active": f.connected(), "used_resources": flat(&framework_used(m, f))});
            if let Some(obj) = o.as_object_mut() {
                for (k, n) in counts(&mut it) {
                    obj.insert(k, json!(n));
                }
            }
            o
        })
        .collect();
    json!({"hostname": m.cfg.hostname, "cluster": Value::Null, "slaves": slaves, "frameworks": frameworks})
}
