//! Mesos v1 JSON for resources: `WireResource` (serde), the three output
//! formats (`WireFormat`) and validated conversion to and from `Resource`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ValidationError;
use crate::parse::role_problem;
use crate::ranges::{Range, Ranges};
use crate::resource::{Labels, Reservation, ReservationKind, Resource};
use crate::resources::Resources;
use crate::scalar::Scalar;
use crate::set::Set;
use crate::value::Value;

/// Which Mesos JSON layout to write.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Debug)]
pub enum WireFormat {
    /// `role` (+ `reservation` for dynamic); for frameworks without
    /// RESERVATION_REFINEMENT.
    PreRefinement,
    /// `reservations` stack only; unreserved has neither key.
    PostRefinement,
    /// Both, as in the `*_full` fields of the state endpoints.
    Endpoint,
}

/// `{"value": double}`; numeric strings are accepted on input.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct WireScalar {
    /// The quantity.
    #[serde(deserialize_with = "de_lenient_f64")]
    pub value: f64,
}

/// `{"range":[{"begin":..,"end":..}]}`, unvalidated.
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize, Deserialize)]
pub struct WireRanges {
    /// The ranges as sent.
    #[serde(default, deserialize_with = "de_null_default")]
    pub range: Vec<Range>,
}

/// `{"item":[..]}`.
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize, Deserialize)]
pub struct WireSet {
    /// The items as sent.
    #[serde(default, deserialize_with = "de_null_default")]
    pub item: Vec<String>,
}

/// An ID message: `{"value":".."}`.
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize, Deserialize)]
pub struct WireId {
    /// The ID.
    pub value: String,
}

/// `{"role":".."}`.
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize, Deserialize)]
pub struct WireAllocationInfo {
    /// The role allocated to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// An empty message (`revocable`, `shared`): `{}`.
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize, Deserialize)]
pub struct WireEmpty {}

/// Mesos `Resource.ReservationInfo`.
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize, Deserialize)]
pub struct WireReservation {
    /// `STATIC` or `DYNAMIC` (absent in the pre-refinement `reservation`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The role (absent in the pre-refinement `reservation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The reserving principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Reservation labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// A Mesos v1 `Resource` JSON object. Unknown keys are ignored and absent
/// fields are omitted on output; fields are in proto declaration order.
#[derive(Clone, PartialEq, Default, Debug, Serialize, Deserialize)]
pub struct WireResource {
    /// Resource provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<WireId>,
    /// Resource name.
    pub name: String,
    /// `SCALAR`, `RANGES`, `SET` or `TEXT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Scalar value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<WireScalar>,
    /// Ranges value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<WireRanges>,
    /// Set value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<WireSet>,
    /// Deprecated pre-refinement role (`"*"` = unreserved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Allocation role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<WireAllocationInfo>,
    /// Pre-refinement dynamic reservation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reservation: Option<WireReservation>,
    /// Reservation stack (post-refinement and endpoint formats).
    #[serde(
        default,
        deserialize_with = "de_null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reservations: Vec<WireReservation>,
    /// `DiskInfo`, verbatim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<serde_json::Value>,
    /// Present when revocable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocable: Option<WireEmpty>,
    /// Present when shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<WireEmpty>,
}

fn de_null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn de_lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Num(f64),
        Text(String),
    }
    match NumOrText::deserialize(d)? {
        NumOrText::Num(v) => Ok(v),
        NumOrText::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("invalid number '{t}'"))),
    }
}

fn check_role(name: &str, role: &str) -> Result<(), ValidationError> {
    match role_problem(role) {
        None => Ok(()),
        Some(reason) => Err(ValidationError::InvalidRole {
            name: name.to_string(),
            role: role.to_string(),
            reason: reason.to_string(),
        }),
    }
}

