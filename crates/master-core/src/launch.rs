//! ACCEPT: offer validation, task and task-group validation with Mesos' messages, and
//! launching (task records, RUN_TASK to the agent, unused resources back with filters).

use crate::io::Effect;
use crate::master::Master;
use crate::shared_volumes;
use crate::state::TaskRecord;
use crate::views::operator_events;
use std::collections::BTreeSet;
use strata_api::agent_link::{RunTask, RunTaskGroup, ToAgent};
use strata_api::ids::validate_id;
use strata_api::scheduler::{Accept, Event, Operation, Update};
use strata_api::{
    AgentId, ExecutorInfo, ExecutorType, Filters, FrameworkId, OfferId, Reason, Source, Task,
    TaskInfo, TaskState, TaskStatus,
};
use strata_resources::{Resources, WireFormat};

/// The offers of one ACCEPT, merged: where and in which role they may be used.
pub(crate) struct Pool {
    pub(crate) agent: AgentId,
    pub(crate) role: String,
    pub(crate) resources: Resources,
    /// The shared resources of the offers (changed only by CREATE and DESTROY): every
    /// task of the ACCEPT may use them, however many others already do.
    pub(crate) offered_shared: Resources,
}

/// A task that passed validation, with what it consumes.
struct Checked {
    task: TaskInfo,
    task_resources: Resources,
    /// A custom executor started by this launch (charged once), with its resources.
    new_executor: Option<(ExecutorInfo, Resources)>,
}

