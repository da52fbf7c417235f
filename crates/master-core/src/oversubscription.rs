//! Oversubscription: the revocable resources agents lend (Mesos' "oversubscribed
//! resources"), who may be offered them (REVOCABLE_RESOURCES), the checks on tasks that
//! use them, and their metrics.
//!
//! An agent reports its total in `UPDATE_OVERSUBSCRIBED` (and in its Hello). As Mesos
//! does, the master replaces the agent's revocable total with it and rescinds every
//! outstanding offer on that agent holding revocable resources, so frameworks see the new
//! amount at the next allocation. The total never drops below what the master's own tasks
//! and executors there use (a task may be in flight to the agent); evicting those is the
//! agent's QoS controller's work, after which the next report is smaller.

use crate::io::Effect;
use crate::master::Master;
use strata_api::{AgentId, FrameworkId, OfferId};
use strata_resources::{Resources, WireResource};

/// The capability a framework needs to be offered revocable resources.
pub(crate) const CAPABILITY: &str = "REVOCABLE_RESOURCES";

impl Master {
    /// Tells the allocator whether `fid` may be offered revocable resources; a framework
    /// that may not (any more, after UPDATE_FRAMEWORK) loses its offers holding some.
    pub(crate) fn sync_revocable_capability(&mut self, fid: &FrameworkId, out: &mut Vec<Effect>) {
        let Some(fw) = self.frameworks.get(fid) else {
            return;
        };
        let capable = fw.info.has_capability(CAPABILITY);
        self.allocator.set_revocable_capable(fid, capable);
        if capable {
            return;
        }
        let ids: Vec<OfferId> = fw.offers.iter().cloned().collect();
        self.rescind_holding_revocable(&ids, out);
    }

    /// UPDATE_OVERSUBSCRIBED: the agent's new total of revocable resources.
    pub(crate) fn update_oversubscribed(
        &mut self,
        aid: &AgentId,
        wire: &[WireResource],
        out: &mut Vec<Effect>,
    ) {
        let Some(agent) = self.agents.get(aid) else {
            return;
        };
        let target = self.with_oversubscribed(&Resources::new(), wire, aid);
        if target == agent.total.revocable() {
            return;
        }
        tracing::info!(agent_id = %aid, oversubscribed = %target, "agent's oversubscribed resources changed");
        self.rescind_revocable_offers(aid, out);
        let excess = self.allocator.update_revocable(aid, &target);
        // Offers holding revocable resources are gone and the target covers every task and
        // executor, so nothing the allocator lent can be left over.
        debug_assert!(
            excess.is_empty(),
            "revocable allocations left over: {excess:?}"
        );
        if !excess.is_empty() {
            tracing::error!(agent_id = %aid, ?excess, "revocable allocations exceeded the agent's new total");
        }
        if let Some(agent) = self.agents.get_mut(aid) {
            agent.total = agent.total.non_revocable() + target;
        }
        self.dirty_agents.insert(aid.clone());
    }

    /// An agent's total with its revocable part replaced by the oversubscribed resources
    /// it reported (registration and re-registration), and at least what the master's
    /// tasks and executors there use.
    pub(crate) fn with_oversubscribed(
        &self,
        total: &Resources,
        wire: &[WireResource],
        aid: &AgentId,
    ) -> Resources {
        let reported = revocable_from_wire(wire, aid);
        let in_use = self.revocable_in_use(aid);
        total.non_revocable() + reported.saturating_sub(&in_use) + in_use
    }

    /// Revocable resources the master's live tasks and executors use on the agent.
    fn revocable_in_use(&self, aid: &AgentId) -> Resources {
        let mut used = Resources::new();
        for fw in self.frameworks.values() {
            let tasks = fw.tasks.values();
            for t in tasks.filter(|t| &t.agent_id == aid && !t.released) {
                used += t.resources.revocable();
            }
            for info in fw.executors.get(aid).into_iter().flat_map(|e| e.values()) {
                used += Resources::from_wire(&info.resources)
                    .unwrap_or_default()
                    .revocable();
            }
        }
        // What runs on capacity the allocator lent is not the agent's to cover.
        used.without_allocation_role()
            .saturating_sub(&self.allocator.lent(aid))
    }

