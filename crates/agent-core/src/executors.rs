//! Executors: the v1 executor API (SUBSCRIBE, UPDATE, MESSAGE), container start/exit,
//! KILL, SHUTDOWN of executors and frameworks, timers, and garbage collection of what
//! has finished.

use crate::agent::Agent;
use crate::checkpoint::CheckpointOp;
use crate::io::{ConnId, Effect, ExecutorKind, Reply};
use crate::state::{ExecutorPhase, ExecutorState, TaskEntry};
use base64::Engine;
use strata_api::agent_link::{ExecutorExited, FrameworkMessage, ToMaster};
use strata_api::executor::{Acknowledged, CallBody, Event, Kill, Message, Subscribe, Subscribed};
use strata_api::status::ContainerStatus;
use strata_api::{
    ContainerId, ExecutorId, FrameworkId, KillPolicy, Reason, TaskId, TaskState, TaskStatus,
};

/// How long a built-in executor's TASK_FAILED waits for its container to exit.
const HOLD_FAILED_SECS: f64 = 5.0;

/// Reasons that mean the container hit a resource limit.
fn is_limitation(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::ContainerLimitation
            | Reason::ContainerLimitationMemory
            | Reason::ContainerLimitationDisk
    )
}

fn valid_uuid(uuid: Option<&str>) -> bool {
    uuid.and_then(|u| base64::engine::general_purpose::STANDARD.decode(u).ok())
        .is_some_and(|b| b.len() == 16)
}

impl Agent {
    fn executor_mut(
        &mut self,
        fid: &FrameworkId,
        eid: &ExecutorId,
    ) -> Result<&mut ExecutorState, Reply> {
        let fw = self.frameworks.get_mut(fid).ok_or_else(|| {
            Reply::Error(400, format!("Framework {fid} is not known to this agent"))
        })?;
        fw.executors.get_mut(eid).ok_or_else(|| {
            Reply::Error(
                400,
                format!("Executor {eid} of framework {fid} is not known to this agent"),
            )
        })
    }

    /// SUBSCRIBE: attach the stream, send SUBSCRIBED, re-ingest resent updates, deliver
    /// queued tasks.
    pub(crate) fn executor_subscribe(
        &mut self,
        now: f64,
        conn: ConnId,
        fid: &FrameworkId,
        eid: &ExecutorId,
        sub: Subscribe,
        out: &mut Vec<Effect>,
    ) -> Reply {
        let mut agent_info = self.cfg.agent_info.clone();
        agent_info.id = self.agent_id.clone();
        let framework_info = match self.frameworks.get(fid) {
            Some(f) => f.info.clone(),
            None => {
                return Reply::Error(400, format!("Framework {fid} is not known to this agent"))
            }
        };
        let ex = match self.executor_mut(fid, eid) {
            Ok(ex) => ex,
            Err(reply) => return reply,
        };
        if ex.phase == ExecutorPhase::Terminated {
            return Reply::Error(400, format!("Executor {eid} has terminated"));
        }
        if let Some(old) = ex.conn.replace(conn) {
            out.push(Effect::CloseExecutor { conn: old });
        }
        let shutting_down = matches!(ex.phase, ExecutorPhase::Terminating { .. });
        if !shutting_down {
            ex.phase = ExecutorPhase::Running;
        }
        let subscribed = Subscribed {
            executor_info: ex.info.clone(),
            framework_info,
            agent_info,
            container_id: Some(ex.container_id.clone()),
        };
        out.push(Effect::Executor {
            conn,
            event: Box::new(Event::Subscribed(subscribed)),
        });
        let mut queued = std::mem::take(&mut ex.queued);
        // After an agent restart, the executor may already hold tasks the agent only knew
        // as queued: those it lists (or sent updates for) are running, not to be sent again.
        let held: std::collections::BTreeSet<TaskId> = sub
            .unacknowledged_tasks
            .iter()
            .map(|t| t.task_id.clone())
            .chain(
                sub.unacknowledged_updates
                    .iter()
                    .map(|u| u.status.task_id.clone()),
            )
            .collect();
        for group in queued.iter_mut() {
            let (have, rest): (Vec<_>, Vec<_>) = std::mem::take(group)
                .into_iter()
                .partition(|t| held.contains(&t.task_id));
            for t in have {
                let entry = TaskEntry {
                    info: t,
                    state: TaskState::Staging,
                    latest: None,
                };
                ex.launched.insert(entry.info.task_id.clone(), entry);
            }
            *group = rest;
        }
        queued.retain(|g| !g.is_empty());
        self.conns.insert(conn, (fid.clone(), eid.clone()));
        for u in sub.unacknowledged_updates {
            self.ingest_update(now, fid, eid, u.status, out);
        }
        if shutting_down {
            out.push(Effect::Executor {
                conn,
                event: Box::new(Event::Shutdown),
            });
        } else {
            if let Ok(ex) = self.executor_mut(fid, eid) {
                ex.queued = queued;
            }
            self.deliver_queued(fid, eid, out);
        }
        Reply::Stream
    }

