//! The core's side of health checks and checks: probers start when a task's process (or
//! container) runs, aimed at it (`Task::probe_target`), and stop when a kill starts or the
//! process ends (Mesos pauses its checkers then, so no TASK_RUNNING follows a kill);
//! results become TASK_RUNNING updates copied from the last one (`healthy` with
//! REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, `check_status` with
//! REASON_TASK_CHECK_STATUS_UPDATED); enough health failures kill the task.

use super::probe::{HealthVerdict, Judge, Poll, ProbeKind, ProbeOutcome, Prober};
use super::{kill_grace, Core, Effect, KillCause, ProbeRequest};
use std::time::Duration;
use strata_api::{CheckStatusInfo, Reason, TaskId, TaskStatus};

impl Core {
    /// The task's process or container runs: set up its health check and check against
    /// it, timed from now. An invalid one (or one that cannot reach the container) is
    /// logged and skipped; the task runs without it, as in Mesos.
    pub(super) fn start_probers(&mut self, task_id: &TaskId) {
        let now = self.now.mono;
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        let target = task.probe_target();
        let health = (task.info.health_check.as_ref()).map(|h| Prober::health(h, now, &target));
        let check = (task.info.check.as_ref()).map(|c| Prober::check(c, now, &target));
        for (what, prober) in [("health check", health), ("check", check)] {
            match prober {
                Some(Ok(prober)) => task.probers.push(prober),
                Some(Err(error)) => {
                    tracing::error!(%task_id, %error, "Not running the task's {what}")
                }
                None => {}
            }
        }
    }

    /// Stops the task's probers; a probe in flight is abandoned (its process killed).
    pub(super) fn stop_probers(&mut self, task_id: &TaskId) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            return;
        };
        for mut prober in task.probers.drain(..) {
            if let Some(seq) = prober.schedule.stop() {
                self.out.push(Effect::CancelProbe {
                    task_id: task_id.clone(),
                    kind: prober.kind,
                    seq,
                });
            }
        }
    }

    /// The deadlines of every prober (next probe due, or a running probe's timeout).
    pub(super) fn probe_deadlines(&self) -> impl Iterator<Item = Duration> + '_ {
        self.tasks
            .values()
            .flat_map(|t| t.probers.iter().filter_map(|p| p.schedule.deadline()))
    }

    /// Starts due probes; a probe past its timeout is abandoned and counts as an error.
    pub(super) fn poll_probers(&mut self) {
        let now = self.now.mono;
        let mut timed_out = Vec::new();
        for (task_id, task) in self.tasks.iter_mut() {
            for prober in task.probers.iter_mut() {
                let kind = prober.kind;
                match prober.schedule.poll(now) {
                    Some(Poll::Start(seq)) => {
                        self.out.push(Effect::Probe(Box::new(ProbeRequest {
                            task_id: task_id.clone(),
                            kind,
                            seq,
                            probe: prober.probe.clone(),
                        })))
                    }
                    Some(Poll::TimedOut(seq)) => {
                        let task_id = task_id.clone();
                        let timeout = prober.schedule.timeout().unwrap_or_default();
                        self.out.push(Effect::CancelProbe {
                            task_id: task_id.clone(),
                            kind,
                            seq,
                        });
                        timed_out.push((task_id, kind, format!("timed out after {timeout:?}")));
                    }
                    None => {}
                }
            }
        }
        for (task_id, kind, message) in timed_out {
            self.judge(&task_id, kind, ProbeOutcome::Error(message));
        }
    }

    /// A probe ended; answers of abandoned probes are ignored.
    pub(super) fn on_probe_done(
        &mut self,
        task_id: &TaskId,
        kind: ProbeKind,
        seq: u64,
        outcome: ProbeOutcome,
    ) {
        let now = self.now.mono;
        let current = self
            .tasks
            .get_mut(task_id)
            .and_then(|t| t.probers.iter_mut().find(|p| p.kind == kind))
            .is_some_and(|p| p.schedule.finish(seq, now));
        if current {
            self.judge(task_id, kind, outcome);
        } else {
            tracing::debug!(%task_id, ?kind, seq, "Ignoring the result of an abandoned probe");
        }
    }

    fn judge(&mut self, task_id: &TaskId, kind: ProbeKind, outcome: ProbeOutcome) {
        let now = self.now.mono;
        let Some(prober) = self
            .tasks
            .get_mut(task_id)
            .and_then(|t| t.probers.iter_mut().find(|p| p.kind == kind))
        else {
            return;
        };
        match &mut prober.judge {
            Judge::Health(tracker) => {
                let healthy = outcome.is_healthy();
                let verdict = tracker.on_result(now, healthy);
                if !healthy {
                    let failures = tracker.failures();
                    tracing::warn!(%task_id, ?outcome, failures, "Health check failed");
                }
                if let Some(verdict) = verdict {
                    self.report_health(task_id, verdict);
                }
            }
            Judge::Check(tracker) => {
                if let Some(status) = tracker.on_outcome(&outcome) {
                    self.report_check(task_id, status);
                }
            }
        }
    }

    fn report_health(&mut self, task_id: &TaskId, verdict: HealthVerdict) {
        tracing::info!(%task_id, healthy = verdict.healthy, "Task health changed or failed");
        self.send_derived(task_id, Reason::TaskHealthCheckStatusUpdated, |s| {
            s.healthy = Some(verdict.healthy)
        });
        if !verdict.kill {
            return;
        }
        tracing::warn!(%task_id, "Killing task: its health check failed too many times");
        let Some(task) = self.tasks.get(task_id) else {
            return;
        };
        let grace = kill_grace(None, task.info.kill_policy.as_ref());
        // Mesos marks the whole default executor unhealthy; a task's group is what
        // its TODO (MESOS-8543) intends.
        let group = task.group;
        for (id, t) in self.tasks.iter_mut() {
            if id == task_id || (group.is_some() && t.group == group) {
                t.unhealthy = true;
            }
        }
        self.start_kill(task_id, KillCause::HealthCheck, grace);
    }

    fn report_check(&mut self, task_id: &TaskId, status: CheckStatusInfo) {
        tracing::info!(%task_id, ?status, "Task check result changed");
        self.send_derived(task_id, Reason::TaskCheckStatusUpdated, |s| {
            s.check_status = Some(status)
        });
    }

    /// A copy of the task's last update (its TASK_RUNNING, with earlier health and check
    /// results) with a new reason and one more change.
    fn send_derived(
        &mut self,
        task_id: &TaskId,
        reason: Reason,
        change: impl FnOnce(&mut TaskStatus),
    ) {
        let Some(mut status) = self.tasks.get(task_id).and_then(|t| t.last_status.clone()) else {
            return;
        };
        status.reason = Some(reason);
        change(&mut status);
        self.emit(task_id, status);
    }
}
