//! Property tests for hierarchical roles and quota: random clusters, frameworks in
//! nested roles, quotas and resource flow keep the books sound; no cycle takes a role's
//! quota consumption past its limit; after a full cycle, no guarantee is left unmet
//! while an active agent still has free cpus its role could take; decisions are
//! deterministic; and DRF order holds (weighted sibling subtrees and the frameworks of a
//! role end a cycle within one agent's share of each other).
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use std::collections::BTreeMap;
use strata_allocator::{Allocation, Allocator, Config, Quota};
use strata_resources::{Resources, Scalar};

type Alloc = Allocator<u8, u8>;
const ROLES: [&str; 5] = ["a", "a/x", "a/y", "b", "c/z"];

#[derive(Debug, Clone)]
enum Op {
    AddAgent {
        id: u8,
        cpus: u8,
        mem: u16,
        reserved: Option<usize>,
    },
    RemoveAgent(u8),
    AddFramework {
        id: u8,
        role: usize,
        revocable: bool,
    },
    RemoveFramework(u8),
    Quota {
        role: usize,
        guarantee: Option<u8>,
        limit: Option<u8>,
    },
    Weight {
        role: usize,
        w: u8,
    },
    Allocate,
    Recover {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6, 1u8..9, prop::sample::select(vec![64u16, 512, 4096]), prop::option::of(0..ROLES.len()))
            .prop_map(|(id, cpus, mem, reserved)| Op::AddAgent { id, cpus, mem, reserved }),
        1 => (0u8..6).prop_map(Op::RemoveAgent),
        3 => (0u8..5, 0..ROLES.len(), any::<bool>())
            .prop_map(|(id, role, revocable)| Op::AddFramework { id, role, revocable }),
        1 => (0u8..5).prop_map(Op::RemoveFramework),
        2 => (0..ROLES.len(), prop::option::of(0u8..12), prop::option::of(0u8..16))
            .prop_map(|(role, guarantee, limit)| Op::Quota { role, guarantee, limit }),
        1 => (0..ROLES.len(), 1u8..4).prop_map(|(role, w)| Op::Weight { role, w }),
        5 => Just(Op::Allocate),
        4 => any::<usize>().prop_map(|pick| Op::Recover { pick }),
    ]
}

fn cpus(n: f64) -> BTreeMap<String, Scalar> {
    BTreeMap::from([("cpus".to_string(), Scalar::from_f64(n))])
}

struct Run {
    a: Alloc,
    history: Vec<Allocation<u8, u8>>,
    log: Vec<String>,
}

impl Run {
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op.clone() {
            Op::AddAgent {
                id,
                cpus,
                mem,
                reserved,
            } => {
                let mut flag = format!("cpus:{cpus};mem:{mem}");
                if let Some(r) = reserved {
                    flag += &format!(";cpus({}):1", ROLES[r]);
                }
                self.a
                    .add_agent(id, Resources::parse_flag(&flag, "*").unwrap(), vec![]);
            }
            Op::RemoveAgent(id) => self.a.remove_agent(&id),
            Op::AddFramework {
                id,
                role,
                revocable,
            } => {
                self.a
                    .add_framework(id, &[ROLES[role].to_string()], &[], true);
                self.a.set_revocable_capable(&id, revocable);
            }
            Op::RemoveFramework(id) => self.a.remove_framework(&id),
            Op::Quota {
                role,
                guarantee,
                limit,
            } => {
                let g = guarantee.map(f64::from);
                let l = limit.map(f64::from);
                let quota = Quota {
                    guarantees: g.map(cpus).unwrap_or_default(),
                    limits: l.map(cpus).unwrap_or_default(),
                };
                let valid = match (g, l) {
                    (Some(g), Some(l)) => g <= l,
                    _ => true,
                };
                let before = self.a.quotas().clone();
                match self.a.set_quota(ROLES[role], quota) {
                    Ok(()) => prop_assert!(valid),
                    Err(_) => {
                        prop_assert_eq!(&before, self.a.quotas(), "a refused quota changed nothing")
                    }
                }
            }
            Op::Weight { role, w } => self.a.set_weight(ROLES[role], f64::from(w)),
            Op::Allocate => self.allocate()?,
            Op::Recover { pick } => {
                if !self.history.is_empty() {
                    let x = self.history[pick % self.history.len()].clone();
                    self.a.recover(&x.framework, &x.agent, &x.resources, None);
                }
            }
        }
        self.a.check_invariants().map_err(TestCaseError::fail)
    }

    fn allocate(&mut self) -> Result<(), TestCaseError> {
        let before: BTreeMap<&str, BTreeMap<String, Scalar>> = ROLES
            .iter()
            .map(|r| (*r, self.a.quota_consumed(r)))
            .collect();
        let out = self.a.allocate(0.0);
        for x in &out {
            self.log.push(format!(
                "{}@{}/{} {}",
                x.framework, x.agent, x.role, x.resources
            ));
        }
        self.history.extend(out.iter().cloned());
        // Limits: consumption grows only up to the limit.
        for role in ROLES {
            let limits = self.a.quota(role).limits;
            let after = self.a.quota_consumed(role);
            for (name, limit) in &limits {
                let zero = Scalar::ZERO;
                let was = *before[role].get(name).unwrap_or(&zero);
                let now = *after.get(name).unwrap_or(&zero);
                prop_assert!(
                    now <= was || now <= *limit,
                    "role {role} went from {name} {was} to {now} past its limit {limit}"
                );
            }
        }
        self.check_guarantees()
    }

    /// After a full cycle, a role below its cpus guarantee, with a framework able to take
    /// offers, finds no active agent with free cpus it could have.
    fn check_guarantees(&self) -> Result<(), TestCaseError> {
        for role in ROLES {
            let q = self.a.quota(role);
            let Some(g) = q.guarantees.get("cpus") else {
                continue;
            };
            let consumed = self
                .a
                .quota_consumed(role)
                .get("cpus")
                .copied()
                .unwrap_or(Scalar::ZERO);
            if consumed >= *g {
                continue;
            }
            let limited = |r: &str| {
                strata_allocator::roles::self_and_ancestors(r).any(|r| {
                    let q = self.a.quota(r);
                    let c = self
                        .a
                        .quota_consumed(r)
                        .get("cpus")
                        .copied()
                        .unwrap_or(Scalar::ZERO);
                    q.limits.get("cpus").is_some_and(|l| c >= *l)
                })
            };
            let served = (0u8..5).any(|f| {
                ROLES.iter().any(|r| {
                    strata_allocator::roles::is_self_or_descendant(r, role)
                        && self.a.is_subscribed(&f, r)
                        && self.a.is_framework_active(&f)
                        && !limited(r)
                })
            });
            if !served {
                continue;
            }
            for agent in self.a.agents() {
                let free = self.a.free(&agent).unreserved();
                prop_assert!(
                    free.cpus() < Scalar::from_f64(0.01),
                    "role {role} below its guarantee {g} (consumed {consumed}) while agent {agent} has {free} free"
                );
            }
        }
        Ok(())
    }
}

