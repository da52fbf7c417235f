//! Launching: RUN_TASK / RUN_TASK_GROUP become a task queued on an existing executor or a
//! new executor container (sandbox path, environment, URIs) started by the shell.

use crate::agent::Agent;
use crate::checkpoint::{CheckpointOp, ExecutorRecord};
use crate::io::{ContainerLimits, ContainerSpec, Effect, ExecutorKind};
use crate::state::{ExecutorPhase, ExecutorState, FrameworkEntry, TaskEntry};
use std::collections::{BTreeMap, VecDeque};
use strata_api::executor::{Event, Launch, LaunchGroup};
use strata_api::{
    CommandInfo, ExecutorId, ExecutorInfo, ExecutorType, FrameworkId, FrameworkInfo, Reason,
    TaskGroupInfo, TaskInfo, TaskState,
};
use strata_resources::Resources;

/// Mesos duration text for seconds, as stout prints a `Duration` (`5secs`, `1500ms`,
/// `1mins`, `90secs`): the largest unit not above it, or the next smaller unit when only
/// that one gives a whole number.
pub fn mesos_duration(secs: f64) -> String {
    const UNITS: [(i64, &str); 8] = [
        (1, "ns"),
        (1_000, "us"),
        (1_000_000, "ms"),
        (1_000_000_000, "secs"),
        (60_000_000_000, "mins"),
        (3_600_000_000_000, "hrs"),
        (86_400_000_000_000, "days"),
        (604_800_000_000_000, "weeks"),
    ];
    let ns = (secs.max(0.0) * 1e9).round() as i64;
    let i = UNITS.iter().rposition(|(u, _)| ns >= *u).unwrap_or(0);
    let (unit, name) = match i.checked_sub(1).map(|j| UNITS[j]) {
        Some(lower) if ns % UNITS[i].0 != 0 && ns % lower.0 == 0 => lower,
        _ => UNITS[i],
    };
    format!("{}{name}", ns as f64 / unit as f64)
}

/// The ExecutorInfo Mesos builds for a command task: executor id = task id.
fn command_executor_info(fid: &FrameworkId, task: &TaskInfo) -> ExecutorInfo {
    let cmd = task
        .command
        .as_ref()
        .and_then(|c| c.value.clone())
        .unwrap_or_default();
    ExecutorInfo {
        kind: None,
        executor_id: ExecutorId::new(task.task_id.as_str()),
        framework_id: Some(fid.clone()),
        command: Some(CommandInfo::shell("strata executor")),
        container: None,
        resources: Vec::new(),
        name: Some(format!(
            "Command Executor (Task: {}) (Command: sh -c '{}')",
            task.task_id, cmd
        )),
        source: Some(task.task_id.to_string()),
        data: None,
        discovery: None,
        shutdown_grace_period: None,
        labels: task.labels.clone(),
    }
}