fn wire_value(w: &WireResource) -> Result<Value, ValidationError> {
    let missing = || ValidationError::MissingValue {
        name: w.name.clone(),
        ty: w.kind.clone(),
    };
    match w.kind.as_str() {
        "SCALAR" => {
            let v = w.scalar.as_ref().ok_or_else(missing)?.value;
            if !v.is_finite() || v < 0.0 {
                return Err(ValidationError::InvalidScalar {
                    name: w.name.clone(),
                    value: v.to_string(),
                });
            }
            Ok(Value::Scalar(Scalar::from_f64(v)))
        }
        "RANGES" => {
            let ranges = &w.ranges.as_ref().ok_or_else(missing)?.range;
            if let Some(bad) = ranges.iter().find(|r| r.begin > r.end) {
                return Err(ValidationError::InvalidRange {
                    name: w.name.clone(),
                    begin: bad.begin,
                    end: bad.end,
                });
            }
            Ok(Value::Ranges(Ranges::new(ranges.clone())))
        }
        "SET" => {
            let items = &w.set.as_ref().ok_or_else(missing)?.item;
            Ok(Value::Set(items.iter().cloned().collect::<Set>()))
        }
        "TEXT" => Err(ValidationError::UnsupportedType {
            name: w.name.clone(),
            ty: w.kind.clone(),
        }),
        _ => Err(ValidationError::UnknownType {
            name: w.name.clone(),
            ty: w.kind.clone(),
        }),
    }
}

/// One entry of a post-refinement `reservations` stack.
fn stack_entry(name: &str, r: &WireReservation) -> Result<Reservation, ValidationError> {
    let bad = |reason: String| ValidationError::InvalidReservation {
        name: name.to_string(),
        reason,
    };
    let kind = match r.kind.as_deref() {
        Some("STATIC") => ReservationKind::Static,
        Some("DYNAMIC") => ReservationKind::Dynamic,
        Some(other) => return Err(bad(format!("unknown type '{other}'"))),
        None => return Err(bad("'type' must be set".to_string())),
    };
    let role = r
        .role
        .as_deref()
        .ok_or_else(|| bad("'role' must be set".to_string()))?;
    if role == "*" {
        return Err(bad("cannot reserve for role '*'".to_string()));
    }
    check_role(name, role)?;
    Ok(Reservation {
        kind,
        role: role.to_string(),
        principal: r.principal.clone(),
        labels: r.labels.clone(),
    })
}

fn wire_reservations(w: &WireResource) -> Result<Vec<Reservation>, ValidationError> {
    if !w.reservations.is_empty() {
        return w
            .reservations
            .iter()
            .map(|r| stack_entry(&w.name, r))
            .collect();
    }
    match (w.role.as_deref(), &w.reservation) {
        (None | Some("*"), None) => Ok(Vec::new()),
        (None | Some("*"), Some(_)) => Err(ValidationError::InvalidReservation {
            name: w.name.clone(),
            reason: "a dynamic reservation needs a role other than '*'".to_string(),
        }),
        (Some(role), reservation) => {
            check_role(&w.name, role)?;
            let mut entry = Reservation::static_for(role);
            if let Some(dynamic) = reservation {
                entry.kind = ReservationKind::Dynamic;
                entry.principal = dynamic.principal.clone();
                entry.labels = dynamic.labels.clone();
            }
            Ok(vec![entry])
        }
    }
}

impl TryFrom<&WireResource> for Resource {
    type Error = ValidationError;

    /// Validates and converts either reservation format.
    fn try_from(w: &WireResource) -> Result<Resource, ValidationError> {
        if w.name.is_empty() {
            return Err(ValidationError::EmptyName);
        }
        let value = wire_value(w)?;
        let reservations = wire_reservations(w)?;
        let allocation_role = w.allocation_info.as_ref().and_then(|a| a.role.clone());
        if let Some(role) = &allocation_role {
            check_role(&w.name, role)?;
        }
        Ok(Resource {
            name: w.name.as_str().into(),
            value,
            reservations: reservations.into(),
            allocation_role: allocation_role.map(Into::into),
            revocable: w.revocable.is_some(),
            shared: w.shared.is_some(),
            disk: w.disk.clone().map(Box::new),
            provider_id: w.provider_id.as_ref().map(|p| p.value.as_str().into()),
        })
    }
}

impl TryFrom<WireResource> for Resource {
    type Error = ValidationError;
    fn try_from(w: WireResource) -> Result<Resource, ValidationError> {
        Resource::try_from(&w)
    }
}

fn full_entry(r: &Reservation) -> WireReservation {
    WireReservation {
        kind: Some(r.kind.as_str().to_string()),
        role: Some(r.role.clone()),
        principal: r.principal.clone(),
        labels: r.labels.clone(),
    }
}

