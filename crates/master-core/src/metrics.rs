//! Counters behind `/metrics/snapshot`, named after Mesos' master metrics.

use crate::state::TaskRecord;
use strata_api::scheduler::Command;
use strata_api::TaskState;

/// Monotonic counters; gauges (tasks by state, agents, frameworks) are computed by the
/// views from live state.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub messages_register_framework: u64,
    pub messages_reregister_framework: u64,
    pub messages_unregister_framework: u64,
    pub messages_deactivate_framework: u64,
    pub messages_kill_task: u64,
    pub messages_status_update_acknowledgement: u64,
    pub messages_resource_request: u64,
    pub messages_launch_tasks: u64,
    pub messages_decline_offers: u64,
    pub messages_revive_offers: u64,
    pub messages_suppress_offers: u64,
    pub messages_reconcile_tasks: u64,
    pub messages_framework_to_executor: u64,
    pub messages_executor_to_framework: u64,
    pub messages_register_slave: u64,
    pub messages_reregister_slave: u64,
    pub messages_status_update: u64,
    pub messages_exited_executor: u64,
    pub valid_status_updates: u64,
    pub invalid_status_updates: u64,
    pub valid_status_update_acknowledgements: u64,
    pub invalid_status_update_acknowledgements: u64,
    pub valid_framework_to_executor_messages: u64,
    pub invalid_framework_to_executor_messages: u64,
    pub slave_registrations: u64,
    pub slave_reregistrations: u64,
    pub slave_removals: u64,
    pub slave_removals_reason_unhealthy: u64,
    pub slave_unreachable_completed: u64,
    pub tasks_launched: u64,
    pub tasks_finished: u64,
    pub tasks_failed: u64,
    pub tasks_killed: u64,
    pub tasks_lost: u64,
    pub tasks_error: u64,
    pub tasks_dropped: u64,
    pub tasks_gone: u64,
    pub tasks_gone_by_operator: u64,
    pub allocation_runs: u64,
}

impl Metrics {
    /// Counts a task reaching a terminal state (once per task).
    pub fn transition(&mut self, old: TaskState, t: &TaskRecord) {
        let new = t.state();
        if old == new || old.is_terminal() || !new.is_terminal() {
            return;
        }
        let slot = match new {
            TaskState::Finished => &mut self.tasks_finished,
            TaskState::Failed => &mut self.tasks_failed,
            TaskState::Killed => &mut self.tasks_killed,
            TaskState::Lost => &mut self.tasks_lost,
            TaskState::Error => &mut self.tasks_error,
            TaskState::Dropped => &mut self.tasks_dropped,
            TaskState::Gone => &mut self.tasks_gone,
            TaskState::GoneByOperator => &mut self.tasks_gone_by_operator,
            _ => return,
        };
        *slot += 1;
    }

    /// Counts a scheduler call by kind.
    pub fn count_call(&mut self, c: &Command) {
        if let Command::Request(_) = c {
            self.messages_resource_request += 1;
        }
    }

    /// `(name, value)` pairs of the counters, Mesos names without the `master/` prefix.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            (
                "messages_register_framework",
                self.messages_register_framework,
            ),
            (
                "messages_reregister_framework",
                self.messages_reregister_framework,
            ),
            (
                "messages_unregister_framework",
                self.messages_unregister_framework,
            ),
            (
                "messages_deactivate_framework",
                self.messages_deactivate_framework,
            ),
            ("messages_kill_task", self.messages_kill_task),
            (
                "messages_status_update_acknowledgement",
                self.messages_status_update_acknowledgement,
            ),
            ("messages_resource_request", self.messages_resource_request),
            ("messages_launch_tasks", self.messages_launch_tasks),
            ("messages_decline_offers", self.messages_decline_offers),
            ("messages_revive_offers", self.messages_revive_offers),
            ("messages_suppress_offers", self.messages_suppress_offers),
            ("messages_reconcile_tasks", self.messages_reconcile_tasks),
            (
                "messages_framework_to_executor",
                self.messages_framework_to_executor,
            ),
            (
                "messages_executor_to_framework",
                self.messages_executor_to_framework,
            ),
            ("messages_register_slave", self.messages_register_slave),
            ("messages_reregister_slave", self.messages_reregister_slave),
            ("messages_status_update", self.messages_status_update),
            ("messages_exited_executor", self.messages_exited_executor),
            ("valid_status_updates", self.valid_status_updates),
            ("invalid_status_updates", self.invalid_status_updates),
            (
                "valid_status_update_acknowledgements",
                self.valid_status_update_acknowledgements,
            ),
            (
                "invalid_status_update_acknowledgements",
                self.invalid_status_update_acknowledgements,
            ),
            (
                "valid_framework_to_executor_messages",
                self.valid_framework_to_executor_messages,
            ),
            (
                "invalid_framework_to_executor_messages",
                self.invalid_framework_to_executor_messages,
            ),
            ("slave_registrations", self.slave_registrations),
            ("slave_reregistrations", self.slave_reregistrations),
            ("slave_removals", self.slave_removals),
            (
                "slave_removals/reason_unhealthy",
                self.slave_removals_reason_unhealthy,
            ),
            (
                "slave_unreachable_completed",
                self.slave_unreachable_completed,
            ),
            ("tasks_finished", self.tasks_finished),
            ("tasks_failed", self.tasks_failed),
            ("tasks_killed", self.tasks_killed),
            ("tasks_lost", self.tasks_lost),
            ("tasks_error", self.tasks_error),
            ("tasks_dropped", self.tasks_dropped),
            ("tasks_gone", self.tasks_gone),
            ("tasks_gone_by_operator", self.tasks_gone_by_operator),
        ]
    }
}
