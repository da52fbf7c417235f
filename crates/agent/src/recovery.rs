//! Agent recovery at start: reads the checkpoints, finds which recorded executor processes
//! still run (pid and start time match), and kills recorded processes nobody will claim.

use crate::checkpoint::{ContainerRecord, Store};
use strata_agent_core::checkpoint::RecoveredState;

/// The recovered state with live executors' pids filled in, and the records of the
/// processes to watch.
pub fn read(store: &Store) -> (RecoveredState, Vec<ContainerRecord>) {
    let mut state = store.load();
    let records = store.containers();
    let alive = |r: &ContainerRecord| strata_containerizer::start_time(r.pid) == Some(r.start_time);
    let mut survivors = Vec::new();
    for fw in state.frameworks.iter_mut() {
        for ex in fw.executors.iter_mut() {
            let found = records
                .iter()
                .find(|r| r.container_id == ex.record.container_id);
            if let Some(r) = found.filter(|r| alive(r)) {
                ex.pid = Some(r.pid);
                survivors.push(r.clone());
            }
        }
    }
    for r in &records {
        if survivors.iter().any(|s| s.container_id == r.container_id) {
            continue;
        }
        if alive(r) {
            tracing::warn!(container_id = %r.container_id, pid = r.pid, "killing an executor no checkpoint claims");
            strata_containerizer::kill_tree(r.pid);
        }
        store.remove_container(&r.container_id);
    }
    let executors: usize = state.frameworks.iter().map(|f| f.executors.len()).sum();
    if executors > 0 {
        tracing::info!(
            frameworks = state.frameworks.len(),
            executors,
            live = survivors.len(),
            "recovered checkpointed state"
        );
    }
    (state, survivors)
}
