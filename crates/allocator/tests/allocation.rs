//! Allocation-cycle behaviour: DRF order, weights, reservations, min_allocatable,
//! inactive frameworks and agents, and partial cycles.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use strata_allocator::{Allocator, Config};
use strata_resources::Scalar;

const SMALL: &str = "cpus:1;mem:100";

#[test]
fn drf_alternates_between_frameworks_of_one_role() {
    let mut a = with_agents(&[("a1", SMALL), ("a2", SMALL), ("a3", SMALL), ("a4", SMALL)]);
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    assert_eq!(
        cycle(&mut a, 0.0),
        [
            "f1@a1/r cpus:1;mem:100",
            "f2@a2/r cpus:1;mem:100",
            "f1@a3/r cpus:1;mem:100",
            "f2@a4/r cpus:1;mem:100"
        ]
    );
    assert!(cycle(&mut a, 1.0).is_empty(), "nothing left to offer");
}

#[test]
fn drf_uses_the_dominant_resource() {
    // f1 already holds a lot of memory (dominant share 0.5) and few cpus; f2 holds a
    // cpu-heavy but smaller share (0.25): f2 is served first.
    let mut a = with_agents(&[("a1", "cpus:4;mem:400"), ("a2", "cpus:4;mem:400")]);
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    a.add_used(&"f1", &"a1", &res_in("cpus:0.5;mem:400", "r"));
    a.add_used(&"f2", &"a1", &res_in("cpus:2", "r"));
    assert_eq!(
        cycle(&mut a, 0.0),
        ["f2@a1/r cpus:1.5", "f2@a2/r cpus:4;mem:400"]
    );
}

