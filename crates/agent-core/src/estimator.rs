//! Oversubscription arithmetic, pure: the usage-based resource estimator (allocated but
//! idle capacity of non-revocable containers, minus a safety margin), the total the agent
//! reports to the master, and the QoS correction's choice of revocable containers to
//! evict when the estimate no longer covers them. Usage samples come from the shell.

use strata_resources::{Resource, Resources};

/// Part of each container's allocation never lent out, whatever its usage (headroom for
/// the owner's next burst).
pub const SAFETY_MARGIN: f64 = 0.1;
/// Estimates are rounded down to these steps so that small usage jitter does not change
/// the report (every change rescinds the agent's revocable offers).
pub const CPUS_STEP: f64 = 0.1;
pub const MEM_STEP_MB: f64 = 32.0;

/// One running container as the estimator sees it: what it was allocated and what it
/// used over the last interval (`None` = not measured, counted as fully used).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ContainerSample {
    pub allocated_cpus: f64,
    pub allocated_mem_mb: f64,
    pub cpus_used: Option<f64>,
    pub mem_used_mb: Option<f64>,
}

/// Idle allocated capacity of non-revocable containers: for each, allocation × (1 −
/// margin) − usage, floored at zero; summed, rounded down to the steps, revocable.
pub fn usage_slack(samples: &[ContainerSample]) -> Resources {
    let idle = |allocated: f64, used: Option<f64>| match used {
        Some(u) if u.is_finite() => (allocated * (1.0 - SAFETY_MARGIN) - u).max(0.0),
        _ => 0.0,
    };
    let cpus: f64 = samples
        .iter()
        .map(|s| idle(s.allocated_cpus, s.cpus_used))
        .sum();
    let mem: f64 = samples
        .iter()
        .map(|s| idle(s.allocated_mem_mb, s.mem_used_mb))
        .sum();
    revocable(&[
        ("cpus", round_down(cpus, CPUS_STEP)),
        ("mem", round_down(mem, MEM_STEP_MB)),
    ])
}

/// CPU cores used between two samples of cumulative CPU seconds `(timestamp, secs)`;
/// `None` when time did not advance or the counter went backwards (a new container).
pub fn cpu_rate(previous: (f64, f64), current: (f64, f64)) -> Option<f64> {
    let (dt, used) = (current.0 - previous.0, current.1 - previous.1);
    (dt > 0.0 && used >= 0.0).then(|| used / dt)
}

/// Scalar revocable resources, zero entries left out.
pub fn revocable(items: &[(&str, f64)]) -> Resources {
    let list = items
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|(name, v)| {
            let mut r = Resource::scalar(*name, *v);
            r.revocable = true;
            r
        })
        .collect();
    Resources::from_vec(list)
}

/// `resources` as an estimate: revocable, unallocated.
pub fn as_estimate(resources: &Resources) -> Resources {
    resources.map(|r| {
        r.revocable = true;
        r.allocation_role = None;
    })
}

/// What the agent reports to the master (Mesos' agent: revocable resources its containers
/// hold plus what the estimator says can still be lent): per resource, the larger of the
/// estimate and what is held.
pub fn report(estimate: &Resources, held: &Resources) -> Resources {
    let held = as_estimate(held);
    as_estimate(estimate).saturating_sub(&held) + held
}

/// A container holding revocable resources; `order` grows with launch time.
#[derive(Debug, Clone, PartialEq)]
pub struct Lent<K> {
    pub key: K,
    pub order: f64,
    pub resources: Resources,
}

/// The QoS correction: the revocable containers to evict, most recently launched first,
/// until what the others hold fits in `estimate`. Empty when everything fits; containers
/// holding nothing the estimate lacks are never chosen.
pub fn evictions<K: Clone>(lent: &[Lent<K>], estimate: &Resources) -> Vec<K> {
    let estimate = as_estimate(estimate);
    let mut newest_first: Vec<&Lent<K>> = lent.iter().collect();
    newest_first.sort_by(|a, b| b.order.total_cmp(&a.order));
    let mut held = lent
        .iter()
        .fold(Resources::new(), |acc, l| acc + as_estimate(&l.resources));
    let mut out = Vec::new();
    for l in newest_first {
        if estimate.contains(&held) {
            break;
        }
        let mine = as_estimate(&l.resources);
        let short = held.saturating_sub(&estimate);
        if short
            .saturating_sub(&short.saturating_sub(&mine))
            .is_empty()
        {
            // Evicting this one would not bring back anything that is missing.
            continue;
        }
        held = held.saturating_sub(&mine);
        out.push(l.key.clone());
    }
    out
}

