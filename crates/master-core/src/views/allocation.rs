//! Allocation views: quota status (GET_QUOTA, `/quota`), weights, per-role allocator
//! metrics and the "why pending?" explanations (`/master/why`, `strata why`).

use crate::master::Master;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use strata_allocator::{Explanation, Placement};
use strata_api::{AgentId, FrameworkId};
use strata_resources::Scalar;

fn scalar_map(q: &BTreeMap<String, Scalar>) -> Value {
    let m: Map<String, Value> = q
        .iter()
        .map(|(n, v)| (n.clone(), json!({"value": v.as_f64()})))
        .collect();
    Value::Object(m)
}

fn scalar_list(q: &BTreeMap<String, Scalar>) -> Value {
    Value::Array(
        q.iter()
            .map(|(n, v)| json!({"name": n, "type": "SCALAR", "scalar": {"value": v.as_f64()}}))
            .collect(),
    )
}

/// Mesos' `QuotaStatus`: `infos` (role + guarantee as resources) and, since 1.9,
/// `configs` (role, guarantees, limits as name → `{"value"}`).
pub fn quota_status(m: &Master) -> Value {
    let quotas = m.allocator.quotas();
    let infos: Vec<Value> = quotas
        .iter()
        .map(|(role, q)| json!({"role": role, "guarantee": scalar_list(&q.guarantees)}))
        .collect();
    let configs: Vec<Value> = quotas
        .iter()
        .map(|(role, q)| {
            json!({"role": role, "guarantees": scalar_map(&q.guarantees), "limits": scalar_map(&q.limits)})
        })
        .collect();
    json!({"infos": infos, "configs": configs})
}

/// GET_WEIGHTS / `/weights`: every weight set (flag or UPDATE_WEIGHTS).
pub fn weights(m: &Master) -> Value {
    let infos: Vec<Value> = m
        .allocator
        .weights()
        .iter()
        .map(|(r, w)| json!({"role": r, "weight": w}))
        .collect();
    json!(infos)
}

/// The quota part of a role in GET_ROLES / `/roles`: guarantee, limit, consumed.
pub fn role_quota(m: &Master, role: &str) -> Value {
    let q = m.allocator.quota(role);
    json!({
        "role": role,
        "guarantee": scalar_map(&q.guarantees),
        "limit": scalar_map(&q.limits),
        "consumed": scalar_map(&m.allocator.quota_consumed(role)),
    })
}

/// Per-role allocator metrics: dominant share (Mesos' name); scalars used by tasks and
/// executors (`allocated`), in outstanding offers (`offered`) and both (Mesos'
/// `offered_or_allocated`); quota guarantee, limit and consumption per resource.
pub fn role_metrics(m: &Master, put: &mut dyn FnMut(&str, f64)) {
    type ByRole = BTreeMap<String, BTreeMap<String, Scalar>>;
    let mut used: ByRole = BTreeMap::new();
    for f in m.frameworks.values() {
        for r in super::framework_used(m, f).iter() {
            if let (Some(role), Some(q)) = (&r.allocation_role, r.as_scalar()) {
                let slot = used.entry(role.to_string()).or_default();
                *slot.entry(r.name.to_string()).or_insert(Scalar::ZERO) += q;
            }
        }
    }
    let mut offered: ByRole = BTreeMap::new();
    for o in m.offers.values() {
        let slot = offered.entry(o.role.clone()).or_default();
        strata_allocator::quota::add_into(slot, &o.resources.scalar_totals());
    }
    for role in m.allocator.roles() {
        let (share, _) = m.allocator.role_share(&role);
        put(
            &format!("allocator/mesos/roles/{role}/shares/dominant"),
            share,
        );
        let base = format!("allocator/mesos/roles/{role}/resources");
        let (u, o) = (used.get(&role), offered.get(&role));
        let mut names: Vec<&String> = u.into_iter().chain(o).flat_map(|q| q.keys()).collect();
        names.sort();
        names.dedup();
        for n in names {
            let a = u.and_then(|q| q.get(n)).map_or(0.0, |v| v.as_f64());
            let b = o.and_then(|q| q.get(n)).map_or(0.0, |v| v.as_f64());
            put(&format!("{base}/{n}/allocated"), a);
            put(&format!("{base}/{n}/offered"), b);
            put(&format!("{base}/{n}/offered_or_allocated"), a + b);
        }
    }
    for (role, q) in m.allocator.quotas() {
        let base = format!("allocator/mesos/quota/roles/{role}/resources");
        for (n, v) in &q.guarantees {
            put(&format!("{base}/{n}/guarantee"), v.as_f64());
        }
        for (n, v) in &q.limits {
            put(&format!("{base}/{n}/limit"), v.as_f64());
        }
        for (n, v) in m.allocator.quota_consumed(role) {
            put(&format!("{base}/{n}/consumed"), v.as_f64());
        }
    }
}

fn explanation(e: &Explanation) -> Value {
    let outcomes: Map<String, Value> = e
        .outcomes
        .iter()
        .map(|(r, n)| (r.as_str().to_string(), json!(n)))
        .collect();
    json!({
        "agents": e.agents,
        "outcomes": outcomes,
        "taken_by_roles_ahead": e.taken_by_others,
        "hints": e.hints,
    })
}

/// Why `role` got (no) offers in the last full allocation cycle.
pub fn why_role(m: &Master, role: &str) -> Value {
    let mut v = explanation(&m.allocator.explain_role(role));
    if let Some(o) = v.as_object_mut() {
        o.insert("role".into(), json!(role));
        o.insert("cycle_time".into(), json!(m.allocator.pending().at));
        o.insert("quota".into(), role_quota(m, role));
    }
    v
}

/// Whether a registered agent satisfies a REQUEST entry's placement.
fn on_agents<'a>(
    m: &'a Master,
    p: &'a crate::state::DemandPlacement,
) -> impl Fn(&AgentId) -> bool + 'a {
    move |aid| m.agents.get(aid).is_some_and(|a| p.accepts(a))
}

/// Why a framework got (no) offers: its own state plus each of its roles; `None` when
/// the allocator does not know it.
pub fn why_framework(m: &Master, fid: &FrameworkId) -> Option<Value> {
    let mut offered: BTreeMap<strata_api::AgentId, strata_resources::Resources> = BTreeMap::new();
    for o in m.offers.values().filter(|o| &o.framework_id == fid) {
        *offered.entry(o.agent_id.clone()).or_default() += o.resources.clone();
    }
    let placements = m
        .frameworks
        .get(fid)
        .map(|f| f.demand_placements.as_slice())
        .unwrap_or_default();
    // The predicates live here; the allocator borrows them.
    let tests: Vec<_> = placements
        .iter()
        .map(|p| p.as_ref().map(|p| on_agents(m, p)))
        .collect();
    let placements: Vec<Option<Placement<'_, AgentId>>> = placements
        .iter()
        .zip(&tests)
        .map(|(p, t)| {
            Some(Placement {
                accepts: t.as_ref()?,
                describe: p.as_ref()?.describe(),
            })
        })
        .collect();
    let (hints, roles) = m.allocator.explain_framework(fid, &offered, &placements)?;
    let roles: Map<String, Value> = roles
        .iter()
        .map(|(r, e)| (r.clone(), explanation(e)))
        .collect();
    Some(json!({
        "framework_id": fid,
        "cycle_time": m.allocator.pending().at,
        "hints": hints,
        "roles": roles,
    }))
}
