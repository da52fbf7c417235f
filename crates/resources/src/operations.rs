//! Reservation and volume operations (RESERVE, UNRESERVE, CREATE, DESTROY, GROW_VOLUME,
//! SHRINK_VOLUME) as pure conversions `from → to`, and the "checkpointed resources" of an
//! agent (dynamic reservations and persistent volumes) applied to its configured total.
//!
//! Only the shape of each resource is checked here (what Mesos' `Resources::apply`
//! needs); who may do what (roles, principals, volumes in use) is the master's business.

use thiserror::Error;

use crate::resource::{ReservationKind, Resource};
use crate::resources::Resources;
use crate::scalar::Scalar;
use crate::value::Value;

/// An operation as `from` (what it consumes) and `to` (what it produces instead).
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Conversion {
    /// Resources the operation takes (they must be available).
    pub from: Resources,
    /// Resources that replace them.
    pub to: Resources,
}

/// Why an operation's resources have the wrong shape (Mesos' validation messages).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OperationError {
    /// RESERVE/UNRESERVE of something whose last reservation is not dynamic.
    #[error("Resource {0} is not dynamically reserved")]
    NotDynamicallyReserved(String),
    /// RESERVE of a resource that already is a persistent volume.
    #[error("A persistent volume {0} must already be reserved")]
    VolumeReserve(String),
    /// UNRESERVE of a persistent volume.
    #[error("A dynamically reserved persistent volume {0} cannot be unreserved")]
    VolumeUnreserve(String),
    /// CREATE/DESTROY/GROW/SHRINK of something that is not a persistent volume.
    #[error("Resource {0} is not a persistent volume")]
    NotPersistentVolume(String),
    /// A persistent volume must sit on reserved disk.
    #[error("Persistent volume {0} is not reserved")]
    VolumeNotReserved(String),
    /// Persistent volumes cannot be revocable.
    #[error("Persistent volume {0} cannot be created from revocable resources")]
    VolumeRevocable(String),
    /// The same persistence id twice in one operation.
    #[error("Persistence ID '{0}' is used more than once in the operation")]
    DuplicatePersistenceId(String),
    /// A malformed `disk` object, persistence id or volume.
    #[error("Invalid persistent volume {resource}: {reason}")]
    InvalidVolume {
        /// The volume, as text.
        resource: String,
        /// What is wrong with it.
        reason: String,
    },
    /// GROW/SHRINK arguments that do not fit the volume.
    #[error("{0}")]
    Resize(String),
    /// An operation with no resources at all.
    #[error("The operation names no resources")]
    Empty,
}

fn text(r: &Resource) -> String {
    Resources::from(r.clone()).to_string()
}

impl Resource {
    /// The resource with its last reservation removed (unreserve or un-refine).
    pub fn pop_reservation(&self) -> Resource {
        let mut r = self.clone();
        r.reservations.pop();
        r
    }

    /// `disk.persistence.id`, when this is a persistent volume.
    pub fn persistence_id(&self) -> Option<&str> {
        self.disk.as_ref()?.get("persistence")?.get("id")?.as_str()
    }

    /// True when this is a persistent volume (`disk.persistence` set).
    pub fn is_persistent_volume(&self) -> bool {
        self.disk
            .as_ref()
            .and_then(|d| d.get("persistence"))
            .is_some_and(|p| !p.is_null())
    }

    /// `disk.volume.container_path` of a persistent volume.
    pub fn volume_container_path(&self) -> Option<&str> {
        self.disk
            .as_ref()?
            .get("volume")?
            .get("container_path")?
            .as_str()
    }

    /// True when the volume is mounted read-only (`disk.volume.mode` = `RO`).
    pub fn volume_read_only(&self) -> bool {
        self.disk
            .as_ref()
            .and_then(|d| d.get("volume"))
            .and_then(|v| v.get("mode"))
            .and_then(|m| m.as_str())
            == Some("RO")
    }

    /// The disk this volume was made from: `persistence` and `volume` removed (the
    /// `source`, if any, kept), and not shared.
    pub fn without_volume(&self) -> Resource {
        let mut r = self.clone();
        if let Some(serde_json::Value::Object(map)) = r.disk.as_deref_mut() {
            map.remove("persistence");
            map.remove("volume");
            if map.is_empty() {
                r.disk = None;
            }
        }
        r.shared = false;
        r
    }

