//! The master's HTTP surface: routes, shared state and response helpers.

mod agent_link;
mod allocation;
mod maintenance;
mod operator;
mod read;
mod reservations;
mod scheduler;

use crate::event_loop::Handle;
use crate::flags::MasterFlags;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use strata_master_core::CallError;

/// The Mesos API level Strata implements, reported by /version (digits and dots only,
/// because pymesos parses it with `int()`).
pub const VERSION: &str = "1.12.0";

/// Shared by all handlers.
#[derive(Debug)]
pub struct AppState {
    pub handle: Handle,
    pub heartbeat: Duration,
}

impl AppState {
    pub fn new(handle: Handle, flags: &MasterFlags) -> Self {
        Self {
            handle,
            heartbeat: Duration::from_secs_f64(flags.heartbeat_interval.max(0.05)),
        }
    }
}

type App = Arc<AppState>;

/// Registers `path` and `path/` (the Mesos CLI calls `/master/frameworks/`).
fn both(router: Router<App>, paths: &[&str], handler: MethodRouter<App>) -> Router<App> {
    let mut r = router;
    for p in paths {
        r = r
            .route(p, handler.clone())
            .route(&format!("{p}/"), handler.clone());
    }
    r
}

/// All master routes.
pub fn router(state: App) -> Router {
    let max_body = 8 << 20;
    let mut r = Router::new();
    r = both(
        r,
        &["/api/v1/scheduler", "/master/api/v1/scheduler"],
        post(scheduler::handle),
    );
    r = both(
        r,
        &["/api/v1", "/api/v1/operator", "/master/api/v1"],
        post(operator::handle),
    );
    r = r.route(
        strata_api::agent_link::CONNECT_PATH,
        post(agent_link::connect),
    );
    r = r.route(
        strata_api::agent_link::MESSAGE_PATH,
        post(agent_link::message),
    );
    r = both(
        r,
        &[
            "/master/state",
            "/state",
            "/master/state.json",
            "/state.json",
        ],
        get(read::state),
    );
    r = both(
        r,
        &["/master/state-summary", "/state-summary"],
        get(read::state_summary),
    );
    r = both(
        r,
        &[
            "/master/frameworks",
            "/frameworks",
            "/master/frameworks.json",
        ],
        get(read::frameworks),
    );
    r = both(
        r,
        &["/master/slaves", "/slaves", "/master/slaves.json"],
        get(read::slaves),
    );
    r = both(
        r,
        &[
            "/master/tasks",
            "/tasks",
            "/master/tasks.json",
            "/tasks.json",
        ],
        get(read::tasks),
    );
    r = both(
        r,
        &["/master/roles", "/roles", "/master/roles.json"],
        get(read::roles),
    );
    r = both(r, &["/master/flags", "/flags"], get(read::flags));
    r = both(r, &["/metrics/snapshot"], get(read::metrics));
    r = both(r, &["/version"], get(read::version));
    r = both(
        r,
        &["/health", "/master/health"],
        get(|| async { StatusCode::OK }),
    );
    r = both(r, &["/master/redirect", "/redirect"], get(read::redirect));
    r = both(
        r,
        &["/master/reserve", "/reserve"],
        post(reservations::legacy_reserve),
    );
    r = both(
        r,
        &["/master/unreserve", "/unreserve"],
        post(reservations::legacy_unreserve),
    );
    r = both(
        r,
        &["/master/create-volumes", "/create-volumes"],
        post(reservations::legacy_create),
    );
    r = both(
        r,
        &["/master/destroy-volumes", "/destroy-volumes"],
        post(reservations::legacy_destroy),
    );
    r = maintenance_routes(r);
    r = allocation_routes(r);
    r.fallback(not_found)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// The legacy maintenance endpoints.
fn allocation_routes(r: Router<App>) -> Router<App> {
    let r = both(
        r,
        &["/quota", "/master/quota"],
        get(allocation::get_quota).post(allocation::post_quota),
    );
    let r = r
        .route(
            "/quota/{role}",
            axum::routing::delete(allocation::delete_quota),
        )
        .route(
            "/master/quota/{role}",
            axum::routing::delete(allocation::delete_quota),
        );
    let r = both(
        r,
        &["/weights", "/master/weights"],
        get(allocation::get_weights).put(allocation::put_weights),
    );
    both(r, &["/master/why", "/why"], get(allocation::why))
}

fn maintenance_routes(r: Router<App>) -> Router<App> {
    let schedule = get(maintenance::get_schedule).post(maintenance::post_schedule);
    let r = both(
        r,
        &["/master/maintenance/schedule", "/maintenance/schedule"],
        schedule,
    );
    let r = both(
        r,
        &["/master/maintenance/status", "/maintenance/status"],
        get(maintenance::status),
    );
    let r = both(
        r,
        &["/master/machine/down", "/machine/down"],
        post(maintenance::machine_down),
    );
    both(
        r,
        &["/master/machine/up", "/machine/up"],
        post(maintenance::machine_up),
    )
}

async fn not_found(uri: axum::http::Uri) -> Response {
    text(
        StatusCode::NOT_FOUND,
        &format!(
            "No endpoint at '{}'; see docs/ARCHITECTURE.md for the API map",
            uri.path()
        ),
    )
}

/// A text/plain response.
pub fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_string(),
    )
        .into_response()
}

/// The response for a core error.
pub fn call_error(e: CallError) -> Response {
    text(
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.message,
    )
}

/// A JSON response from a serde value (ASCII-escaped, compact).
pub fn json_response(value: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        strata_api::to_ascii_json(value),
    )
        .into_response()
}

/// Mesos' request Content-Type rule: missing → 400; JSON only here (protobuf → 415).
pub fn require_json(headers: &HeaderMap) -> Result<(), Response> {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        ));
    };
    let ct = ct.to_ascii_lowercase();
    if ct.starts_with("application/json") {
        Ok(())
    } else if ct.starts_with("application/x-protobuf") {
        Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Strata speaks the v1 API in JSON only: send 'Content-Type: application/json'",
        ))
    } else {
        Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Expecting 'Content-Type' of application/json, got '{ct}'"),
        ))
    }
}

/// Whether the `Accept` header allows a JSON response.
pub fn accepts_json(headers: &HeaderMap) -> bool {
    match headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(a) => a.split(',').any(|part| {
            let t = part.split(';').next().unwrap_or("").trim();
            matches!(
                t,
                "application/json" | "*/*" | "application/*" | "application/recordio"
            )
        }),
    }
}

/// 406 for an unsatisfiable Accept.
pub fn not_acceptable() -> Response {
    text(
        StatusCode::NOT_ACCEPTABLE,
        "Expecting 'Accept' to allow application/json",
    )
}
