//! Shared persistent volumes in the allocator: offered to SHARED_RESOURCES frameworks
//! only, still offered while in use (once per agent and cycle), counted once on the agent
//! and once per holder, whatever number of tasks and offers hold copies; and a property
//! test that random sequences keep the books balanced and never over-commit the
//! non-shared resources.
#![allow(clippy::unwrap_used)]

mod common;

use common::{add_fw, cycle, res, Alloc};
use proptest::prelude::*;
use strata_allocator::Config;
use strata_resources::{Reservation, Resource, Resources};

/// A shared volume `id` of `mb` on disk reserved for `role`.
fn volume(id: &str, mb: f64, role: &str) -> Resource {
    let mut v = Resource::scalar("disk", mb).reserved(Reservation::static_for(role));
    v.disk = Some(Box::new(serde_json::json!({
        "persistence": {"id": id},
        "volume": {"container_path": "data", "mode": "RW"}
    })));
    v.shared = true;
    v
}

fn agent_with_volume() -> Alloc {
    let mut a = Alloc::new(Config::default());
    let total = res("cpus:4;mem:1024") + Resources::from(volume("v1", 100.0, "eng"));
    a.add_agent("a1", total, vec![]);
    a
}

fn shared_held(a: &Alloc, fw: &'static str) -> String {
    let held = a
        .allocated_by_framework(&"a1")
        .get(&fw)
        .cloned()
        .unwrap_or_default();
    held.filter(|r| r.shared).disk_mb().to_string()
}

#[test]
fn only_capable_frameworks_see_shared_volumes() {
    let mut a = agent_with_volume();
    add_fw(&mut a, "plain", &["eng"]);
    let got = cycle(&mut a, 0.0);
    assert_eq!(got, ["plain@a1/eng cpus:4;mem:1024"]);
    // The free volume is not offered to the framework lacking the capability.
    assert_eq!(a.free(&"a1").disk_mb().to_string(), "100");

    let mut a = agent_with_volume();
    add_fw(&mut a, "sharing", &["eng"]);
    a.set_shared_capable(&"sharing", true);
    let got = cycle(&mut a, 0.0);
    assert_eq!(got, ["sharing@a1/eng cpus:4;mem:1024;disk(eng):100"]);
}

#[test]
fn a_volume_in_use_is_still_offered_and_counted_once() {
    let mut a = agent_with_volume();
    for fw in ["f1", "f2"] {
        add_fw(&mut a, fw, &["eng"]);
        a.set_shared_capable(&fw, true);
    }
    let first = a.allocate(0.0);
    a.check_invariants().unwrap();
    assert_eq!(first.len(), 1, "one grant per role and agent: {first:?}");
    let taker = first[0].framework;
    let other = if taker == "f1" { "f2" } else { "f1" };
    // The taker launches a task on 1 cpu and the volume; the rest goes back.
    let task = res("cpus:1;mem:128").with_allocation_role("eng")
        + Resources::from(volume("v1", 100.0, "eng")).with_allocation_role("eng");
    let rest = first[0].resources.saturating_sub(&task);
    a.recover(&taker, &"a1", &rest, None);
    a.check_invariants().unwrap();
    // In use: not free, yet offered again (to the other framework, lower share).
    assert_eq!(a.free(&"a1").disk_mb().to_string(), "0");
    let second = cycle(&mut a, 1.0);
    assert_eq!(
        second,
        [format!("{other}@a1/eng cpus:3;mem:896;disk(eng):100")]
    );
    // The other framework starts two tasks on it (one more copy for the second).
    let task2 = res("cpus:1;mem:128").with_allocation_role("eng")
        + Resources::from(volume("v1", 100.0, "eng")).with_allocation_role("eng");
    let offered = a.allocated_by_framework(&"a1")[&other].clone();
    a.recover(&other, &"a1", &offered.saturating_sub(&task2), None);
    let extra = Resources::from(volume("v1", 100.0, "eng")).with_allocation_role("eng");
    assert_eq!(a.add_used(&other, &"a1", &extra), extra);
    a.check_invariants().unwrap();
    assert_eq!(shared_held(&a, taker), "100");
    assert_eq!(shared_held(&a, other), "200");
    // The role and every framework count the volume once.
    let (_, role_alloc) = a.role_share("eng");
    assert_eq!(role_alloc["disk"].to_string(), "100");
    assert_eq!(a.allocated(&"a1").cpus().to_string(), "2");

    // Tasks end one by one; the volume is free only when the last copy is back.
    a.recover(&other, &"a1", &extra, None);
    a.recover(&other, &"a1", &task2, None);
    a.check_invariants().unwrap();
    assert_eq!(a.free(&"a1").disk_mb().to_string(), "0");
    a.recover(&taker, &"a1", &task, None);
    a.check_invariants().unwrap();
    assert_eq!(a.free(&"a1").disk_mb().to_string(), "100");
    assert!(a.allocated(&"a1").is_empty());
}

