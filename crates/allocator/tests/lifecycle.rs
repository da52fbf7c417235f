//! Resource flow and lifecycle: suppress/revive, refusal filters, removing frameworks
//! and agents, agents re-registering with used resources, role changes.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const SMALL: &str = "cpus:1;mem:100";
const BIG: &str = "cpus:4;mem:1024";

#[test]
fn suppress_and_revive() {
    let mut a = with_agents(&[("a1", SMALL)]);
    a.add_framework("f1", &roles(&["r"]), &roles(&["r"]), true);
    assert!(a.is_suppressed(&"f1", "r"));
    assert!(cycle(&mut a, 0.0).is_empty(), "suppressed at subscription");
    a.revive(&"f1", &[]);
    assert_eq!(cycle(&mut a, 1.0), ["f1@a1/r cpus:1;mem:100"]);
    decline(&mut a, "f1", "a1", None);
    a.suppress(&"f1", &[]);
    assert!(cycle(&mut a, 2.0).is_empty(), "suppressed after decline");
    a.revive(&"f1", &roles(&["r"]));
    assert_eq!(cycle(&mut a, 3.0), ["f1@a1/r cpus:1;mem:100"]);
}

#[test]
fn suppressing_one_role_keeps_the_others() {
    let mut a = with_agents(&[("a1", SMALL)]);
    add_fw(&mut a, "f1", &["x", "y"]);
    a.suppress(&"f1", &roles(&["x"]));
    assert!(a.is_suppressed(&"f1", "x") && !a.is_suppressed(&"f1", "y"));
    assert_eq!(cycle(&mut a, 0.0), ["f1@a1/y cpus:1;mem:100"]);
}

#[test]
fn suppressed_framework_lets_the_next_one_in_role_have_it() {
    let mut a = with_agents(&[("a1", SMALL)]);
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    a.suppress(&"f1", &[]);
    assert_eq!(cycle(&mut a, 0.0), ["f2@a1/r cpus:1;mem:100"]);
}

#[test]
fn refusal_blocks_until_expiry() {
    let mut a = with_agents(&[("a1", BIG), ("a2", SMALL)]);
    add_fw(&mut a, "f1", &["r"]);
    assert_eq!(
        cycle(&mut a, 0.0),
        ["f1@a1/r cpus:4;mem:1024", "f1@a2/r cpus:1;mem:100"]
    );
    decline(&mut a, "f1", "a1", Some(10.0));
    decline(&mut a, "f1", "a2", None);
    for (now, expected) in [
        (1.0, vec!["f1@a2/r cpus:1;mem:100"]), // a1 filtered, a2 not
        (9.999, vec![]),
        (10.0, vec!["f1@a1/r cpus:4;mem:1024"]),
    ] {
        assert_eq!(cycle(&mut a, now), expected, "now {now}");
    }
}

#[test]
fn refusal_does_not_block_when_more_becomes_available() {
    let mut a = with_agents(&[("a1", BIG)]);
    add_fw(&mut a, "f1", &["r"]);
    cycle(&mut a, 0.0);
    a.recover(&"f1", &"a1", &res_in("cpus:2;mem:512", "r"), Some(100.0));
    assert!(
        cycle(&mut a, 1.0).is_empty(),
        "same resources again: filtered"
    );
    a.recover(&"f1", &"a1", &res_in("cpus:1", "r"), None);
    assert_eq!(
        cycle(&mut a, 2.0),
        ["f1@a1/r cpus:3;mem:512"],
        "more than declined: offered"
    );
}

#[test]
fn refusal_passes_the_offer_to_the_next_framework_and_is_per_role() {
    let mut a = with_agents(&[("a1", SMALL)]);
    add_fw(&mut a, "f1", &["r"]);
    cycle(&mut a, 0.0);
    add_fw(&mut a, "f2", &["r"]);
    decline(&mut a, "f1", "a1", Some(100.0));
    assert_eq!(cycle(&mut a, 1.0), ["f2@a1/r cpus:1;mem:100"]);
    decline(&mut a, "f2", "a1", None);
    a.remove_framework(&"f2");
    a.add_framework("f1", &roles(&["r", "s"]), &[], true);
    assert_eq!(
        cycle(&mut a, 2.0),
        ["f1@a1/s cpus:1;mem:100"],
        "filter was for role r only"
    );
}

