//! Hierarchical roles and quota in the allocation cycle: subtrees compete as a whole,
//! parents' reservations reach their children, limits cap offers (nested too),
//! guarantees hold headroom back from other roles and are served first, and the
//! "why pending?" explanations name the cause.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use strata_allocator::{Quota, Reason};
use strata_resources::Scalar;

fn cpus(v: f64) -> BTreeMap<String, Scalar> {
    BTreeMap::from([("cpus".to_string(), Scalar::from_f64(v))])
}

fn limit(v: f64) -> Quota {
    Quota {
        guarantees: BTreeMap::new(),
        limits: cpus(v),
    }
}

fn guarantee(v: f64) -> Quota {
    Quota {
        guarantees: cpus(v),
        limits: BTreeMap::new(),
    }
}

#[test]
fn subtrees_share_fairly_as_a_whole() {
    // eng has two children, ops one: eng as a whole gets half, not two thirds.
    let agents: Vec<(&'static str, &str)> = (0..12)
        .map(|i| {
            (
                &*Box::leak(format!("a{i:02}").into_boxed_str()),
                "cpus:1;mem:10",
            )
        })
        .collect();
    let mut a = with_agents(&agents);
    add_fw(&mut a, "web", &["eng/web"]);
    add_fw(&mut a, "batch", &["eng/batch"]);
    add_fw(&mut a, "ops", &["ops"]);
    let out = cycle(&mut a, 0.0);
    let count = |p: &str| out.iter().filter(|l| l.contains(p)).count();
    assert_eq!((count("/eng/"), count("/ops ")), (6, 6), "{out:?}");
    assert_eq!((count("/eng/web"), count("/eng/batch")), (3, 3), "{out:?}");
}

#[test]
fn a_parents_reservation_is_offered_to_its_children_only() {
    let mut a = with_agents(&[("a1", "cpus(eng):2;mem(eng):64")]);
    add_fw(&mut a, "other", &["ops"]);
    add_fw(&mut a, "web", &["eng/web"]);
    assert_eq!(
        cycle(&mut a, 0.0),
        ["web@a1/eng/web cpus(eng):2;mem(eng):64"]
    );
}

#[test]
fn a_limit_caps_offers_and_why_says_so() {
    let mut a = with_agents(&[("a1", "cpus:4;mem:400")]);
    a.set_quota("eng", limit(1.5)).unwrap();
    add_fw(&mut a, "f", &["eng"]);
    assert_eq!(cycle(&mut a, 0.0), ["f@a1/eng cpus:1.5;mem:400"]);
    assert!(cycle(&mut a, 1.0).is_empty());
    let e = a.explain_role("eng");
    assert_eq!(e.outcomes.get(&Reason::QuotaLimit), Some(&1), "{e:?}");
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains("reached its quota limit on cpus: 1.5 of 1.5")),
        "{e:?}"
    );
}

#[test]
fn a_parents_limit_caps_its_children_together() {
    let mut a = with_agents(&[("a1", "cpus:2;mem:100"), ("a2", "cpus:2;mem:100")]);
    a.set_quota("eng", limit(3.0)).unwrap();
    add_fw(&mut a, "web", &["eng/web"]);
    add_fw(&mut a, "batch", &["eng/batch"]);
    cycle(&mut a, 0.0);
    assert_eq!(a.quota_consumed("eng")["cpus"], Scalar::from_f64(3.0));
    assert!(
        a.set_quota("eng/web", limit(4.0)).is_err(),
        "child above parent's limit"
    );
}

#[test]
fn a_guarantee_holds_headroom_and_is_served_first() {
    let mut a = with_agents(&[("a1", "cpus:2;mem:100"), ("a2", "cpus:2;mem:100")]);
    a.set_quota("ops", guarantee(3.0)).unwrap();
    add_fw(&mut a, "dev", &["dev"]);
    // 4 cpus, 3 owed to ops: dev gets 1 (and the memory, which nobody is owed).
    let out = cycle(&mut a, 0.0);
    assert_eq!(out, ["dev@a1/dev cpus:1;mem:100", "dev@a2/dev mem:100"]);
    assert!(cycle(&mut a, 0.5).is_empty(), "the rest stays held");
    let e = a.explain_role("dev");
    assert!(e.outcomes.contains_key(&Reason::QuotaHeadroom), "{e:?}");
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains("'ops' (cpus:3 still owed)")),
        "{e:?}"
    );
    add_fw(&mut a, "ops", &["ops"]);
    cycle(&mut a, 1.0);
    assert!(a
        .explain_role("ops")
        .outcomes
        .contains_key(&Reason::Offered));
    assert_eq!(a.quota_consumed("ops"), cpus(3.0), "the 3 held cpus");
}

#[test]
fn invalid_quotas_are_refused_whole() {
    let mut a = with_agents(&[("a1", "cpus:4;mem:400")]);
    let bad = Quota {
        guarantees: cpus(2.0),
        limits: cpus(1.0),
    };
    assert!(a.set_quota("eng", bad).is_err());
    let batch = vec![
        ("eng".to_string(), guarantee(1.0)),
        ("eng/web".to_string(), guarantee(2.0)),
    ];
    assert!(a.set_quotas(batch).unwrap_err().contains("children"));
    assert!(a.quotas().is_empty());
    let ok = vec![
        ("eng".to_string(), guarantee(2.0)),
        ("eng/web".to_string(), guarantee(2.0)),
    ];
    a.set_quotas(ok).unwrap();
    assert_eq!(a.quotas().len(), 2);
}

