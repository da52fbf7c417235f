//! Dynamic reservations and persistent volumes: RESERVE, UNRESERVE, CREATE, DESTROY,
//! GROW_VOLUME and SHRINK_VOLUME, from a framework's ACCEPT (on its offered pool) or from
//! an operator (on the agent's free resources); the agent's new total, its registry record
//! and the `CHECKPOINT_RESOURCES` message that makes the agent persist them.

mod operator;
mod validate;

use crate::io::Effect;
use crate::launch::Pool;
use crate::master::Master;
use strata_api::agent_link::{CheckpointResources, ToAgent};
use strata_api::scheduler::Operation;
use strata_api::{AgentId, FrameworkId};
use strata_registry::Op;
use strata_resources::operations::{self, checkpointed, Conversion};
use strata_resources::{Resource, Resources, Scalar, WireFormat, WireResource};

/// A reservation or volume operation with parsed resources.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ResourceOp {
    Reserve(Resources),
    Unreserve(Resources),
    Create(Resources),
    Destroy(Resources),
    Grow {
        volume: Resource,
        addition: Resource,
    },
    Shrink {
        volume: Resource,
        subtract: Scalar,
    },
}

impl ResourceOp {
    /// Mesos' name of the operation, as used in its error messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ResourceOp::Reserve(_) => "RESERVE",
            ResourceOp::Unreserve(_) => "UNRESERVE",
            ResourceOp::Create(_) => "CREATE",
            ResourceOp::Destroy(_) => "DESTROY",
            ResourceOp::Grow { .. } => "GROW_VOLUME",
            ResourceOp::Shrink { .. } => "SHRINK_VOLUME",
        }
    }

    /// What the operation converts, independent of who asks.
    fn conversion(&self) -> Result<Conversion, String> {
        let c = match self {
            ResourceOp::Reserve(r) => operations::reserve(r),
            ResourceOp::Unreserve(r) => operations::unreserve(r),
            ResourceOp::Create(v) => operations::create(v),
            ResourceOp::Destroy(v) => operations::destroy(v),
            ResourceOp::Grow { volume, addition } => operations::grow(volume, addition),
            ResourceOp::Shrink { volume, subtract } => operations::shrink(volume, *subtract),
        };
        c.map_err(|e| e.to_string())
    }
}

/// Whether `kind` names an operation this module handles.
pub(crate) fn is_resource_operation(kind: &str) -> bool {
    matches!(
        kind,
        "RESERVE" | "UNRESERVE" | "CREATE" | "DESTROY" | "GROW_VOLUME" | "SHRINK_VOLUME"
    )
}

fn many(wire: &[WireResource]) -> Result<Resources, String> {
    Resources::from_wire(wire).map_err(|e| format!("invalid resources: {e}"))
}

fn one(wire: &WireResource, what: &str) -> Result<Resource, String> {
    Resource::try_from(wire).map_err(|e| format!("invalid {what}: {e}"))
}

/// Parses the payload matching `op.kind`. Missing payloads are errors, as in Mesos.
pub(crate) fn parse(op: &Operation) -> Result<ResourceOp, String> {
    let missing = || format!("Expecting '{}' to be present", op.kind.to_ascii_lowercase());
    match op.kind.as_str() {
        "RESERVE" => {
            let p = op.reserve.as_ref().ok_or_else(missing)?;
            if !p.source.is_empty() {
                return Err("RESERVE with 'source' (re-reservation) is not supported; \
                            UNRESERVE and RESERVE again instead"
                    .into());
            }
            Ok(ResourceOp::Reserve(many(&p.resources)?))
        }
        "UNRESERVE" => Ok(ResourceOp::Unreserve(many(
            &op.unreserve.as_ref().ok_or_else(missing)?.resources,
        )?)),
        "CREATE" => Ok(ResourceOp::Create(many(
            &op.create.as_ref().ok_or_else(missing)?.volumes,
        )?)),
        "DESTROY" => Ok(ResourceOp::Destroy(many(
            &op.destroy.as_ref().ok_or_else(missing)?.volumes,
        )?)),
        "GROW_VOLUME" => {
            let p = op.grow_volume.as_ref().ok_or_else(missing)?;
            Ok(ResourceOp::Grow {
                volume: one(&p.volume, "volume")?,
                addition: one(&p.addition, "addition")?,
            })
        }
        "SHRINK_VOLUME" => {
            let p = op.shrink_volume.as_ref().ok_or_else(missing)?;
            let v = p.subtract.value;
            if !v.is_finite() || v <= 0.0 {
                return Err(format!("'subtract' must be a positive number, not {v}"));
            }
            Ok(ResourceOp::Shrink {
                volume: one(&p.volume, "volume")?,
                subtract: Scalar::from_f64(v),
            })
        }
        other => Err(format!(
            "'{other}' is not a reservation or volume operation"
        )),
    }
}

