//! Agent attributes: `Attribute`/`AttrValue`, the `--attributes` flag
//! syntax, the Mesos v1 JSON shape (`WireAttribute`) and the flattened
//! `{name: number|string}` endpoint form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ParseError, ValidationError};
use crate::ranges::{Range, Ranges};
use crate::scalar::Scalar;
use crate::set::Set;
use crate::wire::{WireRanges, WireScalar, WireSet};

/// An attribute value (Mesos TEXT, SCALAR, RANGES or SET).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum AttrValue {
    /// Free text.
    Text(String),
    /// A number.
    Scalar(Scalar),
    /// Integer ranges.
    Ranges(Ranges),
    /// A set of strings.
    Set(Set),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Text(t) => f.write_str(t),
            AttrValue::Scalar(s) => s.fmt(f),
            AttrValue::Ranges(r) => r.fmt(f),
            AttrValue::Set(s) => s.fmt(f),
        }
    }
}

/// A named agent attribute. Serde uses the Mesos v1 JSON shape.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "WireAttribute", into = "WireAttribute")]
pub struct Attribute {
    /// Attribute name.
    pub name: String,
    /// Attribute value.
    pub value: AttrValue,
}

/// `{"value":".."}` for TEXT values.
#[derive(Clone, PartialEq, Eq, Default, Debug, Serialize, Deserialize)]
pub struct WireText {
    /// The text.
    pub value: String,
}

/// A Mesos v1 `Attribute` JSON object; unknown keys are ignored.
#[derive(Clone, PartialEq, Default, Debug, Serialize, Deserialize)]
pub struct WireAttribute {
    /// Attribute name.
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
    /// Text value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<WireText>,
}

/// Parses one attribute value: `[..]` RANGES, `{..}` SET, a finite number
/// SCALAR, anything else TEXT.
pub fn parse_attr_value(text: &str) -> Result<AttrValue, ParseError> {
    let t = text.trim();
    if t.starts_with('[') {
        return Ok(AttrValue::Ranges(Ranges::from_str(t)?));
    }
    if t.starts_with('{') {
        return Ok(AttrValue::Set(Set::from_str(t)?));
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(AttrValue::Scalar(Scalar::from_f64(v))),
        _ => Ok(AttrValue::Text(t.to_string())),
    }
}

/// Parses the agent `--attributes` flag: `rack:r1;n:2;p:[1-5];s:{a,b}`.
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, ParseError> {
    let mut out = Vec::new();
    for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item
            .split_once(':')
            .ok_or_else(|| ParseError::MissingSeparator(item.to_string()))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(ParseError::EmptyName(item.to_string()));
        }
        if value.trim().is_empty() {
            return Err(ParseError::MissingValue(item.to_string()));
        }
        out.push(Attribute {
            name: name.to_string(),
            value: parse_attr_value(value)?,
        });
    }
    Ok(out)
}

/// Formats attributes back into the flag syntax.
pub fn attributes_to_string(attrs: &[Attribute]) -> String {
    attrs
        .iter()
        .map(|a| format!("{}:{}", a.name, a.value))
        .collect::<Vec<_>>()
        .join(";")
}

/// The legacy endpoint form: `{name: number|string}` (ranges and sets as
/// their display strings).
pub fn attributes_to_flat(attrs: &[Attribute]) -> serde_json::Map<String, serde_json::Value> {
    attrs
        .iter()
        .map(|a| {
            let v = match &a.value {
                AttrValue::Scalar(s) => serde_json::Value::from(s.as_f64()),
                other => serde_json::Value::String(other.to_string()),
            };
            (a.name.clone(), v)
        })
        .collect()
}

fn wire_attr_value(w: &WireAttribute) -> Result<AttrValue, ValidationError> {
    let missing = || ValidationError::MissingValue {
        name: w.name.clone(),
        ty: w.kind.clone(),
    };
    match w.kind.as_str() {
        "SCALAR" => {
            let v = w.scalar.as_ref().ok_or_else(missing)?.value;
            if !v.is_finite() {
                return Err(ValidationError::InvalidScalar {
                    name: w.name.clone(),
                    value: v.to_string(),
                });
            }
            Ok(AttrValue::Scalar(Scalar::from_f64(v)))
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
            Ok(AttrValue::Ranges(Ranges::new(ranges.clone())))
        }
        "SET" => Ok(AttrValue::Set(
            w.set
                .as_ref()
                .ok_or_else(missing)?
                .item
                .iter()
                .cloned()
                .collect(),
        )),
        "TEXT" => Ok(AttrValue::Text(
            w.text.as_ref().ok_or_else(missing)?.value.clone(),
        )),
        _ => Err(ValidationError::UnknownType {
            name: w.name.clone(),
            ty: w.kind.clone(),
        }),
    }
}

