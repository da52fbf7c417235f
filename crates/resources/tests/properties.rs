//! Property tests for the resource model: collection algebra, parse/display
//! and wire round trips, and `Ranges` against a `BTreeSet<u64>` model.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use strata_resources::{
    Label, Labels, Range, Ranges, Reservation, ReservationKind, Resource, Resources, Scalar, Set,
    Value, WireFormat,
};

/// Ranges over `base..base+span`, so callers can keep `a` and `b` disjoint.
fn ranges_in(base: u64, span: u64) -> impl Strategy<Value = Ranges> {
    prop::collection::vec((0..span, 0..8u64), 1..4).prop_map(move |v| {
        Ranges::new(
            v.into_iter()
                .map(|(b, len)| Range::new(base + b, base + b + len))
                .collect(),
        )
    })
}

fn reservation() -> impl Strategy<Value = Reservation> {
    (
        any::<bool>(),
        prop::sample::select(vec!["eng", "ops", "eng/dev"]),
        prop::option::of(prop::sample::select(vec!["p1", "p2"])),
        prop::option::of(prop::sample::select(vec!["k", "x"])),
    )
        .prop_map(|(dynamic, role, principal, label)| Reservation {
            kind: if dynamic {
                ReservationKind::Dynamic
            } else {
                ReservationKind::Static
            },
            role: role.to_string(),
            principal: principal.map(str::to_string),
            labels: label.map(|k| Labels {
                labels: vec![Label {
                    key: k.to_string(),
                    value: Some("v".to_string()),
                }],
            }),
        })
}

/// How exotic the generated identities may be.
#[derive(Clone, Copy)]
enum Shape {
    /// Unreserved or one label-free STATIC reservation: expressible as a flag.
    Flag,
    /// Anything with at most one reservation.
    Single,
    /// Any reservation stack (up to 3 deep), allocation roles, flags.
    Any,
}

/// One resource; `side` picks disjoint range/set domains for `a` and `b`.
fn resource(shape: Shape, side: u64) -> impl Strategy<Value = Resource> {
    let value = prop_oneof![
        (1..5_000_000i64).prop_map(|m| ("cpus", Value::Scalar(Scalar::from_millis(m)))),
        (1..5_000_000i64).prop_map(|m| ("mem", Value::Scalar(Scalar::from_millis(m)))),
        ranges_in(side * 1000, 60).prop_map(|r| ("ports", Value::Ranges(r))),
        prop::collection::btree_set(0..6u8, 1..4).prop_map(move |s| {
            let set: Set = s.into_iter().map(|i| format!("z{side}x{i}")).collect();
            ("zones", Value::Set(set))
        }),
    ];
    let depth = match shape {
        Shape::Flag | Shape::Single => 1,
        Shape::Any => 3,
    };
    (
        value,
        prop::collection::vec(reservation(), 0..=depth),
        prop::option::of(prop::sample::select(vec!["web", "db"])),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            move |((name, value), mut stack, alloc, revocable, shared)| {
                let mut r = Resource::new(name, value);
                if let Shape::Flag = shape {
                    stack
                        .iter_mut()
                        .for_each(|s| *s = Reservation::static_for(s.role.clone()));
                    r.reservations = stack.into();
                    return r;
                }
                r.reservations = stack.into();
                r.allocation_role = alloc.map(Into::into);
                r.revocable = revocable;
                r.shared = shared;
                r
            },
        )
}

fn resources(shape: Shape, side: u64) -> impl Strategy<Value = Resources> {
    prop::collection::vec(resource(shape, side), 0..6).prop_map(Resources::from_vec)
}

fn model(r: &Ranges) -> BTreeSet<u64> {
    r.iter().flat_map(|x| x.begin..=x.end).collect()
}

fn small_ranges() -> impl Strategy<Value = Ranges> {
    prop::collection::vec((0..48u64, 0..10u64), 0..5)
        .prop_map(|v| Ranges::new(v.into_iter().map(|(b, l)| Range::new(b, b + l)).collect()))
}

