//! Quota, weights and "why pending?" over HTTP: UPDATE_QUOTA / GET_QUOTA payloads, the
//! legacy `/quota` and `/weights` endpoints, and `/master/why?role=…|framework=…`.

use super::{json_response, text, App};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use strata_allocator::Quota;
use strata_api::FrameworkId;
use strata_master_core::views::allocation as view;
use strata_master_core::{Input, OperatorInput};
use strata_resources::Scalar;

/// `{"cpus": {"value": 1.5}, …}` → quantities; values must be finite and non-negative.
fn quantities(v: Option<&Value>, what: &str) -> Result<BTreeMap<String, Scalar>, String> {
    let Some(v) = v else {
        return Ok(BTreeMap::new());
    };
    let obj = v
        .as_object()
        .ok_or_else(|| format!("'{what}' must be an object of name -> {{\"value\": number}}"))?;
    let mut out = BTreeMap::new();
    for (name, q) in obj {
        let x = q
            .get("value")
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("'{what}.{name}' needs a numeric 'value'"))?;
        if !x.is_finite() || x < 0.0 {
            return Err(format!(
                "Negative or non-finite quantity {name}:{x} in '{what}'"
            ));
        }
        if name.is_empty() {
            return Err(format!("Empty resource name in '{what}'"));
        }
        out.insert(name.clone(), Scalar::from_f64(x));
    }
    Ok(out)
}

/// The `update_quota` payload of UPDATE_QUOTA.
pub fn update_quota_input(p: &Value) -> Result<Input, String> {
    let configs = p
        .get("quota_configs")
        .and_then(Value::as_array)
        .ok_or("Expecting 'update_quota.quota_configs' to be present")?;
    let force = p.get("force").and_then(Value::as_bool).unwrap_or(false);
    let mut out = Vec::new();
    for c in configs {
        let role = c
            .get("role")
            .and_then(Value::as_str)
            .ok_or("Each quota config needs a 'role'")?;
        let quota = Quota {
            guarantees: quantities(c.get("guarantees"), "guarantees")?,
            limits: quantities(c.get("limits"), "limits")?,
        };
        out.push((role.to_string(), quota));
    }
    Ok(Input::Operator(OperatorInput::UpdateQuota {
        configs: out,
        force,
    }))
}

/// GET_QUOTA body.
pub async fn get_quota_body(app: &App) -> Option<Value> {
    app.handle
        .read(|m, _| json!({"status": view::quota_status(m)}))
        .await
}

async fn step(app: &App, input: Result<Input, String>) -> Response {
    super::operator::mutate(app, input).await
}

/// `GET /quota`: the QuotaStatus.
pub async fn get_quota(State(app): State<App>) -> Response {
    match app.handle.read(|m, _| view::quota_status(m)).await {
        Some(v) => json_response(&v),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}

/// `POST /quota` (pre-1.9 shape): `{"role":…, "guarantee":[scalar resources], "force":…}`;
/// the guarantee becomes the limit too, as in Mesos.
pub async fn post_quota(State(app): State<App>, body: Bytes) -> Response {
    let input = (|| {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("Failed to parse quota request: {e}"))?;
        let role = v
            .get("role")
            .and_then(Value::as_str)
            .ok_or("Quota request needs a 'role'")?;
        let list = v
            .get("guarantee")
            .and_then(Value::as_array)
            .ok_or("Quota request needs a 'guarantee' list")?;
        let mut q = BTreeMap::new();
        for r in list {
            let name = r
                .get("name")
                .and_then(Value::as_str)
                .ok_or("Each resource needs a 'name'")?;
            let x = r
                .pointer("/scalar/value")
                .and_then(Value::as_f64)
                .ok_or("Quota resources must be SCALAR")?;
            if !x.is_finite() || x < 0.0 {
                return Err(format!("Negative or non-finite quantity {name}:{x}"));
            }
            q.insert(name.to_string(), Scalar::from_f64(x));
        }
        let force = v.get("force").and_then(Value::as_bool).unwrap_or(false);
        let quota = Quota {
            guarantees: q.clone(),
            limits: q,
        };
        Ok(Input::Operator(OperatorInput::UpdateQuota {
            configs: vec![(role.to_string(), quota)],
            force,
        }))
    })();
    step(&app, input).await
}

/// `DELETE /quota/<role>`: removes a role's quota.
pub async fn delete_quota(State(app): State<App>, Path(role): Path<String>) -> Response {
    let input = Ok(Input::Operator(OperatorInput::UpdateQuota {
        configs: vec![(role, Quota::default())],
        force: true,
    }));
    step(&app, input).await
}

/// `GET /weights`.
pub async fn get_weights(State(app): State<App>) -> Response {
    match app.handle.read(|m, _| view::weights(m)).await {
        Some(v) => json_response(&v),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}

/// `PUT /weights`: `[{"role": …, "weight": …}]`.
pub async fn put_weights(State(app): State<App>, body: Bytes) -> Response {
    let input = serde_json::from_slice::<Value>(&body)
        .map_err(|e| format!("Failed to parse weights: {e}"))
        .and_then(|list| super::operator::weights_input(&json!({ "weight_infos": list })));
    step(&app, input).await
}

/// `GET /master/why?role=R` or `?framework=ID`: why offers are (not) made.
pub async fn why(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(fid) = q.get("framework").cloned() {
        let fid = FrameworkId::new(fid);
        let shown = fid.clone();
        return match app
            .handle
            .read(move |m, _| view::why_framework(m, &fid))
            .await
        {
            Some(Some(v)) => json_response(&v),
            Some(None) => text(
                StatusCode::NOT_FOUND,
                &format!("Unknown framework '{shown}'"),
            ),
            None => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
        };
    }
    let Some(role) = q.get("role").cloned() else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting a 'role' or 'framework' query parameter",
        );
    };
    if let Err(e) = strata_master_core::validate_role(&role) {
        return text(StatusCode::BAD_REQUEST, &e);
    }
    match app.handle.read(move |m, _| view::why_role(m, &role)).await {
        Some(v) => json_response(&v),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}
