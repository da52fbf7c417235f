//! Operation feedback: reservation and volume operations sent with an `id` get
//! UPDATE_OPERATION_STATUS events (OPERATION_FINISHED, reliable until acknowledged with
//! ACKNOWLEDGE_OPERATION_STATUS; OPERATION_ERROR when invalid), RECONCILE_OPERATIONS
//! answers, and the operator's GET_OPERATIONS. Operations on agent default resources
//! are applied by the master at once (speculatively, as Mesos does), so FINISHED follows
//! the ACCEPT directly.

use crate::io::Effect;
use crate::master::Master;
use base64::Engine;
use serde_json::{json, Value};
use strata_api::scheduler::Event;
use strata_api::{AgentId, FrameworkId};
use strata_resources::{Resources, WireFormat};

/// One operation with an `id`, as GET_OPERATIONS shows it.
#[derive(Debug, Clone)]
pub struct OperationRecord {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    /// The `Offer.Operation` as the framework sent it.
    pub info: Value,
    pub statuses: Vec<Value>,
    /// The operation's own uuid (`{"value": b64}`).
    pub uuid: Value,
    /// The uuid of the latest status while it awaits an acknowledgement.
    pub unacknowledged: Option<String>,
}

impl OperationRecord {
    fn latest(&self) -> Value {
        self.statuses.last().cloned().unwrap_or(Value::Null)
    }

    /// GET_OPERATIONS' shape.
    pub fn to_json(&self) -> Value {
        json!({
            "framework_id": self.framework_id, "agent_id": self.agent_id, "info": self.info,
            "latest_status": self.latest(), "statuses": self.statuses, "uuid": self.uuid,
        })
    }
}

fn id_of(info: &Value) -> Option<String> {
    info.pointer("/id/value")
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl Master {
    /// A fresh uuid: 16 bytes from the master's start time and a counter, base64.
    fn operation_uuid(&mut self) -> String {
        self.next_operation_uuid += 1;
        let bytes = (u128::from(self.start_time.to_bits()) << 64
            | self.next_operation_uuid as u128)
            .to_be_bytes();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Reports the outcome of a reservation/volume operation that carried an `id`:
    /// `Ok(converted)` → OPERATION_FINISHED (reliable), `Err(message)` → OPERATION_ERROR.
    pub(crate) fn operation_feedback(
        &mut self,
        fid: &FrameworkId,
        aid: &AgentId,
        info: Value,
        result: Result<&Resources, &str>,
        out: &mut Vec<Effect>,
    ) {
        let Some(op_id) = id_of(&info) else {
            return;
        };
        let mut status = json!({"operation_id": {"value": op_id}, "agent_id": aid});
        let reliable = match result {
            Ok(converted) => {
                status["state"] = json!("OPERATION_FINISHED");
                status["converted_resources"] = json!(converted
                    .without_allocation_role()
                    .to_wire(WireFormat::PostRefinement));
                true
            }
            Err(message) => {
                status["state"] = json!("OPERATION_ERROR");
                status["message"] = json!(message);
                false
            }
        };
        let op_uuid = self.operation_uuid();
        let mut record = OperationRecord {
            framework_id: fid.clone(),
            agent_id: aid.clone(),
            info,
            statuses: Vec::new(),
            uuid: json!({ "value": op_uuid }),
            unacknowledged: None,
        };
        if reliable {
            let u = self.operation_uuid();
            status["uuid"] = json!({ "value": u });
            record.unacknowledged = Some(u);
        }
        record.statuses.push(status.clone());
        if reliable {
            self.operations.insert((fid.clone(), op_id), record);
        }
        self.send_operation_status(fid, status, out);
    }

    fn send_operation_status(&self, fid: &FrameworkId, status: Value, out: &mut Vec<Effect>) {
        let event = Event::UpdateOperationStatus(json!({ "status": status }));
        self.send_framework(fid, event, out);
    }

    /// ACKNOWLEDGE_OPERATION_STATUS: a terminal status acknowledged ends the record.
    pub(crate) fn acknowledge_operation(&mut self, fid: &FrameworkId, payload: &Value) {
        let op_id = payload
            .pointer("/operation_id/value")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let uuid = payload.get("uuid").and_then(|u| match u {
            Value::String(s) => Some(s.clone()),
            other => other
                .get("value")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
        let key = (fid.clone(), op_id);
        let acked = self
            .operations
            .get(&key)
            .is_some_and(|r| r.unacknowledged.is_some() && r.unacknowledged == uuid);
        if acked {
            // Every status Strata sends reliably is terminal (FINISHED).
            self.operations.remove(&key);
        }
    }

    /// RECONCILE_OPERATIONS: the latest status of each named operation (all of the
    /// framework's when none are named), OPERATION_UNKNOWN for operations not known.
    pub(crate) fn reconcile_operations(
        &self,
        fid: &FrameworkId,
        payload: &Value,
        out: &mut Vec<Effect>,
    ) {
        let asked = payload
            .get("operations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if asked.is_empty() {
            for ((f, _), r) in self.operations.range((fid.clone(), String::new())..) {
                if f != fid {
                    break;
                }
                self.send_operation_status(fid, without_uuid(r.latest()), out);
            }
            return;
        }
        for a in asked {
            let op_id = a
                .pointer("/operation_id/value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let status = match self.operations.get(&(fid.clone(), op_id.clone())) {
                Some(r) => without_uuid(r.latest()),
                None => {
                    let mut s =
                        json!({"operation_id": {"value": op_id}, "state": "OPERATION_UNKNOWN"});
                    if let Some(agent) = a.get("agent_id") {
                        s["agent_id"] = agent.clone();
                    }
                    s
                }
            };
            self.send_operation_status(fid, status, out);
        }
    }

    /// Resends the unacknowledged statuses of a framework that (re)subscribed.
    pub(crate) fn resend_operation_statuses(&self, fid: &FrameworkId, out: &mut Vec<Effect>) {
        for ((f, _), r) in self.operations.range((fid.clone(), String::new())..) {
            if f != fid {
                break;
            }
            if r.unacknowledged.is_some() {
                self.send_operation_status(fid, r.latest(), out);
            }
        }
    }

    /// GET_OPERATIONS body.
    pub fn operations_json(&self) -> Value {
        let ops: Vec<Value> = self
            .operations
            .values()
            .map(OperationRecord::to_json)
            .collect();
        json!({ "operations": ops })
    }
}

/// Reconciliation answers need no acknowledgement (Mesos sends them without uuid).
fn without_uuid(mut status: Value) -> Value {
    if let Some(o) = status.as_object_mut() {
        o.remove("uuid");
    }
    status
}
