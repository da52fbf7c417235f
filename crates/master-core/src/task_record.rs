//! The master's compact record of one task: ids, state, resources and statuses kept
//! without the copies the wire `Task` would hold (see "Master memory" in
//! docs/benchmarks.md); the wire `Task` and `TaskStatus`es are rebuilt for views and events.

use compact_str::CompactString;
use strata_api::status::ContainerStatus;
use strata_api::{
    AgentId, CheckStatusInfo, ContainerId, ContainerInfo, ExecutorId, FrameworkId, HealthCheck,
    KillPolicy, Label, Labels, Reason, Source, Task, TaskId, TaskState, TaskStatus, TimeInfo,
};
use strata_resources::{Resources, WireFormat};

/// A launched task as the master knows it. Maps of tasks hold it boxed, so a map node
/// stays small however many fields this grows.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    pub id: TaskId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    /// The task's executor; none for command tasks (their executor id is the task id).
    pub executor_id: Option<ExecutorId>,
    /// The container the task runs in, once an executor reported it (lets a restarted
    /// master rebuild `statuses[0].container_status`).
    pub container_id: Option<ContainerId>,
    pub name: CompactString,
    state: TaskState,
    /// State and uuid of the latest update sent with a uuid (the one to acknowledge).
    pub status_update_state: Option<TaskState>,
    pub status_update_uuid: Option<CompactString>,
    /// Whether the resources went back to the allocator (terminal state reached).
    pub released: bool,
    pub unreachable_time: Option<f64>,
    /// Resources with their allocation role.
    pub resources: Resources,
    pub role: CompactString,
    pub user: Option<CompactString>,
    labels: Option<Box<[CompactLabel]>>,
    statuses: Vec<StoredStatus>,
    /// Fields few tasks set, in one optional box.
    extra: Option<Box<TaskExtra>>,
}

/// A label's key and value, inline when short.
type CompactLabel = (CompactString, Option<CompactString>);

#[derive(Debug, Clone, Default, PartialEq)]
struct TaskExtra {
    discovery: Option<serde_json::Value>,
    container: Option<Box<ContainerInfo>>,
    health_check: Option<Box<HealthCheck>>,
    kill_policy: Option<KillPolicy>,
    limits: Option<serde_json::Value>,
}

/// One entry of a task's `statuses`: the wire status without its task id (always the
/// record's) and `data` (dropped, as Mesos does); the ids it names are the record's
/// (flags here) unless they differ (then kept in `extra`).
#[derive(Debug, Clone)]
pub struct StoredStatus {
    pub state: TaskState,
    pub source: Option<Source>,
    pub reason: Option<Reason>,
    pub healthy: Option<bool>,
    /// The status named the record's agent (another agent is kept in `extra`).
    on_agent: bool,
    has_container_status: bool,
    executor: IdRef,
    container: IdRef,
    executor_pid: Option<u32>,
    pub timestamp: f64,
    pub uuid: Option<CompactString>,
    extra: Option<Box<StatusExtra>>,
}

/// Which id a stored status names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdRef {
    None,
    /// The record's own (`executor_id`, `container_id`).
    Own,
    /// The task id (a command executor's id).
    TaskId,
    /// Another, kept in the status' `extra`.
    Other,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct StatusExtra {
    message: Option<String>,
    agent_id: Option<AgentId>,
    executor_id: Option<ExecutorId>,
    container_id: Option<ContainerId>,
    check_status: Option<CheckStatusInfo>,
    labels: Option<Labels>,
    network_infos: Vec<serde_json::Value>,
    unreachable_time: Option<TimeInfo>,
    limitation: Option<serde_json::Value>,
}

impl StoredStatus {
    /// The status' message, if any.
    pub fn message(&self) -> Option<&str> {
        self.extra.as_ref()?.message.as_deref()
    }

    /// The status' labels, if any.
    pub fn labels(&self) -> Option<&Labels> {
        self.extra.as_ref()?.labels.as_ref()
    }

    /// The container status the executor sent, if any (`own` is the record's container).
    fn container_status(&self, own: Option<&ContainerId>) -> Option<ContainerStatus> {
        self.has_container_status.then(|| ContainerStatus {
            container_id: match self.container {
                IdRef::Own => own.cloned(),
                IdRef::Other => self.extra.as_ref().and_then(|e| e.container_id.clone()),
                IdRef::None | IdRef::TaskId => None,
            },
            network_infos: self
                .extra
                .as_ref()
                .map(|e| e.network_infos.clone())
                .unwrap_or_default(),
            executor_pid: self.executor_pid,
        })
    }
}

