//! Parsing of the Mesos agent `--resources` flag (`name(role):value;...` or
//! a JSON array of Resource objects), role-name validation and the shared
//! scalar/value literal parsers.

use std::str::FromStr;

use crate::error::ParseError;
use crate::ranges::Ranges;
use crate::resource::{Reservation, Resource};
use crate::resources::Resources;
use crate::scalar::Scalar;
use crate::set::Set;
use crate::value::Value;
use crate::wire::WireResource;

/// Why `role` is not a valid Mesos role name, or `None` if it is valid.
/// `"*"` (the unreserved role) is valid.
pub(crate) fn role_problem(role: &str) -> Option<&'static str> {
    if role == "*" {
        return None;
    }
    if role.is_empty() {
        return Some("must not be empty");
    }
    if role.contains('*') {
        return Some("'*' is only valid on its own");
    }
    if role.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain whitespace or control characters");
    }
    if role.starts_with('/') || role.ends_with('/') {
        return Some("must not start or end with '/'");
    }
    for part in role.split('/') {
        if part.is_empty() {
            return Some("must not contain '//'");
        }
        if part == "." || part == ".." {
            return Some("'.' and '..' are not valid role names");
        }
        if part.starts_with('-') {
            return Some("must not start with '-'");
        }
    }
    None
}

/// Validates a Mesos role name (`"*"` is accepted).
pub fn validate_role(role: &str) -> Result<(), ParseError> {
    match role_problem(role) {
        None => Ok(()),
        Some(reason) => Err(ParseError::InvalidRole {
            role: role.to_string(),
            reason: reason.to_string(),
        }),
    }
}

/// Parses a non-negative, finite scalar literal.
pub fn parse_scalar(text: &str) -> Result<Scalar, ParseError> {
    let t = text.trim();
    let v: f64 = t
        .parse()
        .map_err(|_| ParseError::InvalidNumber(t.to_string()))?;
    if !v.is_finite() || v < 0.0 {
        return Err(ParseError::InvalidScalar(t.to_string()));
    }
    Ok(Scalar::from_f64(v))
}

/// Parses a resource value literal: `[a-b,..]`, `{x,..}` or a number.
pub fn parse_value(text: &str) -> Result<Value, ParseError> {
    let t = text.trim();
    if t.starts_with('[') || t.ends_with(']') {
        Ok(Value::Ranges(Ranges::from_str(t)?))
    } else if t.starts_with('{') || t.ends_with('}') {
        Ok(Value::Set(Set::from_str(t)?))
    } else {
        Ok(Value::Scalar(parse_scalar(t)?))
    }
}

/// Splits `name(role)` into the name and optional role.
fn split_name_role(head: &str, item: &str) -> Result<(String, Option<String>), ParseError> {
    let head = head.trim();
    let (name, role) = match head.split_once('(') {
        Some((name, rest)) => {
            let role = rest
                .strip_suffix(')')
                .filter(|r| !r.contains(['(', ')']))
                .ok_or_else(|| ParseError::Unbalanced(item.to_string()))?
                .trim();
            if role.is_empty() {
                return Err(ParseError::EmptyRole(item.to_string()));
            }
            (name.trim(), Some(role.to_string()))
        }
        None if head.contains(')') => return Err(ParseError::Unbalanced(item.to_string())),
        None => (head, None),
    };
    if name.is_empty() {
        return Err(ParseError::EmptyName(item.to_string()));
    }
    Ok((name.to_string(), role))
}

/// Parses one `name(role):value` item.
fn parse_item(item: &str, default_role: &str) -> Result<Resource, ParseError> {
    let (head, value) = item
        .split_once(':')
        .ok_or_else(|| ParseError::MissingSeparator(item.to_string()))?;
    let (name, role) = split_name_role(head, item)?;
    if value.trim().is_empty() {
        return Err(ParseError::MissingValue(item.to_string()));
    }
    let value = parse_value(value)?;
    let role = role.unwrap_or_else(|| default_role.to_string());
    validate_role(&role)?;
    let mut resource = Resource::new(name, value);
    if role != "*" {
        resource.reservations.push(Reservation::static_for(role));
    }
    Ok(resource)
}

/// Parses a JSON array of Mesos Resource objects; entries without `role`
/// or `reservations` get `default_role`.
fn parse_json(text: &str, default_role: &str) -> Result<Resources, ParseError> {
    let mut wire: Vec<WireResource> =
        serde_json::from_str(text).map_err(|e| ParseError::Json(e.to_string()))?;
    if default_role != "*" {
        for w in wire
            .iter_mut()
            .filter(|w| w.role.is_none() && w.reservations.is_empty())
        {
            w.role = Some(default_role.to_string());
        }
    }
    Ok(Resources::from_wire(&wire)?)
}

impl Resources {
    /// Parses the Mesos agent `--resources` flag.
    ///
    /// `cpus:4;mem:8192;ports:[31000-32000];disk(ops):100`: items separated
    /// by `;`, each `name(role):value` or `name:value`. A role other than
    /// `*` (explicit, or `default_role` when omitted) becomes a STATIC
    /// reservation. Text starting with `[` is a JSON array of Resources.
    pub fn parse_flag(text: &str, default_role: &str) -> Result<Resources, ParseError> {
        validate_role(default_role)?;
        let trimmed = text.trim();
        if trimmed.starts_with('[') {
            return parse_json(trimmed, default_role);
        }
        let mut items = Vec::new();
        for item in trimmed.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            items.push(parse_item(item, default_role)?);
        }
        Resources::check_type_conflicts(&items)?;
        Ok(Resources::from_vec(items))
    }
}

