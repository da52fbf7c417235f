//! The agent's HTTP surface: the executor API, the operator API subset, `/state`,
//! metrics and sandbox files.

mod executor;
mod files;
mod monitor;
mod read;

use crate::event_loop::Handle;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use std::path::PathBuf;
use std::sync::Arc;

/// Shared by the handlers.
pub struct AppState {
    pub handle: Handle,
    pub work_dir: PathBuf,
    /// For per-container usage.
    pub isolator: Arc<dyn strata_containerizer::isolation::Isolator>,
    /// Records of ended tasks.
    pub blackbox: crate::blackbox::BlackBoxStore,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("work_dir", &self.work_dir)
            .field("isolator", &self.isolator.name())
            .finish()
    }
}

type App = Arc<AppState>;

fn both(router: Router<App>, paths: &[&str], handler: MethodRouter<App>) -> Router<App> {
    let mut r = router;
    for p in paths {
        r = r
            .route(p, handler.clone())
            .route(&format!("{p}/"), handler.clone());
    }
    r
}

/// All agent routes.
pub fn router(state: App) -> Router {
    let mut r = Router::new();
    r = both(
        r,
        &["/api/v1/executor", "/slave(1)/api/v1/executor"],
        post(executor::handle),
    );
    r = both(
        r,
        &["/api/v1", "/api/v1/operator", "/slave(1)/api/v1"],
        post(read::operator),
    );
    r = both(
        r,
        &[
            "/state",
            "/slave(1)/state",
            "/state.json",
            "/slave(1)/state.json",
        ],
        get(read::state),
    );
    r = both(r, &["/flags", "/slave(1)/flags"], get(read::flags));
    r = both(
        r,
        &[
            "/monitor/statistics",
            "/monitor/statistics.json",
            "/slave(1)/monitor/statistics",
        ],
        get(monitor::statistics),
    );
    r = both(r, &["/metrics/snapshot"], get(read::metrics));
    r = both(r, &["/blackbox", "/slave(1)/blackbox"], get(read::blackbox));
    r = both(r, &["/version"], get(read::version));
    r = both(
        r,
        &["/health", "/slave(1)/health"],
        get(|| async { StatusCode::OK }),
    );
    r = both(
        r,
        &["/files/browse", "/files/browse.json"],
        get(files::browse),
    );
    r = both(r, &["/files/read", "/files/read.json"], get(files::read));
    r = both(
        r,
        &["/files/download", "/files/download.json"],
        get(files::download),
    );
    r.fallback(|uri: axum::http::Uri| async move {
        text(
            StatusCode::NOT_FOUND,
            &format!("No endpoint at '{}'", uri.path()),
        )
    })
    .layer(DefaultBodyLimit::max(8 << 20))
    .with_state(state)
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

/// A JSON response.
pub fn json_response(value: &serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        strata_api::to_ascii_json(value),
    )
        .into_response()
}

/// Content-Type check shared with the master's rules.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), Response> {
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        None => Err(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        )),
        Some(ct) if ct.to_ascii_lowercase().starts_with("application/json") => Ok(()),
        Some(ct) => Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Expecting 'Content-Type' of application/json, got '{ct}'"),
        )),
    }
}
