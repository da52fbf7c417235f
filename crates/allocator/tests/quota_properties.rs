//! Property tests for hierarchical roles and quota: random clusters, frameworks in
//! nested roles, quotas and resource flow keep the books sound; no cycle takes a role's
//! quota consumption past its limit; after a full cycle, no guarantee is left unmet
//! while an active agent still has free cpus its role could take; decisions are
//! deterministic.
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
        3 => (0u8..5, 0..ROLES.len()).prop_map(|(id, role)| Op::AddFramework { id, role }),
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
            Op::AddFramework { id, role } => {
                self.a
                    .add_framework(id, &[ROLES[role].to_string()], &[], true)
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
