//! Unit tests for the `wire` module: exact JSON output in each format and
//! validation of Mesos JSON input.

use super::*;
use crate::resource::Label;
use serde_json::json;

fn check(r: Resource, format: WireFormat, expected: &str) {
    let json = serde_json::to_string(&WireResource::from_resource(&r, format)).unwrap();
    assert_eq!(json, expected, "{format:?}");
}

fn dynamic_eng() -> Resource {
    Resource::scalar("cpus", 2.0).reserved(Reservation::dynamic("eng", Some("ops".into())))
}

#[test]
fn output_formats() {
    use WireFormat::{Endpoint as E, PostRefinement as Post, PreRefinement as Pre};
    let cpus = Resource::scalar("cpus", 4.0);
    let stat = Resource::scalar("cpus", 2.0).reserved(Reservation::static_for("eng"));
    let ports = Resource::ranges("ports", "[31000-32000, 40000-40010]".parse().unwrap());
    let alloc = Resource::scalar("cpus", 0.5).allocated("web");
    let refined = dynamic_eng().reserved(Reservation::dynamic("eng/a", None));
    let base = r#"{"name":"cpus","type":"SCALAR","scalar":{"value":"#;
    let st = r#"{"type":"STATIC","role":"eng"}"#;
    let dy = r#"{"type":"DYNAMIC","role":"eng","principal":"ops"}"#;
    let table = [
        (cpus.clone(), Pre, format!(r#"{base}4.0}},"role":"*"}}"#)),
        (cpus.clone(), Post, format!(r#"{base}4.0}}}}"#)),
        (cpus, E, format!(r#"{base}4.0}},"role":"*"}}"#)),
        (stat.clone(), Pre, format!(r#"{base}2.0}},"role":"eng"}}"#)),
        (stat.clone(), Post, format!(r#"{base}2.0}},"reservations":[{st}]}}"#)),
        (stat, E, format!(r#"{base}2.0}},"role":"eng","reservations":[{st}]}}"#)),
        (
            dynamic_eng(),
            Pre,
            format!(r#"{base}2.0}},"role":"eng","reservation":{{"principal":"ops"}}}}"#),
        ),
        (dynamic_eng(), Post, format!(r#"{base}2.0}},"reservations":[{dy}]}}"#)),
        (
            dynamic_eng(),
            E,
            format!(
                r#"{base}2.0}},"role":"eng","reservation":{{"principal":"ops"}},"reservations":[{dy}]}}"#
            ),
        ),
        (
            refined,
            E,
            format!(
                r#"{base}2.0}},"reservations":[{dy},{{"type":"DYNAMIC","role":"eng/a"}}]}}"#
            ),
        ),
        (
            ports,
            Pre,
            r#"{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000},{"begin":40000,"end":40010}]},"role":"*"}"#.to_string(),
        ),
        (alloc.clone(), Pre, format!(r#"{base}0.5}},"role":"*","allocation_info":{{"role":"web"}}}}"#)),
        (alloc, Post, format!(r#"{base}0.5}},"allocation_info":{{"role":"web"}}}}"#)),
    ];
    for (r, format, expected) in table {
        check(r, format, &expected);
    }
}

#[test]
fn output_extras() {
    let mut r = Resource::set("zones", ["b", "a"].into_iter().collect());
    r.revocable = true;
    r.shared = true;
    r.provider_id = Some("rp1".into());
    r.disk = Some(Box::new(json!({"persistence": {"id": "v1"}})));
    check(
        r,
        WireFormat::PostRefinement,
        r#"{"provider_id":{"value":"rp1"},"name":"zones","type":"SET","set":{"item":["a","b"]},"disk":{"persistence":{"id":"v1"}},"revocable":{},"shared":{}}"#,
    );
    let mut labelled = dynamic_eng();
    if let Some(last) = labelled.reservations.last_mut() {
        last.labels = Some(Labels {
            labels: vec![Label {
                key: "k".into(),
                value: None,
            }],
        });
    }
    check(
        labelled,
        WireFormat::PreRefinement,
        r#"{"name":"cpus","type":"SCALAR","scalar":{"value":2.0},"role":"eng","reservation":{"principal":"ops","labels":{"labels":[{"key":"k"}]}}}"#,
    );
}

fn parse(json: &str) -> Result<Resources, ValidationError> {
    let items: Vec<WireResource> = serde_json::from_str(json).unwrap();
    Resources::from_wire(&items)
}

#[test]
fn input_formats() {
    let dynamic: Resources = dynamic_eng().into();
    for (json, expected) in [
        (
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"x":{"y":1}}]"#,
            "cpus:1",
        ),
        (
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":"1.5"},"role":"*"}]"#,
            "cpus:1.5",
        ),
        (
            r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"role":"eng"}]"#,
            "cpus(eng):1",
        ),
        (
            r#"[{"name":"p","type":"RANGES","ranges":{"range":[{"begin":1,"end":2}]}}]"#,
            "p:[1-2]",
        ),
        (
            r#"[{"name":"s","type":"SET","set":{"item":["x"]},"reservations":null}]"#,
            "s:{x}",
        ),
    ] {
        assert_eq!(parse(json).unwrap().to_string(), expected, "{json}");
    }
    let pre = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":2},"role":"eng","reservation":{"principal":"ops"}}]"#;
    assert_eq!(parse(pre).unwrap(), dynamic);
    let post = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":2},"reservations":[{"type":"DYNAMIC","role":"eng","principal":"ops"}]}]"#;
    assert_eq!(parse(post).unwrap(), dynamic);
    let alloc = r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":2},"allocation_info":{"role":"web"},"revocable":{}}]"#;
    let r = parse(alloc).unwrap();
    let first = r.iter().next().unwrap();
    assert_eq!(first.allocation_role.as_deref(), Some("web"));
    assert!(first.revocable);
}

#[test]
fn input_errors() {
    let s = |x: &str| x.to_string();
    let inv = |reason: &str| ValidationError::InvalidReservation {
        name: s("c"),
        reason: s(reason),
    };
    for (json, expected) in [
        (
            r#"{"name":"","type":"SCALAR","scalar":{"value":1}}"#,
            ValidationError::EmptyName,
        ),
        (
            r#"{"name":"c","type":"SCALAR","ranges":{"range":[]}}"#,
            ValidationError::MissingValue {
                name: s("c"),
                ty: s("SCALAR"),
            },
        ),
        (
            r#"{"name":"c","type":"SCALAR","scalar":{"value":-1}}"#,
            ValidationError::InvalidScalar {
                name: s("c"),
                value: s("-1"),
            },
        ),
        (
            r#"{"name":"c","type":"SCALAR","scalar":{"value":"Infinity"}}"#,
            ValidationError::InvalidScalar {
                name: s("c"),
                value: s("inf"),
            },
        ),
        (
            r#"{"name":"c","type":"RANGES","ranges":{"range":[{"begin":5,"end":1}]}}"#,
            ValidationError::InvalidRange {
                name: s("c"),
                begin: 5,
                end: 1,
            },
        ),
        (
            r#"{"name":"c","type":"BLOB","scalar":{"value":1}}"#,
            ValidationError::UnknownType {
                name: s("c"),
                ty: s("BLOB"),
            },
        ),
        (
            r#"{"name":"c","type":"TEXT","text":{"value":"x"}}"#,
            ValidationError::UnsupportedType {
                name: s("c"),
                ty: s("TEXT"),
            },
        ),
        (
            r#"{"name":"c","type":"SCALAR","scalar":{"value":1},"role":"-x"}"#,
            ValidationError::InvalidRole {
                name: s("c"),
                role: s("-x"),
                reason: s("must not start with '-'"),
            },
        ),
        (
            r#"{"name":"c","type":"SCALAR","scalar":{"value":1},"reservations":[{"role":"a"}]}"#,
            inv("'type' must be set"),
        ),
        (
            r#"{"name":"c","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"X","role":"a"}]}"#,
            inv("unknown type 'X'"),
        ),
        (
            r#"{"name":"c","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"STATIC"}]}"#,
            inv("'role' must be set"),
        ),
        (
            r#"{"name":"c","type":"SCALAR","scalar":{"value":1},"reservations":[{"type":"STATIC","role":"*"}]}"#,
            inv("cannot reserve for role '*'"),
        ),
        (
            r#"{"name":"c","type":"SCALAR","scalar":{"value":1},"reservation":{"principal":"p"}}"#,
            inv("a dynamic reservation needs a role other than '*'"),
        ),
    ] {
        assert_eq!(parse(&format!("[{json}]")), Err(expected), "{json}");
    }
    let missing_type = serde_json::from_str::<Vec<WireResource>>(r#"[{"name":"c"}]"#);
    assert!(missing_type.is_err());
}

#[test]
fn resources_serde() {
    let r = Resources::parse_flag("cpus:1;ports:[1-3];mem(eng):5", "*").unwrap();
    let text = serde_json::to_string(&r).unwrap();
    assert_eq!(
        text,
        r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1.0}},{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":1,"end":3}]}},{"name":"mem","type":"SCALAR","scalar":{"value":5.0},"reservations":[{"type":"STATIC","role":"eng"}]}]"#
    );
    assert_eq!(serde_json::from_str::<Resources>(&text).unwrap(), r);
    assert!(serde_json::from_str::<Resources>(r#"[{"name":"","type":"SCALAR"}]"#).is_err());
}