impl TaskRecord {
    /// A record from a wire task (launched here, or reported by a re-registering agent),
    /// holding `resources` (with their allocation role) instead of the wire ones.
    pub fn new(task: Task, resources: Resources, role: &str, released: bool) -> TaskRecord {
        let extra = TaskExtra {
            discovery: task.discovery,
            container: task.container,
            health_check: task.health_check,
            kill_policy: task.kill_policy,
            limits: task.limits,
        };
        let mut record = TaskRecord {
            id: task.task_id,
            framework_id: task.framework_id,
            agent_id: task.agent_id,
            executor_id: task.executor_id,
            container_id: task.container_id,
            name: task.name.into(),
            state: task.state,
            status_update_state: task.status_update_state,
            status_update_uuid: task.status_update_uuid.map(Into::into),
            released,
            unreachable_time: None,
            resources,
            role: role.into(),
            user: task.user.map(Into::into),
            labels: task.labels.filter(|l| !l.labels.is_empty()).map(|l| {
                l.labels
                    .into_iter()
                    .map(|l| (l.key.into(), l.value.map(Into::into)))
                    .collect()
            }),
            statuses: Vec::with_capacity(task.statuses.len()),
            extra: (extra != TaskExtra::default()).then(|| Box::new(extra)),
        };
        for s in &task.statuses {
            let stored = record.store(s, s.timestamp.unwrap_or(0.0));
            record.statuses.push(stored);
        }
        record
    }

    /// The task's latest known state.
    pub fn state(&self) -> TaskState {
        self.state
    }

    /// Sets the state without a status (the master ending a task on its own).
    pub fn set_state(&mut self, state: TaskState) {
        self.state = state;
    }

    /// The stored statuses, oldest first.
    pub fn statuses(&self) -> &[StoredStatus] {
        &self.statuses
    }

    /// The value of label `key`, if the task has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .as_ref()?
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The task's labels in wire form.
    pub fn labels(&self) -> Option<Labels> {
        self.labels.as_ref().map(|ls| Labels {
            labels: ls
                .iter()
                .map(|(k, v)| Label {
                    key: k.to_string(),
                    value: v.as_ref().map(|v| v.to_string()),
                })
                .collect(),
        })
    }

    pub fn kill_policy(&self) -> Option<&KillPolicy> {
        self.extra.as_ref()?.kill_policy.as_ref()
    }

    pub fn container(&self) -> Option<&ContainerInfo> {
        self.extra.as_ref()?.container.as_deref()
    }

    pub fn health_check(&self) -> Option<&HealthCheck> {
        self.extra.as_ref()?.health_check.as_deref()
    }

    pub fn discovery(&self) -> Option<&serde_json::Value> {
        self.extra.as_ref()?.discovery.as_ref()
    }

    /// A stored status in wire form.
    pub fn wire_status(&self, s: &StoredStatus) -> TaskStatus {
        let extra = s.extra.as_deref();
        let mut w = TaskStatus::new(self.id.clone(), s.state);
        w.message = extra.and_then(|e| e.message.clone());
        w.source = s.source;
        w.reason = s.reason;
        w.agent_id = match extra.and_then(|e| e.agent_id.clone()) {
            Some(other) => Some(other),
            None => s.on_agent.then(|| self.agent_id.clone()),
        };
        w.executor_id = match s.executor {
            IdRef::Own => self.executor_id.clone(),
            IdRef::TaskId => Some(ExecutorId(self.id.0.clone())),
            IdRef::Other => extra.and_then(|e| e.executor_id.clone()),
            IdRef::None => None,
        };
        w.timestamp = Some(s.timestamp);
        w.uuid = s.uuid.as_ref().map(|u| u.to_string());
        w.healthy = s.healthy;
        w.check_status = extra.and_then(|e| e.check_status.clone());
        w.labels = extra.and_then(|e| e.labels.clone());
        w.container_status = self.container_status(s);
        w.unreachable_time = extra.and_then(|e| e.unreachable_time);
        w.limitation = extra.and_then(|e| e.limitation.clone());
        w
    }

    /// The container status a stored status carried, if any.
    pub fn container_status(&self, s: &StoredStatus) -> Option<ContainerStatus> {
        s.container_status(self.container_id.as_ref())
    }

