//! Property tests: random operation sequences keep the allocator's bookkeeping sound,
//! never hand out another role's reservations, only offer to eligible frameworks, honour
//! refusal filters, leave no resources idle that an eligible framework could take, and
//! are deterministic.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use strata_allocator::{Allocation, Allocator, Config};
use strata_resources::{Resources, Scalar, Value};

type Alloc = Allocator<u8, u8>;
const ROLES: [&str; 3] = ["a", "b", "c"];
const RESERVABLE: [&str; 4] = ["a", "b", "c", "d"];

#[derive(Debug, Clone)]
enum Part {
    All,
    Half,
    FirstEntry,
}

#[derive(Debug, Clone)]
enum Op {
    AddAgent {
        id: u8,
        flag: String,
    },
    RemoveAgent(u8),
    SetAgentActive(u8, bool),
    AddFramework {
        id: u8,
        roles: Vec<usize>,
        suppressed: Vec<usize>,
        active: bool,
    },
    RemoveFramework(u8),
    SetFrameworkActive(u8, bool),
    Allocate {
        dt: u8,
    },
    AllocateSome {
        dt: u8,
        agents: Vec<u8>,
    },
    Recover {
        pick: usize,
        part: Part,
        filter: Option<u8>,
    },
    AddUsed {
        fw: u8,
        agent: u8,
        role: usize,
        cpus: u8,
        mem: u16,
        reserved: bool,
    },
    Suppress(u8, Option<usize>),
    Revive(u8, Option<usize>),
    SetWeight(usize, u8),
    /// REQUEST: no pending work (`false`) or some.
    SetDemand(u8, bool),
}

fn agent_flag() -> impl Strategy<Value = String> {
    let reservation = (
        0..RESERVABLE.len(),
        1u8..4,
        prop::sample::select(vec![0u16, 32, 128]),
    );
    (
        1u8..16,
        prop::sample::select(vec![0u16, 16, 64, 512, 2048]),
        prop::option::of((0u16..50, 0u16..20)),
        prop::collection::vec(reservation, 0..3),
    )
        .prop_map(|(half_cpus, mem, ports, reservations)| {
            let mut flag = format!("cpus:{};mem:{mem}", f64::from(half_cpus) / 2.0);
            if let Some((start, len)) = ports {
                flag += &format!(";ports:[{}-{}]", 1000 + start, 1000 + start + len);
            }
            for (role, cpus, mem) in reservations {
                let role = RESERVABLE[role];
                flag += &format!(";cpus({role}):{cpus};mem({role}):{mem}");
            }
            flag
        })
}

fn role_subset(min: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::sample::subsequence(vec![0usize, 1, 2], min..=3)
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0u8..6;
    let fw = 0u8..4;
    let role = 0..ROLES.len();
    prop_oneof![
        4 => (id.clone(), agent_flag()).prop_map(|(id, flag)| Op::AddAgent { id, flag }),
        1 => id.clone().prop_map(Op::RemoveAgent),
        1 => (id.clone(), any::<bool>()).prop_map(|(i, b)| Op::SetAgentActive(i, b)),
        3 => (fw.clone(), role_subset(1), role_subset(0), prop::bool::weighted(0.85)).prop_map(
            |(id, roles, suppressed, active)| Op::AddFramework { id, roles, suppressed, active }
        ),
        1 => fw.clone().prop_map(Op::RemoveFramework),
        1 => (fw.clone(), any::<bool>()).prop_map(|(i, b)| Op::SetFrameworkActive(i, b)),
        5 => (0u8..4).prop_map(|dt| Op::Allocate { dt }),
        2 => (0u8..4, prop::collection::vec(id.clone(), 0..4))
            .prop_map(|(dt, agents)| Op::AllocateSome { dt, agents }),
        5 => (any::<usize>(), prop_oneof![Just(Part::All), Just(Part::Half), Just(Part::FirstEntry)],
              prop::option::of(1u8..8))
            .prop_map(|(pick, part, filter)| Op::Recover { pick, part, filter }),
        1 => (fw.clone(), id, role.clone(), 0u8..5, 0u16..300, any::<bool>()).prop_map(
            |(fw, agent, role, cpus, mem, reserved)| Op::AddUsed { fw, agent, role, cpus, mem, reserved }
        ),
        1 => (fw.clone(), prop::option::of(role.clone())).prop_map(|(f, r)| Op::Suppress(f, r)),
        1 => (fw, prop::option::of(role.clone())).prop_map(|(f, r)| Op::Revive(f, r)),
        1 => (role, 1u8..5).prop_map(|(r, w)| Op::SetWeight(r, w)),
        1 => (0u8..4, any::<bool>()).prop_map(|(f, w)| Op::SetDemand(f, w)),
    ]
}

/// Refusal filters as the tests expect them: (fw, agent, role) → (declined, until).
type Filters = BTreeMap<(u8, u8, String), Vec<(Resources, f64)>>;

/// The driver: applies operations, checks every property and logs every decision.
struct Run {
    a: Alloc,
    now: f64,
    history: Vec<Allocation<u8, u8>>,
    filters: Filters,
    log: Vec<String>,
}

