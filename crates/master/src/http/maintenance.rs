//! Maintenance and agent-draining calls: the v1 operator payloads (UPDATE/GET
//! _MAINTENANCE_SCHEDULE, START/STOP_MAINTENANCE, GET_MAINTENANCE_STATUS, DRAIN_AGENT,
//! DEACTIVATE/REACTIVATE_AGENT) and the legacy endpoints `/maintenance/schedule`,
//! `/machine/down`, `/machine/up`, `/maintenance/status`.

use super::{json_response, text, App};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use strata_api::maintenance::{DrainConfig, MachineId, Schedule};
use strata_api::operator::OperatorCallType as T;
use strata_api::{AgentId, DurationInfo};
use strata_master_core::views::maintenance as view;
use strata_master_core::{Input, OperatorInput, Reply};

/// Whether `kind` is one of the calls this module turns into inputs.
pub fn is_mutation(kind: T) -> bool {
    matches!(
        kind,
        T::UpdateMaintenanceSchedule
            | T::StartMaintenance
            | T::StopMaintenance
            | T::DrainAgent
            | T::DeactivateAgent
            | T::ReactivateAgent
    )
}

/// The core input for a mutating call, or the 400 message.
pub fn operator_input(kind: T, payload: &Value) -> Result<Input, String> {
    let key = strata_api::operator::payload_key(kind.as_str());
    if payload.is_null() {
        return Err(format!("Expecting '{key}' to be present"));
    }
    let op = match kind {
        T::UpdateMaintenanceSchedule => OperatorInput::UpdateMaintenanceSchedule {
            schedule: schedule(payload.get("schedule").unwrap_or(&Value::Null), &key)?,
        },
        T::StartMaintenance => OperatorInput::StartMaintenance {
            machines: machines(payload.get("machines"), &key)?,
        },
        T::StopMaintenance => OperatorInput::StopMaintenance {
            machines: machines(payload.get("machines"), &key)?,
        },
        T::DrainAgent => OperatorInput::DrainAgent {
            agent_id: agent_id(payload, &key)?,
            config: drain_config(payload)?,
        },
        T::DeactivateAgent => OperatorInput::DeactivateAgent {
            agent_id: agent_id(payload, &key)?,
        },
        _ => OperatorInput::ReactivateAgent {
            agent_id: agent_id(payload, &key)?,
        },
    };
    Ok(Input::Operator(op))
}

fn schedule(v: &Value, key: &str) -> Result<Schedule, String> {
    if v.is_null() {
        return Err(format!("Expecting '{key}.schedule' to be present"));
    }
    serde_json::from_value(v.clone()).map_err(|e| format!("Invalid maintenance schedule: {e}"))
}

fn machines(v: Option<&Value>, key: &str) -> Result<Vec<MachineId>, String> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    serde_json::from_value(v.clone()).map_err(|e| format!("Invalid '{key}.machines': {e}"))
}

fn agent_id(payload: &Value, key: &str) -> Result<AgentId, String> {
    payload
        .pointer("/agent_id/value")
        .and_then(Value::as_str)
        .map(AgentId::new)
        .ok_or_else(|| format!("Expecting '{key}.agent_id' to be present"))
}

/// `drain_agent.max_grace_period` is a google.protobuf.Duration: `{"seconds","nanos"}`
/// (as Mesos' JSON reader takes it) or the proto3 text form `"1.5s"`.
fn drain_config(payload: &Value) -> Result<DrainConfig, String> {
    let mark_gone = match payload.get("mark_gone") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "'drain_agent.mark_gone' must be a boolean, got {other}"
            ))
        }
    };
    let max_grace_period = match payload.get("max_grace_period") {
        None | Some(Value::Null) => None,
        Some(v) => Some(google_duration(v)?),
    };
    Ok(DrainConfig {
        max_grace_period,
        mark_gone,
    })
}