/// The pre-refinement `reservation` object for a dynamic reservation.
fn legacy_entry(r: &Reservation) -> Option<WireReservation> {
    (r.kind == ReservationKind::Dynamic).then(|| WireReservation {
        principal: r.principal.clone(),
        labels: r.labels.clone(),
        ..WireReservation::default()
    })
}

/// `(role, reservation, reservations)` for `r` in `format`, following
/// Mesos' `convertResourceFormat`.
type ReservationFields = (
    Option<String>,
    Option<WireReservation>,
    Vec<WireReservation>,
);

fn reservation_fields(r: &Resource, format: WireFormat) -> ReservationFields {
    let stack = || r.reservations.iter().map(full_entry).collect::<Vec<_>>();
    let last = r.reservations.last();
    match format {
        WireFormat::PostRefinement => (None, None, stack()),
        // Refined stacks cannot be downgraded; the innermost one is written.
        WireFormat::PreRefinement => (
            Some(r.role().to_string()),
            last.and_then(legacy_entry),
            Vec::new(),
        ),
        WireFormat::Endpoint => match r.reservations.len() {
            0 => (Some("*".to_string()), None, Vec::new()),
            1 => (
                Some(r.role().to_string()),
                last.and_then(legacy_entry),
                stack(),
            ),
            _ => (None, None, stack()),
        },
    }
}

impl WireResource {
    /// Converts `r` into the Mesos JSON object in `format`.
    pub fn from_resource(r: &Resource, format: WireFormat) -> WireResource {
        let (role, reservation, reservations) = reservation_fields(r, format);
        let mut w = WireResource {
            provider_id: r.provider_id.as_deref().map(|value| WireId {
                value: value.to_string(),
            }),
            name: r.name.to_string(),
            kind: r.value.type_name().to_string(),
            role,
            allocation_info: r.allocation_role.as_ref().map(|role| WireAllocationInfo {
                role: Some(role.to_string()),
            }),
            reservation,
            reservations,
            disk: r.disk.as_deref().cloned(),
            revocable: r.revocable.then(WireEmpty::default),
            shared: r.shared.then(WireEmpty::default),
            ..WireResource::default()
        };
        match &r.value {
            Value::Scalar(s) => w.scalar = Some(WireScalar { value: s.as_f64() }),
            Value::Ranges(v) => {
                w.ranges = Some(WireRanges {
                    range: v.iter().copied().collect(),
                })
            }
            Value::Set(v) => {
                w.set = Some(WireSet {
                    item: v.iter().cloned().collect(),
                })
            }
        }
        w
    }
}

impl Resources {
    /// Validates and normalizes Mesos JSON resources in any format.
    pub fn from_wire(items: &[WireResource]) -> Result<Resources, ValidationError> {
        let parsed = items
            .iter()
            .map(Resource::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Resources::check_type_conflicts(&parsed)?;
        Ok(Resources::from_vec(parsed))
    }

    /// Reserved entries by innermost role, in `format` (the `reserved_resources_full`
    /// field of the state endpoints).
    pub fn reserved_by_role_wire(
        &self,
        format: WireFormat,
    ) -> std::collections::BTreeMap<String, Vec<WireResource>> {
        let mut by_role: std::collections::BTreeMap<String, Resources> = Default::default();
        for r in self.iter().filter(|r| r.is_reserved()) {
            by_role
                .entry(r.role().to_string())
                .or_default()
                .add_resource(r.clone());
        }
        by_role
            .into_iter()
            .map(|(role, r)| (role, r.to_wire(format)))
            .collect()
    }

    /// Mesos JSON objects in `format`, one per (merged) entry.
    pub fn to_wire(&self, format: WireFormat) -> Vec<WireResource> {
        self.iter()
            .map(|r| WireResource::from_resource(r, format))
            .collect()
    }
}

/// Serializes as a post-refinement JSON array.
impl Serialize for Resources {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_wire(WireFormat::PostRefinement).serialize(s)
    }
}

/// Deserializes a JSON array in any of the three formats.
impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Resources, D::Error> {
        let items = Vec::<WireResource>::deserialize(d)?;
        Resources::from_wire(&items).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
