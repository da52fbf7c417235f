//! Reservation and volume calls: the operator API's RESERVE_RESOURCES,
//! UNRESERVE_RESOURCES, CREATE_VOLUMES, DESTROY_VOLUMES, GROW_VOLUME and SHRINK_VOLUME
//! payloads turned into core inputs, and the legacy form endpoints `/master/reserve`,
//! `/master/unreserve`, `/master/create-volumes` and `/master/destroy-volumes`.

use super::{call_error, text, App};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use strata_api::operator::OperatorCallType as T;
use strata_api::scheduler::{Operation, Reserve, Unreserve, Volumes};
use strata_api::AgentId;
use strata_master_core::{Input, OperatorInput, Reply};

/// Whether `kind` is one of the six reservation and volume calls.
pub fn is_resource_call(kind: T) -> bool {
    matches!(
        kind,
        T::ReserveResources
            | T::UnreserveResources
            | T::CreateVolumes
            | T::DestroyVolumes
            | T::GrowVolume
            | T::ShrinkVolume
    )
}

fn payload<P: DeserializeOwned>(key: &str, p: &Value) -> Result<P, String> {
    serde_json::from_value(p.clone()).map_err(|e| format!("Failed to parse '{key}': {e}"))
}

/// The core input for an operator call of one of the six kinds.
pub fn operator_input(kind: T, p: &Value) -> Result<Input, String> {
    let key = kind.as_str().to_ascii_lowercase();
    if !p.is_object() {
        return Err(format!("Expecting '{key}' to be present"));
    }
    let agent = p
        .pointer("/agent_id/value")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("Expecting '{key}.agent_id' to be present"))?;
    let mut op = Operation::default();
    match kind {
        T::ReserveResources => {
            op.kind = "RESERVE".into();
            op.reserve = Some(payload(&key, p)?);
        }
        T::UnreserveResources => {
            op.kind = "UNRESERVE".into();
            op.unreserve = Some(payload(&key, p)?);
        }
        T::CreateVolumes => {
            op.kind = "CREATE".into();
            op.create = Some(payload(&key, p)?);
        }
        T::DestroyVolumes => {
            op.kind = "DESTROY".into();
            op.destroy = Some(payload(&key, p)?);
        }
        T::GrowVolume => {
            op.kind = "GROW_VOLUME".into();
            op.grow_volume = Some(payload(&key, p)?);
        }
        T::ShrinkVolume => {
            op.kind = "SHRINK_VOLUME".into();
            op.shrink_volume = Some(payload(&key, p)?);
        }
        other => {
            return Err(format!(
                "{} is not a reservation or volume call",
                other.as_str()
            ))
        }
    }
    Ok(resource_input(agent, op))
}

fn resource_input(agent: &str, operation: Operation) -> Input {
    Input::Operator(OperatorInput::ResourceOperation {
        agent_id: AgentId::new(agent),
        operation: Box::new(operation),
    })
}

/// Sends the input; 202 when applied (Mesos answers these calls "Accepted").
pub async fn apply(app: &App, input: Result<Input, String>) -> Response {
    let input = match input {
        Ok(i) => i,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e),
    };
    match app.handle.step(input).await {
        Reply::Error(e) => call_error(e),
        _ => (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response(),
    }
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_field(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(k) == name).then(|| form_decode(v))
    })
}

/// Legacy form body `slaveId=<id>&<field>=<JSON array>` → operation input.
fn legacy_input(body: &[u8], kind: &str, field: &str) -> Result<Input, String> {
    let body = std::str::from_utf8(body).map_err(|_| "The body is not UTF-8".to_string())?;
    let agent = form_field(body, "slaveId")
        .ok_or("Missing 'slaveId' query parameter in the request body")?;
    let json = form_field(body, field)
        .ok_or_else(|| format!("Missing '{field}' query parameter in the request body"))?;
    let resources = serde_json::from_str(&json)
        .map_err(|e| format!("Error in parsing '{field}' query parameter: {e}"))?;
    let mut op = Operation {
        kind: kind.into(),
        ..Operation::default()
    };
    match kind {
        "RESERVE" => {
            op.reserve = Some(Reserve {
                source: Vec::new(),
                resources,
            })
        }
        "UNRESERVE" => op.unreserve = Some(Unreserve { resources }),
        "CREATE" => op.create = Some(Volumes { volumes: resources }),
        _ => op.destroy = Some(Volumes { volumes: resources }),
    }
    Ok(resource_input(&agent, op))
}

/// `POST /master/reserve`.
pub async fn legacy_reserve(State(app): State<App>, body: Bytes) -> Response {
    apply(&app, legacy_input(&body, "RESERVE", "resources")).await
}

/// `POST /master/unreserve`.
pub async fn legacy_unreserve(State(app): State<App>, body: Bytes) -> Response {
    apply(&app, legacy_input(&body, "UNRESERVE", "resources")).await
}

/// `POST /master/create-volumes`.
pub async fn legacy_create(State(app): State<App>, body: Bytes) -> Response {
    apply(&app, legacy_input(&body, "CREATE", "volumes")).await
}

/// `POST /master/destroy-volumes`.
pub async fn legacy_destroy(State(app): State<App>, body: Bytes) -> Response {
    apply(&app, legacy_input(&body, "DESTROY", "volumes")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode() {
        let body = "slaveId=S%2D1&resources=%5B%7B%22a%22%3A1%7D%5D&x=a+b";
        assert_eq!(form_field(body, "slaveId").as_deref(), Some("S-1"));
        assert_eq!(
            form_field(body, "resources").as_deref(),
            Some(r#"[{"a":1}]"#)
        );
        assert_eq!(form_field(body, "x").as_deref(), Some("a b"));
        assert_eq!(form_field(body, "y"), None);
        assert_eq!(form_decode("100%"), "100%");
    }

    #[test]
    fn operator_payloads_become_operations() {
        let p = serde_json::json!({"agent_id": {"value": "S1"}, "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0},
             "reservations": [{"type": "DYNAMIC", "role": "eng"}]}]});
        let Ok(Input::Operator(OperatorInput::ResourceOperation {
            agent_id,
            operation,
        })) = operator_input(T::ReserveResources, &p)
        else {
            panic!("not an operation input");
        };
        assert_eq!(agent_id.as_str(), "S1");
        assert_eq!(operation.kind, "RESERVE");
        assert_eq!(operation.reserve.map(|r| r.resources.len()), Some(1));
        let missing = operator_input(T::UnreserveResources, &serde_json::json!({}));
        assert_eq!(
            missing.err().as_deref(),
            Some("Expecting 'unreserve_resources.agent_id' to be present")
        );
    }
}