impl FromStr for Resources {
    type Err = ParseError;

    /// `Resources::parse_flag(s, "*")`.
    fn from_str(s: &str) -> Result<Resources, ParseError> {
        Resources::parse_flag(s, "*")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ValidationError;

    fn check(input: &str, default_role: &str, expected: Result<&str, ParseError>) {
        let got = Resources::parse_flag(input, default_role).map(|r| r.to_string());
        assert_eq!(got, expected.map(str::to_string), "input {input:?}");
    }

    #[test]
    fn flag_successes() {
        for (input, role, expected) in [
            (
                "cpus:4;mem:8192;disk:10000;ports:[31000-32000];gpus:0;disk(ops):100",
                "*",
                "cpus:4;disk:10000;mem:8192;ports:[31000-32000];disk(ops):100",
            ),
            (" cpus : 0.5 ; mem(*) : 64 ; ", "*", "cpus:0.5;mem:64"),
            ("cpus:1;cpus:2.5", "*", "cpus:3.5"),
            ("cpus:2;mem(*):10", "eng", "mem:10;cpus(eng):2"),
            (
                "zones:{b, a};cpus( eng/dev ):1",
                "*",
                "zones:{a, b};cpus(eng/dev):1",
            ),
            ("ports:[80]", "*", "ports:[80-80]"),
            ("", "*", ""),
            ("cpus:1e1", "*", "cpus:10"),
        ] {
            check(input, role, Ok(expected));
        }
    }

    #[test]
    fn flag_errors() {
        let s = |x: &str| x.to_string();
        let role = |r: &str, why: &str| ParseError::InvalidRole {
            role: s(r),
            reason: s(why),
        };
        for (input, expected) in [
            (":4", ParseError::EmptyName(s(":4"))),
            ("(eng):4", ParseError::EmptyName(s("(eng):4"))),
            ("cpus", ParseError::MissingSeparator(s("cpus"))),
            ("cpus:", ParseError::MissingValue(s("cpus:"))),
            ("cpus:four", ParseError::InvalidNumber(s("four"))),
            ("cpus:-1", ParseError::InvalidScalar(s("-1"))),
            ("cpus:NaN", ParseError::InvalidScalar(s("NaN"))),
            ("cpus:inf", ParseError::InvalidScalar(s("inf"))),
            ("ports:[5-1]", ParseError::InvalidRange(s("5-1"))),
            ("ports:[1-5", ParseError::Unbalanced(s("[1-5"))),
            ("s:{a", ParseError::Unbalanced(s("{a"))),
            ("ports:1-5]", ParseError::Unbalanced(s("1-5]"))),
            ("cpus(eng:1", ParseError::Unbalanced(s("cpus(eng:1"))),
            ("cpus)eng:1", ParseError::Unbalanced(s("cpus)eng:1"))),
            ("cpus():1", ParseError::EmptyRole(s("cpus():1"))),
            ("cpus(-x):1", role("-x", "must not start with '-'")),
            (
                "cpus(..):1",
                role("..", "'.' and '..' are not valid role names"),
            ),
            (
                "cpus(a b):1",
                role("a b", "must not contain whitespace or control characters"),
            ),
            ("cpus(a*):1", role("a*", "'*' is only valid on its own")),
            ("cpus(/a):1", role("/a", "must not start or end with '/'")),
            ("cpus(a//b):1", role("a//b", "must not contain '//'")),
        ] {
            check(input, "*", Err(expected));
        }
        check("cpus:1", "", Err(role("", "must not be empty")));
        let conflict = ValidationError::TypeConflict {
            name: s("cpus"),
            first: s("SCALAR"),
            second: s("RANGES"),
        };
        check("cpus:1;cpus:[1-2]", "*", Err(ParseError::Invalid(conflict)));
    }

    #[test]
    fn flag_json() {
        let json = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":2}},
                       {"name":"mem","type":"SCALAR","scalar":{"value":64},"role":"*"},
                       {"name":"disk","type":"SCALAR","scalar":{"value":5},"role":"ops"}]"#;
        check(json, "*", Ok("cpus:2;mem:64;disk(ops):5"));
        check(json, "eng", Ok("mem:64;cpus(eng):2;disk(ops):5"));
        assert!(matches!(
            Resources::parse_flag("[{\"name\":1}]", "*"),
            Err(ParseError::Json(_))
        ));
        let bad = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":-2}}]"#;
        assert!(matches!(
            Resources::parse_flag(bad, "*"),
            Err(ParseError::Invalid(ValidationError::InvalidScalar { .. }))
        ));
    }

    #[test]
    fn roles() {
        for ok in ["*", "eng", "eng/dev", "a.b", "x-y", "..a"] {
            assert_eq!(validate_role(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "-a", "a\tb", "a/", "a/./b", "a/-b", "**"] {
            assert!(validate_role(bad).is_err(), "{bad}");
        }
    }
}