    /// UPDATE, MESSAGE or HEARTBEAT from a subscribed executor.
    pub(crate) fn executor_call(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        eid: &ExecutorId,
        body: CallBody,
        out: &mut Vec<Effect>,
    ) -> Reply {
        match self.executor_mut(fid, eid) {
            Err(reply) => return reply,
            Ok(ex) if ex.conn.is_none() => {
                return Reply::Error(403, "Executor is not subscribed".into())
            }
            Ok(_) => {}
        }
        match body {
            CallBody::Subscribe(_) => {
                Reply::Error(400, "SUBSCRIBE must open its own stream".into())
            }
            CallBody::Heartbeat => Reply::Accepted,
            CallBody::Message(m) => {
                out.push(Effect::Master(Box::new(ToMaster::ExecutorMessage(
                    FrameworkMessage {
                        framework_id: fid.clone(),
                        executor_id: eid.clone(),
                        data: m.data,
                    },
                ))));
                Reply::Accepted
            }
            CallBody::Update(u) => {
                // Mesos `validateExecutorCall`, in its order.
                let s = &u.status;
                let invalid = if s.uuid.is_none() {
                    Some("Expecting 'uuid' to be present".to_string())
                } else if !valid_uuid(s.uuid.as_deref()) {
                    Some("Not a valid UUID".to_string())
                } else if let Some(other) = s.executor_id.as_ref().filter(|e| *e != eid) {
                    Some(format!("ExecutorID in Call: {eid} does not match ExecutorID in TaskStatus: {other}"))
                } else if s.source != Some(strata_api::Source::Executor) {
                    Some(format!("Received Call from executor {eid} of framework {fid} with invalid source, expecting 'SOURCE_EXECUTOR'"))
                } else if s.state == TaskState::Staging {
                    Some(format!("Received TASK_STAGING from executor {eid} of framework {fid} which is not allowed"))
                } else {
                    None
                };
                if let Some(why) = invalid {
                    self.counters.invalid_status_updates += 1;
                    return Reply::Error(400, format!("Failed to validate Executor::Call: {why}"));
                }
                self.ingest_update(now, fid, eid, u.status, out);
                Reply::Accepted
            }
        }
    }

    /// Records an executor's update, queues it for the master and acknowledges it.
    fn ingest_update(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        eid: &ExecutorId,
        mut status: TaskStatus,
        out: &mut Vec<Effect>,
    ) {
        let agent_id = self.agent_id.clone();
        // As Mesos: a terminating framework cannot acknowledge, so its updates are dropped.
        if self.frameworks.get(fid).is_some_and(|f| f.terminating) {
            self.counters.invalid_status_updates += 1;
            return;
        }
        let Ok(ex) = self.executor_mut(fid, eid) else {
            return;
        };
        status.agent_id = agent_id;
        status.executor_id = Some(eid.clone());
        status.timestamp.get_or_insert(now);
        let cs = status
            .container_status
            .get_or_insert_with(ContainerStatus::default);
        cs.container_id = Some(ex.container_id.clone());
        cs.executor_pid = ex.pid;
        let tid = status.task_id.clone();
        if let Some(mut t) = ex.launched.remove(&tid) {
            t.state = status.state;
            t.latest = Some(status.clone());
            if status.state.is_terminal() {
                ex.terminated.insert(tid.clone(), t);
            } else {
                ex.launched.insert(tid.clone(), t);
            }
        }
        let conn = ex.conn;
        let uuid = status.uuid.clone().unwrap_or_default();
        // A built-in executor's TASK_FAILED may be the visible end of a container limit
        // (an OOM-killed command exits 137): hold it until the container is gone, so the
        // limitation's reason and message can replace the generic ones, as Mesos does.
        let builtin = !matches!(ex.kind, ExecutorKind::Custom(_));
        let state = status.state;
        if builtin && state == TaskState::Failed {
            ex.held.push((status, now + HOLD_FAILED_SECS));
        } else {
            self.push_update(now, fid, status, out);
        }
        self.counters.valid_status_updates += 1;
        self.count_terminal(state);
        if let Some(conn) = conn {
            let ack = Event::Acknowledged(Acknowledged { task_id: tid, uuid });
            out.push(Effect::Executor {
                conn,
                event: Box::new(ack),
            });
        }
    }