#[test]
fn offered_once_per_agent_and_cycle() {
    let mut a = Alloc::new(Config::default());
    let total = res("cpus:4;mem:1024;cpus(eng):2;mem(eng):256")
        + Resources::from(volume("v1", 100.0, "eng"));
    a.add_agent("a1", total, vec![]);
    // Two roles that may both use the volume (eng and its child eng/web).
    add_fw(&mut a, "f1", &["eng"]);
    add_fw(&mut a, "f2", &["eng/web"]);
    a.set_shared_capable(&"f1", true);
    a.set_shared_capable(&"f2", true);
    let out = a.allocate(0.0);
    a.check_invariants().unwrap();
    let with_volume = out
        .iter()
        .filter(|x| x.resources.iter().any(|r| r.shared))
        .count();
    assert_eq!(with_volume, 1, "{out:?}");
}

#[test]
fn add_used_keeps_copies_of_a_volume_in_use() {
    // A re-registering agent reports two frameworks' tasks on one shared volume.
    let mut a = Alloc::new(Config::default());
    add_fw(&mut a, "f1", &["eng"]);
    add_fw(&mut a, "f2", &["eng"]);
    let v = Resources::from(volume("v1", 100.0, "eng")).with_allocation_role("eng");
    let t = res("cpus:1;mem:64").with_allocation_role("eng") + v.clone();
    let total = res("cpus:4;mem:1024") + Resources::from(volume("v1", 100.0, "eng"));
    a.add_agent("a1", total, vec![("f1", t.clone()), ("f2", t.clone() + t)]);
    a.check_invariants().unwrap();
    assert_eq!(shared_held(&a, "f1"), "100");
    assert_eq!(shared_held(&a, "f2"), "200");
    assert_eq!(a.allocated(&"a1").cpus().to_string(), "3");
}

#[test]
fn converting_a_volume_others_hold_is_refused() {
    let mut a = agent_with_volume();
    for fw in ["f1", "f2"] {
        add_fw(&mut a, fw, &["eng"]);
        a.set_shared_capable(&fw, true);
    }
    let v = Resources::from(volume("v1", 100.0, "eng")).with_allocation_role("eng");
    a.add_used(&"f1", &"a1", &v);
    a.add_used(&"f2", &"a1", &v);
    // DESTROY: the volume becomes plain reserved disk.
    let disk =
        Resources::from(Resource::scalar("disk", 100.0).reserved(Reservation::static_for("eng")))
            .with_allocation_role("eng");
    let err = a.convert_allocated(&"f1", &"a1", &v, &disk).unwrap_err();
    assert!(err.contains("still held by other offers or tasks"), "{err}");
    a.check_invariants().unwrap();
    a.recover(&"f2", &"a1", &v, None);
    a.convert_allocated(&"f1", &"a1", &v, &disk).unwrap();
    a.check_invariants().unwrap();
    assert!(!a.agent_total(&"a1").iter().any(|r| r.shared));
}

// ----- property test -------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// Frameworks with even ids have SHARED_RESOURCES.
    AddFramework {
        id: u8,
    },
    Allocate,
    /// A framework keeps `keep` tasks of its latest offer on an agent (each on the agent's
    /// volume, if offered), the rest goes back.
    Launch {
        pick: usize,
        tasks: u8,
    },
    /// One task (or offer) of some framework ends.
    Finish {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u8..4).prop_map(|id| Op::AddFramework { id }),
        3 => Just(Op::Allocate),
        3 => (any::<usize>(), 0u8..4).prop_map(|(pick, tasks)| Op::Launch { pick, tasks }),
        3 => any::<usize>().prop_map(|pick| Op::Finish { pick }),
    ]
}

