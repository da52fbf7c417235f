//! Allocator benchmarks in the shapes of Apache Mesos' allocator benchmarks, printing
//! figures (no timed assertions): a full allocation cycle for agents × frameworks in one
//! role; the same after every framework declined every agent with a long filter; and the
//! incremental re-offer of one finished task's resources; and Mesos'
//! "MultiFrameworkAllocations" shape. Run with
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

/// Mesos' "DeclineOffers" shape: every framework declined every agent with a long
/// filter, then one cycle (which must not look at every agent-framework pair), and one
/// more after a framework revives (which offers everything to it again).
fn declined_cycle(agents: usize, frameworks: usize) {
    let mut a = setup(agents, frameworks);
    let offer = Resources::parse_flag(AGENT, "*")
        .unwrap()
        .with_allocation_role("role");
    let t = Instant::now();
    for f in 0..frameworks as u32 {
        for i in 0..agents as u32 {
            a.recover(&f, &i, &offer, Some(1e9));
        }
    }
    let setup_took = t.elapsed();
    let t = Instant::now();
    let again = a.allocate(1.0);
    let took = t.elapsed();
    a.revive(&0, &[]);
    let t = Instant::now();
    let revived = a.allocate(2.0);
    let after_revive = t.elapsed();
    println!(
        "{agents:>6} agents x {frameworks:>5} frameworks: cycle after every framework declined \
         every agent {:>9.1} ms ({} offers); after one REVIVE {:>7.1} ms ({} offers); \
         {} declines took {:.1} s",
        ms(took),
        again.len(),
        ms(after_revive),
        revived.len(),
        agents * frameworks,
        setup_took.as_secs_f64()
    );
}

/// Mesos' "MultiFrameworkAllocations" shape: 80 agents of 64 cpus / 488000 mem; 4
/// service-like frameworks of 4,000 tasks taking at most 100 per offer, 500 CI-like of 5
/// tasks and 50 batch-like of 20, every task 0.07 cpus / 400 mem. Frameworks launch what
/// fits, give the rest back (no filter) and suppress when done; the figure is the
/// allocator time (cycles plus the recover calls) until every task is placed.
fn multi_framework() {
    let mut a: Allocator<u32, u32> = Allocator::new(Config::default());
    let agent = Resources::parse_flag("cpus:64;mem:488000", "*").unwrap();
    // (pending tasks, tasks per offer)
    let mut fws: Vec<(u32, u32)> = Vec::new();
    fws.extend(std::iter::repeat_n((4_000, 100), 4));
    fws.extend(std::iter::repeat_n((5, 5), 500));
    fws.extend(std::iter::repeat_n((20, 20), 50));
    let total: u32 = fws.iter().map(|f| f.0).sum();
    for f in 0..fws.len() as u32 {
        a.add_framework(f, &["role".to_string()], &[], true);
    }
    for i in 0..80u32 {
        a.add_agent(i, agent.clone(), Vec::new());
    }
    let task = Resources::parse_flag("cpus:0.07;mem:400", "*")
        .unwrap()
        .with_allocation_role("role");
    let (mut placed, mut cycles, mut spent) = (0u32, 0u32, Duration::ZERO);
    while placed < total && cycles < 10_000 {
        let t = Instant::now();
        let out = a.allocate(f64::from(cycles));
        spent += t.elapsed();
        cycles += 1;
        if out.is_empty() {
            break;
        }
        for o in out {
            let f = &mut fws[o.framework as usize];
            let fit_cpus = (o.resources.cpus().as_f64() / 0.07).floor() as u32;
            let fit_mem = (o.resources.mem_mb().as_f64() / 400.0).floor() as u32;
            let n = f.0.min(f.1).min(fit_cpus).min(fit_mem);
            let mut used = Resources::new();
            for _ in 0..n {
                used += task.clone();
            }
            f.0 -= n;
            placed += n;
            let unused = o.resources.saturating_sub(&used);
            let done = f.0 == 0;
            let t = Instant::now();
            a.recover(&o.framework, &o.agent, &unused, None);
            if done {
                a.suppress(&o.framework, &[]);
            }
            spent += t.elapsed();
        }
    }
    println!(
        "MultiFrameworkAllocations (80 agents, 554 frameworks): {placed} of {total} tasks \
         placed in {cycles} cycles, {:.1} ms of allocator time",
        ms(spent)
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
    multi_framework();
    incremental(10_000, 1_000, 2_000);
}
