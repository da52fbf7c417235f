//! The agent's read views: legacy `/state` (≡ `/slave(1)/state`) and `/metrics/snapshot`.

use crate::agent::Agent;
use crate::blackbox::BlackBox;
use crate::io::ExecutorKind;
use crate::state::{ExecutorState, FrameworkEntry, TaskEntry};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use strata_api::TaskState;
use strata_resources::{attributes_to_flat, Attribute, Resources, WireFormat};

fn flat(r: &Resources) -> Value {
    Value::Object(r.without_allocation_role().to_flat_json())
}

fn task_json(a: &Agent, fw: &FrameworkEntry, ex: &ExecutorState, t: &TaskEntry) -> Value {
    let res = Resources::from_wire(&t.info.resources).unwrap_or_default();
    let custom = !matches!(ex.kind, ExecutorKind::Command);
    let statuses: Vec<Value> = t
        .latest
        .iter()
        .map(|s| json!({"state": s.state, "timestamp": s.timestamp.unwrap_or(0.0), "container_status": s.container_status}))
        .collect();
    let mut v = json!({
        "id": t.info.task_id.as_str(), "name": t.info.name, "framework_id": fw.id().as_str(),
        "executor_id": if custom { ex.info.executor_id.as_str() } else { "" },
        "slave_id": a.agent_id.as_ref().map(|i| i.as_str()).unwrap_or(""),
        "state": t.state, "resources": flat(&res), "statuses": statuses,
    });
    // Strata extension: how a finished task ended (the full record, with the output's
    // tail, is at /blackbox and outlives the sandbox).
    if let (Some(s), Some(o)) = (
        t.latest.as_ref().filter(|s| s.state.is_terminal()),
        v.as_object_mut(),
    ) {
        let b = BlackBox::from_status(&fw.id(), &ex.info.executor_id, &ex.directory, s, 0.0);
        o.insert(
            "black_box".into(),
            json!({"exit_code": b.exit_code, "signal": b.signal, "oom": b.oom, "launch_failed": b.launch_failed,
                   "reason": b.reason, "message": b.message}),
        );
    }
    v
}

/// An executor's own resources plus its queued and launched tasks' (Mesos
/// `Executor::allocatedResources`).
fn allocated(ex: &ExecutorState) -> Resources {
    let mut res = Resources::from_wire(&ex.info.resources).unwrap_or_default();
    let queued = ex.queued.iter().flatten();
    for t in queued.chain(ex.launched.values().map(|t| &t.info)) {
        res += Resources::from_wire(&t.resources).unwrap_or_default();
    }
    res
}

fn executor_json(a: &Agent, fw: &FrameworkEntry, ex: &ExecutorState) -> Value {
    let res = allocated(ex);
    let queued: Vec<Value> = ex
        .queued
        .iter()
        .flatten()
        .map(|info| {
            task_json(
                a,
                fw,
                ex,
                &TaskEntry {
                    info: info.clone(),
                    state: TaskState::Staging,
                    latest: None,
                },
            )
        })
        .collect();
    json!({
        "id": ex.info.executor_id.as_str(), "name": ex.info.name.clone().unwrap_or_default(),
        "source": ex.info.source.clone().unwrap_or_default(), "container": ex.container_id.as_str(),
        "directory": ex.directory, "resources": flat(&res), "type": match ex.kind { ExecutorKind::Default => "DEFAULT", _ => "CUSTOM" },
        "tasks": ex.launched.values().map(|t| task_json(a, fw, ex, t)).collect::<Vec<_>>(),
        "queued_tasks": queued,
        // As Mesos: terminated tasks (terminal update not yet acknowledged) are listed
        // with the completed ones.
        "completed_tasks": ex.completed.iter().chain(ex.terminated.values()).map(|t| task_json(a, fw, ex, t)).collect::<Vec<_>>(),
    })
}

fn framework_json(a: &Agent, fw: &FrameworkEntry) -> Value {
    let roles = fw.info.effective_roles();
    json!({
        "id": fw.id().as_str(), "name": fw.info.name, "user": fw.info.user,
        "failover_timeout": fw.info.failover_timeout, "checkpoint": fw.info.checkpoint,
        "hostname": fw.info.hostname.clone().unwrap_or_default(), "role": roles.first().cloned().unwrap_or_else(|| "*".into()),
        "roles": roles,
        "executors": fw.executors.values().map(|e| executor_json(a, fw, e)).collect::<Vec<_>>(),
        "completed_executors": fw.completed_executors.iter().map(|e| executor_json(a, fw, e)).collect::<Vec<_>>(),
    })
}

