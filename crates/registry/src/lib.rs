//! Durable cluster state: the registry of admitted agents (and whether they are
//! unreachable, gone or deactivated), framework ids and the maintenance schedule, as a
//! model plus backends. A change is durable once [`Registry::apply`] returns.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod memory;
mod model;
#[cfg(feature = "redb")]
mod redb_store;

pub use memory::MemoryRegistry;
pub use model::{AgentRecord, DeactivatedAgent, MaintenanceRecord, Op, QuotaRecord, RegistryState};
#[cfg(feature = "redb")]
pub use redb_store::RedbRegistry;

/// Why the registry could not load or persist.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry storage at {path}: {message}")]
    Storage { path: String, message: String },
    #[error("registry record {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
}

/// A durable store of [`RegistryState`].
pub trait Registry: Send {
    /// Reads the whole state (at master start).
    fn load(&self) -> Result<RegistryState, RegistryError>;
    /// Applies the operations atomically and durably.
    fn apply(&mut self, ops: &[Op]) -> Result<(), RegistryError>;
}
