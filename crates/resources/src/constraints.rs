//! Placement constraints in Marathon's `[field, OPERATOR, value?]` form: parsing with
//! Marathon's validation, and whether one agent may take a first instance.
//!
//! Fields: `hostname` / `@hostname` is the agent's hostname, `@region` / `@zone` its
//! fault domain, anything else an agent attribute, compared as a string (text as is, a
//! scalar as `0.###`, ranges as `[b-e,..]`, a set as `{a,b}` sorted). Operators that
//! depend on the instances already placed (UNIQUE, GROUP_BY, MAX_PER, CLUSTER without a
//! value) accept any agent that has the field: what they say about a first instance.

use crate::attributes::{AttrValue, Attribute};
use regex::Regex;
use std::fmt;

/// A Marathon constraint operator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Operator {
    Unique,
    Cluster,
    GroupBy,
    Like,
    Unlike,
    MaxPer,
    Is,
}

impl Operator {
    fn parse(op: &str) -> Option<Operator> {
        Some(match op.to_ascii_uppercase().as_str() {
            "UNIQUE" => Operator::Unique,
            "CLUSTER" => Operator::Cluster,
            "GROUP_BY" => Operator::GroupBy,
            "LIKE" => Operator::Like,
            "UNLIKE" => Operator::Unlike,
            "MAX_PER" => Operator::MaxPer,
            "IS" => Operator::Is,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Operator::Unique => "UNIQUE",
            Operator::Cluster => "CLUSTER",
            Operator::GroupBy => "GROUP_BY",
            Operator::Like => "LIKE",
            Operator::Unlike => "UNLIKE",
            Operator::MaxPer => "MAX_PER",
            Operator::Is => "IS",
        }
    }
}

/// One constraint.
#[derive(Clone, Debug)]
pub struct Constraint {
    pub field: String,
    pub op: Operator,
    pub value: Option<String>,
    /// LIKE/UNLIKE: the value anchored and compiled.
    regex: Option<Regex>,
}

impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        (&self.field, self.op, &self.value) == (&other.field, other.op, &other.value)
    }
}

/// What a constraint is checked against: one agent.
#[derive(Clone, Copy, Debug, Default)]
pub struct AgentFacts<'a> {
    pub hostname: &'a str,
    pub region: Option<&'a str>,
    pub zone: Option<&'a str>,
    pub attributes: &'a [Attribute],
}

impl Constraint {
    /// Parses `[field, OP]` or `[field, OP, value]` (strings; OP in any case), with
    /// Marathon's rules for each operator's value.
    pub fn parse(v: &serde_json::Value) -> Result<Constraint, String> {
        let items: Vec<&str> = v
            .as_array()
            .filter(|a| (2..=3).contains(&a.len()))
            .and_then(|a| a.iter().map(|x| x.as_str()).collect::<Option<Vec<_>>>())
            .ok_or_else(|| format!("a constraint is an array of 2 or 3 strings, got {v}"))?;
        let field = items[0].to_string();
        let op = Operator::parse(items[1]).ok_or_else(|| {
            "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS".to_string()
        })?;
        let value = items.get(2).map(|s| s.to_string());
        let mut regex = None;
        match (op, value.as_deref()) {
            (Operator::Unique, Some(_)) => return Err("UNIQUE takes no value".into()),
            (Operator::GroupBy, Some(n)) | (Operator::MaxPer, Some(n))
                if n.parse::<u32>().is_err() =>
            {
                return Err(format!("{} needs an integer value, got '{n}'", op.as_str()))
            }
            (Operator::MaxPer, None) => return Err("MAX_PER needs an integer value".into()),
            (Operator::Like | Operator::Unlike, None) => {
                return Err(format!("{} needs a regular expression", op.as_str()))
            }
            (Operator::Like | Operator::Unlike, Some(re)) => {
                let anchored = Regex::new(&format!("^(?:{re})$"))
                    .map_err(|e| format!("'{re}' is not a valid regular expression: {e}"))?;
                regex = Some(anchored);
            }
            (Operator::Is, None) => return Err("IS needs a value".into()),
            (Operator::Is, Some(s))
                if !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_/.-".contains(c)) =>
            {
                return Err(format!("IS takes a value of [a-zA-Z0-9_/.-], got '{s}'"))
            }
            _ => {}
        }
        Ok(Constraint {
            field,
            op,
            value,
            regex,
        })
    }

    /// Whether an agent may take a first instance under this constraint. If the agent
    /// lacks the field, only UNLIKE accepts it (Marathon).
    pub fn accepts(&self, agent: &AgentFacts) -> bool {
        let Some(actual) = field_value(&self.field, agent) else {
            return self.op == Operator::Unlike;
        };
        let like = |re: &Option<Regex>| re.as_ref().is_some_and(|r| r.is_match(&actual));
        match self.op {
            Operator::Like => like(&self.regex),
            Operator::Unlike => !like(&self.regex),
            Operator::Cluster => self.value.as_deref().is_none_or(|v| v == actual),
            Operator::Is => self
                .value
                .as_deref()
                .is_some_and(|v| same_value(v, &actual)),
            Operator::Unique | Operator::GroupBy | Operator::MaxPer => true,
        }
    }
}