    /// What an agent's configured resources hold before dynamic reservations and
    /// volumes: every dynamic reservation popped, the volume removed.
    pub fn checkpoint_base(&self) -> Resource {
        let mut r = self.without_volume();
        while r
            .reservations
            .last()
            .is_some_and(|v| v.kind == ReservationKind::Dynamic)
        {
            r.reservations.pop();
        }
        r
    }

    /// Whether an agent must checkpoint this resource: dynamically reserved, or a volume.
    pub fn needs_checkpointing(&self) -> bool {
        self.is_dynamically_reserved() || self.is_persistent_volume()
    }
}

/// RESERVE: each resource carries its new reservation on top of its stack.
pub fn reserve(resources: &Resources) -> Result<Conversion, OperationError> {
    non_empty(resources)?;
    let mut c = Conversion::default();
    for r in resources {
        if r.is_persistent_volume() {
            return Err(OperationError::VolumeReserve(text(r)));
        }
        if !r.is_dynamically_reserved() {
            return Err(OperationError::NotDynamicallyReserved(text(r)));
        }
        c.from += r.pop_reservation();
        c.to += r.clone();
    }
    Ok(c)
}

/// UNRESERVE: each resource loses its (dynamic) top reservation.
pub fn unreserve(resources: &Resources) -> Result<Conversion, OperationError> {
    non_empty(resources)?;
    let mut c = Conversion::default();
    for r in resources {
        if r.is_persistent_volume() {
            return Err(OperationError::VolumeUnreserve(text(r)));
        }
        if !r.is_dynamically_reserved() {
            return Err(OperationError::NotDynamicallyReserved(text(r)));
        }
        c.from += r.clone();
        c.to += r.pop_reservation();
    }
    Ok(c)
}

/// CREATE: reserved disk becomes persistent volumes.
pub fn create(volumes: &Resources) -> Result<Conversion, OperationError> {
    non_empty(volumes)?;
    let mut ids = std::collections::BTreeSet::new();
    let mut c = Conversion::default();
    for v in volumes {
        check_volume(v)?;
        let id = v.persistence_id().unwrap_or_default();
        if !ids.insert((v.role().to_string(), id.to_string())) {
            return Err(OperationError::DuplicatePersistenceId(id.to_string()));
        }
        c.from += v.without_volume();
        c.to += v.clone();
    }
    Ok(c)
}

/// DESTROY: persistent volumes go back to plain reserved disk.
pub fn destroy(volumes: &Resources) -> Result<Conversion, OperationError> {
    non_empty(volumes)?;
    let mut c = Conversion::default();
    for v in volumes {
        if !v.is_persistent_volume() {
            return Err(OperationError::NotPersistentVolume(text(v)));
        }
        c.from += v.clone();
        c.to += v.without_volume();
    }
    Ok(c)
}

/// GROW_VOLUME: `volume` absorbs `addition` (disk of the same kind, not a volume).
pub fn grow(volume: &Resource, addition: &Resource) -> Result<Conversion, OperationError> {
    let size = resizable(volume)?;
    let extra = addition.as_scalar().filter(|s| *s > Scalar::ZERO);
    let Some(extra) = extra else {
        return Err(OperationError::Resize(format!(
            "The addition {} must be a positive scalar",
            text(addition)
        )));
    };
    let mut plain = addition.clone();
    plain.value = volume.value.clone();
    if addition.is_persistent_volume() || !plain.same_identity(&volume.without_volume()) {
        return Err(OperationError::Resize(format!(
            "The addition {} must be disk with the same reservations and source as the volume {}",
            text(addition),
            text(volume)
        )));
    }
    let mut grown = volume.clone();
    grown.value = Value::Scalar(size + extra);
    Ok(Conversion {
        from: Resources::from(volume.clone()) + Resources::from(addition.clone()),
        to: Resources::from(grown),
    })
}

/// SHRINK_VOLUME: `volume` gives `subtract` MB back as plain disk.
pub fn shrink(volume: &Resource, subtract: Scalar) -> Result<Conversion, OperationError> {
    let size = resizable(volume)?;
    if subtract <= Scalar::ZERO || subtract >= size {
        return Err(OperationError::Resize(format!(
            "The amount to shrink ({subtract}) must be positive and less than the size of the persistent volume {}",
            text(volume)
        )));
    }
    let mut shrunk = volume.clone();
    shrunk.value = Value::Scalar(size - subtract);
    let mut freed = volume.without_volume();
    freed.value = Value::Scalar(subtract);
    Ok(Conversion {
        from: Resources::from(volume.clone()),
        to: Resources::from(shrunk) + Resources::from(freed),
    })
}