impl Agent {
    /// RUN_TASK (one task, `executor` = custom or None) or RUN_TASK_GROUP (several tasks
    /// on a DEFAULT or custom executor).
    pub(crate) fn run_task(
        &mut self,
        now: f64,
        framework: FrameworkInfo,
        executor: Option<ExecutorInfo>,
        tasks: Vec<TaskInfo>,
        out: &mut Vec<Effect>,
    ) {
        let Some(fid) = framework.id.clone() else {
            return;
        };
        let Some(first) = tasks.first().cloned() else {
            return;
        };
        let terminating = self.frameworks.get(&fid).is_some_and(|f| f.terminating);
        if terminating {
            // As Mesos: no update, since a terminating framework cannot acknowledge it.
            tracing::warn!(framework_id = %fid, "ignoring tasks for a terminating framework");
            return;
        }
        let changed = self
            .frameworks
            .get(&fid)
            .is_none_or(|f| f.info != framework);
        let fw = self
            .frameworks
            .entry(fid.clone())
            .or_insert_with(|| FrameworkEntry {
                info: framework.clone(),
                executors: BTreeMap::new(),
                completed_executors: VecDeque::new(),
                terminating: false,
            });
        fw.info = framework.clone();
        if changed && framework.checkpoint {
            let op = CheckpointOp::Framework {
                info: framework.clone(),
            };
            out.push(Effect::Checkpoint(Box::new(op)));
        }
        let (info, kind) = match executor {
            Some(e) if e.kind == Some(ExecutorType::Default) => (e, ExecutorKind::Default),
            Some(e) => {
                let cmd = e
                    .command
                    .clone()
                    .unwrap_or_else(|| CommandInfo::shell("false"));
                (e, ExecutorKind::Custom(cmd))
            }
            None => (command_executor_info(&fid, &first), ExecutorKind::Command),
        };
        let eid = info.executor_id.clone();
        let existing = fw.executors.get(&eid).map(|e| e.phase);
        match existing {
            Some(ExecutorPhase::Terminating { .. }) => {
                self.drop_tasks(now, &framework, &tasks, "Executor terminating", out);
            }
            Some(ExecutorPhase::Terminated) | None => {
                if let Some(old) = fw.executors.remove(&eid) {
                    fw.completed_executors.push_back(old);
                }
                self.start_executor(now, &fid, info, kind, tasks, out);
            }
            Some(ExecutorPhase::Running) => {
                self.checkpoint_tasks(&fid, &eid, &tasks, out);
                self.link_existing(&fid, &eid, &tasks, out);
                self.deliver(&fid, &eid, tasks, out)
            }
            Some(
                ExecutorPhase::Registering { .. }
                | ExecutorPhase::Disconnected
                | ExecutorPhase::Recovering { .. },
            ) => {
                self.checkpoint_tasks(&fid, &eid, &tasks, out);
                self.link_existing(&fid, &eid, &tasks, out);
                if let Some(ex) = self
                    .frameworks
                    .get_mut(&fid)
                    .and_then(|f| f.executors.get_mut(&eid))
                {
                    ex.queued.push(tasks);
                }
            }
        }
    }

    fn start_executor(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        mut info: ExecutorInfo,
        kind: ExecutorKind,
        tasks: Vec<TaskInfo>,
        out: &mut Vec<Effect>,
    ) {
        info.framework_id = Some(fid.clone());
        let container_id = self.next_container_id();
        let aid = self.agent_id.clone().unwrap_or_default();
        let directory = format!(
            "{}/slaves/{aid}/frameworks/{fid}/executors/{}/runs/{container_id}",
            self.cfg.work_dir, info.executor_id
        );
        let Some(fw) = self.frameworks.get(fid) else {
            return;
        };
        let mut spec = ContainerSpec {
            container_id: container_id.clone(),
            framework_id: fid.clone(),
            executor_id: info.executor_id.clone(),
            kind: kind.clone(),
            directory: directory.clone(),
            env: self.executor_env(fw, &info, &kind, &directory),
            user: self.run_as_user(fw, &kind, &tasks),
            uris: uris_for(&kind, &tasks),
            task_id: tasks.first().map(|t| t.task_id.clone()),
            checkpoint: fw.info.checkpoint,
            limits: container_limits(&kind, &info, &tasks),
            binds: Vec::new(),
        };
        let state = ExecutorState {
            info: info.clone(),
            kind,
            container_id: container_id.clone(),
            directory,
            phase: ExecutorPhase::Registering {
                deadline: now + self.cfg.executor_registration_timeout,
            },
            conn: None,
            pid: None,
            queued: vec![tasks],
            launched: BTreeMap::new(),
            terminated: BTreeMap::new(),
            completed: VecDeque::new(),
            termination: None,
            pending_kills: Vec::new(),
            held: Vec::new(),
            launched_at: now,
        };
        let queued = state.queued.concat();
        self.containers.insert(
            container_id.clone(),
            (fid.clone(), info.executor_id.clone()),
        );
        if let Some(fw) = self.frameworks.get_mut(fid) {
            fw.executors.insert(info.executor_id.clone(), state);
        }
        if self.checkpointing(fid) {
            let record = ExecutorRecord {
                info: info.clone(),
                kind: spec.kind.clone(),
                container_id,
                directory: spec.directory.clone(),
            };
            let op = CheckpointOp::Executor {
                framework_id: fid.clone(),
                record,
            };
            out.push(Effect::Checkpoint(Box::new(op)));
            self.checkpoint_tasks(fid, &info.executor_id, &queued, out);
        }
        spec.binds =
            self.link_volumes(&spec.directory, &spec.kind, Some(&info), None, &queued, out);
        spec.env.extend(self.docker_volumes_env(&queued));
        out.push(Effect::Launch(Box::new(spec)));
    }

