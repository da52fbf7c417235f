//! `POST /api/v1/executor`: SUBSCRIBE opens the executor's event stream; UPDATE, MESSAGE
//! and HEARTBEAT are answered 202 (or the documented 4xx).

use super::{require_json, text, App};
use crate::event_loop::{Handle, STREAM_BUFFER};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use strata_agent_core::{ConnId, Input, Reply};
use strata_api::executor::{Call, CallBody};

pub async fn handle(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = require_json(&headers) {
        return r;
    }
    let call: Call = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to parse body into executor Call: {e}"),
            )
        }
    };
    match call.body {
        CallBody::Subscribe(sub) => {
            let conn = app.handle.new_conn();
            let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
            let input = Input::ExecutorSubscribe {
                conn,
                framework_id: call.framework_id,
                executor_id: call.executor_id,
                subscribe: Box::new(sub),
            };
            match app.handle.open_stream(conn, tx, input).await {
                Reply::Stream => stream_response(app.handle.clone(), conn, rx),
                Reply::Error(status, msg) => text(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                    &msg,
                ),
                _ => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "unexpected reply to SUBSCRIBE",
                ),
            }
        }
        body => {
            let input = Input::ExecutorCall {
                framework_id: call.framework_id,
                executor_id: call.executor_id,
                body: Box::new(body),
            };
            match app.handle.step(input).await {
                Reply::Error(status, msg) => text(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                    &msg,
                ),
                _ => (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response(),
            }
        }
    }
}

struct Guard {
    handle: Handle,
    conn: ConnId,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.handle.stream_gone(self.conn);
    }
}

fn stream_response(
    handle: Handle,
    conn: ConnId,
    rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> Response {
    let guard = Guard { handle, conn };
    let s = stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), (rx, guard)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(s))
        .unwrap_or_else(|_| {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot build the stream response",
            )
        })
}
