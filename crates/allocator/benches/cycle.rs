//! Allocator benchmarks in the shapes of Apache Mesos' allocator benchmarks, printing
//! figures (no timed assertions): a full allocation cycle for agents × frameworks in one
//! role; the same after every framework declined every agent with a long filter; and the
//! incremental re-offer of one finished task's resources. Run with
//! `cargo bench -p strata-allocator --bench cycle` (add `-- quick` for the small shapes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};
use strata_allocator::{Allocator, Config};
use strata_resources::Resources;

const AGENT: &str = "cpus:24;mem:4096;disk:4096;ports:[31000-32000]";

fn setup(agents: usize, frameworks: usize) -> Allocator<u32, u32> {
    let mut a = Allocator::new(Config::default());
    let total = Resources::parse_flag(AGENT, "*").unwrap();
    for f in 0..frameworks as u32 {
        a.add_framework(f, &["role".to_string()], &[], true);
    }
    for i in 0..agents as u32 {
        a.add_agent(i, total.clone(), Vec::new());
    }
    a
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn full_cycle(agents: usize, frameworks: usize) {
    let mut a = setup(agents, frameworks);
    let t = Instant::now();
    let out = a.allocate(0.0);
    let first = t.elapsed();
    assert_eq!(out.len(), agents);
    println!(
        "{agents:>6} agents x {frameworks:>5} frameworks: full cycle {:>9.1} ms ({} offers)",
        ms(first),
        out.len(),
    );
}

/// Mesos' "DeclineOffers" shape: every framework declines every agent with a long
/// filter (built by offering and declining until nothing is offered), then one cycle.
fn declined_cycle(agents: usize, frameworks: usize) {
    let mut a = setup(agents, frameworks);
    let mut rounds = 0;
    loop {
        let out = a.allocate(0.0);
        if out.is_empty() {
            break;
        }
        rounds += 1;
        for o in &out {
            a.recover(&o.framework, &o.agent, &o.resources, Some(1e9));
        }
    }
    let t = Instant::now();
    let again = a.allocate(1.0);
    let took = t.elapsed();
    println!(
        "{agents:>6} agents x {frameworks:>5} frameworks: cycle after every framework declined \
         every agent ({rounds} rounds of declines) {:>9.1} ms ({} offers)",
        ms(took),
        again.len()
    );
}

/// One task's resources come back and are re-offered: the allocator time per event.
fn incremental(agents: usize, frameworks: usize, events: usize) {
    let mut a = setup(agents, frameworks);
    let out = a.allocate(0.0);
    let mut times = Vec::with_capacity(events);
    let task = Resources::parse_flag("cpus:1;mem:128", "*").unwrap();
    for i in 0..events {
        let o = &out[i % out.len()];
        let part = task.with_allocation_role("role");
        let t = Instant::now();
        a.recover(&o.framework, &o.agent, &part, None);
        let re = a.allocate_agents(i as f64, std::slice::from_ref(&o.agent));
        times.push(t.elapsed());
        for r in re {
            a.recover(&r.framework, &r.agent, &r.resources, None);
            a.add_used(&o.framework, &o.agent, &part);
        }
    }
    times.sort();
    let p = |q: f64| ms(times[((times.len() - 1) as f64 * q) as usize]);
    println!(
        "{agents:>6} agents x {frameworks:>5} frameworks: one task ends -> re-offer: \
         p50 {:.3} ms, p99 {:.3} ms over {events} events",
        p(0.5),
        p(0.99)
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let shapes: &[(usize, usize)] = if quick {
        &[(1_000, 100)]
    } else {
        &[
            (1_000, 100),
            (10_000, 1_000),
            (20_000, 2_000),
            (50_000, 200),
        ]
    };
    println!("strata-allocator cycle benchmarks; agents of {AGENT}, one role, no filters");
    for &(agents, frameworks) in shapes {
        full_cycle(agents, frameworks);
    }
    declined_cycle(1_000, 100);
    if !quick {
        declined_cycle(10_000, 1_000);
    }
    incremental(10_000, 1_000, 2_000);
}
