//! Operator RESERVE_RESOURCES, UNRESERVE_RESOURCES, CREATE_VOLUMES, DESTROY_VOLUMES,
//! GROW_VOLUME and SHRINK_VOLUME: on free resources of an agent, rescinding offers that
//! hold what is needed first (as Mesos does); 202 when applied, 400 when invalid, 409
//! when the resources are not available.

use super::{parse, validate};
use crate::io::{CallError, Effect, Reply};
use crate::master::Master;
use strata_api::scheduler::Operation;
use strata_api::AgentId;
use strata_resources::{Conversion, Resources};

impl Master {
    /// Applies an operator's reservation or volume operation to agent `aid`.
    pub(crate) fn operator_resource_operation(
        &mut self,
        aid: &AgentId,
        op: &Operation,
        out: &mut Vec<Effect>,
    ) -> Reply {
        let conv = match self.operator_conversion(aid, op) {
            Ok(c) => c,
            Err(e) => return Reply::Error(e),
        };
        if let Err(e) = self.convert_free_rescinding(aid, &conv, out) {
            return Reply::Error(CallError::conflict(e));
        }
        tracing::info!(agent_id = %aid, operation = %op.kind, from = %conv.from, to = %conv.to, "applied operator operation");
        self.change_agent_total(aid, &conv, out);
        Reply::Accepted
    }

    fn operator_conversion(&self, aid: &AgentId, op: &Operation) -> Result<Conversion, CallError> {
        let parsed = parse(op)
            .map_err(|e| CallError::bad_request(format!("Invalid {} operation: {e}", op.kind)))?;
        let invalid =
            |e: String| CallError::bad_request(format!("Invalid {} operation: {e}", parsed.name()));
        let Some(agent) = self.agents.get(aid) else {
            return Err(CallError::bad_request(format!(
                "No agent found with specified ID {aid}"
            )));
        };
        if !agent.connected() {
            return Err(CallError::conflict(format!(
                "Agent {aid} is not connected; retry once it has re-registered"
            )));
        }
        validate::for_operator(&parsed).map_err(invalid)?;
        self.validate_on_agent(&parsed, aid).map_err(invalid)?;
        parsed.conversion().map_err(invalid)
    }

    /// `allocator.convert_free`, after rescinding the agent's offers that hold part of
    /// what the operation needs. Err explains what is missing.
    fn convert_free_rescinding(
        &mut self,
        aid: &AgentId,
        conv: &Conversion,
        out: &mut Vec<Effect>,
    ) -> Result<(), String> {
        if self
            .allocator
            .convert_free(aid, &conv.from, &conv.to)
            .is_ok()
        {
            return Ok(());
        }
        let on_agent = self
            .agents
            .get(aid)
            .is_some_and(|a| a.total.contains(&conv.from));
        if !on_agent {
            // Nothing to make room for: offers stay.
            return Err(self.not_available(aid, &conv.from));
        }
        // A shared volume may be in several offers at once: take back every one.
        self.rescind_holding_shared(aid, &conv.from, out);
        let mut required = conv.from.clone();
        let offers: Vec<_> = self
            .agents
            .get(aid)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default();
        for id in offers {
            let Some(offered) = self
                .offers
                .get(&id)
                .map(|o| o.resources.without_allocation_role())
            else {
                continue;
            };
            let left = required.saturating_sub(&offered);
            if left == required {
                continue;
            }
            self.rescind_offer(&id, out);
            required = left;
            if required.is_empty() {
                break;
            }
        }
        self.allocator
            .convert_free(aid, &conv.from, &conv.to)
            .map_err(|_| self.not_available(aid, &conv.from))
    }

    fn not_available(&self, aid: &AgentId, wanted: &Resources) -> String {
        let total = self
            .agents
            .get(aid)
            .map(|a| a.total.clone())
            .unwrap_or_default();
        if !total.contains(wanted) {
            return format!("Agent {aid} does not have {wanted} (its resources are {total})");
        }
        format!(
            "{wanted} on agent {aid} is in use by tasks or executors; retry when they have finished"
        )
    }
}