    /// Volume links for tasks given to an executor that already has a sandbox.
    fn link_existing(
        &self,
        fid: &FrameworkId,
        eid: &ExecutorId,
        tasks: &[TaskInfo],
        out: &mut Vec<Effect>,
    ) {
        let ex = self.frameworks.get(fid).and_then(|f| f.executors.get(eid));
        if let Some(ex) = ex {
            self.link_volumes(&ex.directory, &ex.kind, None, ex.pid, tasks, out);
        }
    }

    fn executor_env(
        &self,
        fw: &FrameworkEntry,
        info: &ExecutorInfo,
        kind: &ExecutorKind,
        dir: &str,
    ) -> Vec<(String, String)> {
        let aid = self.agent_id.clone().unwrap_or_default();
        let grace = info
            .shutdown_grace_period
            .map(|d| d.to_std().as_secs_f64())
            .unwrap_or(self.cfg.executor_shutdown_grace_period);
        let checkpoint = fw.info.checkpoint;
        let mut env = vec![
            ("MESOS_FRAMEWORK_ID".to_string(), fw.id().to_string()),
            ("MESOS_EXECUTOR_ID".into(), info.executor_id.to_string()),
            ("MESOS_AGENT_ENDPOINT".into(), self.cfg.address.clone()),
            ("MESOS_SLAVE_ID".into(), aid.to_string()),
            (
                "MESOS_SLAVE_PID".into(),
                format!("slave(1)@{}", self.cfg.address),
            ),
            ("MESOS_DIRECTORY".into(), dir.to_string()),
            ("MESOS_SANDBOX".into(), dir.to_string()),
            (
                "MESOS_CHECKPOINT".into(),
                if checkpoint { "1" } else { "0" }.into(),
            ),
            ("MESOS_HTTP_COMMAND_EXECUTOR".into(), "1".into()),
            (
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD".into(),
                mesos_duration(grace),
            ),
        ];
        let docker = self
            .cfg
            .flags
            .iter()
            .all(|(k, v)| k != "containerizers" || v.contains("docker"));
        env.push(("STRATA_DOCKER".into(), u8::from(docker).to_string()));
        if checkpoint {
            env.push((
                "MESOS_RECOVERY_TIMEOUT".into(),
                mesos_duration(self.cfg.recovery_timeout),
            ));
            env.push(("MESOS_SUBSCRIPTION_BACKOFF_MAX".into(), "2secs".into()));
        }
        if let ExecutorKind::Custom(cmd) = kind {
            for v in cmd.environment.iter().flat_map(|e| e.variables.iter()) {
                if v.kind.as_deref().is_none_or(|k| k == "VALUE") {
                    env.push((v.name.clone(), v.value.clone().unwrap_or_default()));
                }
            }
        }
        env
    }

    fn run_as_user(
        &self,
        fw: &FrameworkEntry,
        kind: &ExecutorKind,
        tasks: &[TaskInfo],
    ) -> Option<String> {
        let from_command = match kind {
            ExecutorKind::Custom(c) => c.user.clone(),
            _ => tasks
                .first()
                .and_then(|t| t.command.as_ref())
                .and_then(|c| c.user.clone()),
        };
        from_command.or_else(|| (!fw.info.user.is_empty()).then(|| fw.info.user.clone()))
    }

