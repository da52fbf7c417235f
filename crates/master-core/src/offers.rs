//! Offers: turning allocator decisions into OFFERS events, DECLINE, rescinding, expiry,
//! and shaping offered resources to each framework's capabilities.

use crate::io::Effect;
use crate::master::Master;
use crate::state::OfferRecord;
use std::collections::BTreeMap;
use strata_api::scheduler::{Event, Offers, Rescind};
use strata_api::{AllocationInfo, Filters, FrameworkId, FrameworkInfo, Offer, OfferId};
use strata_resources::{Resources, WireFormat, WireResource};

/// Offered resources in the format this framework understands: post-refinement with
/// RESERVATION_REFINEMENT, pre-refinement otherwise; `allocation_info` only for MULTI_ROLE.
pub(crate) fn resources_for(info: &FrameworkInfo, resources: &Resources) -> Vec<WireResource> {
    let format = if info.has_capability("RESERVATION_REFINEMENT") {
        WireFormat::PostRefinement
    } else {
        WireFormat::PreRefinement
    };
    if info.has_capability("MULTI_ROLE") {
        resources.to_wire(format)
    } else {
        resources.without_allocation_role().to_wire(format)
    }
}

impl Master {
    /// Runs the allocator (over the agents whose resources changed, or all on the
    /// interval) and sends the resulting offers, one OFFERS event per framework.
    pub(crate) fn allocate(&mut self, now: f64, full: bool, out: &mut Vec<Effect>) {
        let agents: Vec<_> = std::mem::take(&mut self.dirty_agents).into_iter().collect();
        if !full && agents.is_empty() {
            return;
        }
        self.metrics.allocation_runs += 1;
        let decisions = if full {
            self.allocator.allocate(now)
        } else {
            self.allocator.allocate_agents(now, &agents)
        };
        let mut by_framework: BTreeMap<FrameworkId, Vec<Offer>> = BTreeMap::new();
        for d in decisions {
            if self.outside_region_for(&d.framework, &d.agent) {
                // Decline on the framework's behalf for as long as Mesos allows; the
                // allocator then offers the agent to someone else.
                let until = now + strata_api::MAX_REFUSE_SECONDS;
                self.allocator
                    .recover(&d.framework, &d.agent, &d.resources, Some(until));
                self.dirty_agents.insert(d.agent.clone());
                continue;
            }
            let id = self.next_offer_id();
            let record = OfferRecord {
                id: id.clone(),
                framework_id: d.framework.clone(),
                agent_id: d.agent.clone(),
                role: d.role,
                resources: d.resources,
                created: now,
            };
            let Some(offer) = self.offer_message(&record) else {
                self.allocator
                    .recover(&d.framework, &d.agent, &record.resources, None);
                continue;
            };
            if let Some(fw) = self.frameworks.get_mut(&d.framework) {
                fw.offers.insert(id.clone());
            }
            if let Some(agent) = self.agents.get_mut(&d.agent) {
                agent.offers.insert(id.clone());
            }
            self.offers.insert(id, record);
            by_framework.entry(d.framework).or_default().push(offer);
        }
        for (fid, offers) in by_framework {
            self.send_framework(&fid, Event::Offers(Offers { offers }), out);
        }
        self.send_inverse_offers(now, out);
        if full {
            self.plan_preemptions(now, out);
        }
    }

    /// Mesos' region rule: an agent in a region other than the master's is offered only
    /// to REGION_AWARE frameworks (agents or a master without a fault domain are local).
    fn outside_region_for(&self, fid: &FrameworkId, aid: &strata_api::AgentId) -> bool {
        use strata_api::domain::region;
        let Some(agent_region) = region(self.agents.get(aid).and_then(|a| a.info.domain.as_ref()))
        else {
            return false;
        };
        let remote = region(self.cfg.domain.as_ref()).is_some_and(|r| r != agent_region);
        remote
            && !self
                .frameworks
                .get(fid)
                .is_some_and(|f| f.info.has_capability("REGION_AWARE"))
    }

    /// The wire Offer for a record, or None if its framework or agent vanished.
    fn offer_message(&self, r: &OfferRecord) -> Option<Offer> {
        let fw = self.frameworks.get(&r.framework_id)?;
        let agent = self.agents.get(&r.agent_id)?;
        let multi_role = fw.info.has_capability("MULTI_ROLE");
        let executor_ids = fw
            .executors
            .get(&r.agent_id)
            .map(|e| e.keys().cloned().collect())
            .unwrap_or_default();
        Some(Offer {
            id: r.id.clone(),
            framework_id: r.framework_id.clone(),
            agent_id: r.agent_id.clone(),
            hostname: agent.info.hostname.clone(),
            url: Some(agent.url()),
            domain: agent.info.domain.clone(),
            resources: resources_for(&fw.info, &r.resources),
            attributes: agent.info.attributes.clone(),
            executor_ids,
            unavailability: self
                .agent_unavailability(&r.agent_id)
                .and_then(|u| serde_json::to_value(u).ok()),
            allocation_info: multi_role.then(|| AllocationInfo {
                role: Some(r.role.clone()),
            }),
        })
    }

    /// Forgets an offer whose resources stay allocated to its framework (being used).
    pub(crate) fn detach_offer(&mut self, id: &OfferId) -> Option<OfferRecord> {
        let record = self.offers.remove(id)?;
        if let Some(fw) = self.frameworks.get_mut(&record.framework_id) {
            fw.offers.remove(id);
        }
        if let Some(agent) = self.agents.get_mut(&record.agent_id) {
            agent.offers.remove(id);
        }
        Some(record)
    }

    /// Forgets an offer and returns its resources, optionally with a refusal filter.
    /// Returns the record if the offer existed.
    pub(crate) fn remove_offer(
        &mut self,
        id: &OfferId,
        refuse_until: Option<f64>,
    ) -> Option<OfferRecord> {
        let record = self.detach_offer(id)?;
        self.allocator.recover(
            &record.framework_id,
            &record.agent_id,
            &record.resources,
            refuse_until,
        );
        if refuse_until.is_none() {
            self.dirty_agents.insert(record.agent_id.clone());
        }
        Some(record)
    }

    /// Takes an offer back from a connected framework (RESCIND event).
    pub(crate) fn rescind_offer(&mut self, id: &OfferId, out: &mut Vec<Effect>) {
        if let Some(record) = self.remove_offer(id, None) {
            self.send_framework(
                &record.framework_id,
                Event::Rescind(Rescind {
                    offer_id: id.clone(),
                }),
                out,
            );
        }
    }

    /// DECLINE: return the offers with a refusal filter (default 5 s).
    pub(crate) fn decline(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        ids: &[OfferId],
        filters: Option<&Filters>,
    ) {
        self.metrics.messages_decline_offers += 1;
        let refuse = Filters::refuse_seconds_effective(filters);
        for id in ids {
            if self.offers.get(id).is_some_and(|o| &o.framework_id == fid) {
                let until = (refuse > 0.0).then_some(now + refuse);
                self.remove_offer(id, until);
            }
        }
    }

    /// Rescinds offers held longer than the offer timeout.
    pub(crate) fn expire_offers(&mut self, now: f64, out: &mut Vec<Effect>) {
        let Some(timeout) = self.cfg.offer_timeout else {
            return;
        };
        let expired: Vec<OfferId> = self
            .offers
            .values()
            .filter(|o| now - o.created >= timeout)
            .map(|o| o.id.clone())
            .collect();
        for id in expired {
            self.rescind_offer(&id, out);
        }
        self.expire_inverse_offers(now, timeout, out);
    }
}