fn roles_of(indices: &[usize]) -> Vec<String> {
    indices.iter().map(|i| ROLES[*i].to_string()).collect()
}

/// Halves scalars and ranges, keeps sets.
fn half(res: &Resources) -> Resources {
    res.map(|r| match &mut r.value {
        Value::Scalar(s) => *s = Scalar::from_millis(s.millis() / 2),
        Value::Ranges(v) => *v = v.first_n(v.count() / 2),
        Value::Set(_) => {}
    })
}

impl Run {
    fn new(sparse: bool) -> Self {
        let mut config = Config::default();
        if sparse {
            config.sparse_pick_from = 1;
        }
        Self {
            a: Alloc::new(config),
            now: 0.0,
            history: vec![],
            filters: Filters::new(),
            log: vec![],
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op.clone() {
            Op::AddAgent { id, flag } => {
                self.filters.retain(|(_, agent, _), _| *agent != id);
                self.a
                    .add_agent(id, Resources::parse_flag(&flag, "*").unwrap(), vec![]);
            }
            Op::RemoveAgent(id) => {
                self.filters.retain(|(_, agent, _), _| *agent != id);
                self.a.remove_agent(&id);
            }
            Op::SetAgentActive(id, active) => self.a.set_agent_active(&id, active),
            Op::AddFramework {
                id,
                roles,
                suppressed,
                active,
            } => {
                // Filters live with the subscription: leaving a role drops them.
                let kept = roles_of(&roles);
                self.filters
                    .retain(|(fw, _, role), _| *fw != id || kept.contains(role));
                self.a
                    .add_framework(id, &roles_of(&roles), &roles_of(&suppressed), active);
            }
            Op::RemoveFramework(id) => {
                self.filters.retain(|(fw, _, _), _| *fw != id);
                self.a.remove_framework(&id);
            }
            Op::SetFrameworkActive(id, active) => self.a.set_framework_active(&id, active),
            Op::SetWeight(role, w) => self.a.set_weight(ROLES[role], f64::from(w) / 2.0),
            Op::SetDemand(fw, work) => {
                let demand = if work {
                    vec![Resources::parse_flag("cpus:1", "*").unwrap()]
                } else {
                    vec![]
                };
                self.a.set_demand(&fw, demand);
            }
            _ => self.apply_flow(op)?,
        }
        self.check_state()
    }

    /// The resource-flow operations (allocate, recover, add_used, suppress, revive).
    fn apply_flow(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op.clone() {
            Op::Allocate { dt } => {
                self.now += f64::from(dt);
                let out = self.a.allocate(self.now);
                self.check_allocations(&out, None)?;
                self.check_nothing_left_for_eligible()?;
            }
            Op::AllocateSome { dt, agents } => {
                self.now += f64::from(dt);
                let out = self.a.allocate_agents(self.now, &agents);
                self.check_allocations(&out, Some(&agents))?;
            }
            Op::Recover { pick, part, filter } => self.recover(pick, &part, filter),
            Op::AddUsed {
                fw,
                agent,
                role,
                cpus,
                mem,
                reserved,
            } => {
                let role = ROLES[role];
                let mut flag = format!("cpus:{cpus};mem:{mem}");
                if reserved {
                    flag += &format!(";cpus({role}):1");
                }
                let res = Resources::parse_flag(&flag, "*")
                    .unwrap()
                    .with_allocation_role(role);
                let got = self.a.add_used(&fw, &agent, &res);
                prop_assert!(res.contains(&got), "recorded {got} beyond requested {res}");
            }
            Op::Suppress(fw, role) => self.a.suppress(&fw, &roles_of(role.as_slice())),
            Op::Revive(fw, role) => {
                let revived: Vec<String> = match role {
                    Some(r) => roles_of(&[r]),
                    None => ROLES
                        .iter()
                        .filter(|r| self.a.is_subscribed(&fw, r))
                        .map(|r| r.to_string())
                        .collect(),
                };
                self.filters
                    .retain(|(f, _, r), _| *f != fw || !revived.contains(r));
                self.a.revive(&fw, &roles_of(role.as_slice()));
            }
            _ => {}
        }
        Ok(())
    }

    /// Gives back (part of) a past allocation, which may no longer be held.
    fn recover(&mut self, pick: usize, part: &Part, filter: Option<u8>) {
        if self.history.is_empty() {
            return;
        }
        let x = self.history[pick % self.history.len()].clone();
        let res = match part {
            Part::All => x.resources.clone(),
            Part::Half => half(&x.resources),
            Part::FirstEntry => x.resources.iter().take(1).cloned().collect(),
        };
        let until = filter.map(|s| self.now + f64::from(s));
        if let Some(until) = until {
            if self.a.is_subscribed(&x.framework, &x.role)
                && !res.is_empty()
                && self.a.agents().contains(&x.agent)
            {
                let declined = res.without_allocation_role();
                self.filters
                    .entry((x.framework, x.agent, x.role.clone()))
                    .or_default()
                    .push((declined, until));
            }
        }
        self.log.push(format!(
            "recover {}@{} {res} {until:?}",
            x.framework, x.agent
        ));
        self.a.recover(&x.framework, &x.agent, &res, until);
    }

    fn filtered(&self, fw: u8, agent: u8, role: &str, offer: &Resources) -> bool {
        self.filters
            .get(&(fw, agent, role.to_string()))
            .is_some_and(|l| {
                l.iter()
                    .any(|(declined, until)| *until > self.now && declined.contains(offer))
            })
    }

    fn check_allocations(
        &mut self,
        out: &[Allocation<u8, u8>],
        only: Option<&[u8]>,
    ) -> Result<(), TestCaseError> {
        let mut seen = BTreeSet::new();
        for x in out {
            let (fw, role) = (&x.framework, x.role.as_str());
            prop_assert!(
                seen.insert((x.agent, role)),
                "two offers for role {role} on agent {}",
                x.agent
            );
            prop_assert!(
                only.is_none_or(|o| o.contains(&x.agent)),
                "agent {} not asked for",
                x.agent
            );
            prop_assert!(
                self.a.is_framework_active(fw),
                "inactive framework {fw} offered"
            );
            prop_assert!(
                self.a.is_subscribed(fw, role),
                "framework {fw} not in role {role}"
            );
            prop_assert!(
                !self.a.is_suppressed(fw, role),
                "framework {fw} suppresses {role}"
            );
            prop_assert!(!x.resources.is_empty());
            prop_assert_eq!(x.resources.allocated_to(role), x.resources.clone());
            for r in x.resources.reserved().iter() {
                prop_assert_eq!(
                    r.role(),
                    role,
                    "reservation of another role in {}",
                    x.resources
                );
            }
            let offer = x.resources.without_allocation_role();
            prop_assert!(
                !self.filtered(*fw, x.agent, role, &offer),
                "filter ignored: {fw}@{} {offer}",
                x.agent
            );
            self.log
                .push(format!("{}@{}/{role} {}", fw, x.agent, x.resources));
        }
        self.history.extend(out.iter().cloned());
        Ok(())
    }

    /// After a full cycle, no eligible, unfiltered framework is left without an offer it
    /// could have had.
    fn check_nothing_left_for_eligible(&self) -> Result<(), TestCaseError> {
        let min = Config::default().min_allocatable;
        let allocatable = |r: &Resources| {
            let have = r.scalar_totals();
            min.iter().any(|need| {
                need.iter()
                    .all(|(n, q)| have.get(n).is_some_and(|h| h >= q))
            })
        };
        for agent in self.a.agents() {
            let free = self.a.free(&agent);
            for role in ROLES {
                let offerable = free.unreserved() + free.reserved_for(role);
                if !allocatable(&offerable) {
                    continue;
                }
                for fw in 0..4u8 {
                    let eligible = self.a.is_framework_active(&fw)
                        && self.a.is_subscribed(&fw, role)
                        && !self.a.is_suppressed(&fw, role);
                    let skipped = !eligible || self.filtered(fw, agent, role, &offerable);
                    prop_assert!(
                        skipped || !self.a.is_agent_active(&agent),
                        "agent {agent}: {offerable} left idle though framework {fw} in {role} could take it"
                    );
                }
            }
        }
        Ok(())
    }

    fn check_state(&self) -> Result<(), TestCaseError> {
        self.a.check_invariants().map_err(TestCaseError::fail)?;
        for agent in self.a.agents() {
            let total = self.a.agent_total(&agent);
            let allocated = self.a.allocated(&agent).without_allocation_role();
            prop_assert_eq!(
                self.a.free(&agent) + allocated.clone(),
                total.clone(),
                "agent {}",
                agent
            );
            prop_assert!(total.contains(&allocated), "agent {} over-committed", agent);
            let sum = self
                .a
                .allocated_by_framework(&agent)
                .into_values()
                .fold(Resources::new(), |s, r| s + r);
            prop_assert_eq!(sum, self.a.allocated(&agent));
        }
        Ok(())
    }
}

fn run(ops: &[Op], sparse: bool) -> Result<Vec<String>, TestCaseError> {
    let mut r = Run::new(sparse);
    for (i, op) in ops.iter().enumerate() {
        r.apply(op)
            .map_err(|e| TestCaseError::fail(format!("step {i} {op:?}: {e}")))?;
    }
    for agent in r.a.agents() {
        r.log
            .push(format!("{agent}: {:?}", r.a.allocated_by_framework(&agent)));
    }
    Ok(r.log)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_operation_sequences(ops in prop::collection::vec(op(), 1..60)) {
        let first = run(&ops, false)?;
        let second = run(&ops, false)?;
        prop_assert_eq!(&first, &second, "same operations, different decisions");
        // The bitset pick for mostly-refused agents decides as the ordered walk does.
        let sparse = run(&ops, true)?;
        prop_assert_eq!(first, sparse, "the sparse pick decided differently");
    }
}