proptest! {
    #[test]
    fn add_then_sub_restores(a in resources(Shape::Any, 0), b in resources(Shape::Any, 1)) {
        prop_assert_eq!((&a + &b) - b.clone(), a.clone());
        prop_assert!((&a + &b).contains(&a));
        prop_assert!(a.contains(&a));
    }

    #[test]
    fn add_commutative_associative(
        a in resources(Shape::Any, 0),
        b in resources(Shape::Any, 1),
        c in resources(Shape::Any, 2),
    ) {
        prop_assert_eq!(&a + &b, &b + &a);
        prop_assert_eq!(&(&a + &b) + &c, &a + &(&b + &c));
    }

    #[test]
    fn checked_sub_iff_contains(a in resources(Shape::Any, 0), b in resources(Shape::Any, 0)) {
        prop_assert_eq!(a.checked_sub(&b).is_some(), a.contains(&b));
        if let Some(diff) = a.checked_sub(&b) {
            prop_assert_eq!(diff + &b, a.clone());
        }
        // b - a + a always covers b.
        prop_assert!(((&b - &a) + &a).contains(&b));
    }

    #[test]
    fn flag_round_trip(a in resources(Shape::Flag, 0)) {
        let text = a.to_string();
        prop_assert_eq!(Resources::parse_flag(&text, "*").unwrap(), a);
    }

    #[test]
    fn wire_round_trip(a in resources(Shape::Any, 0), s in resources(Shape::Single, 0)) {
        for format in [WireFormat::PostRefinement, WireFormat::Endpoint] {
            let json = serde_json::to_string(&a.to_wire(format)).unwrap();
            let back: Vec<strata_resources::WireResource> = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(Resources::from_wire(&back).unwrap(), a.clone());
        }
        for format in [WireFormat::PreRefinement, WireFormat::PostRefinement, WireFormat::Endpoint] {
            // Pre-refinement drops the principal/labels of static reservations.
            let s = s.map(|r| {
                for res in r.reservations.iter_mut().filter(|x| x.kind == ReservationKind::Static) {
                    res.principal = None;
                    res.labels = None;
                }
            });
            let json = serde_json::to_string(&s.to_wire(format)).unwrap();
            let back: Vec<strata_resources::WireResource> = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(Resources::from_wire(&back).unwrap(), s);
        }
    }

    #[test]
    fn order_independent(mut items in prop::collection::vec(resource(Shape::Any, 0), 0..8)) {
        let a = Resources::from_vec(items.clone());
        items.reverse();
        prop_assert_eq!(Resources::from_vec(items), a);
    }

    #[test]
    fn ranges_match_set_model(a in small_ranges(), b in small_ranges(), n in 0..80u64) {
        let (ma, mb) = (model(&a), model(&b));
        let mut sum = a.clone();
        sum.add(&b);
        prop_assert_eq!(model(&sum), &ma | &mb);
        let mut diff = a.clone();
        diff.subtract(&b);
        prop_assert_eq!(model(&diff), &ma - &mb);
        prop_assert_eq!(a.contains(&b), mb.is_subset(&ma));
        prop_assert_eq!(a.count(), ma.len() as u64);
        prop_assert_eq!(model(&a.first_n(n)), ma.iter().copied().take(n as usize).collect());
        // Normalized: sorted, disjoint, non-adjacent.
        for w in sum.as_slice().windows(2) {
            prop_assert!(w[0].end + 1 < w[1].begin);
        }
        prop_assert_eq!(a.to_string().parse::<Ranges>().unwrap(), a);
    }

    #[test]
    fn scalar_thousandths_round_trip(m in -1_000_000_000_000i64..1_000_000_000_000i64) {
        let s = Scalar::from_millis(m);
        prop_assert_eq!(Scalar::from_f64(s.as_f64()), s);
        let text = serde_json::to_string(&s).unwrap();
        prop_assert_eq!(serde_json::from_str::<Scalar>(&text).unwrap(), s);
        if m >= 0 {
            prop_assert_eq!(Scalar::from_f64(s.to_string().parse::<f64>().unwrap()), s);
        }
    }
}