    /// Rescinds every outstanding offer on the agent that holds revocable resources.
    fn rescind_revocable_offers(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        let Some(agent) = self.agents.get(aid) else {
            return;
        };
        let ids: Vec<OfferId> = agent.offers.iter().cloned().collect();
        self.rescind_holding_revocable(&ids, out);
    }

    /// Rescinds those of `ids` that hold revocable resources.
    fn rescind_holding_revocable(&mut self, ids: &[OfferId], out: &mut Vec<Effect>) {
        for id in ids {
            let revocable = self
                .offers
                .get(id)
                .is_some_and(|o| !o.resources.revocable().is_empty());
            if revocable {
                self.rescind_offer(id, out);
            }
        }
    }
}

/// An agent's reported oversubscribed resources, every entry flagged revocable. Entries
/// that cannot be lent (reserved, volumes, unparsable) are dropped with a warning.
pub(crate) fn revocable_from_wire(wire: &[WireResource], aid: &AgentId) -> Resources {
    if wire.is_empty() {
        return Resources::new();
    }
    let parsed = match Resources::from_wire(wire) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(agent_id = %aid, error = %e, "ignoring the agent's unparsable oversubscribed resources");
            return Resources::new();
        }
    };
    let lendable = parsed.filter(|r| !r.is_reserved() && r.disk.is_none());
    if lendable != parsed {
        tracing::warn!(agent_id = %aid, "ignoring reserved or disk-info oversubscribed resources");
    }
    lendable.map(|r| {
        r.revocable = true;
        r.allocation_role = None;
    })
}

/// Mesos' rule: one resource name is either all revocable or all not, within a task, an
/// executor, or a task with its executor. Returns the offending name's message.
pub(crate) fn mixes_revocable(res: &Resources) -> Option<String> {
    let revocable = res.revocable();
    let plain = res.non_revocable();
    revocable
        .iter()
        .find(|r| plain.iter().any(|p| p.name == r.name))
        .map(|r| {
            format!(
                "Cannot use both revocable and non-revocable '{}' at the same time",
                r.name
            )
        })
}

/// `master/<name>_revocable_{total,used,percent}` from the agents' totals and what is used.
pub(crate) fn revocable_metrics(
    total: &Resources,
    used: &Resources,
    put: &mut impl FnMut(&str, f64),
) {
    let (total, used) = (total.revocable(), used.revocable());
    for name in ["cpus", "gpus", "mem", "disk"] {
        let t = total.scalar(name).as_f64();
        let u = used.scalar(name).as_f64();
        put(&format!("master/{name}_revocable_total"), t);
        put(&format!("master/{name}_revocable_used"), u);
        put(
            &format!("master/{name}_revocable_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revocable(flag: &str) -> Resources {
        Resources::parse_flag(flag, "*").unwrap().map(|r| {
            r.revocable = true;
        })
    }

    fn check_mix(res: Resources, expected: Option<&str>) {
        assert_eq!(mixes_revocable(&res).as_deref(), expected, "{res}");
    }

    #[test]
    fn a_name_is_all_revocable_or_all_not() {
        let plain = |f: &str| Resources::parse_flag(f, "*").unwrap();
        check_mix(plain("cpus:1;mem:32"), None);
        check_mix(revocable("cpus:1;mem:32"), None);
        check_mix(revocable("cpus:1") + plain("mem:32"), None);
        check_mix(
            revocable("cpus:1") + plain("cpus:0.5;mem:32"),
            Some("Cannot use both revocable and non-revocable 'cpus' at the same time"),
        );
    }

    #[test]
    fn reported_resources_become_revocable_and_unreserved_only() {
        let aid = AgentId::new("a");
        let wire = Resources::parse_flag("cpus:2;mem:256;cpus(eng):1", "*")
            .unwrap()
            .to_wire(strata_resources::WireFormat::PostRefinement);
        assert_eq!(
            revocable_from_wire(&wire, &aid),
            revocable("cpus:2;mem:256")
        );
    }
}
