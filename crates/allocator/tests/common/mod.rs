//! Helpers shared by the allocator integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use strata_allocator::{Allocation, Allocator, Config};
use strata_resources::Resources;

pub type Alloc = Allocator<&'static str, &'static str>;

/// Parses agent-flag syntax (`cpus:1;mem(eng):10`).
pub fn res(flag: &str) -> Resources {
    Resources::parse_flag(flag, "*").unwrap()
}

/// `res(flag)` with allocation role `role`.
pub fn res_in(flag: &str, role: &str) -> Resources {
    res(flag).with_allocation_role(role)
}

pub fn roles(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// An allocator with default config and the given agents.
pub fn with_agents(agents: &[(&'static str, &str)]) -> Alloc {
    let mut a = Alloc::new(Config::default());
    for (id, flag) in agents {
        a.add_agent(id, res(flag), vec![]);
    }
    a
}

/// Adds an active framework subscribed to `role_names`.
pub fn add_fw(a: &mut Alloc, fw: &'static str, role_names: &[&str]) {
    a.add_framework(fw, &roles(role_names), &[], true);
}

/// `fw@agent/role resources`, one line per allocation.
pub fn show(allocs: &[Allocation<&'static str, &'static str>]) -> Vec<String> {
    allocs
        .iter()
        .map(|x| format!("{}@{}/{} {}", x.framework, x.agent, x.role, x.resources))
        .collect()
}

/// Runs a cycle at `now`, checks the invariants and returns `show` of it.
pub fn cycle(a: &mut Alloc, now: f64) -> Vec<String> {
    let out = a.allocate(now);
    a.check_invariants().unwrap();
    for x in &out {
        assert_eq!(
            x.resources.allocated_to(&x.role),
            x.resources,
            "allocation role set"
        );
    }
    show(&out)
}

/// Gives back one allocation (as offered) of `fw` on `agent`.
pub fn decline(a: &mut Alloc, fw: &'static str, agent: &'static str, until: Option<f64>) {
    let held = a
        .allocated_by_framework(&agent)
        .get(&fw)
        .cloned()
        .unwrap_or_default();
    a.recover(&fw, &agent, &held, until);
    a.check_invariants().unwrap();
}
