//! The flattened resources model of the legacy JSON endpoints
//! (`{"cpus":4.0,"gpus":0.0,"mem":..,"disk":..,"ports":"[..]"}`).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::ranges::Ranges;
use crate::resources::Resources;
use crate::scalar::Scalar;
use crate::set::Set;
use crate::value::Value;

/// Keys the endpoints always write, even when zero.
const ALWAYS: [&str; 4] = ["cpus", "gpus", "mem", "disk"];

impl Resources {
    /// The legacy endpoint model: totals by name across reservations;
    /// `cpus`, `gpus`, `mem`, `disk` always present; ranges and sets as
    /// their display strings; revocable resources under `<name>_revocable`.
    pub fn to_flat_json(&self) -> Map<String, Json> {
        let mut totals: BTreeMap<String, Value> = ALWAYS
            .iter()
            .map(|k| (k.to_string(), Value::Scalar(Scalar::ZERO)))
            .collect();
        for r in self.iter() {
            let key = if r.revocable {
                format!("{}_revocable", r.name)
            } else {
                r.name.to_string()
            };
            let slot = totals.entry(key).or_insert_with(|| empty_like(&r.value));
            // A name used with two types keeps the first; Mesos rejects such
            // input at validation time, so the mismatch is ignored here.
            let _same_type = slot.add(&r.value);
        }
        totals
            .into_iter()
            .map(|(k, v)| (k, flat_value(&v)))
            .collect()
    }

    /// `{role: flat}` for the reserved entries, grouped by their innermost
    /// reservation role (the `reserved_resources` endpoint field).
    pub fn reserved_by_role_flat(&self) -> Map<String, Json> {
        let mut by_role: BTreeMap<String, Resources> = BTreeMap::new();
        for r in self.iter().filter(|r| r.is_reserved()) {
            by_role
                .entry(r.role().to_string())
                .or_default()
                .add_resource(r.clone());
        }
        by_role
            .into_iter()
            .map(|(role, res)| (role, Json::Object(res.to_flat_json())))
            .collect()
    }
}

fn empty_like(v: &Value) -> Value {
    match v {
        Value::Scalar(_) => Value::Scalar(Scalar::ZERO),
        Value::Ranges(_) => Value::Ranges(Ranges::default()),
        Value::Set(_) => Value::Set(Set::new()),
    }
}

fn flat_value(v: &Value) -> Json {
    match v {
        Value::Scalar(s) => Json::from(s.as_f64()),
        other => Json::String(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Resource;

    fn check(flag: &str, revocable_cpus: f64, expected: &str) {
        let mut r = Resources::parse_flag(flag, "*").unwrap();
        let mut rev = Resource::scalar("cpus", revocable_cpus);
        rev.revocable = true;
        r.add_resource(rev);
        assert_eq!(
            Json::Object(r.to_flat_json()).to_string(),
            expected,
            "{flag}"
        );
    }

    #[test]
    fn flat_output() {
        for (flag, rev, expected) in [
            ("", 0.0, r#"{"cpus":0.0,"disk":0.0,"gpus":0.0,"mem":0.0}"#),
            (
                "cpus:4;mem:8192;ports:[31000-32000,40000-40010];cpus(eng):0.5",
                0.0,
                r#"{"cpus":4.5,"disk":0.0,"gpus":0.0,"mem":8192.0,"ports":"[31000-32000, 40000-40010]"}"#,
            ),
            (
                "cpus:1;zones:{b,a};foo:2",
                1.5,
                r#"{"cpus":1.0,"cpus_revocable":1.5,"disk":0.0,"foo":2.0,"gpus":0.0,"mem":0.0,"zones":"{a, b}"}"#,
            ),
        ] {
            check(flag, rev, expected);
        }
    }

    #[test]
    fn reserved_by_role() {
        let r = Resources::parse_flag("cpus:4;cpus(eng):1;mem(eng):2;disk(ops):3", "*").unwrap();
        assert_eq!(
            Json::Object(r.reserved_by_role_flat()).to_string(),
            r#"{"eng":{"cpus":1.0,"disk":0.0,"gpus":0.0,"mem":2.0},"ops":{"cpus":0.0,"disk":3.0,"gpus":0.0,"mem":0.0}}"#
        );
    }
}
