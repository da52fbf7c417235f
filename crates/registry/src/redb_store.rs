//! The embedded on-disk registry (redb): tables of agents, frameworks, deactivated agents
//! and maintenance, JSON values, each `apply` one durable write transaction.

use crate::{AgentRecord, Op, Registry, RegistryError, RegistryState};
use redb::{Database, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};

const AGENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("agents");
const FRAMEWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("frameworks");
const DEACTIVATED: TableDefinition<&str, &[u8]> = TableDefinition::new("deactivated_agents");
/// One row, [`MAINTENANCE_KEY`]: the schedule and the DOWN machines.
const MAINTENANCE: TableDefinition<&str, &[u8]> = TableDefinition::new("maintenance");
const MAINTENANCE_KEY: &str = "current";
/// Quotas (`quota/<role>`) and weights (`weight/<role>`).
const ALLOCATION: TableDefinition<&str, &[u8]> = TableDefinition::new("allocation");

/// A registry stored in a redb file.
pub struct RedbRegistry {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for RedbRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbRegistry")
            .field("path", &self.path)
            .finish()
    }
}

impl RedbRegistry {
    /// Opens (creating if needed) the registry file at `path`.
    pub fn open(path: &Path) -> Result<Self, RegistryError> {
        let db = Database::create(path).map_err(|e| storage(path, e))?;
        let me = Self {
            db,
            path: path.to_path_buf(),
        };
        // Create the tables so reads of a fresh file succeed.
        let tx = me.db.begin_write().map_err(|e| storage(path, e))?;
        tx.open_table(AGENTS).map_err(|e| storage(path, e))?;
        tx.open_table(FRAMEWORKS).map_err(|e| storage(path, e))?;
        tx.open_table(DEACTIVATED).map_err(|e| storage(path, e))?;
        tx.open_table(MAINTENANCE).map_err(|e| storage(path, e))?;
        tx.open_table(ALLOCATION).map_err(|e| storage(path, e))?;
        tx.commit().map_err(|e| storage(path, e))?;
        Ok(me)
    }

    fn err(&self, e: impl std::fmt::Display) -> RegistryError {
        storage(&self.path, e)
    }
}

fn storage(path: &Path, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Storage {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

impl Registry for RedbRegistry {
    fn load(&self) -> Result<RegistryState, RegistryError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let mut state = RegistryState::default();
        let agents = tx.open_table(AGENTS).map_err(|e| self.err(e))?;
        for row in agents.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let key = format!("agents/{}", k.value());
            state
                .agents
                .insert(k.value().to_string(), decode(&key, v.value())?);
        }
        let frameworks = tx.open_table(FRAMEWORKS).map_err(|e| self.err(e))?;
        for row in frameworks.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let key = format!("frameworks/{}", k.value());
            state
                .frameworks
                .insert(k.value().to_string(), decode(&key, v.value())?);
        }
        let deactivated = tx.open_table(DEACTIVATED).map_err(|e| self.err(e))?;
        for row in deactivated.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let key = format!("deactivated_agents/{}", k.value());
            state
                .deactivated_agents
                .insert(k.value().to_string(), decode(&key, v.value())?);
        }
        let maintenance = tx.open_table(MAINTENANCE).map_err(|e| self.err(e))?;
        if let Some(v) = maintenance.get(MAINTENANCE_KEY).map_err(|e| self.err(e))? {
            state.maintenance = decode("maintenance/current", v.value())?;
        }
        let allocation = tx.open_table(ALLOCATION).map_err(|e| self.err(e))?;
        for row in allocation.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let key = k.value();
            if let Some(role) = key.strip_prefix("quota/") {
                state
                    .quotas
                    .insert(role.to_string(), decode(key, v.value())?);
            } else if let Some(role) = key.strip_prefix("weight/") {
                state
                    .weights
                    .insert(role.to_string(), decode(key, v.value())?);
            }
        }
        Ok(state)
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), RegistryError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut agents = tx.open_table(AGENTS).map_err(|e| self.err(e))?;
            let mut frameworks = tx.open_table(FRAMEWORKS).map_err(|e| self.err(e))?;
            for op in ops {
                match op {
                    Op::AdmitAgent { id, record } => {
                        agents
                            .insert(id.as_str(), encode(record).as_slice())
                            .map_err(|e| self.err(e))?;
                    }
                    Op::MarkUnreachable { id, .. }
                    | Op::MarkGone { id }
                    | Op::SetAgentResources { id, .. } => {
                        let current = agents
                            .get(id.as_str())
                            .map_err(|e| self.err(e))?
                            .map(|v| v.value().to_vec());
                        if let Some(bytes) = current {
                            let mut record: AgentRecord = decode(id, &bytes)?;
                            match op {
                                Op::MarkUnreachable { time, .. } => {
                                    record.unreachable_since = Some(*time)
                                }
                                Op::SetAgentResources { resources, .. } => {
                                    record.checkpointed_resources.clone_from(resources)
                                }
                                _ => record.gone = true,
                            }
                            agents
                                .insert(id.as_str(), encode(&record).as_slice())
                                .map_err(|e| self.err(e))?;
                        }
                    }
                    Op::RemoveAgent { id } => {
                        agents.remove(id.as_str()).map_err(|e| self.err(e))?;
                    }
                    Op::PutFramework { id, info } => {
                        frameworks
                            .insert(id.as_str(), encode(info).as_slice())
                            .map_err(|e| self.err(e))?;
                    }
                    Op::RemoveFramework { id } => {
                        frameworks.remove(id.as_str()).map_err(|e| self.err(e))?;
                    }
                    Op::SetMaintenance { .. }
                    | Op::DeactivateAgent { .. }
                    | Op::ReactivateAgent { .. }
                    | Op::SetQuota { .. }
                    | Op::SetWeight { .. } => self.apply_operator_op(&tx, op)?,
                }
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }
}