/// Legacy `/state`.
pub fn state(a: &Agent) -> Value {
    let attributes: Vec<Attribute> = a
        .cfg
        .agent_info
        .attributes
        .iter()
        .filter_map(|w| Attribute::try_from(w.clone()).ok())
        .collect();
    json!({
        "version": a.cfg.version, "build_date": "", "build_time": 0, "build_user": "strata",
        "start_time": a.start_time,
        "id": a.agent_id.as_ref().map(|i| i.as_str()).unwrap_or(""),
        "pid": format!("slave(1)@{}", a.cfg.address), "hostname": a.cfg.agent_info.hostname,
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
        "resources": flat(&a.total), "reserved_resources": a.total.reserved_by_role_flat(),
        "unreserved_resources": flat(&a.total.unreserved()),
        "reserved_resources_full": a.total.reserved_by_role_wire(WireFormat::Endpoint),
        "unreserved_resources_full": a.total.unreserved().to_wire(WireFormat::Endpoint),
        "attributes": attributes_to_flat(&attributes),
        "master_connected": a.master_connected,
        "flags": a.cfg.flags.iter().cloned().collect::<BTreeMap<_, _>>(),
        "frameworks": a.frameworks.values().map(|f| framework_json(a, f)).collect::<Vec<_>>(),
        "completed_frameworks": a.completed_frameworks.iter().map(|f| framework_json(a, f)).collect::<Vec<_>>(),
    })
}

/// Every agent metric at `now`.
pub fn metrics(a: &Agent, now: f64) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: f64| {
        m.insert(format!("slave/{k}"), v);
    };
    put("uptime_secs", (now - a.start_time).max(0.0));
    put("registered", if a.master_connected { 1.0 } else { 0.0 });
    put("frameworks_active", a.frameworks.len() as f64);
    let executors: Vec<&ExecutorState> = a
        .frameworks
        .values()
        .flat_map(|f| f.executors.values())
        .collect();
    let count_phase =
        |p: fn(&ExecutorState) -> bool| executors.iter().filter(|e| p(e)).count() as f64;
    put(
        "executors_registering",
        count_phase(|e| {
            matches!(
                e.phase,
                crate::ExecutorPhase::Registering { .. } | crate::ExecutorPhase::Recovering { .. }
            )
        }),
    );
    put(
        "executors_running",
        count_phase(|e| {
            matches!(
                e.phase,
                crate::ExecutorPhase::Running | crate::ExecutorPhase::Disconnected
            )
        }),
    );
    put(
        "executors_terminating",
        count_phase(|e| matches!(e.phase, crate::ExecutorPhase::Terminating { .. })),
    );
    put(
        "executors_terminated",
        a.counters.executors_terminated as f64,
    );
    let tasks: Vec<TaskState> = executors
        .iter()
        .flat_map(|e| e.launched.values().map(|t| t.state))
        .collect();
    let queued = executors
        .iter()
        .map(|e| e.queued.iter().flatten().count())
        .sum::<usize>() as f64;
    for s in [TaskState::Starting, TaskState::Running, TaskState::Killing] {
        put(
            &format!("tasks_{}", s.metric_name()),
            tasks.iter().filter(|t| **t == s).count() as f64,
        );
    }
    put(
        "tasks_staging",
        queued + tasks.iter().filter(|t| **t == TaskState::Staging).count() as f64,
    );
    let c = &a.counters;
    for (k, v) in [
        ("tasks_finished", c.tasks_finished),
        ("tasks_failed", c.tasks_failed),
        ("tasks_killed", c.tasks_killed),
        ("tasks_lost", c.tasks_lost),
        ("tasks_gone", c.tasks_gone),
        ("valid_status_updates", c.valid_status_updates),
        ("invalid_status_updates", c.invalid_status_updates),
        ("valid_framework_messages", c.valid_framework_messages),
        ("invalid_framework_messages", c.invalid_framework_messages),
        ("container_launch_errors", c.container_launch_errors),
        ("executors_preempted", c.executors_preempted),
    ] {
        put(k, v as f64);
    }
    let mut used = Resources::new();
    for e in &executors {
        used += allocated(e);
    }
    let pairs = [
        ("", a.total.clone(), used.non_revocable()),
        ("_revocable", a.oversubscribed.clone(), used.revocable()),
    ];
    for (kind, total, used) in pairs {
        for name in ["cpus", "gpus", "mem", "disk"] {
            let t = total.scalar(name).as_f64();
            let u = used.scalar(name).as_f64();
            put(&format!("{name}{kind}_total"), t);
            put(&format!("{name}{kind}_used"), u);
            put(
                &format!("{name}{kind}_percent"),
                if t > 0.0 { u / t } else { 0.0 },
            );
        }
    }
    m
}
