//! A single `Resource` (name, value, reservation stack and the other
//! identity fields) plus `Reservation`, `ReservationKind`, `Label`, `Labels`.

use compact_str::CompactString;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use thin_vec::ThinVec;

use serde::{Deserialize, Serialize};

use crate::ranges::Ranges;
use crate::scalar::Scalar;
use crate::set::Set;
use crate::value::Value;

/// A Mesos label: `{"key":..,"value":..}` (`value` omitted when `None`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Label {
    /// Label key.
    pub key: String,
    /// Optional label value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Mesos `Labels`: `{"labels":[..]}` (the array omitted when empty).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize)]
pub struct Labels {
    /// The labels, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
}

/// Whether a reservation comes from agent configuration or an operation.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationKind {
    /// From the agent's `--resources` flag.
    Static,
    /// Made by RESERVE operations.
    Dynamic,
}

impl ReservationKind {
    /// The Mesos enum name: `STATIC` or `DYNAMIC`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationKind::Static => "STATIC",
            ReservationKind::Dynamic => "DYNAMIC",
        }
    }
}

/// One entry of a reservation stack.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Reservation {
    /// Static or dynamic.
    pub kind: ReservationKind,
    /// The role reserved for.
    pub role: String,
    /// The principal that made a dynamic reservation.
    pub principal: Option<String>,
    /// Labels attached to a dynamic reservation.
    pub labels: Option<Labels>,
}

impl Reservation {
    /// A static reservation for `role`.
    pub fn static_for(role: impl Into<String>) -> Reservation {
        Reservation {
            kind: ReservationKind::Static,
            role: role.into(),
            principal: None,
            labels: None,
        }
    }

    /// A dynamic reservation for `role` made by `principal`.
    pub fn dynamic(role: impl Into<String>, principal: Option<String>) -> Reservation {
        Reservation {
            kind: ReservationKind::Dynamic,
            role: role.into(),
            principal,
            labels: None,
        }
    }
}

/// One resource: a named value plus everything that makes it distinct
/// (reservation stack, allocation role, revocable/shared, disk, provider).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Resource {
    /// Resource name (`cpus`, `mem`, `disk`, `ports`, ...), inline when short.
    pub name: CompactString,
    /// The quantity.
    pub value: Value,
    /// Reservation stack; empty = unreserved, each later entry refines.
    pub reservations: ThinVec<Reservation>,
    /// `allocation_info.role`, when allocated or offered to a role.
    pub allocation_role: Option<CompactString>,
    /// Revocable (oversubscribed) resource.
    pub revocable: bool,
    /// Shared resource (persistent volumes).
    pub shared: bool,
    /// Mesos `DiskInfo`, kept verbatim (boxed: most resources have none).
    pub disk: Option<Box<serde_json::Value>>,
    /// `provider_id.value` of a resource provider.
    pub provider_id: Option<Box<str>>,
}

impl Resource {
    /// An unreserved resource with no extra identity fields.
    pub fn new(name: impl Into<CompactString>, value: impl Into<Value>) -> Resource {
        Resource {
            name: name.into(),
            value: value.into(),
            reservations: ThinVec::new(),
            allocation_role: None,
            revocable: false,
            shared: false,
            disk: None,
            provider_id: None,
        }
    }

    /// An unreserved scalar resource (rounded to thousandths).
    pub fn scalar(name: impl Into<CompactString>, value: f64) -> Resource {
        Resource::new(name, Scalar::from_f64(value))
    }

    /// An unreserved ranges resource.
    pub fn ranges(name: impl Into<CompactString>, value: Ranges) -> Resource {
        Resource::new(name, value)
    }

    /// An unreserved set resource.
    pub fn set(name: impl Into<CompactString>, value: Set) -> Resource {
        Resource::new(name, value)
    }

    /// Pushes `reservation` onto the stack (reserve or refine).
    pub fn reserved(mut self, reservation: Reservation) -> Resource {
        self.reservations.push(reservation);
        self
    }

    /// Sets the allocation role.
    pub fn allocated(mut self, role: impl Into<CompactString>) -> Resource {
        self.allocation_role = Some(role.into());
        self
    }

    /// `"*"` when unreserved, else the role of the last reservation.
    pub fn role(&self) -> &str {
        self.reservations.last().map_or("*", |r| r.role.as_str())
    }