#[test]
fn revive_clears_refusals() {
    let mut a = with_agents(&[("a1", SMALL)]);
    add_fw(&mut a, "f1", &["r"]);
    cycle(&mut a, 0.0);
    decline(&mut a, "f1", "a1", Some(100.0));
    assert!(cycle(&mut a, 1.0).is_empty());
    a.revive(&"f1", &[]);
    assert_eq!(cycle(&mut a, 2.0), ["f1@a1/r cpus:1;mem:100"]);
}

#[test]
fn a_later_shorter_refusal_does_not_cancel_an_earlier_longer_one() {
    let mut a = with_agents(&[("a1", "cpus:3;mem:96")]);
    add_fw(&mut a, "f1", &["r"]);
    a.add_framework("f2", &roles(&["r"]), &[], false);
    a.add_used(&"f1", &"a1", &res_in("cpus:1;mem:32", "r"));
    assert_eq!(cycle(&mut a, 0.0), ["f1@a1/r cpus:2;mem:64"]);
    a.recover(&"f1", &"a1", &res_in("cpus:2;mem:64", "r"), Some(100.0));
    a.set_framework_active(&"f2", true);
    assert_eq!(cycle(&mut a, 1.0), ["f2@a1/r cpus:2;mem:64"]);
    a.recover(&"f1", &"a1", &res_in("cpus:1;mem:32", "r"), Some(5.0));
    assert_eq!(cycle(&mut a, 2.0), ["f2@a1/r cpus:1;mem:32"]);
    a.recover(&"f2", &"a1", &res_in("cpus:2;mem:64", "r"), None);
    // f1 has the lower share but its 100s filter covers cpus:2;mem:64.
    assert_eq!(cycle(&mut a, 6.0), ["f2@a1/r cpus:2;mem:64"]);
}

#[test]
fn remove_framework_releases_everything() {
    let mut a = with_agents(&[("a1", SMALL), ("a2", "cpus:2;mem:50;cpus(r):1")]);
    add_fw(&mut a, "f1", &["r"]);
    assert_eq!(cycle(&mut a, 0.0).len(), 2);
    a.remove_framework(&"f1");
    a.check_invariants().unwrap();
    for agent in ["a1", "a2"] {
        assert!(a.allocated(&agent).is_empty());
        assert_eq!(a.free(&agent), a.agent_total(&agent));
    }
    assert_eq!(a.role_share("r").0, 0.0);
    assert!(a.roles().is_empty(), "role dropped with its last framework");
    add_fw(&mut a, "f2", &["r"]);
    assert_eq!(cycle(&mut a, 1.0).len(), 2);
}

#[test]
fn remove_agent_releases_its_allocations() {
    let mut a = with_agents(&[("a1", SMALL), ("a2", SMALL)]);
    add_fw(&mut a, "f1", &["r"]);
    cycle(&mut a, 0.0);
    a.remove_agent(&"a1");
    a.check_invariants().unwrap();
    assert_eq!(
        a.framework_allocation(&"f1")
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        ["a2"]
    );
    assert_eq!(
        a.total().get("cpus").map(ToString::to_string).as_deref(),
        Some("1")
    );
    let (share, alloc) = a.role_share("r");
    assert_eq!(share, 1.0);
    assert_eq!(
        alloc.get("cpus").map(ToString::to_string).as_deref(),
        Some("1")
    );
    a.remove_agent(&"a2");
    a.check_invariants().unwrap();
    assert!(a.total().is_empty() && a.role_share("r").1.is_empty());
}

#[test]
fn removed_and_re_added_agent_has_no_stale_filters() {
    let mut a = with_agents(&[("a1", SMALL)]);
    add_fw(&mut a, "f1", &["r"]);
    cycle(&mut a, 0.0);
    decline(&mut a, "f1", "a1", Some(100.0));
    a.remove_agent(&"a1");
    a.add_agent("a1", res(SMALL), vec![]);
    assert_eq!(cycle(&mut a, 1.0), ["f1@a1/r cpus:1;mem:100"]);
}

#[test]
fn add_agent_with_used_resources() {
    let mut a = Alloc::new(Default::default());
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    let used = vec![
        ("f1", res_in("cpus:2;mem:256;cpus(r):1", "r")),
        ("f2", res_in("mem:64", "r")),
    ];
    a.add_agent("a1", res("cpus:4;mem:1024;cpus(r):1"), used);
    a.check_invariants().unwrap();
    assert_eq!(a.free(&"a1"), res("cpus:2;mem:704"));
    assert_eq!(
        a.role_share("r")
            .1
            .get("cpus")
            .map(ToString::to_string)
            .as_deref(),
        Some("3")
    );
    // f2 has the lower share and gets the rest.
    assert_eq!(cycle(&mut a, 0.0), ["f2@a1/r cpus:2;mem:704"]);
}

