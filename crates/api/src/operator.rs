//! The v1 operator API (`/api/v1` on master and agent): call types and the response
//! envelope. Response bodies are assembled by the master and agent from their own state.

use serde::Serialize;

wire_enum! {
    /// Operator call types Strata knows (master and agent).
    pub enum OperatorCallType {
        GetHealth = "GET_HEALTH",
        GetFlags = "GET_FLAGS",
        GetVersion = "GET_VERSION",
        GetMetrics = "GET_METRICS",
        GetLoggingLevel = "GET_LOGGING_LEVEL",
        SetLoggingLevel = "SET_LOGGING_LEVEL",
        ListFiles = "LIST_FILES",
        ReadFile = "READ_FILE",
        GetState = "GET_STATE",
        GetAgents = "GET_AGENTS",
        GetFrameworks = "GET_FRAMEWORKS",
        GetExecutors = "GET_EXECUTORS",
        GetOperations = "GET_OPERATIONS",
        GetTasks = "GET_TASKS",
        GetRoles = "GET_ROLES",
        GetWeights = "GET_WEIGHTS",
        UpdateWeights = "UPDATE_WEIGHTS",
        GetMaster = "GET_MASTER",
        Subscribe = "SUBSCRIBE",
        ReserveResources = "RESERVE_RESOURCES",
        UnreserveResources = "UNRESERVE_RESOURCES",
        CreateVolumes = "CREATE_VOLUMES",
        DestroyVolumes = "DESTROY_VOLUMES",
        GrowVolume = "GROW_VOLUME",
        ShrinkVolume = "SHRINK_VOLUME",
        GetMaintenanceStatus = "GET_MAINTENANCE_STATUS",
        GetMaintenanceSchedule = "GET_MAINTENANCE_SCHEDULE",
        UpdateMaintenanceSchedule = "UPDATE_MAINTENANCE_SCHEDULE",
        StartMaintenance = "START_MAINTENANCE",
        StopMaintenance = "STOP_MAINTENANCE",
        GetQuota = "GET_QUOTA",
        UpdateQuota = "UPDATE_QUOTA",
        Teardown = "TEARDOWN",
        MarkAgentGone = "MARK_AGENT_GONE",
        DrainAgent = "DRAIN_AGENT",
        DeactivateAgent = "DEACTIVATE_AGENT",
        ReactivateAgent = "REACTIVATE_AGENT",
        GetContainers = "GET_CONTAINERS",
        GetAgent = "GET_AGENT",
    }
}

/// A parsed operator call: its type and the (possibly absent) payload object.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorCall {
    pub kind: OperatorCallType,
    pub payload: serde_json::Value,
}

/// Why an operator call body is unacceptable (answered with 400, or 501 for UNKNOWN).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorCallError {
    #[error("Failed to parse body into Call: {0}")]
    Json(String),
    #[error("Failed to parse body into Call: 'type' is missing")]
    MissingType,
    #[error("Unsupported call type '{0}'")]
    Unsupported(String),
}

impl OperatorCall {
    /// Parses `{"type":"X","x":{…}}`.
    pub fn parse(body: &[u8]) -> Result<Self, OperatorCallError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| OperatorCallError::Json(e.to_string()))?;
        let kind_name = value
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or(OperatorCallError::MissingType)?;
        let kind = OperatorCallType::from_name(kind_name)
            .ok_or_else(|| OperatorCallError::Unsupported(kind_name.to_string()))?;
        let payload = value
            .get(payload_key(kind_name).as_str())
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        Ok(Self { kind, payload })
    }
}

/// The lowercase payload key for a type name: `GET_STATE` → `get_state`.
pub fn payload_key(type_name: &str) -> String {
    type_name.to_ascii_lowercase()
}

/// Builds a response `{"type":"X","x":{…}}`.
pub fn response<T: Serialize>(kind: OperatorCallType, body: T) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert("type".into(), kind.as_str().into());
    map.insert(
        payload_key(kind.as_str()),
        serde_json::to_value(body).unwrap_or(serde_json::Value::Null),
    );
    serde_json::Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_explains() {
        let c = OperatorCall::parse(br#"{"type":"GET_TASKS"}"#).unwrap();
        assert_eq!(c.kind, OperatorCallType::GetTasks);
        assert!(c.payload.is_null());
        assert_eq!(
            OperatorCall::parse(b"{")
                .unwrap_err()
                .to_string()
                .split(':')
                .next(),
            Some("Failed to parse body into Call")
        );
        assert_eq!(
            OperatorCall::parse(br#"{"type":"X"}"#),
            Err(OperatorCallError::Unsupported("X".into()))
        );
        assert_eq!(
            response(
                OperatorCallType::GetHealth,
                serde_json::json!({"healthy": true})
            ),
            serde_json::json!({"type":"GET_HEALTH","get_health":{"healthy":true}})
        );
    }
}