/// What a framework holds on an agent, per use (an offer or a task).
type Uses = Vec<(u8, u8, Resources)>;

fn setup() -> Allocator8 {
    let mut a = Allocator8::new(Config::default());
    for agent in 0..2u8 {
        let total =
            res("cpus:4;mem:1024") + Resources::from(volume(&format!("v{agent}"), 100.0, "eng"));
        a.add_agent(agent, total, vec![]);
    }
    a
}

type Allocator8 = strata_allocator::Allocator<u8, u8>;

fn apply(a: &mut Allocator8, uses: &mut Uses, op: &Op, now: &mut f64) {
    match op {
        Op::AddFramework { id } => {
            a.add_framework(*id, &["eng".to_string()], &[], true);
            a.set_shared_capable(id, id % 2 == 0);
        }
        Op::Allocate => {
            *now += 1.0;
            let out = a.allocate(*now);
            let mut seen = std::collections::BTreeSet::new();
            for x in out {
                if x.resources.iter().any(|r| r.shared) {
                    assert!(seen.insert(x.agent), "volume offered twice in one cycle");
                }
                uses.push((x.framework, x.agent, x.resources));
            }
        }
        Op::Launch { pick, tasks } => {
            if uses.is_empty() {
                return;
            }
            let (fw, agent, offer) = uses.remove(pick % uses.len());
            let vol = offer.filter(|r| r.shared);
            let mut left = offer.clone();
            for _ in 0..*tasks {
                let task = res("cpus:1;mem:64").with_allocation_role("eng");
                if !left.contains(&task) {
                    break;
                }
                left = left.saturating_sub(&task);
                let task = task + vol.clone();
                if !vol.is_empty() && !left.contains(&vol) {
                    // A second task on the volume: one more copy.
                    assert_eq!(a.add_used(&fw, &agent, &vol), vol);
                }
                left = left.saturating_sub(&vol);
                uses.push((fw, agent, task));
            }
            a.recover(&fw, &agent, &left, None);
        }
        Op::Finish { pick } => {
            if uses.is_empty() {
                return;
            }
            let (fw, agent, r) = uses.remove(pick % uses.len());
            a.recover(&fw, &agent, &r, None);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn shared_books_balance(ops in prop::collection::vec(op(), 1..60)) {
        let mut a = setup();
        let mut uses = Uses::new();
        let mut now = 0.0;
        for op in &ops {
            apply(&mut a, &mut uses, op, &mut now);
            a.check_invariants().map_err(|e| TestCaseError::fail(format!("after {op:?}: {e}")))?;
            for agent in 0..2u8 {
                // The allocator holds exactly the live uses, copy for copy.
                let mut expected = std::collections::BTreeMap::<u8, Resources>::new();
                for (fw, _, r) in uses.iter().filter(|(_, ag, _)| *ag == agent) {
                    *expected.entry(*fw).or_default() += r.clone();
                }
                expected.retain(|_, r| !r.is_empty());
                let held = a.allocated_by_framework(&agent);
                prop_assert_eq!(&held, &expected);
                // Non-shared resources are never over-committed; only capable
                // frameworks hold the volume.
                for (fw, r) in &held {
                    prop_assert!(fw % 2 == 0 || !r.iter().any(|x| x.shared));
                }
                let cpus = held.values().map(|r| r.cpus()).sum::<strata_resources::Scalar>();
                prop_assert!(cpus <= strata_resources::Scalar::from_int(4));
                let copies = held.values().map(|r| r.filter(|x| x.shared).disk_mb())
                    .sum::<strata_resources::Scalar>();
                let tasks_on_volume = uses.iter()
                    .filter(|(_, ag, r)| *ag == agent && r.iter().any(|x| x.shared))
                    .count();
                prop_assert_eq!(copies, strata_resources::Scalar::from_int(100 * tasks_on_volume as i64));
            }
        }
    }
}
