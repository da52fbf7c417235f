//! `DomainInfo` as the `--domain` flag of masters and agents gives it: JSON
//! `{"fault_domain":{"region":{"name":"r1"},"zone":{"name":"z1"}}}`, checked as Mesos
//! checks it (both names required), read from the flag's text or the file it names.

use serde_json::Value;

/// A `--domain` flag's value: JSON, or a file holding it (`file:///path` or a path);
/// `None` when the flag is not set.
pub fn from_flag(flag: Option<&str>) -> Result<Option<Value>, String> {
    let Some(text) = flag.map(str::trim) else {
        return Ok(None);
    };
    let json = if text.starts_with('{') {
        text.to_string()
    } else {
        let path = text.strip_prefix("file://").unwrap_or(text);
        std::fs::read_to_string(path).map_err(|e| format!("--domain: cannot read {path}: {e}"))?
    };
    parse(&json).map(Some)
}

/// Parses and checks a `DomainInfo` JSON text.
pub fn parse(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("--domain is not valid JSON ({e}); expected {EXAMPLE}"))?;
    let fault = v
        .get("fault_domain")
        .ok_or_else(|| format!("--domain needs a 'fault_domain', e.g. {EXAMPLE}"))?;
    for level in ["region", "zone"] {
        let name = fault
            .pointer(&format!("/{level}/name"))
            .and_then(Value::as_str);
        if name.is_none_or(str::is_empty) {
            return Err(format!(
                "--domain: 'fault_domain.{level}.name' is required, e.g. {EXAMPLE}"
            ));
        }
    }
    Ok(v)
}

/// The region name of a `DomainInfo`, if it has a fault domain.
pub fn region(domain: Option<&Value>) -> Option<&str> {
    domain?.pointer("/fault_domain/region/name")?.as_str()
}

/// The zone name of a `DomainInfo`, if it has a fault domain.
pub fn zone(domain: Option<&Value>) -> Option<&str> {
    domain?.pointer("/fault_domain/zone/name")?.as_str()
}

const EXAMPLE: &str = r#"{"fault_domain":{"region":{"name":"r1"},"zone":{"name":"z1"}}}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_need_region_and_zone() {
        let ok = parse(EXAMPLE).unwrap();
        assert_eq!(region(Some(&ok)), Some("r1"));
        assert_eq!(zone(Some(&ok)), Some("z1"));
        assert!(parse("{}").unwrap_err().contains("fault_domain"));
        assert!(parse(r#"{"fault_domain":{"region":{"name":"r"}}}"#)
            .unwrap_err()
            .contains("zone.name"));
        assert!(parse("nope").unwrap_err().contains("not valid JSON"));
    }
}
