//! The v1 `pids` controller: `pids.max`. Mesos' pids subsystem only groups the
//! processes; the limit is a Strata addition (`None` writes `max`).

use crate::isolation::cgroups::files;
use crate::isolation::{IsolationError, Limits};
use std::path::Path;

pub(super) fn apply(dir: &Path, limits: &Limits) -> Result<(), IsolationError> {
    let value = limits
        .pids_max
        .map_or_else(|| "max".to_string(), |n| n.to_string());
    files::write(&dir.join("pids.max"), &value)
}