    /// The v1 `Task`.
    pub fn to_task(&self) -> Task {
        let extra = self.extra.as_deref();
        Task {
            name: self.name.to_string(),
            task_id: self.id.clone(),
            framework_id: self.framework_id.clone(),
            executor_id: self.executor_id.clone(),
            agent_id: self.agent_id.clone(),
            state: self.state,
            resources: self.resources.to_wire(WireFormat::PostRefinement),
            statuses: self.statuses.iter().map(|s| self.wire_status(s)).collect(),
            status_update_state: self.status_update_state,
            status_update_uuid: self.status_update_uuid.as_ref().map(|u| u.to_string()),
            labels: self.labels(),
            discovery: extra.and_then(|e| e.discovery.clone()),
            container: extra.and_then(|e| e.container.clone()),
            health_check: extra.and_then(|e| e.health_check.clone()),
            kill_policy: extra.and_then(|e| e.kill_policy.clone()),
            user: self.user.as_ref().map(|u| u.to_string()),
            limits: extra.and_then(|e| e.limits.clone()),
            container_id: self.container_id.clone(),
        }
    }

    /// The v1 `Task` JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!(self.to_task())
    }

    /// Applies a status (and the agent's `latest` state, which may run ahead of it):
    /// updates the state unless it is already terminal, appends to `statuses` (replacing
    /// the last entry when the state repeats, with `data` stripped, as Mesos does).
    /// Returns the previous state.
    pub fn apply(&mut self, status: &TaskStatus, latest: Option<TaskState>, now: f64) -> TaskState {
        let old = self.state;
        if let Some(cid) = status
            .container_status
            .as_ref()
            .and_then(|c| c.container_id.as_ref())
        {
            if self.container_id.as_ref() != Some(cid) {
                // Statuses naming the old container keep it (it is a different one).
                let old = self.container_id.replace(cid.clone());
                for s in self
                    .statuses
                    .iter_mut()
                    .filter(|s| s.container == IdRef::Own)
                {
                    s.container = IdRef::Other;
                    s.extra.get_or_insert_default().container_id = old.clone();
                }
            }
        }
        let stored = self.store(status, now);
        // A terminal state is final (Mesos `updateTask`); later statuses are still recorded.
        if !old.is_terminal() {
            self.state = latest.unwrap_or(status.state);
        }
        if status.uuid.is_some() {
            self.status_update_state = Some(status.state);
            self.status_update_uuid = stored.uuid.clone();
        }
        match self.statuses.last_mut() {
            Some(last) if last.state == stored.state => *last = stored,
            _ => {
                // A task sees a handful of states; `push` alone would reserve room for four.
                self.statuses.reserve_exact(1);
                self.statuses.push(stored);
            }
        }
        old
    }

    /// `status` in stored form, naming the record's ids by flags where they are equal.
    fn store(&self, status: &TaskStatus, now: f64) -> StoredStatus {
        let (executor, executor_id) = match &status.executor_id {
            None => (IdRef::None, None),
            Some(e) if self.executor_id.as_ref() == Some(e) => (IdRef::Own, None),
            Some(e) if e.as_str() == self.id.as_str() => (IdRef::TaskId, None),
            Some(e) => (IdRef::Other, Some(e.clone())),
        };
        let cs = status.container_status.as_ref();
        let (container, container_id) = match cs.and_then(|c| c.container_id.as_ref()) {
            None => (IdRef::None, None),
            Some(c) if self.container_id.as_ref() == Some(c) => (IdRef::Own, None),
            Some(c) => (IdRef::Other, Some(c.clone())),
        };
        let other_agent = status
            .agent_id
            .as_ref()
            .filter(|a| **a != self.agent_id)
            .cloned();
        let extra = StatusExtra {
            message: status.message.clone(),
            agent_id: other_agent,
            executor_id,
            container_id,
            check_status: status.check_status.clone(),
            labels: status.labels.clone(),
            network_infos: cs.map(|c| c.network_infos.clone()).unwrap_or_default(),
            unreachable_time: status.unreachable_time,
            limitation: status.limitation.clone(),
        };
        StoredStatus {
            state: status.state,
            source: status.source,
            reason: status.reason,
            healthy: status.healthy,
            on_agent: status.agent_id.as_ref() == Some(&self.agent_id),
            has_container_status: cs.is_some(),
            executor,
            container,
            executor_pid: cs.and_then(|c| c.executor_pid),
            timestamp: status.timestamp.unwrap_or(now),
            uuid: status.uuid.as_deref().map(Into::into),
            extra: (extra != StatusExtra::default()).then(|| Box::new(extra)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire_task() -> Task {
        serde_json::from_value(serde_json::json!({
            "name": "web", "task_id": {"value": "t1"}, "framework_id": {"value": "f"},
            "agent_id": {"value": "a"}, "state": "TASK_RUNNING",
            "labels": {"labels": [{"key": "team", "value": "x"}, {"key": "flag"}]},
            "kill_policy": {"grace_period": {"nanoseconds": 5}},
            "user": "root", "container_id": {"value": "c1"},
            "status_update_state": "TASK_RUNNING", "status_update_uuid": "AAAAAAAAAAAAAAAAAAAAAA==",
            "statuses": [
                {"task_id": {"value": "t1"}, "state": "TASK_STARTING", "source": "SOURCE_EXECUTOR",
                 "agent_id": {"value": "a"}, "executor_id": {"value": "t1"}, "timestamp": 1.0,
                 "uuid": "AQAAAAAAAAAAAAAAAAAAAA==",
                 "container_status": {"container_id": {"value": "c1"}, "executor_pid": 7}},
                {"task_id": {"value": "t1"}, "state": "TASK_RUNNING", "message": "up",
                 "agent_id": {"value": "other"}, "timestamp": 2.0, "healthy": true,
                 "labels": {"labels": [{"key": "k", "value": "v"}]},
                 "container_status": {"container_id": {"value": "c1"},
                                      "network_infos": [{"ip_addresses": [{"ip_address": "10.0.0.1"}]}]}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn wire_task_round_trips_through_the_compact_record() {
        let task = wire_task();
        let res = Resources::parse_flag("cpus:1;mem:32", "*").unwrap();
        let r = TaskRecord::new(task.clone(), res.clone(), "*", false);
        let mut expected = task;
        expected.resources = res.to_wire(WireFormat::PostRefinement);
        assert_eq!(r.to_json(), serde_json::json!(expected));
        assert_eq!(r.label("team"), Some("x"));
        assert_eq!(r.label("flag"), None);
        assert_eq!(r.statuses()[1].message(), Some("up"));
    }

    #[test]
    fn stored_statuses_name_the_records_ids() {
        let task = wire_task();
        let r = TaskRecord::new(task, Resources::default(), "*", false);
        let s = &r.statuses()[0];
        assert_eq!((s.executor, s.container), (IdRef::TaskId, IdRef::Own));
        assert!(
            s.extra.is_none(),
            "a plain executor status needs no extra box"
        );
        let w = r.wire_status(s);
        assert_eq!(w.executor_id.map(|e| e.0), Some(r.id.0.clone()));
    }

    #[test]
    fn a_new_container_leaves_earlier_statuses_naming_the_old_one() {
        let mut r = TaskRecord::new(wire_task(), Resources::default(), "*", false);
        let mut s = TaskStatus::new(r.id.clone(), TaskState::Failed);
        s.executor_id = Some(ExecutorId::new("exec-2"));
        s.container_status = Some(ContainerStatus {
            container_id: Some(ContainerId::new("c2")),
            network_infos: Vec::new(),
            executor_pid: None,
        });
        r.apply(&s, None, 5.0);
        let j = r.to_json();
        assert_eq!(
            j["statuses"][0]["container_status"]["container_id"]["value"],
            "c1"
        );
        assert_eq!(
            j["statuses"][2]["container_status"]["container_id"]["value"],
            "c2"
        );
        assert_eq!(j["statuses"][2]["executor_id"]["value"], "exec-2");
        assert_eq!(j["container_id"]["value"], "c2");
    }

    /// The sizes docs/benchmarks.md ("Master memory") accounts for: growing them costs
    /// every task of a large cluster (re-measure with the memory benchmark).
    #[test]
    fn record_and_status_stay_small() {
        use std::mem::size_of;
        assert!(
            size_of::<TaskRecord>() <= 272,
            "{}",
            size_of::<TaskRecord>()
        );
        assert!(
            size_of::<StoredStatus>() <= 56,
            "{}",
            size_of::<StoredStatus>()
        );
        assert!(size_of::<strata_resources::Resource>() <= 120);
    }

    #[test]
    fn apply_replaces_a_repeated_state_and_keeps_a_terminal_one() {
        let mut r = TaskRecord::new(wire_task(), Resources::default(), "*", false);
        let mut s = TaskStatus::new(r.id.clone(), TaskState::Running);
        s.data = Some("big".into());
        assert_eq!(r.apply(&s, None, 3.0), TaskState::Running);
        assert_eq!(r.statuses().len(), 2);
        assert_eq!(r.statuses()[1].timestamp, 3.0);
        let done = TaskStatus::new(r.id.clone(), TaskState::Finished);
        r.apply(&done, None, 4.0);
        r.apply(&TaskStatus::new(r.id.clone(), TaskState::Lost), None, 5.0);
        assert_eq!(r.state(), TaskState::Finished);
        assert_eq!(r.statuses().len(), 4);
        assert!(r.to_json()["statuses"][1].get("data").is_none());
    }
}
