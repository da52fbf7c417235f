//! Inverse offers: asking the frameworks that hold resources on a DRAINING machine's
//! agents to give them back, recording their ACCEPT/DECLINE answers (for
//! GET_MAINTENANCE_STATUS), refusal filters, rescinding and expiry.

use crate::io::{CallError, ConnId, Effect, Reply};
use crate::master::Master;
use std::collections::BTreeMap;
use strata_api::maintenance::{
    InverseOffer, InverseOfferReply, InverseOfferStatus, InverseOffers as InverseOffersEvent,
    RescindInverseOffer, Unavailability,
};
use strata_api::scheduler::Event;
use strata_api::{AgentId, Filters, FrameworkId, OfferId};

/// An outstanding inverse offer.
#[derive(Debug, Clone)]
pub(crate) struct InverseOfferRecord {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    /// The stream it was sent on; a new subscription discards it (Mesos, without RESCIND).
    pub conn: ConnId,
    pub unavailability: Unavailability,
    pub created: f64,
}

/// A framework's latest answer for one agent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Answer {
    pub status: InverseOfferStatus,
    pub time: f64,
}

/// Inverse offers in flight, answers and refusal filters.
#[derive(Debug, Default)]
pub(crate) struct InverseOffers {
    pub offers: BTreeMap<OfferId, InverseOfferRecord>,
    pub answers: BTreeMap<AgentId, BTreeMap<FrameworkId, Answer>>,
    /// (framework, agent) → no new inverse offer before this time.
    filters: BTreeMap<(FrameworkId, AgentId), f64>,
}

impl InverseOffers {
    /// Whether `fid` has an inverse offer for `aid` in flight.
    pub(crate) fn outstanding(&self, fid: &FrameworkId, aid: &AgentId) -> bool {
        self.offers
            .values()
            .any(|o| &o.framework_id == fid && &o.agent_id == aid)
    }

    /// Forgets answers and filters for an agent (its unavailability changed, or it left).
    pub(crate) fn forget_agent(&mut self, aid: &AgentId) {
        self.answers.remove(aid);
        self.filters.retain(|(_, a), _| a != aid);
    }

    fn filtered(&self, now: f64, fid: &FrameworkId, aid: &AgentId) -> bool {
        self.filters
            .get(&(fid.clone(), aid.clone()))
            .is_some_and(|until| *until > now)
    }
}

impl Master {
    /// Sends inverse offers to every connected framework using resources (offered or
    /// allocated) on an active agent of a DRAINING machine, unless one is outstanding or
    /// a filter holds (Mesos' `generateInverseOffers`). One event per framework.
    pub(crate) fn send_inverse_offers(&mut self, now: f64, out: &mut Vec<Effect>) {
        if self.maint.schedule.windows.is_empty() {
            return;
        }
        let candidates: Vec<(AgentId, Unavailability)> = self
            .agents
            .values()
            .filter(|a| a.connected() && !self.is_deactivated(&a.id))
            .filter_map(|a| Some((a.id.clone(), self.agent_unavailability(&a.id)?)))
            .collect();
        let mut by_framework: BTreeMap<FrameworkId, Vec<InverseOffer>> = BTreeMap::new();
        for (aid, unavailability) in candidates {
            for fid in self.allocator.allocated_by_framework(&aid).into_keys() {
                let Some(record) = self.new_inverse_offer(now, &fid, &aid, unavailability) else {
                    continue;
                };
                let message = self.inverse_offer_message(&record);
                self.maint.inverse.offers.insert(record.id.clone(), record);
                by_framework.entry(fid).or_default().push(message);
            }
        }
        for (fid, inverse_offers) in by_framework {
            tracing::info!(framework_id = %fid, count = inverse_offers.len(), "sending inverse offers");
            let payload = InverseOffersEvent { inverse_offers };
            let event = Event::InverseOffers(serde_json::to_value(payload).unwrap_or_default());
            self.send_framework(&fid, event, out);
        }
    }

    fn new_inverse_offer(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        aid: &AgentId,
        unavailability: Unavailability,
    ) -> Option<InverseOfferRecord> {
        let conn = self.frameworks.get(fid)?.conn?;
        let inverse = &self.maint.inverse;
        if inverse.outstanding(fid, aid) || inverse.filtered(now, fid, aid) {
            return None;
        }
        Some(InverseOfferRecord {
            id: self.next_offer_id(),
            framework_id: fid.clone(),
            agent_id: aid.clone(),
            conn,
            unavailability,
            created: now,
        })
    }

    fn inverse_offer_message(&self, r: &InverseOfferRecord) -> InverseOffer {
        let url = self.agents.get(&r.agent_id).map(|a| a.url());
        InverseOffer {
            id: r.id.clone(),
            url,
            framework_id: r.framework_id.clone(),
            agent_id: Some(r.agent_id.clone()),
            unavailability: r.unavailability,
            resources: Vec::new(),
        }
    }