    fn count_terminal(&mut self, state: TaskState) {
        let c = &mut self.counters;
        match state {
            TaskState::Finished => c.tasks_finished += 1,
            TaskState::Failed => c.tasks_failed += 1,
            TaskState::Killed => c.tasks_killed += 1,
            TaskState::Lost | TaskState::Dropped => c.tasks_lost += 1,
            TaskState::Gone => c.tasks_gone += 1,
            _ => {}
        }
    }

    /// The executor's stream ended; its process may still be alive.
    pub(crate) fn executor_stream_closed(&mut self, conn: ConnId) {
        let Some((fid, eid)) = self.conns.remove(&conn) else {
            return;
        };
        let Ok(ex) = self.executor_mut(&fid, &eid) else {
            return;
        };
        if ex.conn == Some(conn) {
            ex.conn = None;
            if ex.phase == ExecutorPhase::Running {
                ex.phase = ExecutorPhase::Disconnected;
            }
        }
    }

    /// The container is started and isolated: tasks held back for it may go now.
    pub(crate) fn container_started(&mut self, cid: &ContainerId, pid: u32, out: &mut Vec<Effect>) {
        let Some((fid, eid)) = self.containers.get(cid).cloned() else {
            return;
        };
        if let Ok(ex) = self.executor_mut(&fid, &eid) {
            ex.pid = Some(pid);
        }
        self.deliver_queued(&fid, &eid, out);
    }

    /// Sends queued tasks and kills to a subscribed executor whose container is started.
    /// Until the shell reports the container started (which it does only after isolating
    /// it), an executor that subscribed quickly gets nothing: a task forked before the
    /// executor joined its cgroups would escape them.
    fn deliver_queued(&mut self, fid: &FrameworkId, eid: &ExecutorId, out: &mut Vec<Effect>) {
        let Ok(ex) = self.executor_mut(fid, eid) else {
            return;
        };
        let (Some(conn), Some(_)) = (ex.conn, ex.pid) else {
            return;
        };
        if matches!(
            ex.phase,
            ExecutorPhase::Terminating { .. } | ExecutorPhase::Terminated
        ) {
            return;
        }
        let queued = std::mem::take(&mut ex.queued);
        let kills = std::mem::take(&mut ex.pending_kills);
        for tasks in queued {
            self.deliver(fid, eid, tasks, out);
        }
        for kill in kills {
            out.push(Effect::Executor {
                conn,
                event: Box::new(Event::Kill(kill)),
            });
        }
    }

    /// A container hit a limit: its unfinished tasks will end with `reason` (as Mesos'
    /// container limitations do: TASK_FAILED, e.g. REASON_CONTAINER_LIMITATION_MEMORY).
    pub(crate) fn container_limited(&mut self, cid: &ContainerId, reason: Reason, message: String) {
        let Some((fid, eid)) = self.containers.get(cid).cloned() else {
            return;
        };
        if let Ok(ex) = self.executor_mut(&fid, &eid) {
            ex.termination = Some((TaskState::Failed, reason, message));
        }
    }