impl fmt::Display for Constraint {
    /// `zone IS b`, `rack LIKE r[12]`, `hostname UNIQUE`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.op.as_str())?;
        if let Some(v) = &self.value {
            write!(f, " {v}")?;
        }
        Ok(())
    }
}

/// The agent's value of `field` as Marathon compares it, if it has one.
fn field_value(field: &str, agent: &AgentFacts) -> Option<String> {
    match field {
        "hostname" | "@hostname" => Some(agent.hostname.to_string()),
        "@region" => agent.region.map(str::to_string),
        "@zone" => agent.zone.map(str::to_string),
        name => agent
            .attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| marathon_string(&a.value)),
    }
}

/// An attribute value as Marathon's constraints see it.
fn marathon_string(v: &AttrValue) -> String {
    match v {
        AttrValue::Text(t) => t.clone(),
        AttrValue::Scalar(s) => format_scalar(s.as_f64()),
        AttrValue::Ranges(r) => {
            let parts: Vec<String> = r.iter().map(|x| format!("{}-{}", x.begin, x.end)).collect();
            format!("[{}]", parts.join(","))
        }
        AttrValue::Set(s) => {
            let items: Vec<&str> = s.iter().map(String::as_str).collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

/// `0.###` with half-even rounding: `0.80` → `0.8`, `2.0` → `2`.
fn format_scalar(x: f64) -> String {
    let scaled = x * 1000.0;
    let mut r = scaled.round();
    if (scaled - scaled.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r -= scaled.signum();
    }
    let s = format!("{:.3}", r / 1000.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// IS: equal as numbers when both are numeric, else as strings.
fn same_value(want: &str, actual: &str) -> bool {
    match (want.parse::<f64>(), actual.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => want == actual,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::parse_attributes;
    use serde_json::json;

    fn c(v: serde_json::Value) -> Constraint {
        Constraint::parse(&v).unwrap()
    }

    fn agent(attrs: &[Attribute]) -> AgentFacts<'_> {
        AgentFacts {
            hostname: "node7",
            region: Some("eu"),
            zone: Some("b"),
            attributes: attrs,
        }
    }

    #[test]
    fn marathon_validation() {
        assert!(Constraint::parse(&json!(["a", "bogus", "x"]))
            .unwrap_err()
            .starts_with("operator must be one of"));
        assert!(Constraint::parse(&json!(["a"])).is_err());
        assert!(Constraint::parse(&json!(["a", "LIKE", 3])).is_err());
        assert!(Constraint::parse(&json!(["a", "UNIQUE", "x"])).is_err());
        assert!(Constraint::parse(&json!(["a", "MAX_PER", "two"])).is_err());
        assert!(Constraint::parse(&json!(["a", "LIKE", "("])).is_err());
        assert!(Constraint::parse(&json!(["a", "IS", "a b"])).is_err());
        assert_eq!(c(json!(["rack", "group_by"])).op, Operator::GroupBy);
    }

    #[test]
    fn fields_and_operators_on_one_agent() {
        let attrs = parse_attributes("rack:r1;level:0.80;ports:[1-3];zones:{b,a}").unwrap();
        let a = agent(&attrs);
        assert!(c(json!(["hostname", "CLUSTER", "node7"])).accepts(&a));
        assert!(c(json!(["@zone", "IS", "b"])).accepts(&a));
        assert!(!c(json!(["@region", "IS", "us"])).accepts(&a));
        assert!(c(json!(["rack", "LIKE", "r[0-9]"])).accepts(&a));
        assert!(!c(json!(["rack", "LIKE", "r"])).accepts(&a), "anchored");
        assert!(c(json!(["level", "IS", "0.8"])).accepts(&a));
        assert!(Constraint::parse(&json!(["ports", "IS", "[1-3]"])).is_err());
        assert!(c(json!(["ports", "LIKE", r"\[1-3\]"])).accepts(&a));
        assert!(c(json!(["zones", "LIKE", r"\{a,b\}"])).accepts(&a));
        // A missing field: only UNLIKE accepts.
        assert!(c(json!(["gpu", "UNLIKE", "x"])).accepts(&a));
        assert!(!c(json!(["gpu", "UNIQUE"])).accepts(&a));
        assert!(!c(json!(["gpu", "CLUSTER"])).accepts(&a));
        assert!(c(json!(["rack", "MAX_PER", "2"])).accepts(&a));
    }

    #[test]
    fn scalars_format_like_marathon() {
        assert_eq!(format_scalar(0.80), "0.8");
        assert_eq!(format_scalar(2.0), "2");
        assert_eq!(format_scalar(1.25), "1.25");
        assert_eq!(format_scalar(0.0625), "0.062", "half-even");
    }
}