fn run(ops: &[Op]) -> Result<Vec<String>, TestCaseError> {
    let mut r = Run {
        a: Alloc::new(Config::default()),
        history: vec![],
        log: vec![],
    };
    for (i, op) in ops.iter().enumerate() {
        r.apply(op)
            .map_err(|e| TestCaseError::fail(format!("step {i} {op:?}: {e}")))?;
    }
    Ok(r.log)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn quota_and_hierarchy_properties(ops in prop::collection::vec(op(), 1..60)) {
        let first = run(&ops)?;
        let second = run(&ops)?;
        prop_assert_eq!(first, second, "same input, same decisions");
    }
}

/// DRF order: identical agents, each taken whole, offered from empty to frameworks in
/// weighted sibling roles (some nested): after one cycle, the weighted shares of any two
/// sibling subtrees differ by at most one agent's share over the smaller weight, and the
/// frameworks of one role by at most one agent's share.
fn drf_shares_are_balanced(
    agents: usize,
    roles: &[(usize, u8, usize)],
) -> Result<(), TestCaseError> {
    const NAMES: [&str; 4] = ["a", "b", "c/x", "c/y"];
    let mut a = Alloc::new(Config::default());
    for i in 0..agents as u8 {
        a.add_agent(
            i,
            Resources::parse_flag("cpus:1;mem:64", "*").unwrap(),
            vec![],
        );
    }
    let mut fw = 0u8;
    for (role, weight, frameworks) in roles {
        let name = NAMES[*role];
        a.set_weight(name, f64::from(*weight));
        for _ in 0..*frameworks {
            a.add_framework(fw, &[name.to_string()], &[], true);
            fw += 1;
        }
    }
    let out = a.allocate(0.0);
    prop_assert_eq!(out.len(), agents, "every agent offered");
    let one = 1.0 / agents as f64;
    let share = |role: &str| {
        a.quota_consumed(role)
            .get("cpus")
            .map_or(0.0, |c| c.as_f64() * one)
    };
    let mut used: Vec<&str> = roles.iter().map(|r| NAMES[r.0]).collect();
    used.sort();
    used.dedup();
    // Top-level siblings: a, b, c (c's subtree holds c/x and c/y).
    let top: Vec<(&str, f64)> = ["a", "b", "c"]
        .into_iter()
        .filter(|t| {
            used.iter()
                .any(|u| strata_allocator::roles::is_self_or_descendant(u, t))
        })
        .map(|t| (t, a.weight(t)))
        .collect();
    for (x, wx) in &top {
        for (y, wy) in &top {
            let gap = share(x) / wx - share(y) / wy;
            prop_assert!(
                gap <= one / wx.min(*wy) + 1e-9,
                "{x} (weight {wx}) holds {} vs {y} (weight {wy}) {}",
                share(x),
                share(y)
            );
        }
    }
    // Frameworks within one role get agents round-robin.
    for name in &used {
        let counts: Vec<usize> = (0..fw)
            .filter(|f| a.is_subscribed(f, name))
            .map(|f| out.iter().filter(|o| o.framework == f).count())
            .collect();
        if let (Some(max), Some(min)) = (counts.iter().max(), counts.iter().min()) {
            prop_assert!(max - min <= 1, "role {name}: {counts:?}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn drf_order_is_respected(
        agents in 1usize..60,
        roles in prop::collection::vec((0usize..4, 1u8..4, 1usize..4), 1..5),
    ) {
        drf_shares_are_balanced(agents, &roles)?;
    }
}