impl Master {
    /// One reservation or volume operation of an ACCEPT, applied to the offered pool. An
    /// invalid operation is logged and dropped (its resources stay in the pool and go back
    /// to the allocator with the rest); with an `id` the framework also gets
    /// OPERATION_ERROR, and OPERATION_FINISHED when it applied.
    pub(crate) fn apply_offer_operation(
        &mut self,
        fid: &FrameworkId,
        pool: &mut Pool,
        op: &Operation,
        out: &mut Vec<Effect>,
    ) {
        let info = serde_json::to_value(op).unwrap_or_default();
        let aid = pool.agent.clone();
        let result = parse(op).and_then(|parsed| self.offer_conversion(fid, pool, &parsed));
        let conv = match result {
            Ok(c) => c,
            Err(message) => {
                tracing::warn!(framework_id = %fid, agent_id = %pool.agent, operation = %op.kind, %message, "dropping invalid operation");
                self.operation_feedback(fid, &aid, info, Err(&message), out);
                return;
            }
        };
        // A shared volume in use is offered to others too: take those offers back first.
        self.rescind_holding_shared(&aid, &conv.from, out);
        if let Err(e) = self
            .allocator
            .convert_allocated(fid, &pool.agent, &conv.from, &conv.to)
        {
            tracing::warn!(framework_id = %fid, agent_id = %pool.agent, operation = %op.kind, error = %e, "allocator refused the operation; dropped");
            self.operation_feedback(fid, &aid, info, Err(&e), out);
            return;
        }
        pool.resources = pool.resources.saturating_sub(&conv.from) + conv.to.clone();
        pool.offered_shared = pool
            .offered_shared
            .saturating_sub(&crate::shared_volumes::shared(&conv.from))
            + crate::shared_volumes::shared(&conv.to);
        tracing::info!(framework_id = %fid, agent_id = %pool.agent, operation = %op.kind, from = %conv.from, to = %conv.to, "applied operation");
        self.change_agent_total(&aid, &conv, out);
        self.operation_feedback(fid, &aid, info, Ok(&conv.to), out);
    }

    /// Validates `op` for framework `fid` and returns its conversion with the pool's
    /// allocation role on both sides.
    fn offer_conversion(
        &self,
        fid: &FrameworkId,
        pool: &Pool,
        op: &ResourceOp,
    ) -> Result<Conversion, String> {
        let fw = self
            .frameworks
            .get(fid)
            .ok_or("Framework is not subscribed")?;
        let op = validate::with_allocation_role(op, &pool.role)?;
        let invalid = |e: String| format!("Invalid {} Operation: {e}", op.name());
        validate::for_framework(&op, &fw.info, &pool.role).map_err(invalid)?;
        self.validate_on_agent(&op, &pool.agent).map_err(invalid)?;
        let conv = op.conversion().map_err(invalid)?;
        if !pool.resources.contains(&conv.from) {
            return Err(invalid(format!(
                "the offered resources {} do not contain {}",
                pool.resources, conv.from
            )));
        }
        Ok(conv)
    }