#[test]
fn why_a_framework_names_its_filters_and_suppression() {
    let mut a = with_agents(&[("a1", SMALL_AGENT), ("a2", SMALL_AGENT)]);
    add_fw(&mut a, "f", &["r", "s"]);
    cycle(&mut a, 0.0);
    decline(&mut a, "f", "a1", Some(100.0));
    a.suppress(&"f", &roles(&["s"]));
    cycle(&mut a, 1.0);
    let (hints, per_role) = a.explain_framework(&"f", &Default::default(), &[]).unwrap();
    let text = hints.join("\n");
    assert!(text.contains("suppressed offers for role 's'"), "{text}");
    assert!(
        text.contains("refusal filters for 1 agent(s) in role 'r'"),
        "{text}"
    );
    assert!(per_role.contains_key("r") && per_role.contains_key("s"));
    assert!(a
        .explain_framework(&"nobody", &Default::default(), &[])
        .is_none());
}

const SMALL_AGENT: &str = "cpus:1;mem:100";

#[test]
fn why_a_framework_says_how_far_its_request_is_from_fitting() {
    let mut a = with_agents(&[("a1", "cpus:4;mem:1000"), ("a2", "cpus:4;mem:1000")]);
    add_fw(&mut a, "big", &["r"]);
    add_fw(&mut a, "other", &["r"]);
    a.add_used(&"other", &"a1", &res_in("cpus:3.5;mem:100", "r"));
    a.add_used(&"other", &"a2", &res_in("cpus:3;mem:100", "r"));
    a.set_demand(&"big", vec![res("cpus:4;mem:512")]);
    let (hints, _) = a
        .explain_framework(&"big", &Default::default(), &[])
        .unwrap();
    let text = hints.join("\n");
    assert!(
        text.contains("its request cpus:4;mem:512 fits on no agent: the closest (a2, as role 'r', counting what is offered to it) is 3 cpus short"),
        "{text}"
    );
    a.set_demand(&"big", vec![res("cpus:1;mem:512"), res("cpus:1;mem:512")]);
    let (hints, _) = a
        .explain_framework(&"big", &Default::default(), &[])
        .unwrap();
    let text = hints.join("\n");
    assert!(
        text.contains("fits in the free resources of 1 agent(s)"),
        "{text}"
    );
    assert_eq!(
        text.matches("its request").count(),
        1,
        "duplicates shown once: {text}"
    );
}

#[test]
fn why_measures_a_placed_request_only_on_the_agents_it_may_use() {
    let mut a = with_agents(&[("a1", "cpus:4;mem:1000"), ("a2", "cpus:1;mem:1000")]);
    add_fw(&mut a, "big", &["r"]);
    a.set_demand(&"big", vec![res("cpus:3;mem:512"), res("cpus:3;mem:512")]);
    let only_a2 = |id: &&str| *id == "a2";
    let nowhere = |_: &&str| false;
    let placements = [
        Some(strata_allocator::Placement {
            accepts: &only_a2,
            describe: "zone IS b".into(),
        }),
        Some(strata_allocator::Placement {
            accepts: &nowhere,
            describe: "rack IS r9".into(),
        }),
    ];
    let (hints, _) = a
        .explain_framework(&"big", &Default::default(), &placements)
        .unwrap();
    let text = hints.join("\n");
    assert!(
        text.contains("its request cpus:3;mem:512 fits on no agent where zone IS b: the closest (a2, as role 'r', counting what is offered to it) is 2 cpus short"),
        "{text}"
    );
    assert!(
        text.contains(
            "its request cpus:3;mem:512 cannot be placed: no active agent where rack IS r9"
        ),
        "{text}"
    );
    // Without placements the same demand fits on a1.
    let (hints, _) = a
        .explain_framework(&"big", &Default::default(), &[])
        .unwrap();
    assert!(hints
        .join("\n")
        .contains("fits in the free resources of 1 agent(s)"));
}

/// Capacity held back for an unmet guarantee nobody can take yet is lent as revocable to
/// REVOCABLE_RESOURCES frameworks; once a framework below the guarantee appears, the
/// master is told how much to take back; what lent tasks give back returns to the
/// guarantee.
#[test]
fn held_back_guarantees_are_lent_as_revocable_and_taken_back() {
    let mut a = with_agents(&[("a1", "cpus:4;mem:1000")]);
    a.set_quota("ops", guarantee(3.0)).unwrap();
    add_fw(&mut a, "dev", &["dev"]);
    a.set_revocable_capable(&"dev", true);
    let out = a.allocate(0.0);
    a.check_invariants().unwrap();
    let lent: f64 = out
        .iter()
        .map(|x| x.resources.revocable().cpus().as_f64())
        .sum();
    let plain: f64 = out
        .iter()
        .map(|x| x.resources.non_revocable().cpus().as_f64())
        .sum();
    assert_eq!((plain, lent), (1.0, 3.0), "{out:?}");
    assert_eq!(a.lent(&"a1").cpus(), Scalar::from_f64(3.0));
    assert!(
        a.reclaim_needed().is_empty(),
        "nobody below the guarantee yet"
    );

    // The guaranteed role's framework arrives: the lent cpus are wanted back.
    add_fw(&mut a, "ops", &["ops"]);
    assert_eq!(a.reclaim_needed(), cpus(3.0));
    assert!(a.allocate(1.0).is_empty(), "nothing free to give ops yet");
    // The lent tasks are preempted: their resources come back...
    let held = a.allocated_by_framework(&"a1")[&"dev"].revocable();
    a.recover(&"dev", &"a1", &held, None);
    // ...and the next cycle turns them back into ordinary capacity for ops.
    let out = a.allocate(2.0);
    a.check_invariants().unwrap();
    assert_eq!(show(&out), ["ops@a1/ops cpus:3"]);
    assert!(a.lent(&"a1").is_empty());
    assert!(a.reclaim_needed().is_empty());
}