impl RedbRegistry {
    /// Maintenance and agent (de)activation, each in its own table.
    fn apply_operator_op(&self, tx: &redb::WriteTransaction, op: &Op) -> Result<(), RegistryError> {
        match op {
            Op::SetMaintenance { record } => {
                let mut t = tx.open_table(MAINTENANCE).map_err(|e| self.err(e))?;
                t.insert(MAINTENANCE_KEY, encode(record).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            Op::DeactivateAgent { id, record } => {
                let mut t = tx.open_table(DEACTIVATED).map_err(|e| self.err(e))?;
                t.insert(id.as_str(), encode(record).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            Op::ReactivateAgent { id } => {
                let mut t = tx.open_table(DEACTIVATED).map_err(|e| self.err(e))?;
                t.remove(id.as_str()).map_err(|e| self.err(e))?;
            }
            Op::SetQuota { role, record } => {
                let mut t = tx.open_table(ALLOCATION).map_err(|e| self.err(e))?;
                let key = format!("quota/{role}");
                match record {
                    Some(r) => t.insert(key.as_str(), encode(r).as_slice()).map(|_| ()),
                    None => t.remove(key.as_str()).map(|_| ()),
                }
                .map_err(|e| self.err(e))?;
            }
            Op::SetWeight { role, weight } => {
                let mut t = tx.open_table(ALLOCATION).map_err(|e| self.err(e))?;
                let key = format!("weight/{role}");
                t.insert(key.as_str(), encode(weight).as_slice())
                    .map_err(|e| self.err(e))?;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryRegistry;
    use strata_api::{AgentInfo, FrameworkInfo};

    fn ops() -> Vec<Op> {
        let info = AgentInfo {
            hostname: "h".into(),
            port: 5051,
            resources: vec![],
            attributes: vec![],
            id: None,
            domain: None,
        };
        let record = AgentRecord {
            info,
            address: "127.0.0.1:5051".into(),
            unreachable_since: None,
            gone: false,
            checkpointed_resources: Vec::new(),
        };
        let fw: FrameworkInfo = serde_json::from_str(r#"{"user":"u","name":"n"}"#).unwrap();
        vec![
            Op::AdmitAgent {
                id: "a1".into(),
                record: record.clone(),
            },
            Op::AdmitAgent {
                id: "a2".into(),
                record,
            },
            Op::MarkUnreachable {
                id: "a1".into(),
                time: 12.5,
            },
            Op::MarkGone { id: "a2".into() },
            Op::PutFramework {
                id: "f1".into(),
                info: fw.clone(),
            },
            Op::PutFramework {
                id: "f2".into(),
                info: fw,
            },
            Op::RemoveFramework { id: "f2".into() },
            Op::SetMaintenance {
                record: crate::MaintenanceRecord {
                    schedule: serde_json::from_str(r#"{"windows":[{"machine_ids":[{"hostname":"h"}],"unavailability":{"start":{"nanoseconds":5}}}]}"#).unwrap(),
                    down: vec![serde_json::from_str(r#"{"hostname":"h"}"#).unwrap()],
                },
            },
            Op::DeactivateAgent {
                id: "a1".into(),
                record: crate::DeactivatedAgent::default(),
            },
            Op::SetQuota {
                role: "eng/web".into(),
                record: Some(crate::QuotaRecord {
                    guarantees: [("cpus".to_string(), 1.5)].into(),
                    limits: [("cpus".to_string(), 3.0)].into(),
                }),
            },
            Op::SetQuota {
                role: "ops".into(),
                record: Some(crate::QuotaRecord::default()),
            },
            Op::SetQuota {
                role: "ops".into(),
                record: None,
            },
            Op::SetWeight {
                role: "eng".into(),
                weight: 2.5,
            },
            Op::DeactivateAgent {
                id: "a3".into(),
                record: crate::DeactivatedAgent::default(),
            },
            Op::ReactivateAgent { id: "a3".into() },
        ]
    }

    #[test]
    fn redb_matches_the_model_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.redb");
        let mut mem = MemoryRegistry::default();
        {
            let mut db = RedbRegistry::open(&path).unwrap();
            for op in ops() {
                db.apply(std::slice::from_ref(&op)).unwrap();
                mem.apply(&[op]).unwrap();
            }
        }
        let db = RedbRegistry::open(&path).unwrap();
        let state = db.load().unwrap();
        assert_eq!(state, mem.load().unwrap());
        assert_eq!(state.agents["a1"].unreachable_since, Some(12.5));
        assert!(state.agents["a2"].gone);
        assert_eq!(state.frameworks.keys().collect::<Vec<_>>(), ["f1"]);
        assert_eq!(state.maintenance.down.len(), 1);
        assert_eq!(state.deactivated_agents.keys().collect::<Vec<_>>(), ["a1"]);
    }
}