#[test]
fn used_resources_beyond_the_total_are_clamped() {
    let mut a = Alloc::new(Default::default());
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    let used = vec![
        ("f1", res_in("cpus:3;mem:10", "r")),
        ("f2", res_in("cpus:3;ports:[5-9]", "r")),
    ];
    a.add_agent("a1", res("cpus:4;mem:100;ports:[1-6]"), used);
    a.check_invariants().unwrap();
    let by_fw = a.allocated_by_framework(&"a1");
    assert_eq!(by_fw.get("f2").unwrap(), &res_in("cpus:1;ports:[5-6]", "r"));
    let recorded = a.add_used(&"f1", &"a1", &res_in("mem:200", "r"));
    assert_eq!(recorded, res_in("mem:90", "r"));
    a.check_invariants().unwrap();
    assert_eq!(a.free(&"a1"), res("ports:[1-4]"));
}

#[test]
fn recover_never_frees_more_than_held() {
    let mut a = with_agents(&[("a1", BIG)]);
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    a.add_used(&"f1", &"a1", &res_in("cpus:1;mem:100", "r"));
    a.add_used(&"f2", &"a1", &res_in("cpus:1;mem:100", "r"));
    a.recover(&"f1", &"a1", &res_in("cpus:3;mem:1000", "r"), None);
    a.recover(&"f1", &"a1", &res_in("cpus:1", "r"), None);
    a.check_invariants().unwrap();
    assert_eq!(a.allocated(&"a1"), res_in("cpus:1;mem:100", "r"));
}

#[test]
fn framework_leaving_a_role_gets_no_more_offers_in_it() {
    let mut a = with_agents(&[("a1", SMALL), ("a2", SMALL)]);
    add_fw(&mut a, "f1", &["old"]);
    assert_eq!(cycle(&mut a, 0.0).len(), 2);
    a.add_framework("f1", &roles(&["new"]), &[], true);
    a.check_invariants().unwrap();
    assert!(
        a.roles().contains(&"old".to_string()),
        "kept while it holds resources"
    );
    decline(&mut a, "f1", "a1", None);
    assert_eq!(cycle(&mut a, 1.0), ["f1@a1/new cpus:1;mem:100"]);
    decline(&mut a, "f1", "a2", None);
    assert_eq!(a.roles(), ["new"]);
    assert_eq!(cycle(&mut a, 2.0), ["f1@a2/new cpus:1;mem:100"]);
}

#[test]
fn used_resources_of_a_framework_not_yet_added_are_released_on_removal() {
    let mut a = Alloc::new(Default::default());
    a.add_agent("a1", res(BIG), vec![("f1", res_in("cpus:1;mem:64", "r"))]);
    a.check_invariants().unwrap();
    add_fw(&mut a, "f1", &["r"]);
    a.remove_framework(&"f1");
    a.check_invariants().unwrap();
    assert!(a.allocated(&"a1").is_empty(), "{}", a.allocated(&"a1"));
}

#[test]
fn unknown_framework_holding_resources_gets_no_offers() {
    let mut a = Alloc::new(Default::default());
    a.add_agent(
        "a1",
        res(BIG),
        vec![("ghost", res_in("cpus:1;mem:64", "r"))],
    );
    add_fw(&mut a, "f1", &["r"]);
    assert_eq!(cycle(&mut a, 0.0), ["f1@a1/r cpus:3;mem:960"]);
}

/// The bitset pick used when most of a role's frameworks refuse an agent chooses the
/// framework the ordered walk would (lowest share first, then key).
#[test]
fn the_sparse_pick_matches_the_ordered_walk() {
    for sparse in [false, true] {
        let mut config = strata_allocator::Config::default();
        if sparse {
            config.sparse_pick_from = 1;
        }
        let mut a = Alloc::new(config);
        a.add_agent("a1", res("cpus:2;mem:200"), vec![]);
        a.add_agent("a2", res("cpus:1;mem:100"), vec![]);
        for f in ["f1", "f2", "f3", "f4"] {
            add_fw(&mut a, f, &["r"]);
        }
        // f1 and f4 refuse a1 for long; f2 holds more than f3.
        a.recover(&"f1", &"a1", &res_in("cpus:2;mem:200", "r"), Some(1e9));
        a.recover(&"f4", &"a1", &res_in("cpus:2;mem:200", "r"), Some(1e9));
        a.add_used(&"f2", &"a2", &res_in("cpus:1;mem:100", "r"));
        let out = show(&a.allocate(0.0));
        assert_eq!(out, ["f3@a1/r cpus:2;mem:200"], "sparse={sparse}");
        a.check_invariants().unwrap();
    }
}

