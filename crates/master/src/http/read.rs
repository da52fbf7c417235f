//! GET endpoints tools scrape: state, frameworks, slaves, tasks, roles, metrics, version,
//! flags, redirect.

use super::{json_response, text, App, VERSION};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use strata_master_core::views::{legacy, metrics as metric_view};
use strata_master_core::Master;

async fn view(app: &App, f: impl FnOnce(&Master, f64) -> Value + Send + 'static) -> Response {
    match app.handle.read(f).await {
        Some(v) => json_response(&v),
        None => text(StatusCode::SERVICE_UNAVAILABLE, "Master is shutting down"),
    }
}

pub async fn state(State(app): State<App>) -> Response {
    view(&app, |m, _| legacy::state(m)).await
}

pub async fn state_summary(State(app): State<App>) -> Response {
    view(&app, |m, _| legacy::state_summary(m)).await
}

pub async fn frameworks(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let only = q
        .get("framework_id")
        .map(|s| strata_api::FrameworkId::new(s.as_str()));
    view(&app, move |m, _| legacy::frameworks(m, only.as_ref())).await
}

pub async fn slaves(State(app): State<App>) -> Response {
    view(&app, |m, _| legacy::slaves(m)).await
}

fn tasks_query(q: &HashMap<String, String>) -> Result<legacy::TasksQuery, String> {
    let limit = match q.get("limit") {
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| format!("Failed to parse limit: '{s}' is not a number"))?,
        ),
        None => None,
    };
    let offset = match q.get("offset") {
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| format!("Failed to parse offset: '{s}' is not a non-negative number"))?,
        None => 0,
    };
    let ascending = match q.get("order").map(String::as_str) {
        None | Some("des") | Some("desc") => false,
        Some("asc") => true,
        Some(o) => {
            return Err(format!(
                "Failed to parse order: '{o}' is not 'asc' or 'des'"
            ))
        }
    };
    Ok(legacy::TasksQuery {
        limit,
        offset,
        ascending,
        framework_id: q.get("framework_id").cloned(),
        task_id: q.get("task_id").cloned(),
    })
}

pub async fn tasks(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    match tasks_query(&q) {
        Ok(query) => view(&app, move |m, _| legacy::tasks(m, &query)).await,
        Err(e) => text(StatusCode::BAD_REQUEST, &e),
    }
}

pub async fn roles(State(app): State<App>) -> Response {
    view(&app, |m, _| legacy::roles(m)).await
}

pub async fn flags(State(app): State<App>) -> Response {
    view(&app, |m, _| json!({"flags": m.config().flags.iter().cloned().collect::<std::collections::BTreeMap<_, _>>()})).await
}

pub async fn metrics(State(app): State<App>) -> Response {
    view(&app, |m, now| json!(metric_view::snapshot(m, now))).await
}

/// Build information in Mesos' shape.
pub fn version_json() -> Value {
    json!({"version": VERSION, "build_date": "", "build_time": 0, "build_user": "strata",
           "git_sha": "", "strata_version": env!("CARGO_PKG_VERSION")})
}

pub async fn version() -> Response {
    json_response(&version_json())
}

pub async fn redirect(State(app): State<App>) -> Response {
    let leader = app
        .handle
        .read(|m, _| format!("//{}:{}", m.config().hostname, m.config().port))
        .await
        .unwrap_or_default();
    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, leader)]).into_response()
}