#[test]
fn weights_scale_role_shares() {
    let agents: Vec<(&'static str, &str)> = (0..30)
        .map(|i| {
            (
                &*Box::leak(format!("a{i:02}").into_boxed_str()),
                "cpus:1;mem:10",
            )
        })
        .collect();
    for (weight_b, expect_a, expect_b) in
        [(1.0, 15, 15), (2.0, 10, 20), (0.5, 20, 10), (5.0, 5, 25)]
    {
        let mut a = with_agents(&agents);
        add_fw(&mut a, "fa", &["a"]);
        add_fw(&mut a, "fb", &["b"]);
        a.set_weight("b", weight_b);
        let out = a.allocate(0.0);
        let count = |role: &str| out.iter().filter(|x| x.role == role).count();
        assert_eq!(
            (count("a"), count("b")),
            (expect_a, expect_b),
            "weight {weight_b}"
        );
        let (share_a, _) = a.role_share("a");
        let (share_b, _) = a.role_share("b");
        assert!(
            (share_a - share_b).abs() < 0.05,
            "weighted shares {share_a} vs {share_b}"
        );
    }
}

#[test]
fn zero_weight_role_sorts_last_not_first() {
    let mut a = with_agents(&[("a1", SMALL), ("a2", SMALL), ("a3", SMALL)]);
    add_fw(&mut a, "fa", &["a"]);
    add_fw(&mut a, "fb", &["b"]);
    a.set_weight("a", 0.0);
    let out = cycle(&mut a, 0.0);
    assert_eq!(
        out,
        [
            "fa@a1/a cpus:1;mem:100",
            "fb@a2/b cpus:1;mem:100",
            "fb@a3/b cpus:1;mem:100"
        ]
    );
}

#[test]
fn reservations_go_only_to_their_role() {
    let agent = "cpus:2;mem:100;cpus(eng):4;mem(eng):200;ports(ops):[1-5]";
    for (frameworks, expected) in [
        (
            vec![("d", "dev"), ("e", "eng")],
            vec![
                "d@a1/dev cpus:2;mem:100",
                "e@a1/eng cpus(eng):4;mem(eng):200",
            ],
        ),
        (vec![("d", "dev")], vec!["d@a1/dev cpus:2;mem:100"]),
        (
            vec![("e", "eng")],
            vec!["e@a1/eng cpus:2;mem:100;cpus(eng):4;mem(eng):200"],
        ),
        (
            vec![("o", "ops")],
            vec!["o@a1/ops cpus:2;mem:100;ports(ops):[1-5]"],
        ),
    ] {
        let mut a = with_agents(&[("a1", agent)]);
        for (fw, role) in &frameworks {
            add_fw(&mut a, fw, &[role]);
        }
        assert_eq!(cycle(&mut a, 0.0), expected, "frameworks {frameworks:?}");
    }
}

#[test]
fn reservation_of_a_busy_role_is_still_offered_in_the_same_cycle() {
    // `eng` has the higher share, so `dev` gets the unreserved part first, but `eng`
    // still gets its own reservation on the same agent in the same cycle.
    let mut a = with_agents(&[
        ("a0", "cpus:8;mem:800"),
        ("a1", "cpus:2;mem:100;cpus(eng):1;mem(eng):50"),
    ]);
    add_fw(&mut a, "d", &["dev"]);
    add_fw(&mut a, "e", &["eng"]);
    a.add_used(&"e", &"a0", &res_in("cpus:4", "eng"));
    let out = a.allocate_agents(0.0, &["a1"]);
    assert_eq!(
        show(&out),
        [
            "d@a1/dev cpus:2;mem:100",
            "e@a1/eng cpus(eng):1;mem(eng):50"
        ]
    );
}

#[test]
fn min_allocatable_table() {
    let custom = vec![BTreeMap::from([
        ("cpus".to_string(), Scalar::from_int(1)),
        ("mem".to_string(), Scalar::from_int(100)),
    ])];
    for (config, agent, offered) in [
        (None, "cpus:0.005;mem:16", false),
        (None, "cpus:0.01", true),
        (None, "mem:32", true),
        (None, "mem:31.999", false),
        (None, "ports:[1-10];disk:100", false),
        (Some(custom.clone()), "cpus:1;mem:50", false),
        (Some(custom.clone()), "cpus:4", false),
        (Some(custom), "cpus:1;mem:100", true),
        (Some(vec![]), "disk:1", true),
    ] {
        let config = config.map_or_else(Config::default, |m| Config {
            min_allocatable: m,
            ..Config::default()
        });
        let mut a = Allocator::new(config);
        a.add_agent("a1", res(agent), vec![]);
        add_fw(&mut a, "f1", &["r"]);
        assert_eq!(!a.allocate(0.0).is_empty(), offered, "agent {agent}");
    }
}

#[test]
fn leftovers_below_min_allocatable_are_not_offered() {
    let mut a = with_agents(&[("a1", "cpus:1;mem:100")]);
    add_fw(&mut a, "f1", &["r"]);
    a.add_used(&"f1", &"a1", &res_in("cpus:0.995;mem:80", "r"));
    assert!(cycle(&mut a, 0.0).is_empty());
    assert_eq!(a.free(&"a1"), res("cpus:0.005;mem:20"));
}

#[test]
fn inactive_frameworks_and_agents_get_no_offers() {
    let mut a = with_agents(&[("a1", SMALL), ("a2", SMALL)]);
    a.add_framework("f1", &roles(&["r"]), &[], false);
    assert!(cycle(&mut a, 0.0).is_empty(), "framework added inactive");
    a.set_framework_active(&"f1", true);
    a.set_agent_active(&"a1", false);
    assert_eq!(cycle(&mut a, 1.0), ["f1@a2/r cpus:1;mem:100"]);
    a.set_framework_active(&"f1", false);
    a.set_agent_active(&"a1", true);
    assert!(cycle(&mut a, 2.0).is_empty(), "framework deactivated");
    a.set_framework_active(&"f1", true);
    assert_eq!(cycle(&mut a, 3.0), ["f1@a1/r cpus:1;mem:100"]);
}

#[test]
fn inactive_framework_is_skipped_for_the_next_in_role() {
    let mut a = with_agents(&[("a1", SMALL)]);
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    a.set_framework_active(&"f1", false);
    assert_eq!(cycle(&mut a, 0.0), ["f2@a1/r cpus:1;mem:100"]);
}

#[test]
fn allocate_agents_only_touches_the_given_agents() {
    let mut a = with_agents(&[("a1", SMALL), ("a2", SMALL), ("a3", SMALL)]);
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    let out = a.allocate_agents(0.0, &["a3", "a2", "a3", "nope"]);
    assert_eq!(
        show(&out),
        ["f1@a2/r cpus:1;mem:100", "f2@a3/r cpus:1;mem:100"],
        "once each, key order"
    );
    assert_eq!(a.free(&"a1"), res(SMALL));
    assert!(a.allocated(&"a1").is_empty());
    assert_eq!(cycle(&mut a, 1.0), ["f1@a1/r cpus:1;mem:100"]);
}

#[test]
fn framework_in_two_roles_gets_one_offer_per_role() {
    let mut a = with_agents(&[("a1", "cpus:1;mem:100;cpus(x):1;cpus(y):2")]);
    add_fw(&mut a, "f1", &["x", "y"]);
    assert_eq!(
        cycle(&mut a, 0.0),
        ["f1@a1/x cpus:1;mem:100;cpus(x):1", "f1@a1/y cpus(y):2"]
    );
    let by_fw = a.allocated_by_framework(&"a1");
    assert_eq!(
        by_fw.get("f1").unwrap().allocated_to("y"),
        res_in("cpus(y):2", "y")
    );
}

#[test]
fn same_inputs_same_decisions() {
    let run = || {
        let mut a = with_agents(&[
            ("a1", SMALL),
            ("a2", "cpus:3;mem:50"),
            ("a3", "cpus:1;cpus(b):1"),
        ]);
        add_fw(&mut a, "f1", &["a", "b"]);
        add_fw(&mut a, "f2", &["a"]);
        add_fw(&mut a, "f3", &["b"]);
        let mut all = cycle(&mut a, 0.0);
        decline(&mut a, "f1", "a1", Some(5.0));
        decline(&mut a, "f2", "a2", None);
        all.extend(cycle(&mut a, 1.0));
        all
    };
    let first = run();
    assert!(!first.is_empty());
    for _ in 0..5 {
        assert_eq!(run(), first);
    }
}