fn round_down(v: f64, step: f64) -> f64 {
    (v / step + 1e-9).floor() * step
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(flag: &str) -> Resources {
        as_estimate(&Resources::parse_flag(flag, "*").unwrap())
    }

    fn sample(cpus: f64, mem: f64, used: Option<(f64, f64)>) -> ContainerSample {
        ContainerSample {
            allocated_cpus: cpus,
            allocated_mem_mb: mem,
            cpus_used: used.map(|u| u.0),
            mem_used_mb: used.map(|u| u.1),
        }
    }

    fn check_slack(samples: &[ContainerSample], expected: &str) {
        let slack = usage_slack(samples);
        assert_eq!(slack.to_string(), expected, "{samples:?}");
        assert_eq!(slack.revocable(), slack, "every entry is revocable");
    }

    #[test]
    fn slack_is_idle_allocation_minus_the_margin() {
        check_slack(&[], "");
        // 1.1 cpus × 0.9 − 0.01 = 0.98 → 0.9; 160 MB × 0.9 − 10 = 134 → 128.
        check_slack(
            &[sample(1.1, 160.0, Some((0.01, 10.0)))],
            "cpus:0.9;mem:128",
        );
        // A busy container lends nothing; idle ones add up.
        check_slack(
            &[
                sample(2.0, 256.0, Some((2.5, 300.0))),
                sample(1.0, 128.0, Some((0.0, 0.0))),
                sample(1.0, 128.0, Some((0.0, 0.0))),
            ],
            "cpus:1.8;mem:224",
        );
        // Unmeasured containers count as fully used.
        check_slack(&[sample(4.0, 4096.0, None)], "");
    }

    #[test]
    fn cpu_rate_needs_time_and_a_growing_counter() {
        assert_eq!(cpu_rate((10.0, 5.0), (12.0, 6.0)), Some(0.5));
        assert_eq!(cpu_rate((10.0, 5.0), (10.0, 6.0)), None);
        assert_eq!(cpu_rate((10.0, 5.0), (11.0, 1.0)), None);
    }

    #[test]
    fn the_report_covers_the_estimate_and_what_is_held() {
        let check = |estimate: &str, held: &str, expected: &str| {
            assert_eq!(report(&rev(estimate), &rev(held)), rev(expected));
        };
        check("cpus:2;mem:256", "", "cpus:2;mem:256");
        check("cpus:2;mem:256", "cpus:1;mem:32", "cpus:2;mem:256");
        check("cpus:0.5", "cpus:1;mem:32", "cpus:1;mem:32");
        check("", "", "");
    }

    fn lent(key: &'static str, order: f64, flag: &str) -> Lent<&'static str> {
        Lent {
            key,
            order,
            resources: rev(flag),
        }
    }

    fn check_evictions(lent: &[Lent<&'static str>], estimate: &str, expected: &[&str]) {
        assert_eq!(
            evictions(lent, &rev(estimate)),
            expected,
            "estimate {estimate}"
        );
    }

    #[test]
    fn evictions_take_the_newest_until_the_rest_fits() {
        let three = [
            lent("old", 1.0, "cpus:1;mem:32"),
            lent("new", 3.0, "cpus:1;mem:32"),
            lent("mid", 2.0, "cpus:1;mem:32"),
        ];
        check_evictions(&three, "cpus:3;mem:96", &[]);
        check_evictions(&three, "cpus:4;mem:512", &[]);
        check_evictions(&three, "cpus:2.5;mem:96", &["new"]);
        check_evictions(&three, "cpus:1;mem:96", &["new", "mid"]);
        check_evictions(&three, "", &["new", "mid", "old"]);
    }

    #[test]
    fn evictions_skip_containers_that_hold_nothing_missing() {
        let two = [
            lent("cpu-only", 1.0, "cpus:1"),
            lent("mem-only", 2.0, "mem:256"),
        ];
        check_evictions(&two, "cpus:0.5;mem:256", &["cpu-only"]);
        check_evictions(&two, "cpus:1", &["mem-only"]);
    }
}
