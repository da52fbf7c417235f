//! `POST /api/v1/scheduler`: SUBSCRIBE opens an event stream; other calls are stepped
//! through the core and answered 202 (UPDATE_FRAMEWORK 200).

use super::{accepts_json, call_error, not_acceptable, require_json, text, App};
use crate::event_loop::{StreamKind, STREAM_BUFFER};
use crate::streams;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use strata_api::scheduler::{Call, Command, Event};
use strata_master_core::{Input, Reply};

const STREAM_ID: &str = "mesos-stream-id";

pub async fn handle(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = require_json(&headers) {
        return r;
    }
    let call: Call = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to parse body into Call: {e}"),
            )
        }
    };
    let stream_id = headers
        .get(STREAM_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match call.body {
        Command::Subscribe(sub) => {
            subscribe(app, &headers, stream_id, call.framework_id, sub).await
        }
        command => {
            let Some(framework_id) = call.framework_id else {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Failed to validate scheduler::Call: Expecting 'framework_id' to be present",
                );
            };
            let input = Input::Call {
                stream_id,
                framework_id,
                command: Box::new(command),
            };
            reply(app.handle.step(input).await)
        }
    }
}

fn reply(r: Reply) -> Response {
    match r {
        Reply::Accepted => (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response(),
        Reply::Ok | Reply::Stream | Reply::None => {
            (StatusCode::OK, [(header::CONTENT_LENGTH, "0")]).into_response()
        }
        Reply::Error(e) => call_error(e),
    }
}

async fn subscribe(
    app: App,
    headers: &HeaderMap,
    stream_id: Option<String>,
    framework_id: Option<strata_api::FrameworkId>,
    sub: strata_api::scheduler::Subscribe,
) -> Response {
    if stream_id.is_some() {
        return text(
            StatusCode::BAD_REQUEST,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header",
        );
    }
    if !accepts_json(headers) {
        return not_acceptable();
    }
    let info_id = sub
        .framework_info
        .id
        .clone()
        .filter(|id| !id.as_str().is_empty());
    if framework_id.filter(|id| !id.as_str().is_empty()) != info_id {
        return text(StatusCode::BAD_REQUEST, "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'");
    }
    let conn = app.handle.new_conn();
    let stream_id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
    let input = Input::Subscribe {
        conn,
        stream_id: stream_id.clone(),
        subscribe: Box::new(sub),
    };
    match app
        .handle
        .open_stream(conn, StreamKind::Framework, tx, None, Some(input))
        .await
    {
        Reply::Error(e) => call_error(e),
        _ => {
            let hb =
                strata_api::recordio::encode(&strata_api::to_ascii_json_bytes(&Event::Heartbeat));
            let body: Body = streams::body(
                app.handle.clone(),
                conn,
                StreamKind::Framework,
                rx,
                Some((app.heartbeat, hb)),
            );
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .header("Mesos-Stream-Id", stream_id)
                .header(header::CACHE_CONTROL, "no-cache")
                .body(body)
                .unwrap_or_else(|_| {
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "cannot build the stream response",
                    )
                })
        }
    }
}