/// Resources as Mesos' `operator<<` prints them in validation errors:
/// `cpus(allocated: r)(reservations: [(STATIC,r)]){REV}:1; mem(allocated: r):128`.
fn mesos_string(res: &Resources) -> String {
    if res.is_empty() {
        return "{}".into();
    }
    let one = |r: &strata_resources::Resource| {
        let mut s = r.name.clone();
        if let Some(role) = &r.allocation_role {
            s += &format!("(allocated: {role})");
        }
        if !r.reservations.is_empty() {
            let stack: Vec<String> = r
                .reservations
                .iter()
                .map(|v| {
                    format!(
                        "({},{}{})",
                        v.kind.as_str(),
                        v.role,
                        v.principal
                            .as_ref()
                            .map(|p| format!(",{p}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            s += &format!("(reservations: [{}])", stack.join(","));
        }
        if r.revocable {
            s += "{REV}";
        }
        if r.shared {
            s += "<SHARED>";
        }
        format!("{s}:{}", r.value)
    };
    res.iter().map(one).collect::<Vec<_>>().join("; ")
}

/// Mesos' "<what> revocable and non-revocable resources: …" error for a resource name
/// used both ways.
fn no_revocable_mix(res: &Resources, what: &str) -> Result<(), String> {
    match crate::oversubscription::mixes_revocable(res) {
        Some(e) => Err(format!("{what} revocable and non-revocable resources: {e}")),
        None => Ok(()),
    }
}

fn with_role(res: Resources, role: &str) -> Result<Resources, String> {
    if let Some(r) = res
        .iter()
        .find(|r| r.allocation_role.as_deref().is_some_and(|a| a != role))
    {
        return Err(format!(
            "Resource '{}' is allocated to a role other than '{role}'",
            r.name
        ));
    }
    Ok(res.with_allocation_role(role))
}

fn parse_resources(
    wire: &[strata_resources::WireResource],
    role: &str,
    what: &str,
) -> Result<Resources, String> {
    let res =
        Resources::from_wire(wire).map_err(|e| format!("{what} uses invalid resources: {e}"))?;
    with_role(res, role)
}

impl Master {
    /// ACCEPT: validates the offers, then runs each operation in order.
    pub(crate) fn accept(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        accept: Accept,
        out: &mut Vec<Effect>,
    ) {
        self.metrics.messages_launch_tasks += 1;
        let mut pool = match self.take_offers(fid, &accept.offer_ids) {
            Ok(pool) => pool,
            Err(error) => {
                let message = format!("Task launched with invalid offers: {error}");
                self.drop_launches(
                    now,
                    fid,
                    &accept.operations,
                    &message,
                    Reason::InvalidOffers,
                    out,
                );
                return;
            }
        };
        if !self.agents.get(&pool.agent).is_some_and(|a| a.connected()) {
            self.drop_launches(
                now,
                fid,
                &accept.operations,
                "Agent disconnected",
                Reason::AgentDisconnected,
                out,
            );
        } else {
            for op in accept.operations {
                self.apply_operation(now, fid, &mut pool, op, out);
            }
        }
        let refuse = Filters::refuse_seconds_effective(accept.filters.as_ref());
        let until = (refuse > 0.0).then_some(now + refuse);
        self.allocator
            .recover(fid, &pool.agent, &pool.resources, until);
    }

    fn apply_operation(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        pool: &mut Pool,
        op: Operation,
        out: &mut Vec<Effect>,
    ) {
        if crate::reservations::is_resource_operation(&op.kind) {
            self.apply_offer_operation(fid, pool, &op, out);
            return;
        }
        match (op.kind.as_str(), op.launch, op.launch_group) {
            ("LAUNCH", Some(launch), _) => {
                for task in launch.task_infos {
                    if op.id.is_some() {
                        self.task_error(
                            now,
                            fid,
                            &task,
                            "The `id` field cannot be set on LAUNCH operations",
                            Reason::TaskInvalid,
                            out,
                        );
                        continue;
                    }
                    match self.check_task(fid, pool, task.clone()) {
                        Ok(checked) => self.launch(fid, pool, vec![checked], None, out),
                        Err(message) => {
                            self.task_error(now, fid, &task, &message, Reason::TaskInvalid, out)
                        }
                    }
                }
            }
            ("LAUNCH_GROUP", _, Some(group)) => {
                let tasks = group.task_group.tasks.clone();
                match self.check_group(fid, pool, group.executor, group.task_group.tasks) {
                    Ok((executor, checked)) => self.launch(fid, pool, checked, Some(executor), out),
                    Err(message) => {
                        for task in &tasks {
                            self.task_error(
                                now,
                                fid,
                                task,
                                &message,
                                Reason::TaskGroupInvalid,
                                out,
                            );
                        }
                    }
                }
            }
            (kind, _, _) => {
                tracing::warn!(framework_id = %fid, operation = kind, "offer operation not supported; ignored");
            }
        }
    }

    /// Mesos' offer checks (first error wins); on error every named offer of this
    /// framework is discarded and its resources returned.
    fn take_offers(&mut self, fid: &FrameworkId, ids: &[OfferId]) -> Result<Pool, String> {
        let result = self.validate_offers(fid, ids);
        match result {
            Ok(()) => {
                let mut pool: Option<Pool> = None;
                for id in ids {
                    let Some(r) = self.detach_offer(id) else {
                        continue;
                    };
                    match pool.as_mut() {
                        Some(p) => {
                            p.offered_shared += shared_volumes::shared(&r.resources);
                            p.resources += r.resources;
                        }
                        None => {
                            pool = Some(Pool {
                                agent: r.agent_id,
                                role: r.role,
                                offered_shared: shared_volumes::shared(&r.resources),
                                resources: r.resources,
                            })
                        }
                    }
                }
                pool.ok_or_else(|| "No offers specified".to_string())
            }
            Err(e) => {
                for id in ids {
                    if self.offers.get(id).is_some_and(|o| &o.framework_id == fid) {
                        self.remove_offer(id, None);
                    }
                }
                Err(e)
            }
        }
    }

    fn validate_offers(&self, fid: &FrameworkId, ids: &[OfferId]) -> Result<(), String> {
        if ids.is_empty() {
            return Err("No offers specified".into());
        }
        let mut seen = BTreeSet::new();
        for id in ids {
            if !seen.insert(id) {
                return Err(format!("Duplicate offer {id} in offer list"));
            }
        }
        // Each validator runs over the whole list before the next one, as in Mesos.
        let mut offers = Vec::new();
        for id in ids {
            offers.push(
                self.offers
                    .get(id)
                    .ok_or_else(|| format!("Offer {id} is no longer valid"))?,
            );
        }
        if let Some(o) = offers.iter().find(|o| &o.framework_id != fid) {
            return Err(format!(
                "Offer {} has invalid framework {} while framework {fid} is expected",
                o.id, o.framework_id
            ));
        }
        let Some(first) = offers.first().copied() else {
            return Err("No offers specified".into());
        };
        if let Some(o) = offers.iter().find(|o| o.role != first.role) {
            // Quotes unbalanced as in Mesos' message.
            return Err(format!(
                "Aggregated offers must be allocated to the same role. Offer {} uses role '{} but another is using role '{}",
                o.id, o.role, first.role
            ));
        }
        if let Some(o) = offers.iter().find(|o| o.agent_id != first.agent_id) {
            return Err(format!(
                "Aggregated offers must belong to one single agent. Offer {} uses agent {} and agent {}",
                o.id, o.agent_id, first.agent_id
            ));
        }
        Ok(())
    }

    /// Validates one LAUNCH task against the framework's tasks and the pool.
    fn check_task(
        &self,
        fid: &FrameworkId,
        pool: &Pool,
        task: TaskInfo,
    ) -> Result<Checked, String> {
        self.check_task_common(fid, pool, &task)?;
        if task.command.is_some() == task.executor.is_some() {
            return Err("Task should have at least one (but not both) of CommandInfo or ExecutorInfo present".into());
        }
        let task_resources = parse_resources(&task.resources, &pool.role, "Task")?;
        if task_resources.is_empty() {
            return Err("Task uses no resources".into());
        }
        no_revocable_mix(&task_resources, "Task mixes")?;
        let new_executor = match &task.executor {
            Some(e) => self.check_executor(fid, pool, e, false)?,
            None => None,
        };
        let mut needed = task_resources.clone();
        let mut parts = vec![&task_resources];
        if let Some((_, r)) = &new_executor {
            needed += r.clone();
            parts.push(r);
        }
        no_revocable_mix(&needed, "Task and its executor mix")?;
        if !shared_volumes::fits(&pool.resources, &pool.offered_shared, &parts) {
            return Err(format!(
                "Total resources {} required by task and its executor is more than available {}",
                mesos_string(&needed),
                mesos_string(&pool.resources)
            ));
        }
        Ok(Checked {
            task,
            task_resources,
            new_executor,
        })
    }

    fn check_task_common(
        &self,
        fid: &FrameworkId,
        pool: &Pool,
        task: &TaskInfo,
    ) -> Result<(), String> {
        validate_id(task.task_id.as_str())
            .map_err(|e| format!("Task has an invalid TaskID: {e}"))?;
        if let Some(hc) = &task.health_check {
            hc.validate()
                .map_err(|e| format!("Task uses invalid health check: {e}"))?;
        }
        if let Some(check) = &task.check {
            check
                .validate()
                .map_err(|e| format!("Task uses invalid check: {e}"))?;
        }
        let fw = self
            .frameworks
            .get(fid)
            .ok_or("Framework is not subscribed")?;
        if fw.tasks.contains_key(&task.task_id) {
            return Err(format!("Task has duplicate ID: {}", task.task_id));
        }
        if fw.unreachable_tasks.contains_key(&task.task_id) {
            return Err(format!(
                "Task reuses the ID of an unreachable task: {}",
                task.task_id
            ));
        }
        match task.target_agent() {
            Some(a) if a == &pool.agent => {}
            Some(a) => {
                return Err(format!(
                    "Task uses invalid agent {a} while agent {} is expected",
                    pool.agent
                ))
            }
            None => {
                return Err(format!(
                    "Task uses invalid agent (none) while agent {} is expected",
                    pool.agent
                ))
            }
        }
        match &task.container {
            Some(c) => c
                .validate()
                .map_err(|e| format!("Task's `ContainerInfo` is invalid: {e}")),
            None => Ok(()),
        }
    }

    /// Validates an executor; returns it with its resources if it must be started.
    fn check_executor(
        &self,
        fid: &FrameworkId,
        pool: &Pool,
        e: &ExecutorInfo,
        group: bool,
    ) -> Result<Option<(ExecutorInfo, Resources)>, String> {
        validate_id(e.executor_id.as_str())
            .map_err(|err| format!("Executor has an invalid ExecutorID: {err}"))?;
        if e.framework_id.as_ref().is_some_and(|f| f != fid) {
            return Err(format!(
                "ExecutorInfo has an invalid FrameworkID (Actual: {:?} vs Expected: {fid})",
                e.framework_id
            ));
        }
        match (group, e.kind) {
            (false, Some(ExecutorType::Default)) => {
                return Err("'ExecutorInfo.type' must be 'CUSTOM' for LAUNCH".into())
            }
            (true, None) => return Err("'ExecutorInfo.type' must be set".into()),
            _ => {}
        }
        if let Some(c) = &e.container {
            c.validate()
                .map_err(|err| format!("Executor's `ContainerInfo` is invalid: {err}"))?;
            if group && c.is_docker() {
                return Err("Docker ContainerInfo is not supported on the executor".into());
            }
        }
        if e.kind != Some(ExecutorType::Default) && e.command.is_none() {
            return Err("'ExecutorInfo.command' must be set for a custom executor".into());
        }
        let resources = parse_resources(&e.resources, &pool.role, "Executor")?;
        no_revocable_mix(&resources, "Executor mixes")?;
        let existing = self
            .frameworks
            .get(fid)
            .and_then(|f| f.executors.get(&pool.agent))
            .and_then(|m| m.get(&e.executor_id));
        match existing {
            Some(old) => {
                let mut normalized = e.clone();
                normalized.framework_id = Some(fid.clone());
                normalized.resources = resources.to_wire(WireFormat::PostRefinement);
                if old != &normalized {
                    return Err(format!(
                        "ExecutorInfo is not compatible with existing ExecutorInfo for executor {}",
                        e.executor_id
                    ));
                }
                Ok(None)
            }
            None => {
                let mut info = e.clone();
                info.framework_id = Some(fid.clone());
                info.resources = resources.to_wire(WireFormat::PostRefinement);
                Ok(Some((info, resources)))
            }
        }
    }

    /// Validates a task group as a whole: all tasks launch, or none.
    fn check_group(
        &self,
        fid: &FrameworkId,
        pool: &Pool,
        executor: ExecutorInfo,
        tasks: Vec<TaskInfo>,
    ) -> Result<(ExecutorInfo, Vec<Checked>), String> {
        if tasks.is_empty() {
            return Err("Task group is empty".into());
        }
        let new_executor = self.check_executor(fid, pool, &executor, true)?;
        let mut needed = new_executor
            .as_ref()
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let mut ids = BTreeSet::new();
        let mut checked = Vec::new();
        for task in tasks {
            self.check_task_common(fid, pool, &task)?;
            if task.container.as_ref().is_some_and(|c| c.is_docker()) {
                return Err("Docker ContainerInfo is not supported on the task".into());
            }
            if !ids.insert(task.task_id.clone()) {
                return Err(format!(
                    "Task group has duplicate task ID: {}",
                    task.task_id
                ));
            }
            if task
                .executor
                .as_ref()
                .is_some_and(|e| e.executor_id != executor.executor_id)
            {
                return Err(
                    "The `ExecutorInfo` of a task in the group must match the group's".into(),
                );
            }
            if task.command.is_none() && task.container.is_none() {
                return Err(format!(
                    "Task {} in a task group needs a command",
                    task.task_id
                ));
            }
            let task_resources = parse_resources(&task.resources, &pool.role, "Task")?;
            no_revocable_mix(&task_resources, "Task mixes")?;
            needed += task_resources.clone();
            checked.push(Checked {
                task,
                task_resources,
                new_executor: None,
            });
        }
        no_revocable_mix(&needed, "Task group and executor mix")?;
        let mut parts: Vec<&Resources> = checked.iter().map(|c| &c.task_resources).collect();
        if let Some((_, r)) = &new_executor {
            parts.push(r);
        }
        if !shared_volumes::fits(&pool.resources, &pool.offered_shared, &parts) {
            return Err(format!(
                "Total resources {} required by task group and its executor are more than available {}",
                mesos_string(&needed),
                mesos_string(&pool.resources)
            ));
        }
        let info = new_executor
            .as_ref()
            .map(|(i, _)| i.clone())
            .unwrap_or(executor);
        if let (Some(first), Some(e)) = (checked.first_mut(), new_executor) {
            first.new_executor = Some(e);
        }
        Ok((info, checked))
    }

    /// Records and sends validated tasks (one task, or one group on `group_executor`).
    fn launch(
        &mut self,
        fid: &FrameworkId,
        pool: &mut Pool,
        tasks: Vec<Checked>,
        group_executor: Option<ExecutorInfo>,
        out: &mut Vec<Effect>,
    ) {
        if !self.frameworks.contains_key(fid) {
            return;
        }
        // Tasks on a shared volume whose offered copy another task already took.
        let uses = tasks.iter().flat_map(|c| {
            let executor = c.new_executor.as_ref().map(|(_, r)| r);
            executor.into_iter().chain([&c.task_resources])
        });
        let extra = shared_volumes::extra_copies(&pool.resources, uses);
        self.allocate_extra_copies(fid, &pool.agent, &extra);
        let Some(fw) = self.frameworks.get_mut(fid) else {
            return;
        };
        let mut infos = Vec::new();
        for c in tasks {
            if let Some((info, res)) = &c.new_executor {
                pool.resources = pool.resources.saturating_sub(res);
                fw.executors
                    .entry(pool.agent.clone())
                    .or_default()
                    .insert(info.executor_id.clone(), info.clone());
            }
            pool.resources = pool.resources.saturating_sub(&c.task_resources);
            let mut task = c.task;
            task.agent_id = Some(pool.agent.clone());
            task.resources = c.task_resources.to_wire(WireFormat::PostRefinement);
            let executor_id = group_executor
                .as_ref()
                .or(task.executor.as_ref())
                .map(|e| e.executor_id.clone());
            let record = TaskRecord::new(
                task_record(fid, &pool.agent, &task, executor_id, &fw.info.user),
                // A clone has no spare capacity (parsing leaves room for four resources).
                c.task_resources.clone(),
                &pool.role,
                false,
            );
            fw.tasks.insert(task.task_id.clone(), Box::new(record));
            if let Some(agent) = self.agents.get_mut(&pool.agent) {
                agent.tasks.insert((fid.clone(), task.task_id.clone()));
            }
            infos.push(task);
        }
        let framework = fw.info_with_id();
        for t in &infos {
            let fw = self.frameworks.get(fid).expect("exists above");
            if let Some(rec) = fw.tasks.get(&t.task_id) {
                self.operator_event(|| operator_events::task_added(rec), out);
            }
        }
        self.metrics.tasks_launched += infos.len() as u64;
        let message = match group_executor {
            Some(executor) => ToAgent::RunTaskGroup(RunTaskGroup {
                framework,
                executor,
                task_group: strata_api::TaskGroupInfo { tasks: infos },
            }),
            None => {
                let Some(task) = infos.pop() else { return };
                let executor = task.executor.clone();
                ToAgent::RunTask(RunTask {
                    framework,
                    executor,
                    task,
                })
            }
        };
        self.send_agent(&pool.agent, message, out);
    }

    /// TASK_ERROR for an invalid task (nothing recorded).
    fn task_error(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        task: &TaskInfo,
        message: &str,
        reason: Reason,
        out: &mut Vec<Effect>,
    ) {
        tracing::info!(framework_id = %fid, task_id = %task.task_id, message, "task invalid");
        let mut status = TaskStatus::new(task.task_id.clone(), TaskState::Error).with(
            Source::Master,
            Some(reason),
            message,
        );
        status.timestamp = Some(now);
        status.agent_id = task.target_agent().cloned();
        self.metrics.tasks_error += 1;
        self.send_framework(fid, Event::Update(Update { status }), out);
    }

    /// TASK_DROPPED (LOST without PARTITION_AWARE) for every task in the operations.
    fn drop_launches(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        ops: &[Operation],
        message: &str,
        reason: Reason,
        out: &mut Vec<Effect>,
    ) {
        let Some(fw) = self.frameworks.get(fid) else {
            return;
        };
        let state = fw.visible_state(TaskState::Dropped);
        let tasks = ops.iter().flat_map(|op| {
            let launch = op.launch.iter().flat_map(|l| l.task_infos.iter());
            let group = op
                .launch_group
                .iter()
                .flat_map(|g| g.task_group.tasks.iter());
            launch.chain(group)
        });
        let mut updates = Vec::new();
        for task in tasks {
            let mut status = TaskStatus::new(task.task_id.clone(), state).with(
                Source::Master,
                Some(reason),
                message,
            );
            status.timestamp = Some(now);
            status.agent_id = task.target_agent().cloned();
            updates.push(status);
        }
        for status in updates {
            self.metrics.tasks_dropped += 1;
            self.send_framework(fid, Event::Update(Update { status }), out);
        }
    }
}

/// The master's wire record of a new task (STAGING, no statuses yet).
fn task_record(
    fid: &FrameworkId,
    agent: &AgentId,
    t: &TaskInfo,
    executor_id: Option<strata_api::ExecutorId>,
    user: &str,
) -> Task {
    Task {
        name: t.name.clone(),
        task_id: t.task_id.clone(),
        framework_id: fid.clone(),
        executor_id,
        agent_id: agent.clone(),
        state: TaskState::Staging,
        // Kept once, parsed, in `TaskRecord::resources`.
        resources: Vec::new(),
        statuses: Vec::new(),
        status_update_state: None,
        status_update_uuid: None,
        labels: t.labels.clone(),
        discovery: t.discovery.clone(),
        container: t.container.clone().map(Box::new),
        health_check: t.health_check.clone().map(Box::new),
        kill_policy: t.kill_policy.clone(),
        user: Some(
            t.command
                .as_ref()
                .and_then(|c| c.user.clone())
                .unwrap_or_else(|| user.to_string()),
        ),
        limits: t.limits.clone(),
        container_id: None,
    }
}
