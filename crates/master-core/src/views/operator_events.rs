//! Operator API event stream payloads (TASK_ADDED, TASK_UPDATED, FRAMEWORK_*, AGENT_*).

use crate::state::{AgentState, FrameworkState, TaskRecord};
use crate::tasks::to_time_info;
use serde_json::{json, Value};
use strata_api::{AgentId, FrameworkId, FrameworkInfo, TaskState, TaskStatus};

/// TASK_ADDED.
pub fn task_added(task: &TaskRecord) -> Value {
    json!({"type": "TASK_ADDED", "task_added": {"task": task.to_json()}})
}

/// TASK_UPDATED: `state` is the latest known state, which can differ from `status.state`.
pub fn task_updated(fid: &FrameworkId, status: &TaskStatus, state: TaskState) -> Value {
    json!({"type": "TASK_UPDATED", "task_updated": {"framework_id": fid, "status": status, "state": state}})
}

/// FRAMEWORK_ADDED or FRAMEWORK_UPDATED (a minimal framework entry; the full one needs
/// the whole master and is served by GET_FRAMEWORKS).
pub fn framework(fw: &FrameworkState, updated: bool, _now: f64) -> Value {
    let entry = json!({
        "framework_info": fw.info_with_id(), "active": fw.connected(), "connected": fw.connected(),
        "recovered": fw.recovered, "registered_time": to_time_info(fw.registered_time),
    });
    if updated {
        json!({"type": "FRAMEWORK_UPDATED", "framework_updated": {"framework": entry}})
    } else {
        json!({"type": "FRAMEWORK_ADDED", "framework_added": {"framework": entry}})
    }
}

/// FRAMEWORK_REMOVED.
pub fn framework_removed(info: &FrameworkInfo) -> Value {
    json!({"type": "FRAMEWORK_REMOVED", "framework_removed": {"framework_info": info}})
}

/// AGENT_ADDED.
pub fn agent_added(a: &AgentState) -> Value {
    let mut info = a.agent_info();
    info.id = Some(a.id.clone());
    json!({"type": "AGENT_ADDED", "agent_added": {"agent": {
        "agent_info": info, "active": a.connected(), "deactivated": false, "version": a.version, "pid": a.pid(),
        "registered_time": to_time_info(a.registered_time),
        "total_resources": a.total.to_wire(strata_resources::WireFormat::PostRefinement),
    }}})
}

/// AGENT_REMOVED.
pub fn agent_removed(aid: &AgentId) -> Value {
    json!({"type": "AGENT_REMOVED", "agent_removed": {"agent_id": aid}})
}