    /// Checkpoints tasks given to an executor (checkpointing frameworks only).
    fn checkpoint_tasks(
        &self,
        fid: &FrameworkId,
        eid: &ExecutorId,
        tasks: &[TaskInfo],
        out: &mut Vec<Effect>,
    ) {
        if !self.checkpointing(fid) {
            return;
        }
        for t in tasks {
            let op = CheckpointOp::Task {
                framework_id: fid.clone(),
                executor_id: eid.clone(),
                task: t.clone(),
            };
            out.push(Effect::Checkpoint(Box::new(op)));
        }
    }

    /// Sends tasks to a subscribed executor (LAUNCH, or LAUNCH_GROUP for a group).
    pub(crate) fn deliver(
        &mut self,
        fid: &FrameworkId,
        eid: &ExecutorId,
        tasks: Vec<TaskInfo>,
        out: &mut Vec<Effect>,
    ) {
        let Some(ex) = self
            .frameworks
            .get_mut(fid)
            .and_then(|f| f.executors.get_mut(eid))
        else {
            return;
        };
        let Some(conn) = ex.conn else {
            ex.queued.push(tasks);
            return;
        };
        for t in &tasks {
            ex.launched.insert(
                t.task_id.clone(),
                TaskEntry {
                    info: t.clone(),
                    state: TaskState::Staging,
                    latest: None,
                },
            );
        }
        let group = ex.kind == ExecutorKind::Default || tasks.len() > 1;
        let events: Vec<Event> = if group {
            vec![Event::LaunchGroup(LaunchGroup {
                task_group: TaskGroupInfo { tasks },
            })]
        } else {
            tasks
                .into_iter()
                .map(|task| Event::Launch(Launch { task }))
                .collect()
        };
        for event in events {
            out.push(Effect::Executor {
                conn,
                event: Box::new(event),
            });
        }
    }

    /// Reliable TASK_DROPPED (LOST without PARTITION_AWARE) for tasks never started.
    fn drop_tasks(
        &mut self,
        now: f64,
        fw: &FrameworkInfo,
        tasks: &[TaskInfo],
        message: &str,
        out: &mut Vec<Effect>,
    ) {
        let Some(fid) = fw.id.clone() else { return };
        let state = if fw.has_capability("PARTITION_AWARE") {
            TaskState::Dropped
        } else {
            TaskState::Lost
        };
        for t in tasks {
            let status = self.agent_status(
                now,
                t.task_id.clone(),
                state,
                Reason::ExecutorTerminated,
                message,
            );
            self.push_update(now, &fid, status, out);
        }
    }
}

/// Mesos' allowance for its built-in executors (`DEFAULT_EXECUTOR_CPUS` / `_MEM`).
const BUILTIN_EXECUTOR_CPUS: f64 = 0.1;
const BUILTIN_EXECUTOR_MEM_MB: f64 = 32.0;

/// A `limits` entry of a TaskInfo: `{"cpus": {"value": 2}}`; `"Infinity"` allowed.
fn task_limit(task: &TaskInfo, name: &str) -> Option<f64> {
    let v = task.limits.as_ref()?.get(name)?.get("value")?;
    match v {
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("infinity") => Some(f64::INFINITY),
        other => other.as_f64(),
    }
}