    /// True when the reservation stack is non-empty.
    pub fn is_reserved(&self) -> bool {
        !self.reservations.is_empty()
    }

    /// True when the last reservation is dynamic.
    pub fn is_dynamically_reserved(&self) -> bool {
        self.reservations
            .last()
            .is_some_and(|r| r.kind == ReservationKind::Dynamic)
    }

    /// The scalar value, if this is a SCALAR resource.
    pub fn as_scalar(&self) -> Option<Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(*s),
            _ => None,
        }
    }

    /// True when everything except the quantity is equal (value type included).
    pub fn same_identity(&self, other: &Resource) -> bool {
        self.cmp_identity(other) == Ordering::Equal
    }

    /// Canonical total order on identity; unreserved entries sort first.
    pub(crate) fn cmp_identity(&self, other: &Resource) -> Ordering {
        self.reservations
            .cmp(&other.reservations)
            .then_with(|| self.name.cmp(&other.name))
            .then_with(|| self.value.type_tag().cmp(&other.value.type_tag()))
            .then_with(|| self.allocation_role.cmp(&other.allocation_role))
            .then_with(|| self.revocable.cmp(&other.revocable))
            .then_with(|| self.shared.cmp(&other.shared))
            .then_with(|| self.provider_id.cmp(&other.provider_id))
            .then_with(|| cmp_disk(self.disk.as_deref(), other.disk.as_deref()))
    }
}

fn cmp_disk(a: Option<&serde_json::Value>, b: Option<&serde_json::Value>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) if x == y => Ordering::Equal,
        (Some(x), Some(y)) => canonical_json(x).cmp(&canonical_json(y)),
    }
}

/// JSON text with object keys sorted, independent of map ordering features.
pub(crate) fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(item) = map.get(k) {
                    write_canonical(item, out);
                }
            }
            out.push('}');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

impl Hash for Resource {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.value.hash(state);
        self.reservations.hash(state);
        self.allocation_role.hash(state);
        self.revocable.hash(state);
        self.shared.hash(state);
        self.disk.as_deref().map(canonical_json).hash(state);
        self.provider_id.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_and_identity() {
        let cpus = Resource::scalar("cpus", 1.0);
        assert_eq!(cpus.role(), "*");
        assert!(!cpus.is_reserved());
        let eng = cpus.clone().reserved(Reservation::static_for("eng"));
        let refined = eng
            .clone()
            .reserved(Reservation::dynamic("eng/dev", Some("p".into())));
        assert_eq!(eng.role(), "eng");
        assert_eq!(refined.role(), "eng/dev");
        assert!(refined.is_dynamically_reserved());
        assert!(!eng.is_dynamically_reserved());
        assert!(!cpus.same_identity(&eng));
        assert!(cpus.same_identity(&Resource::scalar("cpus", 7.5)));
        assert!(!cpus.same_identity(&Resource::scalar("mem", 1.0)));
        assert!(!cpus.same_identity(&cpus.clone().allocated("r")));
        assert_eq!(cpus.cmp_identity(&eng), Ordering::Less);
    }

    #[test]
    fn disk_identity_ignores_key_order() {
        let mut a = Resource::scalar("disk", 1.0);
        a.disk = Some(Box::new(
            json!({"persistence": {"id": "v1"}, "volume": {"mode": "RW"}}),
        ));
        let mut b = Resource::scalar("disk", 2.0);
        b.disk = Some(Box::new(
            json!({"volume": {"mode": "RW"}, "persistence": {"id": "v1"}}),
        ));
        assert!(a.same_identity(&b));
        assert_eq!(
            canonical_json(&json!({"b": [1, {"d": 1, "c": "x"}], "a": null})),
            r#"{"a":null,"b":[1,{"c":"x","d":1}]}"#
        );
    }

    #[test]
    fn labels_serde_shape() {
        let labels = Labels {
            labels: vec![
                Label {
                    key: "k".into(),
                    value: Some("v".into()),
                },
                Label {
                    key: "flag".into(),
                    value: None,
                },
            ],
        };
        let text = serde_json::to_string(&labels).unwrap();
        assert_eq!(
            text,
            r#"{"labels":[{"key":"k","value":"v"},{"key":"flag"}]}"#
        );
        assert_eq!(serde_json::from_str::<Labels>(&text).unwrap(), labels);
        assert_eq!(serde_json::to_string(&Labels::default()).unwrap(), "{}");
    }
}