fn google_duration(v: &Value) -> Result<DurationInfo, String> {
    let bad = || {
        format!(
            "'drain_agent.max_grace_period' must be {{\"seconds\": N, \"nanos\": N}} or \"Ns\", got {v}"
        )
    };
    let nanoseconds = match v {
        Value::String(s) => {
            let secs: f64 = s
                .strip_suffix('s')
                .ok_or_else(bad)?
                .parse()
                .map_err(|_| bad())?;
            (secs * 1e9) as i64
        }
        Value::Object(o) => {
            let int = |k: &str| match o.get(k) {
                None => Ok(0),
                Some(Value::String(s)) => s.parse::<i64>().map_err(|_| bad()),
                Some(n) => n.as_i64().ok_or_else(bad),
            };
            int("seconds")?
                .saturating_mul(1_000_000_000)
                .saturating_add(int("nanos")?)
        }
        _ => return Err(bad()),
    };
    if nanoseconds < 0 {
        return Err("'drain_agent.max_grace_period' must not be negative".into());
    }
    Ok(DurationInfo { nanoseconds })
}

async fn step(app: &App, input: Result<Input, String>) -> Response {
    let input = match input {
        Ok(i) => i,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e),
    };
    match app.handle.step(input).await {
        Reply::Error(e) => super::call_error(e),
        _ => (StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response(),
    }
}

async fn read(app: &App, f: fn(&strata_master_core::Master) -> Value) -> Response {
    match app.handle.read(move |m, _| f(m)).await {
        Some(v) => json_response(&v),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}

/// `GET /maintenance/schedule`.
pub async fn get_schedule(State(app): State<App>) -> Response {
    read(&app, view::schedule).await
}

/// `POST /maintenance/schedule`: the body is a Schedule.
pub async fn post_schedule(State(app): State<App>, body: Bytes) -> Response {
    let input = serde_json::from_slice::<Value>(&body)
        .map_err(|e| format!("Failed to parse the schedule as JSON: {e}"))
        .and_then(|v| {
            if !v.is_object() {
                return Err("Expecting a JSON object with 'windows'".to_string());
            }
            serde_json::from_value::<Schedule>(v)
                .map_err(|e| format!("Invalid maintenance schedule: {e}"))
        })
        .map(|schedule| Input::Operator(OperatorInput::UpdateMaintenanceSchedule { schedule }));
    step(&app, input).await
}

fn machine_list(body: &[u8]) -> Result<Vec<MachineId>, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("Failed to parse the machines as JSON: {e}"))?;
    if !v.is_array() {
        return Err("Expecting a JSON array of machines ({\"hostname\", \"ip\"})".into());
    }
    serde_json::from_value(v).map_err(|e| format!("Invalid machine list: {e}"))
}

/// `POST /machine/down`: the body is a list of MachineIDs.
pub async fn machine_down(State(app): State<App>, body: Bytes) -> Response {
    let input = machine_list(&body)
        .map(|machines| Input::Operator(OperatorInput::StartMaintenance { machines }));
    step(&app, input).await
}

/// `POST /machine/up`: the body is a list of MachineIDs.
pub async fn machine_up(State(app): State<App>, body: Bytes) -> Response {
    let input = machine_list(&body)
        .map(|machines| Input::Operator(OperatorInput::StopMaintenance { machines }));
    step(&app, input).await
}

/// `GET /maintenance/status`.
pub async fn status(State(app): State<App>) -> Response {
    read(&app, view::status).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: &str, expected: Result<i64, &str>) {
        let got = google_duration(&serde_json::from_str(v).unwrap());
        match expected {
            Ok(ns) => assert_eq!(got, Ok(DurationInfo { nanoseconds: ns }), "{v}"),
            Err(part) => assert!(got.unwrap_err().contains(part), "{v}"),
        }
    }

    #[test]
    fn grace_periods_parse_like_protobuf_durations() {
        check(r#"{"seconds": 10}"#, Ok(10_000_000_000));
        check(r#"{"seconds": "1", "nanos": 5}"#, Ok(1_000_000_005));
        check(r#""1.5s""#, Ok(1_500_000_000));
        check(r#""10""#, Err("must be"));
        check(r#"{"seconds": -1}"#, Err("negative"));
    }

    #[test]
    fn missing_payloads_are_named() {
        let err = operator_input(T::DrainAgent, &Value::Null).unwrap_err();
        assert_eq!(err, "Expecting 'drain_agent' to be present");
        let err = operator_input(T::DeactivateAgent, &serde_json::json!({})).unwrap_err();
        assert_eq!(err, "Expecting 'deactivate_agent.agent_id' to be present");
    }
}