/// Requests and limits of a new container: its tasks' resources plus the executor's own
/// (a custom executor's declared resources, or the built-in executors' overhead). A limit
/// exists when a task declares one; tasks without one count with their request.
pub(crate) fn container_limits(
    kind: &ExecutorKind,
    executor: &ExecutorInfo,
    tasks: &[TaskInfo],
) -> ContainerLimits {
    let revocable_cpus = |r: &Resources| r.iter().any(|x| x.revocable && x.name == "cpus");
    let mut revocable = false;
    let (mut cpus, mut mem) = match kind {
        ExecutorKind::Custom(_) => {
            let r = Resources::from_wire(&executor.resources).unwrap_or_default();
            revocable |= revocable_cpus(&r);
            (r.cpus().as_f64(), r.mem_mb().as_f64())
        }
        _ => (BUILTIN_EXECUTOR_CPUS, BUILTIN_EXECUTOR_MEM_MB),
    };
    // Limits: what each task may use (its limit, or its request when it has none);
    // only when some task declares a limit is there a container limit beyond the request.
    let (mut cpus_cap, mut mem_cap) = (cpus, mem);
    let (mut cpus_limited, mut mem_limited) = (false, false);
    for t in tasks {
        let r = Resources::from_wire(&t.resources).unwrap_or_default();
        revocable |= revocable_cpus(&r);
        let (c, m) = (r.cpus().as_f64(), r.mem_mb().as_f64());
        cpus += c;
        mem += m;
        let (cl, ml) = (task_limit(t, "cpus"), task_limit(t, "mem"));
        cpus_limited |= cl.is_some();
        mem_limited |= ml.is_some();
        cpus_cap += cl.map_or(c, |l| l.max(c));
        mem_cap += ml.map_or(m, |l| l.max(m));
    }
    let (cpus_limit, mem_limit) = (
        cpus_limited.then_some(cpus_cap),
        mem_limited.then_some(mem_cap),
    );
    ContainerLimits {
        cpus,
        mem_mb: mem,
        cpus_limit,
        mem_limit_mb: mem_limit,
        revocable_cpus: revocable,
    }
}

fn uris_for(kind: &ExecutorKind, tasks: &[TaskInfo]) -> Vec<strata_api::CommandUri> {
    match kind {
        ExecutorKind::Custom(cmd) => cmd.uris.clone(),
        _ => tasks
            .iter()
            .filter_map(|t| t.command.as_ref())
            .flat_map(|c| c.uris.iter().cloned())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(res: &str, limits: Option<serde_json::Value>) -> TaskInfo {
        let r = Resources::parse_flag(res, "*")
            .unwrap()
            .to_wire(strata_resources::WireFormat::PostRefinement);
        let mut t: TaskInfo =
            serde_json::from_value(serde_json::json!({"name": "t", "task_id": {"value": "t"}}))
                .unwrap();
        t.resources = r;
        t.limits = limits;
        t
    }

    fn exec(res: &str) -> ExecutorInfo {
        let mut e: ExecutorInfo =
            serde_json::from_value(serde_json::json!({"executor_id": {"value": "e"}})).unwrap();
        e.resources = Resources::parse_flag(res, "*")
            .unwrap()
            .to_wire(strata_resources::WireFormat::PostRefinement);
        e
    }

    #[test]
    fn container_limits_add_tasks_executor_and_declared_limits() {
        let cmd = container_limits(
            &ExecutorKind::Command,
            &exec(""),
            &[task("cpus:1;mem:100", None)],
        );
        assert_eq!(
            cmd,
            ContainerLimits {
                cpus: 1.1,
                mem_mb: 132.0,
                cpus_limit: None,
                mem_limit_mb: None,
                revocable_cpus: false,
            }
        );
        let custom = ExecutorKind::Custom(CommandInfo::shell("x"));
        let two = [
            task("cpus:1;mem:100", None),
            task(
                "cpus:0.5;mem:50",
                Some(serde_json::json!({"cpus": {"value": 2}, "mem": {"value": "Infinity"}})),
            ),
        ];
        let l = container_limits(&custom, &exec("cpus:0.2;mem:20"), &two);
        assert!(
            (l.cpus - 1.7).abs() < 1e-9 && (l.mem_mb - 170.0).abs() < 1e-9,
            "{l:?}"
        );
        assert!((l.cpus_limit.unwrap() - 3.2).abs() < 1e-9, "{l:?}");
        assert_eq!(l.mem_limit_mb, Some(f64::INFINITY));
        assert!(!l.revocable_cpus);
        let mut rev = task("mem:10", None);
        rev.resources.extend(
            Resources::parse_flag("cpus:1", "*")
                .unwrap()
                .map(|r| r.revocable = true)
                .to_wire(strata_resources::WireFormat::PreRefinement),
        );
        let l = container_limits(&ExecutorKind::Command, &exec(""), &[rev]);
        assert!(l.revocable_cpus, "{l:?}");
    }
}
