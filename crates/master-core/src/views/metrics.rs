//! `/metrics/snapshot` for the master: Mesos metric names, flat `{"name": number}`.

use super::common::{offered_on_agent, used_on_agent};
use crate::master::Master;
use crate::state::AgentPhase;
use std::collections::BTreeMap;
use strata_api::TaskState;
use strata_resources::Resources;

/// Every master metric at `now`.
pub fn snapshot(m: &Master, now: f64) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut put = |k: &str, v: f64| {
        out.insert(k.to_string(), v);
    };
    put("master/elected", 1.0);
    put("master/uptime_secs", (now - m.start_time).max(0.0));
    let registered: Vec<_> = m
        .agents
        .values()
        .filter(|a| !matches!(a.phase, AgentPhase::Recovered { .. }))
        .collect();
    let connected = registered.iter().filter(|a| a.connected()).count() as f64;
    put("master/slaves_connected", connected);
    put(
        "master/slaves_disconnected",
        registered.len() as f64 - connected,
    );
    put("master/slaves_active", connected);
    put(
        "master/slaves_inactive",
        registered.len() as f64 - connected,
    );
    put("master/slaves_unreachable", m.unreachable.len() as f64);
    let fw_connected = m.frameworks.values().filter(|f| f.connected()).count() as f64;
    put("master/frameworks_connected", fw_connected);
    put(
        "master/frameworks_disconnected",
        m.frameworks.len() as f64 - fw_connected,
    );
    put("master/frameworks_active", fw_connected);
    put(
        "master/frameworks_inactive",
        m.frameworks.len() as f64 - fw_connected,
    );
    put("master/outstanding_offers", m.offers.len() as f64);
    put("master/dropped_messages", 0.0);
    resource_metrics(m, &mut put);
    super::allocation::role_metrics(m, &mut put);
    for (name, v) in m.metrics.counters() {
        put(&format!("master/{name}"), v as f64);
    }
    let gauges = [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Unreachable,
    ];
    for s in gauges {
        let n = m
            .frameworks
            .values()
            .flat_map(|f| f.tasks.values().chain(f.unreachable_tasks.values()))
            .filter(|t| t.state() == s)
            .count();
        put(&format!("master/tasks_{}", s.metric_name()), n as f64);
    }
    put("master/event_queue_messages", 0.0);
    put("master/event_queue_dispatches", 0.0);
    put("master/event_queue_http_requests", 0.0);
    put(
        "allocator/mesos/allocation_runs",
        m.metrics.allocation_runs as f64,
    );
    out
}

fn resource_metrics(m: &Master, put: &mut impl FnMut(&str, f64)) {
    let mut total = Resources::new();
    let mut used = Resources::new();
    let mut offered = Resources::new();
    for a in m
        .agents
        .values()
        .filter(|a| !matches!(a.phase, AgentPhase::Recovered { .. }))
    {
        total += a.total.clone();
        used += used_on_agent(m, &a.id).without_allocation_role();
        offered += offered_on_agent(m, &a.id).without_allocation_role();
    }
    crate::oversubscription::revocable_metrics(&total, &used, put);
    let (total, used) = (total.non_revocable(), used.non_revocable());
    let offered = offered.non_revocable();
    for name in ["cpus", "gpus", "mem", "disk"] {
        let t = total.scalar(name).as_f64();
        let u = used.scalar(name).as_f64();
        put(&format!("master/{name}_total"), t);
        put(&format!("master/{name}_used"), u);
        put(
            &format!("master/{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        );
        put(&format!("allocator/mesos/resources/{name}/total"), t);
        put(
            &format!("allocator/mesos/resources/{name}/offered_or_allocated"),
            u + offered.scalar(name).as_f64(),
        );
    }
}