    /// ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS: records the answer and the
    /// refusal filter; ids that are not this framework's outstanding inverse offers are
    /// ignored (logged), as in Mesos.
    pub(crate) fn answer_inverse_offers(
        &mut self,
        now: f64,
        fid: &FrameworkId,
        payload: serde_json::Value,
        status: InverseOfferStatus,
    ) -> Reply {
        let reply: InverseOfferReply = match serde_json::from_value(payload) {
            Ok(r) => r,
            Err(e) => {
                return Reply::Error(CallError::bad_request(format!(
                    "Failed to parse body into Call: {e}"
                )))
            }
        };
        let refuse = Filters::refuse_seconds_effective(reply.filters.as_ref());
        for id in reply.inverse_offer_ids {
            let mine = self
                .maint
                .inverse
                .offers
                .get(&id)
                .is_some_and(|o| &o.framework_id == fid);
            let record = mine
                .then(|| self.maint.inverse.offers.remove(&id))
                .flatten();
            let Some(record) = record else {
                tracing::warn!(framework_id = %fid, inverse_offer_id = %id, "ignoring answer to an inverse offer that is no longer valid");
                continue;
            };
            let inverse = &mut self.maint.inverse;
            let answer = Answer { status, time: now };
            inverse
                .answers
                .entry(record.agent_id.clone())
                .or_default()
                .insert(fid.clone(), answer);
            if refuse > 0.0 {
                inverse
                    .filters
                    .insert((fid.clone(), record.agent_id), now + refuse);
            }
        }
        Reply::Accepted
    }

    /// Takes back every inverse offer for an agent (RESCIND_INVERSE_OFFER).
    pub(crate) fn rescind_inverse_offers_on(&mut self, aid: &AgentId, out: &mut Vec<Effect>) {
        let ids: Vec<OfferId> = self
            .maint
            .inverse
            .offers
            .values()
            .filter(|o| &o.agent_id == aid)
            .map(|o| o.id.clone())
            .collect();
        for id in ids {
            self.rescind_inverse_offer(&id, out);
        }
    }

    fn rescind_inverse_offer(&mut self, id: &OfferId, out: &mut Vec<Effect>) {
        let Some(record) = self.maint.inverse.offers.remove(id) else {
            return;
        };
        let same_stream = self
            .frameworks
            .get(&record.framework_id)
            .is_some_and(|f| f.conn == Some(record.conn));
        if same_stream {
            let payload = RescindInverseOffer {
                inverse_offer_id: id.clone(),
            };
            let event =
                Event::RescindInverseOffer(serde_json::to_value(payload).unwrap_or_default());
            self.send_framework(&record.framework_id, event, out);
        }
    }

    /// Rescinds inverse offers older than `timeout` (the offer timeout applies to them
    /// as in Mesos); the next allocation sends fresh ones.
    pub(crate) fn expire_inverse_offers(&mut self, now: f64, timeout: f64, out: &mut Vec<Effect>) {
        let expired: Vec<OfferId> = self
            .maint
            .inverse
            .offers
            .values()
            .filter(|o| now - o.created >= timeout)
            .map(|o| o.id.clone())
            .collect();
        for id in expired {
            self.rescind_inverse_offer(&id, out);
        }
    }

    /// Drops inverse offers that lost their reason: the framework re-subscribed or went
    /// away (silently), the agent left, was deactivated or is no longer DRAINING
    /// (RESCIND_INVERSE_OFFER). Answers of agents no longer DRAINING are forgotten.
    pub(crate) fn prune_inverse_offers(&mut self, out: &mut Vec<Effect>) {
        if self.maint.inverse.offers.is_empty() && self.maint.inverse.answers.is_empty() {
            return;
        }
        let stale: Vec<(OfferId, bool)> = self
            .maint
            .inverse
            .offers
            .values()
            .filter_map(|o| {
                let same_stream = self
                    .frameworks
                    .get(&o.framework_id)
                    .is_some_and(|f| f.conn == Some(o.conn));
                let agent_ok = self.agents.get(&o.agent_id).is_some_and(|a| a.connected())
                    && !self.is_deactivated(&o.agent_id)
                    && self.agent_unavailability(&o.agent_id) == Some(o.unavailability);
                (!same_stream || !agent_ok).then(|| (o.id.clone(), same_stream))
            })
            .collect();
        for (id, same_stream) in stale {
            if same_stream {
                self.rescind_inverse_offer(&id, out);
            } else {
                self.maint.inverse.offers.remove(&id);
            }
        }
        let draining: Vec<AgentId> = self
            .maint
            .inverse
            .answers
            .keys()
            .filter(|aid| self.agent_unavailability(aid).is_some())
            .cloned()
            .collect();
        self.maint
            .inverse
            .answers
            .retain(|aid, _| draining.contains(aid));
    }
}
