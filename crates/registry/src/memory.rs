//! An in-memory registry for unit tests and for masters run without a work dir.

use crate::{Op, Registry, RegistryError, RegistryState};

/// Keeps the state in memory; nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    state: RegistryState,
}

impl Registry for MemoryRegistry {
    fn load(&self) -> Result<RegistryState, RegistryError> {
        Ok(self.state.clone())
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), RegistryError> {
        for op in ops {
            self.state.apply(op);
        }
        Ok(())
    }
}
