//! UPDATE_QUOTA: validation (role names, Mesos' cluster-capacity check unless forced),
//! handing the quotas to the allocator and persisting them (and weights) in the
//! registry, from which a restarted master restores them.

use crate::io::{CallError, Effect, Reply};
use crate::master::Master;
use std::collections::BTreeMap;
use strata_allocator::Quota;
use strata_registry::{Op, QuotaRecord, RegistryState};
use strata_resources::Scalar;

fn to_record(q: &Quota) -> QuotaRecord {
    let f = |m: &BTreeMap<String, Scalar>| m.iter().map(|(n, v)| (n.clone(), v.as_f64())).collect();
    QuotaRecord {
        guarantees: f(&q.guarantees),
        limits: f(&q.limits),
    }
}

fn from_record(r: &QuotaRecord) -> Quota {
    let f = |m: &BTreeMap<String, f64>| {
        m.iter()
            .map(|(n, v)| (n.clone(), Scalar::from_f64(*v)))
            .collect()
    };
    Quota {
        guarantees: f(&r.guarantees),
        limits: f(&r.limits),
    }
}

/// Mesos' role-name rules: non-empty, not `*`, no `.`/`..` path segments, no empty
/// segments, no whitespace or slashes at the ends.
pub fn validate_role(role: &str) -> Result<(), String> {
    if role.is_empty() || role == "*" {
        return Err(format!("Invalid role '{role}'"));
    }
    if role.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "Role '{role}' contains whitespace or control characters"
        ));
    }
    for seg in role.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." || seg.starts_with('-') {
            return Err(format!("Role '{role}' has an invalid path segment '{seg}'"));
        }
    }
    Ok(())
}

impl Master {
    /// Sets quotas atomically. Without `force`, the top-level guarantees must fit in the
    /// cluster's total (Mesos' capacity heuristic).
    /// Restores persisted weights (over the `--weights` flag) and quotas.
    pub(crate) fn recover_allocation(&mut self, registry: &RegistryState) {
        for (role, weight) in &registry.weights {
            self.allocator.set_weight(role, *weight);
        }
        let quotas = registry
            .quotas
            .iter()
            .map(|(role, r)| (role.clone(), from_record(r)))
            .collect();
        if let Err(e) = self.allocator.set_quotas(quotas) {
            tracing::error!(error = %e, "persisted quotas are inconsistent; ignored");
        }
    }

    pub(crate) fn update_quota(
        &mut self,
        configs: Vec<(String, Quota)>,
        force: bool,
        out: &mut Vec<Effect>,
    ) -> Reply {
        for (role, _) in &configs {
            if let Err(e) = validate_role(role) {
                return Reply::Error(CallError::bad_request(e));
            }
        }
        if !force {
            if let Err(e) = self.capacity_check(&configs) {
                return Reply::Error(CallError::bad_request(e));
            }
        }
        let ops: Vec<Op> = configs
            .iter()
            .map(|(role, q)| Op::SetQuota {
                role: role.clone(),
                record: (!q.is_empty()).then(|| to_record(q)),
            })
            .collect();
        match self.allocator.set_quotas(configs) {
            Ok(()) => {
                out.push(Effect::Persist(ops));
                Reply::Ok
            }
            Err(e) => Reply::Error(CallError::bad_request(format!("Invalid quota: {e}"))),
        }
    }

    fn capacity_check(&self, configs: &[(String, Quota)]) -> Result<(), String> {
        let mut next = self.allocator.quotas().clone();
        for (role, q) in configs {
            next.insert(role.clone(), q.clone());
        }
        let mut top: BTreeMap<String, Scalar> = BTreeMap::new();
        for (role, q) in &next {
            if !role.contains('/') {
                strata_allocator::quota::add_into(&mut top, &q.guarantees);
            }
        }
        let total = self.allocator.total();
        for (name, want) in top {
            let have = total.get(&name).copied().unwrap_or(Scalar::ZERO);
            if want > have {
                return Err(format!(
                    "Total quota guarantees '{name}:{want}' exceed cluster capacity '{name}:{have}' (use 'force' to override)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::validate_role;

    #[test]
    fn role_names() {
        for ok in ["eng", "eng/web", "a-b_c.d"] {
            assert!(validate_role(ok).is_ok(), "{ok}");
        }
        for bad in ["", "*", "a//b", "/a", "a/", "a/../b", "a b", ".", "-x"] {
            assert!(validate_role(bad).is_err(), "{bad}");
        }
    }
}