    pub(crate) fn container_failed(
        &mut self,
        now: f64,
        cid: &ContainerId,
        message: String,
        out: &mut Vec<Effect>,
    ) {
        self.counters.container_launch_errors += 1;
        let Some((fid, eid)) = self.containers.get(cid).cloned() else {
            return;
        };
        if let Ok(ex) = self.executor_mut(&fid, &eid) {
            let text = format!("Failed to launch container: {message}");
            ex.termination = Some((TaskState::Failed, Reason::ContainerLaunchFailed, text));
        }
        self.container_exited(now, cid, -1, out);
    }

    /// Releases held TASK_FAILED updates of an executor, with the container's limitation
    /// (if it hit one) as their reason and message.
    fn release_held(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        eid: &ExecutorId,
        only_due: bool,
        out: &mut Vec<Effect>,
    ) {
        let Ok(ex) = self.executor_mut(fid, eid) else {
            return;
        };
        let limitation = ex
            .termination
            .clone()
            .filter(|(_, reason, _)| is_limitation(*reason));
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut ex.held)
            .into_iter()
            .partition(|(_, t)| !only_due || *t <= now);
        ex.held = keep;
        let mut release = Vec::new();
        for (mut status, _) in due {
            if let Some((_, reason, message)) = &limitation {
                status.reason = Some(*reason);
                status.message = Some(message.clone());
                if let Some(t) = ex.terminated.get_mut(&status.task_id) {
                    t.latest = Some(status.clone());
                }
            }
            release.push(status);
        }
        for status in release {
            self.push_update(now, fid, status, out);
        }
    }

    /// The executor process ended: unfinished tasks get an agent-made terminal update.
    pub(crate) fn container_exited(
        &mut self,
        now: f64,
        cid: &ContainerId,
        status: i32,
        out: &mut Vec<Effect>,
    ) {
        let Some((fid, eid)) = self.containers.remove(cid) else {
            return;
        };
        let terminating = self.frameworks.get(&fid).is_some_and(|f| f.terminating);
        self.release_held(now, &fid, &eid, false, out);
        let Ok(ex) = self.executor_mut(&fid, &eid) else {
            return;
        };
        ex.phase = ExecutorPhase::Terminated;
        if let Some(conn) = ex.conn.take() {
            out.push(Effect::CloseExecutor { conn });
        }
        let (state, reason, message) = ex.termination.clone().unwrap_or((
            TaskState::Failed,
            Reason::ExecutorTerminated,
            "Executor terminated".into(),
        ));
        let mut orphans: Vec<TaskEntry> = std::mem::take(&mut ex.launched).into_values().collect();
        orphans.extend(ex.queued.drain(..).flatten().map(|info| TaskEntry {
            info,
            state: TaskState::Staging,
            latest: None,
        }));
        let command = ex.kind == ExecutorKind::Command;
        for mut t in orphans {
            let tid = t.info.task_id.clone();
            let mut s = self.agent_status(now, tid.clone(), state, reason, &message);
            s.executor_id = Some(eid.clone());
            t.state = state;
            t.latest = Some(s.clone());
            if let Ok(ex) = self.executor_mut(&fid, &eid) {
                ex.terminated.insert(tid, t);
            }
            if !terminating {
                self.count_terminal(state);
                self.push_update(now, &fid, s, out);
            }
        }
        self.counters.executors_terminated += 1;
        let exited = ExecutorExited {
            framework_id: fid.clone(),
            executor_id: eid,
            status,
            command_executor: command,
        };
        out.push(Effect::Master(Box::new(ToMaster::ExecutorExited(exited))));
        if terminating {
            self.streams.retain(|(f, _), _| f != &fid);
        }
        self.gc_framework(&fid, out);
    }

    /// KILL from the framework (via the master).
    pub(crate) fn kill_task(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        tid: &TaskId,
        policy: Option<KillPolicy>,
        out: &mut Vec<Effect>,
    ) {
        let found = self.frameworks.get(fid).and_then(|f| {
            f.executors
                .iter()
                .find(|(_, e)| e.has_task(tid))
                .map(|(id, _)| id.clone())
        });
        let Some(eid) = found else {
            if self.streams.contains_key(&(fid.clone(), tid.clone())) {
                return; // already terminal, update in flight
            }
            let partition_aware = self
                .frameworks
                .get(fid)
                .is_some_and(|f| f.info.has_capability("PARTITION_AWARE"));
            let state = if partition_aware {
                TaskState::Dropped
            } else {
                TaskState::Lost
            };
            let s = self.agent_status(
                now,
                tid.clone(),
                state,
                Reason::ExecutorTerminated,
                "Cannot find executor",
            );
            self.push_update(now, fid, s, out);
            return;
        };
        let Ok(ex) = self.executor_mut(fid, &eid) else {
            return;
        };
        let queued_at = ex
            .queued
            .iter()
            .position(|g| g.iter().any(|t| &t.task_id == tid));
        if let Some(at) = queued_at {
            // As Mesos: a task group is killed as a whole.
            let group = ex.queued.remove(at);
            let message = if group.len() > 1 || ex.kind == ExecutorKind::Default {
                "A task within the task group was killed before delivery to the executor"
            } else {
                "Killed before delivery to the executor"
            };
            let idle = ex.is_idle();
            for t in group {
                let mut s = self.agent_status(
                    now,
                    t.task_id,
                    TaskState::Killed,
                    Reason::TaskKilledDuringLaunch,
                    message,
                );
                s.executor_id = Some(eid.clone());
                self.count_terminal(TaskState::Killed);
                self.push_update(now, fid, s, out);
            }
            if idle {
                self.shutdown_executor(now, fid, &eid, out);
            }
        } else if ex.launched.contains_key(tid) {
            let kill = Kill {
                task_id: tid.clone(),
                kill_policy: policy,
            };
            match ex.conn {
                Some(conn) => out.push(Effect::Executor {
                    conn,
                    event: Box::new(Event::Kill(kill)),
                }),
                // Disconnected or recovering after an agent restart: sent on re-subscription.
                None => ex.pending_kills.push(kill),
            }
        }
    }

    /// SHUTDOWN_FRAMEWORK: no new tasks; every executor is shut down; its updates dropped.
    pub(crate) fn shutdown_framework(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        out: &mut Vec<Effect>,
    ) {
        let Some(fw) = self.frameworks.get_mut(fid) else {
            return;
        };
        fw.terminating = true;
        let eids: Vec<_> = fw.executors.keys().cloned().collect();
        for eid in eids {
            self.shutdown_executor(now, fid, &eid, out);
        }
        self.streams.retain(|(f, _), _| f != fid);
        self.gc_framework(fid, out);
    }

    /// SHUTDOWN an executor; its container is destroyed when the grace period ends.
    pub(crate) fn shutdown_executor(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        eid: &ExecutorId,
        out: &mut Vec<Effect>,
    ) {
        let default_grace = self.cfg.executor_shutdown_grace_period;
        let Ok(ex) = self.executor_mut(fid, eid) else {
            return;
        };
        if matches!(
            ex.phase,
            ExecutorPhase::Terminated | ExecutorPhase::Terminating { .. }
        ) {
            return;
        }
        let grace = ex
            .info
            .shutdown_grace_period
            .map(|d| d.to_std().as_secs_f64())
            .unwrap_or(default_grace);
        match ex.conn {
            Some(conn) => {
                out.push(Effect::Executor {
                    conn,
                    event: Box::new(Event::Shutdown),
                });
                ex.phase = ExecutorPhase::Terminating {
                    deadline: now + grace,
                };
            }
            None => {
                out.push(Effect::Destroy {
                    container_id: ex.container_id.clone(),
                });
                ex.phase = ExecutorPhase::Terminating {
                    deadline: f64::INFINITY,
                };
            }
        }
    }

    /// MESSAGE from a framework to an executor.
    pub(crate) fn framework_message(&mut self, m: FrameworkMessage, out: &mut Vec<Effect>) {
        let conn = self
            .frameworks
            .get(&m.framework_id)
            .and_then(|f| f.executors.get(&m.executor_id))
            .and_then(|e| e.conn);
        match conn {
            Some(conn) => {
                self.counters.valid_framework_messages += 1;
                out.push(Effect::Executor {
                    conn,
                    event: Box::new(Event::Message(Message { data: m.data })),
                });
            }
            None => self.counters.invalid_framework_messages += 1,
        }
    }

    /// Timers: update retries, executor registration timeouts, shutdown deadlines.
    pub(crate) fn tick(&mut self, now: f64, out: &mut Vec<Effect>) {
        self.retry_updates(now, out);
        let held: Vec<(FrameworkId, ExecutorId)> = self
            .frameworks
            .iter()
            .flat_map(|(fid, f)| {
                f.executors
                    .iter()
                    .filter(|(_, e)| e.held.iter().any(|(_, t)| *t <= now))
                    .map(move |(eid, _)| (fid.clone(), eid.clone()))
            })
            .collect();
        for (fid, eid) in held {
            self.release_held(now, &fid, &eid, true, out);
        }
        let registration = crate::launch::mesos_duration(self.cfg.executor_registration_timeout);
        let reregistration =
            crate::launch::mesos_duration(self.cfg.executor_reregistration_timeout);
        for fw in self.frameworks.values_mut() {
            // Mesos: a task that was running when its executor failed to come back is GONE
            // (LOST without PARTITION_AWARE), not FAILED.
            let gone = if fw.info.has_capability("PARTITION_AWARE") {
                TaskState::Gone
            } else {
                TaskState::Lost
            };
            for ex in fw.executors.values_mut() {
                match ex.phase {
                    ExecutorPhase::Registering { deadline } if deadline <= now => {
                        ex.termination = Some((
                            TaskState::Failed,
                            Reason::ExecutorRegistrationTimeout,
                            format!("Executor did not register within {registration}"),
                        ));
                        ex.phase = ExecutorPhase::Terminating {
                            deadline: f64::INFINITY,
                        };
                        out.push(Effect::Destroy {
                            container_id: ex.container_id.clone(),
                        });
                    }
                    ExecutorPhase::Recovering { deadline } if deadline <= now => {
                        ex.termination = Some((
                            gone,
                            Reason::ExecutorReregistrationTimeout,
                            format!("Executor did not reregister within {reregistration}"),
                        ));
                        ex.phase = ExecutorPhase::Terminating {
                            deadline: f64::INFINITY,
                        };
                        out.push(Effect::Destroy {
                            container_id: ex.container_id.clone(),
                        });
                    }
                    ExecutorPhase::Terminating { deadline } if deadline <= now => {
                        ex.phase = ExecutorPhase::Terminating {
                            deadline: f64::INFINITY,
                        };
                        out.push(Effect::Destroy {
                            container_id: ex.container_id.clone(),
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    /// Moves finished executors (and then empty frameworks) to the completed lists.
    pub(crate) fn gc_framework(&mut self, fid: &FrameworkId, out: &mut Vec<Effect>) {
        let max_ex = self.cfg.max_completed_executors_per_framework;
        let checkpointing = self.checkpointing(fid);
        let Some(fw) = self.frameworks.get_mut(fid) else {
            return;
        };
        let done: Vec<_> = fw
            .executors
            .iter()
            .filter(|(_, e)| {
                e.phase == ExecutorPhase::Terminated && (e.terminated.is_empty() || fw.terminating)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for eid in done {
            if let Some(mut e) = fw.executors.remove(&eid) {
                let finished: Vec<_> = std::mem::take(&mut e.terminated).into_values().collect();
                e.completed.extend(finished);
                fw.completed_executors.push_back(e);
                if checkpointing {
                    let op = CheckpointOp::RemoveExecutor {
                        framework_id: fid.clone(),
                        executor_id: eid.clone(),
                    };
                    out.push(Effect::Checkpoint(Box::new(op)));
                }
            }
        }
        while fw.completed_executors.len() > max_ex {
            fw.completed_executors.pop_front();
        }
        if fw.executors.is_empty() {
            if checkpointing {
                let op = CheckpointOp::RemoveFramework {
                    framework_id: fid.clone(),
                };
                out.push(Effect::Checkpoint(Box::new(op)));
            }
            if let Some(fw) = self.frameworks.remove(fid) {
                self.completed_frameworks.push_back(fw);
                while self.completed_frameworks.len() > self.cfg.max_completed_frameworks {
                    self.completed_frameworks.pop_front();
                }
            }
        }
    }
}
