//! `POST /api/v1` (also `/api/v1/operator`, which pymesos uses): the v1 operator API in
//! JSON, including the SUBSCRIBE event stream.

use super::{accepts_json, call_error, json_response, not_acceptable, require_json, text, App};
use crate::event_loop::{StreamKind, STREAM_BUFFER};
use crate::streams;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use strata_api::operator::{response, OperatorCall, OperatorCallError, OperatorCallType as T};
use strata_api::{AgentId, FrameworkId};
use strata_master_core::views::{
    maintenance as maintenance_view, metrics as metric_view, operator as ops,
};
use strata_master_core::{Input, Master, OperatorInput, Reply};

pub async fn handle(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = require_json(&headers) {
        return r;
    }
    if !accepts_json(&headers) {
        return not_acceptable();
    }
    if let Some(input) = strata_kill_task(&body) {
        return mutate(&app, input).await;
    }
    let call = match OperatorCall::parse(&body) {
        Ok(c) => c,
        Err(e @ OperatorCallError::Unsupported(_)) => {
            return text(StatusCode::NOT_IMPLEMENTED, &e.to_string())
        }
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    match call.kind {
        T::Subscribe => subscribe(app).await,
        T::Teardown => mutate(&app, teardown_input(&call.payload)).await,
        T::MarkAgentGone => mutate(&app, gone_input(&call.payload)).await,
        T::UpdateWeights => mutate(&app, weights_input(&call.payload)).await,
        T::UpdateQuota => mutate(&app, super::allocation::update_quota_input(&call.payload)).await,
        T::GetQuota => match super::allocation::get_quota_body(&app).await {
            Some(v) => json_response(&response(T::GetQuota, v)),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
        },
        kind if super::reservations::is_resource_call(kind) => {
            let input = super::reservations::operator_input(kind, &call.payload);
            super::reservations::apply(&app, input).await
        }
        kind if super::maintenance::is_mutation(kind) => {
            mutate(
                &app,
                super::maintenance::operator_input(kind, &call.payload),
            )
            .await
        }
        kind => read(&app, kind).await,
    }
}

async fn read(app: &App, kind: T) -> Response {
    let body = app.handle.read(move |m, now| read_body(m, now, kind)).await;
    match body {
        Some(Ok(v)) => json_response(&v),
        Some(Err((status, msg))) => text(status, &msg),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}

fn read_body(m: &Master, now: f64, kind: T) -> Result<Value, (StatusCode, String)> {
    let body = match kind {
        T::GetHealth => json!({"healthy": true}),
        T::GetFlags => {
            json!({"flags": m.config().flags.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>()})
        }
        T::GetVersion => json!({"version_info": super::read::version_json()}),
        T::GetMetrics => {
            json!({"metrics": metric_view::snapshot(m, now).into_iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>()})
        }
        T::GetLoggingLevel => json!({"level": 0}),
        T::GetState => ops::get_state(m),
        T::GetAgents => ops::get_agents(m),
        T::GetFrameworks => ops::get_frameworks(m),
        T::GetExecutors => ops::get_executors(m),
        T::GetTasks => ops::get_tasks(m),
        T::GetRoles => ops::get_roles(m),
        T::GetMaster => ops::get_master(m),
        T::GetMaintenanceStatus => json!({"status": maintenance_view::status(m)}),
        T::GetMaintenanceSchedule => json!({"schedule": maintenance_view::schedule(m)}),
        T::GetWeights => json!({"weight_infos": strata_master_core::views::allocation::weights(m)}),
        T::GetOperations => m.operations_json(),
        other => {
            return Err((
                StatusCode::NOT_IMPLEMENTED,
                format!("{} is not supported by the Strata master", other.as_str()),
            ))
        }
    };
    Ok(response(kind, body))
}

/// Strata's `KILL_TASK` extension: `{"type":"KILL_TASK","kill_task":{"task_id":{…},"framework_id":{…}?}}`.
fn strata_kill_task(body: &[u8]) -> Option<Result<Input, String>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    if v.get("type").and_then(Value::as_str) != Some("KILL_TASK") {
        return None;
    }
    let p = v.get("kill_task").cloned().unwrap_or(Value::Null);
    Some(match p.pointer("/task_id/value").and_then(Value::as_str) {
        None => Err("Expecting 'kill_task.task_id' to be present".to_string()),
        Some(id) => Ok(Input::Operator(OperatorInput::KillTask {
            task_id: strata_api::TaskId::new(id),
            framework_id: p
                .pointer("/framework_id/value")
                .and_then(Value::as_str)
                .map(FrameworkId::new),
        })),
    })
}

fn teardown_input(p: &Value) -> Result<Input, String> {
    let id = p
        .pointer("/framework_id/value")
        .and_then(Value::as_str)
        .ok_or("Expecting 'teardown.framework_id' to be present")?;
    Ok(Input::Operator(OperatorInput::Teardown {
        framework_id: FrameworkId::new(id),
    }))
}

fn gone_input(p: &Value) -> Result<Input, String> {
    let id = p
        .pointer("/agent_id/value")
        .and_then(Value::as_str)
        .ok_or("Expecting 'mark_agent_gone.agent_id' to be present")?;
    Ok(Input::Operator(OperatorInput::MarkAgentGone {
        agent_id: AgentId::new(id),
    }))
}

pub(super) fn weights_input(p: &Value) -> Result<Input, String> {
    let infos = p
        .get("weight_infos")
        .and_then(Value::as_array)
        .ok_or("Expecting 'update_weights.weight_infos' to be present")?;
    let mut weights = Vec::new();
    for w in infos {
        let role = w
            .get("role")
            .and_then(Value::as_str)
            .ok_or("Each weight_info needs a 'role'")?;
        let weight = w
            .get("weight")
            .and_then(Value::as_f64)
            .ok_or("Each weight_info needs a numeric 'weight'")?;
        weights.push((role.to_string(), weight));
    }
    Ok(Input::Operator(OperatorInput::UpdateWeights { weights }))
}

pub(super) async fn mutate(app: &App, input: Result<Input, String>) -> Response {
    let input = match input {
        Ok(i) => i,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e),
    };
    match app.handle.step(input).await {
        Reply::Error(e) => call_error(e),
        _ => (StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response(),
    }
}

async fn subscribe(app: App) -> Response {
    let conn = app.handle.new_conn();
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
    let heartbeat = app.heartbeat.as_secs_f64();
    // The loop builds SUBSCRIBED and registers the stream in one step, so no event is lost.
    let prelude: crate::event_loop::Prelude = Box::new(move |m| {
        let ev = json!({"type": "SUBSCRIBED", "subscribed": {"get_state": ops::get_state(m), "heartbeat_interval_seconds": heartbeat}});
        strata_api::recordio::encode(&strata_api::to_ascii_json_bytes(&ev))
    });
    if let Reply::Error(e) = app
        .handle
        .open_stream(conn, StreamKind::Operator, tx, Some(prelude), None)
        .await
    {
        return call_error(e);
    }
    let hb = strata_api::recordio::encode(br#"{"type":"HEARTBEAT"}"#);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(streams::body(
            app.handle.clone(),
            conn,
            StreamKind::Operator,
            rx,
            Some((app.heartbeat, hb)),
        ))
        .unwrap_or_else(|_| {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot build the stream response",
            )
        })
}
