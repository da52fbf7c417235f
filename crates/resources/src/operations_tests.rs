//! Unit tests for the `operations` module: what RESERVE, UNRESERVE, CREATE, DESTROY, GROW
//! and SHRINK turn which resources into, and what they refuse.

use super::*;
use crate::resource::Reservation;
use serde_json::json;

fn dynamic(name: &str, amount: f64, role: &str) -> Resource {
    Resource::scalar(name, amount).reserved(Reservation::dynamic(role, Some("ops".into())))
}

fn volume(amount: f64, role: &str, id: &str, path: &str) -> Resource {
    let mut v = dynamic("disk", amount, role);
    v.disk = Some(Box::new(
        json!({"persistence": {"id": id}, "volume": {"mode": "RW", "container_path": path}}),
    ));
    v
}

fn flag(text: &str) -> Resources {
    Resources::parse_flag(text, "*").unwrap()
}

#[test]
fn reserve_then_unreserve_round_trips() {
    let want = Resources::from_vec(vec![
        dynamic("cpus", 1.0, "eng"),
        dynamic("mem", 64.0, "eng"),
    ]);
    let c = reserve(&want).unwrap();
    assert_eq!(c.from, flag("cpus:1;mem:64"));
    assert_eq!(c.to, want);
    let back = unreserve(&want).unwrap();
    assert_eq!((back.from, back.to), (c.to, c.from));
}

#[test]
fn refinement_pushes_onto_the_stack() {
    let refined = Resource::scalar("cpus", 1.0)
        .reserved(Reservation::static_for("eng"))
        .reserved(Reservation::dynamic("eng/dev", None));
    let c = reserve(&Resources::from(refined.clone())).unwrap();
    assert_eq!(c.from, flag("cpus(eng):1"));
    assert_eq!(c.to, Resources::from(refined));
}

#[test]
fn shape_errors() {
    let check = |r: Result<Conversion, OperationError>, expected: &str| {
        assert_eq!(r.unwrap_err().to_string(), expected);
    };
    check(
        reserve(&flag("cpus:1")),
        "Resource cpus:1 is not dynamically reserved",
    );
    check(
        unreserve(&flag("cpus(eng):1")),
        "Resource cpus(eng):1 is not dynamically reserved",
    );
    check(
        reserve(&Resources::new()),
        "The operation names no resources",
    );
    let v = Resources::from(volume(10.0, "eng", "v1", "data"));
    check(
        unreserve(&v),
        "A dynamically reserved persistent volume disk(eng):10 cannot be unreserved",
    );
    check(
        destroy(&flag("disk(eng):10")),
        "Resource disk(eng):10 is not a persistent volume",
    );
    let mut unreserved = volume(10.0, "eng", "v1", "data");
    unreserved.reservations.clear();
    check(
        create(&Resources::from(unreserved)),
        "Persistent volume disk:10 is not reserved",
    );
    for (path, reason) in [
        (
            "/abs",
            "is absolute; persistent volumes are mounted relative to the sandbox",
        ),
        ("../x", "must not contain '..'"),
        ("a/../../x", "must not contain '..'"),
        ("", "is empty"),
    ] {
        let got = create(&Resources::from(volume(10.0, "eng", "v1", path))).unwrap_err();
        assert_eq!(
            got.to_string(),
            format!("Invalid persistent volume disk(eng):10: container_path '{path}' {reason}")
        );
    }
    let bad_id = create(&Resources::from(volume(10.0, "eng", "../v", "data"))).unwrap_err();
    assert!(
        bad_id.to_string().contains("persistence id '../v'"),
        "{bad_id}"
    );
}

#[test]
fn create_and_destroy_volumes() {
    let v = volume(10.0, "eng", "v1", "data");
    let c = create(&Resources::from(v.clone())).unwrap();
    assert_eq!(c.from, Resources::from(dynamic("disk", 10.0, "eng")));
    assert_eq!(c.to, Resources::from(v.clone()));
    let d = destroy(&Resources::from(v.clone())).unwrap();
    assert_eq!((d.from, d.to), (c.to, c.from));
    let two = Resources::from_vec(vec![v.clone(), volume(5.0, "eng", "v1", "other")]);
    assert_eq!(
        create(&two).unwrap_err(),
        OperationError::DuplicatePersistenceId("v1".into())
    );
}

#[test]
fn grow_and_shrink() {
    let v = volume(10.0, "eng", "v1", "data");
    let g = grow(&v, &dynamic("disk", 5.0, "eng")).unwrap();
    assert_eq!(g.from.disk_mb(), Scalar::from_int(15));
    assert_eq!(g.to.disk_mb(), Scalar::from_int(15));
    assert_eq!(
        g.to.iter().next().and_then(Resource::persistence_id),
        Some("v1")
    );
    assert!(
        grow(&v, &Resource::scalar("disk", 5.0)).is_err(),
        "other reservation"
    );
    let s = shrink(&v, Scalar::from_int(4)).unwrap();
    assert_eq!(
        s.to.filter(Resource::is_persistent_volume).disk_mb(),
        Scalar::from_int(6)
    );
    assert_eq!(
        s.to.filter(|r| !r.is_persistent_volume()).disk_mb(),
        Scalar::from_int(4)
    );
    assert!(shrink(&v, Scalar::from_int(10)).is_err());
    assert!(shrink(&v, Scalar::ZERO).is_err());
}

#[test]
fn checkpointed_resources_apply_to_the_base() {
    let base = flag("cpus:4;mem:1024;disk:100;disk(ops):50");
    let v = volume(10.0, "eng", "v1", "data");
    let reserved = dynamic("cpus", 1.0, "eng");
    let mut static_volume = Resource::scalar("disk", 20.0).reserved(Reservation::static_for("ops"));
    static_volume.disk = v.disk.clone();
    let cp = Resources::from_vec(vec![v, reserved, static_volume]);
    let total = apply_checkpointed(&base, &cp).unwrap();
    assert_eq!(total.cpus(), Scalar::from_int(4));
    assert_eq!(total.disk_mb(), Scalar::from_int(150));
    assert_eq!(checkpointed(&total), cp);
    assert_eq!(total.unreserved().to_string(), "cpus:3;disk:90;mem:1024");
    let too_much = Resources::from(dynamic("cpus", 5.0, "eng"));
    assert!(apply_checkpointed(&base, &too_much).is_err());
    assert!(apply_checkpointed(&base, &flag("cpus(eng):1")).is_err());
}