    /// Checks that need the agent: unique persistence ids, volumes not in use.
    fn validate_on_agent(&self, op: &ResourceOp, aid: &AgentId) -> Result<(), String> {
        let agent = self
            .agents
            .get(aid)
            .ok_or_else(|| format!("Agent {aid} is unknown"))?;
        match op {
            ResourceOp::Create(volumes) => validate::unique_ids(volumes, &agent.total, aid),
            ResourceOp::Destroy(volumes) => self.volumes_not_in_use(volumes, aid),
            ResourceOp::Shrink { volume, .. } => {
                self.volumes_not_in_use(&Resources::from(volume.clone()), aid)
            }
            _ => Ok(()),
        }
    }

    /// Fails if a live task or executor on the agent uses one of `volumes`.
    fn volumes_not_in_use(&self, volumes: &Resources, aid: &AgentId) -> Result<(), String> {
        let used = crate::views::used_on_agent(self, aid);
        let busy: Vec<String> = volumes
            .iter()
            .filter(|v| {
                used.iter().any(|u| {
                    u.persistence_id().is_some()
                        && u.persistence_id() == v.persistence_id()
                        && u.role() == v.role()
                })
            })
            .map(|v| format!("'{}'", v.persistence_id().unwrap_or_default()))
            .collect();
        if busy.is_empty() {
            return Ok(());
        }
        Err(format!(
            "persistent volumes {} are in use by running tasks or executors on agent {aid}; \
             kill those tasks first",
            busy.join(", ")
        ))
    }

    /// An agent's total resources with its reservations and volumes (None if unknown).
    pub fn agent_total(&self, aid: &AgentId) -> Option<&Resources> {
        self.agents.get(aid).map(|a| &a.total)
    }

    /// Invariant for tests: the allocator's total of every agent it knows is the
    /// master's (reservations and volumes never leak or double-count).
    pub(crate) fn check_agent_totals(&self) -> Result<(), String> {
        for aid in self.allocator.agents() {
            let Some(agent) = self.agents.get(&aid) else {
                return Err(format!(
                    "the allocator knows agent {aid}, the master does not"
                ));
            };
            // Capacity the allocator lends (from unmet quota guarantees) is revocable
            // there and ordinary here.
            let lent = self.allocator.lent(&aid);
            let in_allocator = self.allocator.agent_total(&aid).saturating_sub(&lent)
                + lent.map(|r| r.revocable = false);
            if in_allocator != agent.total {
                return Err(format!(
                    "agent {aid}: the allocator's total {in_allocator} is not the master's {}",
                    agent.total
                ));
            }
        }
        Ok(())
    }

    /// `total := total - from + to` for the agent: recorded in the registry, then sent to
    /// the agent as its complete set of checkpointed resources.
    pub(crate) fn change_agent_total(
        &mut self,
        aid: &AgentId,
        conv: &Conversion,
        out: &mut Vec<Effect>,
    ) {
        let Some(agent) = self.agents.get_mut(aid) else {
            return;
        };
        let from = conv.from.without_allocation_role();
        let to = conv.to.without_allocation_role();
        agent.total = agent.total.saturating_sub(&from) + to;
        let wire = checkpointed(&agent.total).to_wire(WireFormat::PostRefinement);
        out.push(Effect::Persist(vec![Op::SetAgentResources {
            id: aid.to_string(),
            resources: wire.clone(),
        }]));
        self.dirty_agents.insert(aid.clone());
        let message = ToAgent::CheckpointResources(CheckpointResources { resources: wire });
        if !self.send_agent(aid, message.clone(), out) {
            if let Some(agent) = self.agents.get_mut(aid) {
                agent.pending_messages.push(message);
            }
        }
    }
}

/// The agent's total: its configured resources with the checkpointed ones applied; when
/// they do not fit (the agent's resources shrank), the configured ones alone.
pub(crate) fn total_with(base: &Resources, wire: &[WireResource], aid: &AgentId) -> Resources {
    let applied = Resources::from_wire(wire)
        .map_err(|e| e.to_string())
        .and_then(|cp| operations::apply_checkpointed(base, &cp));
    match applied {
        Ok(total) => total,
        Err(e) => {
            tracing::error!(agent_id = %aid, error = %e, "ignoring the agent's checkpointed resources");
            base.clone()
        }
    }
}