/// A framework that stated (REQUEST) it has no pending work and then declines is
/// suppressed automatically; work in a new REQUEST, or REVIVE, resumes its offers.
/// Frameworks that never state their demand keep Mesos' behaviour.
#[test]
fn declining_with_no_pending_work_auto_suppresses() {
    let mut a = with_agents(&[("a1", "cpus:1;mem:100")]);
    add_fw(&mut a, "quiet", &["r"]);
    assert_eq!(cycle(&mut a, 0.0).len(), 1);
    a.set_demand(&"quiet", vec![]);
    decline(&mut a, "quiet", "a1", Some(1.0));
    assert_eq!(a.auto_suppressed(&"quiet").len(), 1);
    assert!(a.is_suppressed(&"quiet", "r"));
    assert!(
        cycle(&mut a, 5.0).is_empty(),
        "still suppressed after the filter expired"
    );
    let (hints, _) = a
        .explain_framework(&"quiet", &Default::default(), &[])
        .unwrap();
    assert!(
        hints.iter().any(|h| h.contains("suppressed automatically")),
        "{hints:?}"
    );
    a.set_demand(&"quiet", vec![res("cpus:1")]);
    assert!(!a.is_suppressed(&"quiet", "r"));
    assert_eq!(cycle(&mut a, 6.0).len(), 1, "work resumes offers");
    // REVIVE clears it too.
    a.set_demand(&"quiet", vec![]);
    decline(&mut a, "quiet", "a1", Some(1.0));
    a.revive(&"quiet", &[]);
    assert_eq!(cycle(&mut a, 7.0).len(), 1);
    // An explicit SUPPRESS is not undone by a REQUEST.
    decline(&mut a, "quiet", "a1", None);
    a.suppress(&"quiet", &[]);
    a.set_demand(&"quiet", vec![res("cpus:1")]);
    assert!(a.is_suppressed(&"quiet", "r"));
    // A framework that never stated its demand keeps Mesos' behaviour.
    add_fw(&mut a, "classic", &["s"]);
    assert_eq!(cycle(&mut a, 8.0).len(), 1);
    decline(&mut a, "classic", "a1", Some(1.0));
    assert!(a.auto_suppressed(&"classic").is_empty());
    assert_eq!(
        cycle(&mut a, 10.0).len(),
        1,
        "offered again after the filter"
    );
}

/// Revocable resources go to the highest-priority capable framework, whatever its share;
/// equal priorities fall back to DRF order.
#[test]
fn revocable_resources_go_to_the_highest_priority_first() {
    let mut a = with_agents(&[("a1", "cpus:1;mem:100")]);
    for f in ["low", "high", "plain"] {
        add_fw(&mut a, f, &["r"]);
    }
    a.set_revocable_capable(&"low", true);
    a.set_revocable_capable(&"high", true);
    a.set_priority(&"high", 5);
    // "high" already holds something, so DRF alone would prefer the others.
    a.add_used(&"high", &"a1", &res_in("cpus:0.5", "r"));
    let lent = res("cpus:2").map(|r| r.revocable = true);
    assert!(a.update_revocable(&"a1", &lent).is_empty());
    let out = a.allocate(0.0);
    a.check_invariants().unwrap();
    let revocable: Vec<(&str, String)> = out
        .iter()
        .filter(|x| !x.resources.revocable().is_empty())
        .map(|x| {
            (
                x.framework,
                x.resources
                    .revocable()
                    .without_allocation_role()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(revocable, [("high", "cpus:2".to_string())], "{out:?}");
    // The non-revocable rest follows DRF: "low" (share 0) before "high".
    assert!(out
        .iter()
        .any(|x| x.framework == "low" && x.resources.revocable().is_empty()));
    assert_eq!(a.priority(&"high"), 5);
}
