//! Shared persistent volumes on the master (Mesos' SHARED_RESOURCES): which frameworks
//! the allocator may offer them to, how several tasks of one ACCEPT use one offered copy,
//! and the offers to take back before a shared volume is destroyed.
//!
//! As in Mesos' `Master::_accept`, the shared resources of the accepted offers stay
//! available to every task of the ACCEPT however many tasks already use them; each task
//! beyond the offered copies gets one more copy allocated, so the allocator holds exactly
//! what tasks, executors and offers use. A shared volume in use is offered again (see the
//! allocator's `shared` module), so DESTROY of one rescinds the other offers holding it.

use crate::io::Effect;
use crate::master::Master;
use strata_api::{AgentId, FrameworkId, OfferId};
use strata_resources::Resources;

/// The capability a framework needs to be offered shared resources.
pub(crate) const CAPABILITY: &str = "SHARED_RESOURCES";

/// The shared entries of `res`.
pub(crate) fn shared(res: &Resources) -> Resources {
    res.filter(|r| r.shared)
}

/// Whether `parts` (a task and its executor, or a task group) fit in an ACCEPT's pool:
/// the non-shared resources together in what is left of the pool, each shared entry in
/// the offered shared resources (`offered_shared`), whoever else uses it.
pub(crate) fn fits(pool: &Resources, offered_shared: &Resources, parts: &[&Resources]) -> bool {
    let mut plain = Resources::new();
    for part in parts {
        plain += part.filter(|r| !r.shared);
        if !part
            .iter()
            .filter(|r| r.shared)
            .all(|r| offered_shared.contains_resource(r))
        {
            return false;
        }
    }
    pool.filter(|r| !r.shared).contains(&plain)
}

/// `res` with every shared entry counted once: merged copies (several tasks or offers on
/// one volume) replaced by the agent's entry, allocation role kept.
pub(crate) fn once_on(res: &Resources, agent_total: &Resources) -> Resources {
    if !res.iter().any(|r| r.shared) {
        return res.clone();
    }
    res.iter()
        .map(|r| {
            if !r.shared {
                return r.clone();
            }
            let mut bare = r.clone();
            bare.allocation_role = None;
            let mut one = agent_total
                .iter()
                .find(|t| t.same_identity(&bare))
                .cloned()
                .unwrap_or(bare);
            one.allocation_role.clone_from(&r.allocation_role);
            one
        })
        .collect()
}

/// The shared copies that `uses`, taken in order from `pool`, need beyond those in it.
pub(crate) fn extra_copies<'a>(
    pool: &Resources,
    uses: impl IntoIterator<Item = &'a Resources>,
) -> Resources {
    let mut left = pool.clone();
    let mut extra = Resources::new();
    for used in uses {
        extra += shared(used).saturating_sub(&left);
        left = left.saturating_sub(used);
    }
    extra
}

impl Master {
    /// Tells the allocator whether `fid` may be offered shared resources; a framework
    /// that may not (any more, after UPDATE_FRAMEWORK) loses its offers holding some.
    pub(crate) fn sync_shared_capability(&mut self, fid: &FrameworkId, out: &mut Vec<Effect>) {
        let Some(fw) = self.frameworks.get(fid) else {
            return;
        };
        let capable = fw.info.has_capability(CAPABILITY);
        self.allocator.set_shared_capable(fid, capable);
        if capable {
            return;
        }
        let ids: Vec<OfferId> = fw
            .offers
            .iter()
            .filter(|id| {
                self.offers
                    .get(*id)
                    .is_some_and(|o| o.resources.iter().any(|r| r.shared))
            })
            .cloned()
            .collect();
        for id in ids {
            self.rescind_offer(&id, out);
        }
    }

    /// Allocates the shared copies that tasks launched from an ACCEPT's pool use beyond
    /// those offered (a second task on one offered volume).
    pub(crate) fn allocate_extra_copies(
        &mut self,
        fid: &FrameworkId,
        aid: &AgentId,
        extra: &Resources,
    ) {
        if extra.is_empty() {
            return;
        }
        let got = self.allocator.add_used(fid, aid, extra);
        if &got != extra {
            // Validation checked every shared entry against the offers, so the agent has it.
            tracing::error!(framework_id = %fid, agent_id = %aid, wanted = %extra, %got, "shared copies missing in the allocator");
        }
    }

    /// Rescinds every outstanding offer on `aid` (the accepted ones are already taken) that holds
    /// one of the shared entries of `volumes` (before they are destroyed or changed).
    pub(crate) fn rescind_holding_shared(
        &mut self,
        aid: &AgentId,
        volumes: &Resources,
        out: &mut Vec<Effect>,
    ) {
        let wanted = shared(volumes).without_allocation_role();
        if wanted.is_empty() {
            return;
        }
        let ids: Vec<OfferId> = self
            .agents
            .get(aid)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            let holds = self.offers.get(&id).is_some_and(|o| {
                let offered = o.resources.without_allocation_role();
                wanted
                    .iter()
                    .any(|v| offered.iter().any(|r| r.same_identity(v)))
            });
            if holds {
                tracing::info!(agent_id = %aid, offer_id = %id, "rescinding an offer holding a shared volume about to change");
                self.rescind_offer(&id, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_resources::{Reservation, Resource};

    fn volume() -> Resources {
        let mut v = Resource::scalar("disk", 100.0).reserved(Reservation::static_for("eng"));
        v.disk = Some(Box::new(serde_json::json!({"persistence": {"id": "v1"}})));
        v.shared = true;
        Resources::from(v)
    }

    fn plain(flag: &str) -> Resources {
        Resources::parse_flag(flag, "*").unwrap()
    }

    #[test]
    fn several_tasks_fit_on_one_offered_copy() {
        let pool = plain("cpus:2;mem:256") + volume();
        let task = plain("cpus:1;mem:128") + volume();
        assert!(fits(&pool, &volume(), &[&task, &task]));
        // Without the volume in the offers, no.
        assert!(!fits(&pool, &Resources::new(), &[&task]));
        // Non-shared resources are still counted in full.
        assert!(!fits(&pool, &volume(), &[&task, &task, &task]));
        // The first task took the pool's copy; the next ones need one each.
        assert_eq!(extra_copies(&pool, [&task]), Resources::new());
        assert_eq!(
            extra_copies(&pool, [&task, &task, &task]),
            volume() + volume()
        );
        // Three copies held count as one.
        let held = task.clone() + task.clone() + task;
        assert_eq!(
            once_on(&held, &pool).disk_mb(),
            volume().disk_mb(),
            "{held}"
        );
    }
}
