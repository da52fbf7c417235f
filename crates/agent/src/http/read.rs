//! `/state`, `/flags`, `/metrics/snapshot`, `/version` and the agent's operator API subset.

use super::{json_response, require_json, text, App};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use strata_agent_core::views;
use strata_api::operator::{response, OperatorCall, OperatorCallError, OperatorCallType as T};

pub async fn state(State(app): State<App>) -> Response {
    match app.handle.read(|a, _| views::state(a)).await {
        Some(v) => json_response(&v),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down"),
    }
}

pub async fn flags(State(app): State<App>) -> Response {
    let v = app.handle.read(|a, _| json!({"flags": a.config().flags.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()})).await;
    v.map(|v| json_response(&v))
        .unwrap_or_else(|| text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down"))
}

pub async fn metrics(State(app): State<App>) -> Response {
    let Some(mut m) = app.handle.read(views::metrics).await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down");
    };
    if let Some(list) = super::monitor::collect(&app).await {
        for (k, v) in super::monitor::totals(&list) {
            m.insert(k.to_string(), v);
        }
    }
    json_response(&json!(m))
}

fn version_json() -> Value {
    json!({"version": "1.12.0", "build_date": "", "build_time": 0, "build_user": "strata", "strata_version": env!("CARGO_PKG_VERSION")})
}

pub async fn version() -> Response {
    json_response(&version_json())
}

/// The operator calls an agent answers today.
pub async fn operator(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = require_json(&headers) {
        return r;
    }
    let call = match OperatorCall::parse(&body) {
        Ok(c) => c,
        Err(e @ OperatorCallError::Unsupported(_)) => {
            return text(StatusCode::NOT_IMPLEMENTED, &e.to_string())
        }
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let kind = call.kind;
    if kind == T::GetContainers {
        return match super::monitor::collect(&app).await {
            Some(list) => json_response(&response(kind, super::monitor::get_containers(&list))),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down"),
        };
    }
    let v = app
        .handle
        .read(move |a, now| -> Option<Value> {
            Some(match kind {
                T::GetHealth => json!({"healthy": true}),
                T::GetVersion => json!({"version_info": version_json()}),
                T::GetFlags => json!({"flags": a.config().flags.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>()}),
                T::GetMetrics => json!({"metrics": views::metrics(a, now).into_iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>()}),
                T::GetState => json!({"get_state": views::state(a)}),
                T::GetAgent => {
                    let mut info = a.config().agent_info.clone();
                    info.id = a.agent_id().cloned();
                    json!({"agent_info": info})
                }
                _ => return None,
            })
        })
        .await;
    match v {
        Some(Some(body)) => json_response(&response(kind, body)),
        Some(None) => text(
            StatusCode::NOT_IMPLEMENTED,
            &format!(
                "{} is not supported by this Strata agent yet",
                kind.as_str()
            ),
        ),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down"),
    }
}

/// `GET /blackbox?task_id=…[&framework_id=…]`: how a task ended, with its output's tail
/// (Strata extension; kept after the sandbox is garbage-collected).
pub async fn blackbox(
    State(app): State<App>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let Some(task) = q.get("task_id") else {
        return text(StatusCode::BAD_REQUEST, "Expecting 'task_id' to be present");
    };
    let store = app.blackbox.clone();
    let (task, fw) = (task.clone(), q.get("framework_id").cloned());
    let records = tokio::task::spawn_blocking(move || store.get(&task, fw.as_deref()))
        .await
        .unwrap_or_default();
    json_response(&json!(records))
}
