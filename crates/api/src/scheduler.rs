//! The v1 scheduler API (`/api/v1/scheduler`): calls a framework sends and events it gets.

use crate::ids::{AgentId, ExecutorId, FrameworkId, OfferId, TaskId};
use crate::mesos::{
    ExecutorInfo, Filters, FrameworkInfo, KillPolicy, MasterInfo, Offer, TaskGroupInfo, TaskInfo,
};
use crate::status::TaskStatus;
use serde::{Deserialize, Serialize};
use strata_resources::wire::WireScalar;
use strata_resources::WireResource;

/// SUBSCRIBE payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    pub framework_info: FrameworkInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_constraints: Option<serde_json::Value>,
}

/// LAUNCH operation payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    #[serde(default)]
    pub task_infos: Vec<TaskInfo>,
}

/// LAUNCH_GROUP operation payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchGroup {
    pub executor: ExecutorInfo,
    pub task_group: TaskGroupInfo,
}

/// RESERVE payload: resources carrying their new reservation on top of their stack.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reserve {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<WireResource>,
    #[serde(default)]
    pub resources: Vec<WireResource>,
}

/// UNRESERVE payload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Unreserve {
    #[serde(default)]
    pub resources: Vec<WireResource>,
}

/// CREATE / DESTROY payload: persistent volumes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Volumes {
    #[serde(default)]
    pub volumes: Vec<WireResource>,
}

/// GROW_VOLUME payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrowVolume {
    pub volume: WireResource,
    pub addition: WireResource,
}

/// SHRINK_VOLUME payload (`subtract` is a `Value.Scalar`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShrinkVolume {
    pub volume: WireResource,
    pub subtract: WireScalar,
}

/// `Offer.Operation`: LAUNCH, LAUNCH_GROUP, RESERVE, UNRESERVE, CREATE, DESTROY,
/// GROW_VOLUME and SHRINK_VOLUME are interpreted; others (CSI disks) are logged and ignored.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Operation {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_group: Option<LaunchGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve: Option<Reserve>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreserve: Option<Unreserve>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<Volumes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destroy: Option<Volumes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grow_volume: Option<GrowVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shrink_volume: Option<ShrinkVolume>,
}

/// ACCEPT payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accept {
    #[serde(default)]
    pub offer_ids: Vec<OfferId>,
    #[serde(default)]
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// DECLINE payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decline {
    #[serde(default)]
    pub offer_ids: Vec<OfferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

/// REVIVE / SUPPRESS payload: empty roles = all the framework's roles.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Roles {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// KILL payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kill {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<KillPolicy>,
}

/// SHUTDOWN payload (an executor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shutdown {
    pub executor_id: ExecutorId,
    pub agent_id: AgentId,
}

/// ACKNOWLEDGE payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledge {
    pub agent_id: AgentId,
    pub task_id: TaskId,
    pub uuid: String,
}

/// One task in an explicit RECONCILE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconcileTask {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
}

/// RECONCILE payload: empty = implicit reconciliation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reconcile {
    #[serde(default)]
    pub tasks: Vec<ReconcileTask>,
}

/// MESSAGE payload (framework → executor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub agent_id: AgentId,
    pub executor_id: ExecutorId,
    pub data: String,
}

/// UPDATE_FRAMEWORK payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateFramework {
    pub framework_info: FrameworkInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressed_roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_constraints: Option<serde_json::Value>,
}

/// Payloads Strata accepts but does not act on yet, kept raw.
pub type RawPayload = serde_json::Value;

tagged_union! {
    /// The body of a scheduler `Call`.
    pub enum Command via CommandEnvelope {
        payload {
            Subscribe(Subscribe) = "SUBSCRIBE", subscribe;
            Accept(Accept) = "ACCEPT", accept;
            Decline(Decline) = "DECLINE", decline;
            Kill(Kill) = "KILL", kill;
            Shutdown(Shutdown) = "SHUTDOWN", shutdown;
            Acknowledge(Acknowledge) = "ACKNOWLEDGE", acknowledge;
            Reconcile(Reconcile) = "RECONCILE", reconcile;
            Message(Message) = "MESSAGE", message;
            UpdateFramework(UpdateFramework) = "UPDATE_FRAMEWORK", update_framework;
            AcceptInverseOffers(RawPayload) = "ACCEPT_INVERSE_OFFERS", accept_inverse_offers;
            DeclineInverseOffers(RawPayload) = "DECLINE_INVERSE_OFFERS", decline_inverse_offers;
            AcknowledgeOperationStatus(RawPayload) = "ACKNOWLEDGE_OPERATION_STATUS", acknowledge_operation_status;
            ReconcileOperations(RawPayload) = "RECONCILE_OPERATIONS", reconcile_operations;
        }
        optional {
            Revive(Roles) = "REVIVE", revive;
            Suppress(Roles) = "SUPPRESS", suppress;
            Request(RawPayload) = "REQUEST", request;
        }
        bare {
            Teardown = "TEARDOWN";
        }
    }
}

