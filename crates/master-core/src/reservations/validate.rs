//! Who may reserve, unreserve, create and destroy what (Mesos'
//! `validation::operation`): roles, reservation refinement, principals, persistence ids
//! and the SHARED_RESOURCES capability. Shape checks live in `strata_resources::operations`.

use super::ResourceOp;
use strata_api::{AgentId, FrameworkInfo};
use strata_resources::{Resource, Resources};

/// `op` with every resource allocated to `role` (an offer's role); fails if a resource
/// names another allocation role.
pub(super) fn with_allocation_role(op: &ResourceOp, role: &str) -> Result<ResourceOp, String> {
    let set = |r: &Resources| -> Result<Resources, String> {
        if let Some(bad) = r
            .iter()
            .find(|x| x.allocation_role.as_deref().is_some_and(|a| a != role))
        {
            return Err(format!(
                "Resource '{}' is allocated to role '{}', not to the offer's role '{role}'",
                bad.name,
                bad.allocation_role.as_deref().unwrap_or_default()
            ));
        }
        Ok(r.with_allocation_role(role))
    };
    let one = |r: &Resource| -> Result<Resource, String> {
        let all = set(&Resources::from(r.clone()))?;
        all.into_iter()
            .next()
            .ok_or_else(|| format!("Resource '{}' is empty", r.name))
    };
    Ok(match op {
        ResourceOp::Reserve(r) => ResourceOp::Reserve(set(r)?),
        ResourceOp::Unreserve(r) => ResourceOp::Unreserve(set(r)?),
        ResourceOp::Create(r) => ResourceOp::Create(set(r)?),
        ResourceOp::Destroy(r) => ResourceOp::Destroy(set(r)?),
        ResourceOp::Grow { volume, addition } => ResourceOp::Grow {
            volume: one(volume)?,
            addition: one(addition)?,
        },
        ResourceOp::Shrink { volume, subtract } => ResourceOp::Shrink {
            volume: one(volume)?,
            subtract: *subtract,
        },
    })
}

/// Checks of a framework's operation on resources offered to `role`.
pub(super) fn for_framework(op: &ResourceOp, fw: &FrameworkInfo, role: &str) -> Result<(), String> {
    match op {
        ResourceOp::Reserve(resources) => {
            for r in resources {
                reservation_role(r, role)?;
                refinement(r)?;
                if r.reservations.len() > 1 && !fw.has_capability("RESERVATION_REFINEMENT") {
                    return Err(format!(
                        "Resource {} refines a reservation, which needs the framework capability RESERVATION_REFINEMENT",
                        text(r)
                    ));
                }
                reserve_principal(r, fw.principal.as_deref())?;
            }
            Ok(())
        }
        ResourceOp::Create(volumes) => {
            for v in volumes {
                volume_principal(v, fw.principal.as_deref())?;
                if v.shared && !fw.has_capability("SHARED_RESOURCES") {
                    return Err(format!(
                        "Create for shared volume {} from a framework without the SHARED_RESOURCES capability",
                        text(v)
                    ));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks of an operator's operation (no principal, no framework roles).
pub(super) fn for_operator(op: &ResourceOp) -> Result<(), String> {
    let unallocated = |r: &Resources| match r.iter().find(|x| x.allocation_role.is_some()) {
        Some(x) => Err(format!(
            "Resource {} carries 'allocation_info'; operator calls act on unallocated resources",
            text(x)
        )),
        None => Ok(()),
    };
    match op {
        ResourceOp::Reserve(resources) => {
            unallocated(resources)?;
            resources.iter().try_for_each(refinement)
        }
        ResourceOp::Unreserve(r) | ResourceOp::Create(r) | ResourceOp::Destroy(r) => unallocated(r),
        ResourceOp::Grow { volume, addition } => {
            unallocated(&Resources::from_vec(vec![volume.clone(), addition.clone()]))
        }
        ResourceOp::Shrink { volume, .. } => unallocated(&Resources::from(volume.clone())),
    }
}

fn text(r: &Resource) -> String {
    Resources::from(r.clone()).to_string()
}

/// A framework reserves only for the role its resources are offered to.
fn reservation_role(r: &Resource, role: &str) -> Result<(), String> {
    if r.role() == role {
        return Ok(());
    }
    Err(format!(
        "A reserve operation was attempted for a resource reserved for role '{}', but the \
         resource is allocated to role '{role}'; reserve for the role of the offer",
        r.role()
    ))
}

/// The new reservation must be for `*`'s child or a child role of the one it refines.
fn refinement(r: &Resource) -> Result<(), String> {
    let parent = r.pop_reservation();
    let (child, ancestor) = (r.role(), parent.role());
    if ancestor == "*" || child.starts_with(&format!("{ancestor}/")) {
        return Ok(());
    }
    Err(format!(
        "Resource {} reserves for role '{child}', which does not refine its reservation for \
         role '{ancestor}'; refinements must be for a child role like '{ancestor}/...'",
        text(r)
    ))
}

/// With a framework principal, the new reservation must name it.
fn reserve_principal(r: &Resource, principal: Option<&str>) -> Result<(), String> {
    let Some(principal) = principal else {
        return Ok(());
    };
    match r.reservations.last().and_then(|v| v.principal.as_deref()) {
        Some(p) if p == principal => Ok(()),
        Some(p) => Err(format!(
            "A reserve operation was attempted by principal '{principal}', which does not \
             match a reserved resource in the request with principal '{p}'"
        )),
        None => Err(format!(
            "A reserve operation was attempted by principal '{principal}', but there is a \
             reserved resource in the request with no principal set in `ReservationInfo`"
        )),
    }
}

/// With a framework principal, a volume's `persistence.principal`, if set, must match.
fn volume_principal(v: &Resource, principal: Option<&str>) -> Result<(), String> {
    let set = v
        .disk
        .as_ref()
        .and_then(|d| d.pointer("/persistence/principal"))
        .and_then(|p| p.as_str());
    match (principal, set) {
        (Some(fw), Some(p)) if fw != p => Err(format!(
            "Create from a framework with principal '{fw}' tried to create a persistent volume \
             with principal '{p}'"
        )),
        _ => Ok(()),
    }
}

/// Persistence ids are unique per role on an agent.
pub(super) fn unique_ids(
    volumes: &Resources,
    total: &Resources,
    aid: &AgentId,
) -> Result<(), String> {
    for v in volumes {
        let taken = total.iter().any(|t| {
            t.persistence_id().is_some()
                && t.persistence_id() == v.persistence_id()
                && t.role() == v.role()
        });
        if taken {
            return Err(format!(
                "Persistence ID '{}' for role '{}' is already in use on agent {aid}",
                v.persistence_id().unwrap_or_default(),
                v.role()
            ));
        }
    }
    Ok(())
}