impl TryFrom<&WireAttribute> for Attribute {
    type Error = ValidationError;
    fn try_from(w: &WireAttribute) -> Result<Attribute, ValidationError> {
        if w.name.is_empty() {
            return Err(ValidationError::EmptyName);
        }
        Ok(Attribute {
            name: w.name.clone(),
            value: wire_attr_value(w)?,
        })
    }
}

impl TryFrom<WireAttribute> for Attribute {
    type Error = ValidationError;
    fn try_from(w: WireAttribute) -> Result<Attribute, ValidationError> {
        Attribute::try_from(&w)
    }
}

impl From<&Attribute> for WireAttribute {
    fn from(a: &Attribute) -> WireAttribute {
        let mut w = WireAttribute {
            name: a.name.clone(),
            ..WireAttribute::default()
        };
        let kind = match &a.value {
            AttrValue::Text(t) => {
                w.text = Some(WireText { value: t.clone() });
                "TEXT"
            }
            AttrValue::Scalar(s) => {
                w.scalar = Some(WireScalar { value: s.as_f64() });
                "SCALAR"
            }
            AttrValue::Ranges(r) => {
                w.ranges = Some(WireRanges {
                    range: r.iter().copied().collect::<Vec<Range>>(),
                });
                "RANGES"
            }
            AttrValue::Set(s) => {
                w.set = Some(WireSet {
                    item: s.iter().cloned().collect(),
                });
                "SET"
            }
        };
        w.kind = kind.to_string();
        w
    }
}

impl From<Attribute> for WireAttribute {
    fn from(a: Attribute) -> WireAttribute {
        WireAttribute::from(&a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, ParseError>) {
        let got = parse_attributes(input).map(|attrs| {
            let json: Vec<String> = attrs
                .iter()
                .map(|a| serde_json::to_string(a).unwrap())
                .collect();
            json.join(",")
        });
        assert_eq!(got, expected.map(str::to_string), "input {input:?}");
    }

    #[test]
    fn parse_to_wire() {
        let s = |x: &str| x.to_string();
        for (input, expected) in [
            (
                "rack:r1",
                Ok(r#"{"name":"rack","type":"TEXT","text":{"value":"r1"}}"#),
            ),
            (
                "n:2",
                Ok(r#"{"name":"n","type":"SCALAR","scalar":{"value":2.0}}"#),
            ),
            (
                " p : [1-5] ",
                Ok(r#"{"name":"p","type":"RANGES","ranges":{"range":[{"begin":1,"end":5}]}}"#),
            ),
            (
                "s:{a,b}",
                Ok(r#"{"name":"s","type":"SET","set":{"item":["a","b"]}}"#),
            ),
            (
                "os:linux-5.1;",
                Ok(r#"{"name":"os","type":"TEXT","text":{"value":"linux-5.1"}}"#),
            ),
            (
                "x:inf",
                Ok(r#"{"name":"x","type":"TEXT","text":{"value":"inf"}}"#),
            ),
            ("", Ok("")),
            ("rack", Err(ParseError::MissingSeparator(s("rack")))),
            (":r1", Err(ParseError::EmptyName(s(":r1")))),
            ("rack:", Err(ParseError::MissingValue(s("rack:")))),
            ("p:[5-1]", Err(ParseError::InvalidRange(s("5-1")))),
            ("p:[1-5", Err(ParseError::Unbalanced(s("[1-5")))),
        ] {
            check(input, expected);
        }
    }

    #[test]
    fn flat_and_roundtrip() {
        let attrs = parse_attributes("rack:r1;n:2.5;p:[1-5,7-7];s:{b,a}").unwrap();
        let flat = serde_json::Value::Object(attributes_to_flat(&attrs));
        assert_eq!(
            flat.to_string(),
            r#"{"n":2.5,"p":"[1-5, 7-7]","rack":"r1","s":"{a, b}"}"#
        );
        assert_eq!(
            attributes_to_string(&attrs),
            "rack:r1;n:2.5;p:[1-5, 7-7];s:{a, b}"
        );
        let text = serde_json::to_string(&attrs).unwrap();
        let back: Vec<Attribute> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, attrs);
    }

    #[test]
    fn wire_errors() {
        let bad = |json: &str| serde_json::from_str::<WireAttribute>(json).unwrap();
        let cases = [
            (
                r#"{"name":"","type":"TEXT","text":{"value":"x"}}"#,
                ValidationError::EmptyName,
            ),
            (
                r#"{"name":"a","type":"TEXT"}"#,
                ValidationError::MissingValue {
                    name: "a".into(),
                    ty: "TEXT".into(),
                },
            ),
            (
                r#"{"name":"a","type":"NOPE","extra":1}"#,
                ValidationError::UnknownType {
                    name: "a".into(),
                    ty: "NOPE".into(),
                },
            ),
            (
                r#"{"name":"a","type":"RANGES","ranges":{"range":[{"begin":2,"end":1}]}}"#,
                ValidationError::InvalidRange {
                    name: "a".into(),
                    begin: 2,
                    end: 1,
                },
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(Attribute::try_from(&bad(json)), Err(expected), "{json}");
        }
    }
}