/// A scheduler `Call`: the envelope's `framework_id` plus the typed body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    #[serde(flatten)]
    pub body: Command,
}

/// SUBSCRIBED event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribed {
    pub framework_id: FrameworkId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat_interval_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_info: Option<MasterInfo>,
}

/// OFFERS event payload; `offers` is always written (mesoshttp indexes it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offers {
    #[serde(default)]
    pub offers: Vec<Offer>,
}

/// RESCIND event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rescind {
    pub offer_id: OfferId,
}

/// UPDATE event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

/// MESSAGE event payload (executor → framework).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    pub agent_id: AgentId,
    pub executor_id: ExecutorId,
    pub data: String,
}

/// FAILURE event payload: an agent lost (only `agent_id`) or a custom executor exited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
}

/// ERROR event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    pub message: String,
}

tagged_union! {
    /// A scheduler event.
    pub enum Event via EventEnvelope {
        payload {
            Subscribed(Subscribed) = "SUBSCRIBED", subscribed;
            Offers(Offers) = "OFFERS", offers;
            InverseOffers(RawPayload) = "INVERSE_OFFERS", inverse_offers;
            Rescind(Rescind) = "RESCIND", rescind;
            RescindInverseOffer(RawPayload) = "RESCIND_INVERSE_OFFER", rescind_inverse_offer;
            Update(Update) = "UPDATE", update;
            UpdateOperationStatus(RawPayload) = "UPDATE_OPERATION_STATUS", update_operation_status;
            Message(EventMessage) = "MESSAGE", message;
            Failure(Failure) = "FAILURE", failure;
            Error(ErrorEvent) = "ERROR", error;
        }
        bare {
            Heartbeat = "HEARTBEAT";
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_ascii_json;

    #[test]
    fn parses_pymesos_calls() {
        let kill: Call = serde_json::from_str(
            r#"{"type":"KILL","framework_id":{"value":"f"},"kill":{"task_id":{"value":"t"}}}"#,
        )
        .unwrap();
        assert_eq!(kill.framework_id, Some(FrameworkId::new("f")));
        assert!(matches!(
            kill.body,
            Command::Kill(Kill { agent_id: None, .. })
        ));
        let teardown: Call =
            serde_json::from_str(r#"{"type":"TEARDOWN","framework_id":{"value":"f"}}"#).unwrap();
        assert_eq!(teardown.body, Command::Teardown);
        let revive: Call =
            serde_json::from_str(r#"{"type":"REVIVE","framework_id":{"value":"f"}}"#).unwrap();
        assert_eq!(revive.body, Command::Revive(Roles::default()));
        let rec: Call = serde_json::from_str(
            r#"{"type":"RECONCILE","framework_id":{"value":"f"},"reconcile":{"tasks":[]}}"#,
        )
        .unwrap();
        assert_eq!(rec.body, Command::Reconcile(Reconcile::default()));
    }

    #[test]
    fn explains_bad_calls() {
        let err = |s: &str| serde_json::from_str::<Call>(s).unwrap_err().to_string();
        assert!(err(r#"{"type":"ACCEPT","framework_id":{"value":"f"}}"#)
            .contains("Expecting 'accept' to be present"));
        assert!(err(r#"{"type":"NOPE"}"#).contains("unknown type 'NOPE'"));
        assert!(err(r#"{"framework_id":{"value":"f"}}"#).contains("'type'"));
    }

    #[test]
    fn events_use_type_and_lowercase_key() {
        assert_eq!(to_ascii_json(&Event::Heartbeat), r#"{"type":"HEARTBEAT"}"#);
        let e = Event::Error(ErrorEvent {
            message: "Framework failed over".into(),
        });
        assert_eq!(
            to_ascii_json(&e),
            r#"{"type":"ERROR","error":{"message":"Framework failed over"}}"#
        );
        assert_eq!(
            to_ascii_json(&Event::Offers(Offers { offers: vec![] })),
            r#"{"type":"OFFERS","offers":{"offers":[]}}"#
        );
        let back: Event = serde_json::from_str(&to_ascii_json(&e)).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn serialises_calls_for_our_own_clients() {
        let c = Call {
            framework_id: Some(FrameworkId::new("f")),
            body: Command::Revive(Roles::default()),
        };
        assert_eq!(
            to_ascii_json(&c),
            r#"{"framework_id":{"value":"f"},"type":"REVIVE","revive":{}}"#
        );
    }
}