fn resizable(volume: &Resource) -> Result<Scalar, OperationError> {
    if !volume.is_persistent_volume() {
        return Err(OperationError::NotPersistentVolume(text(volume)));
    }
    if volume.shared {
        return Err(OperationError::Resize(format!(
            "Resizing the shared persistent volume {} is not supported",
            text(volume)
        )));
    }
    volume.as_scalar().ok_or_else(|| {
        OperationError::Resize(format!("The volume {} is not a scalar", text(volume)))
    })
}

fn non_empty(r: &Resources) -> Result<(), OperationError> {
    if r.is_empty() {
        return Err(OperationError::Empty);
    }
    Ok(())
}

/// Shape checks of one persistent volume (Mesos `validatePersistentVolume`).
pub fn check_volume(v: &Resource) -> Result<(), OperationError> {
    let bad = |reason: &str| OperationError::InvalidVolume {
        resource: text(v),
        reason: reason.to_string(),
    };
    if v.name != "disk" || v.as_scalar().is_none() {
        return Err(bad(
            "only scalar 'disk' resources can be persistent volumes",
        ));
    }
    let Some(id) = v.persistence_id() else {
        return Err(OperationError::NotPersistentVolume(text(v)));
    };
    if let Some(reason) = id_problem(id) {
        return Err(bad(&format!("persistence id '{id}' {reason}")));
    }
    if !v.is_reserved() {
        return Err(OperationError::VolumeNotReserved(text(v)));
    }
    if v.revocable {
        return Err(OperationError::VolumeRevocable(text(v)));
    }
    let volume = v.disk.as_ref().and_then(|d| d.get("volume"));
    let Some(volume) = volume.filter(|x| x.is_object()) else {
        return Err(bad("expecting 'volume' to be set in DiskInfo"));
    };
    if volume.get("host_path").is_some_and(|h| !h.is_null()) {
        return Err(bad("expecting 'host_path' to be unset"));
    }
    match volume.get("mode").and_then(|m| m.as_str()) {
        Some("RW" | "RO") => {}
        _ => return Err(bad("'volume.mode' must be RW or RO")),
    }
    let path = v.volume_container_path().unwrap_or_default();
    if let Some(reason) = container_path_problem(path) {
        return Err(bad(&format!("container_path '{path}' {reason}")));
    }
    Ok(())
}

/// Why a persistence id cannot name a directory, if it cannot.
fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id == "." || id == ".." {
        Some("cannot be '.' or '..'")
    } else if id.contains('/') || id.contains('\\') || id.chars().any(char::is_control) {
        Some("cannot contain '/', '\\' or control characters")
    } else if id.len() > 255 {
        Some("is longer than 255 bytes")
    } else {
        None
    }
}

/// Why a volume's container path is unusable, if it is: it must stay inside the sandbox.
pub fn container_path_problem(path: &str) -> Option<&'static str> {
    let p = std::path::Path::new(path);
    if path.is_empty() {
        Some("is empty")
    } else if p.is_absolute() {
        Some("is absolute; persistent volumes are mounted relative to the sandbox")
    } else if p.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    }) {
        Some("must not contain '..'")
    } else if path.chars().any(char::is_control) {
        Some("contains control characters")
    } else {
        None
    }
}

/// The entries of `total` an agent checkpoints (dynamic reservations and volumes).
pub fn checkpointed(total: &Resources) -> Resources {
    total.filter(Resource::needs_checkpointing)
}

/// An agent's total: its configured resources (`base`, static reservations only) with
/// the checkpointed ones applied. Fails, naming the resource, when `base` lacks what a
/// checkpointed resource was made from (the agent's resources shrank).
pub fn apply_checkpointed(base: &Resources, checkpointed: &Resources) -> Result<Resources, String> {
    let mut total = base.clone();
    for r in checkpointed {
        if !r.needs_checkpointing() {
            return Err(format!(
                "{} is neither dynamically reserved nor a persistent volume",
                text(r)
            ));
        }
        let stripped = Resources::from(r.checkpoint_base());
        total = total.checked_sub(&stripped).ok_or_else(|| {
            format!(
                "checkpointed resource {} does not fit the agent's resources {base}",
                text(r)
            )
        })?;
        total += r.clone();
    }
    Ok(total)
}

#[cfg(test)]
#[path = "operations_tests.rs"]
mod tests;
