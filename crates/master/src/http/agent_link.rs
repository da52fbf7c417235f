//! Strata's internal agent endpoints: the session stream (`CONNECT_PATH`) and agent
//! messages (`MESSAGE_PATH`); see docs/agent-protocol.md.

use super::{call_error, require_json, text, App};
use crate::event_loop::{StreamKind, STREAM_BUFFER};
use crate::streams;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use strata_api::agent_link::{Hello, ToMaster, SESSION_HEADER};
use strata_master_core::{Input, Reply};

pub async fn connect(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = require_json(&headers) {
        return r;
    }
    let hello: Hello = match serde_json::from_slice(&body) {
        Ok(h) => h,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to parse agent hello: {e}"),
            )
        }
    };
    let conn = app.handle.new_conn();
    let session = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
    let input = Input::AgentConnect {
        conn,
        session,
        hello: Box::new(hello),
    };
    match app
        .handle
        .open_stream(conn, StreamKind::Agent, tx, None, Some(input))
        .await
    {
        Reply::Error(e) => call_error(e),
        _ => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(streams::body(
                app.handle.clone(),
                conn,
                StreamKind::Agent,
                rx,
                None,
            ))
            .unwrap_or_else(|_| {
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot build the stream response",
                )
            }),
    }
}

/// A message body: one message, or several in order.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<ToMaster>),
    One(Box<ToMaster>),
}

pub async fn message(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = require_json(&headers) {
        return r;
    }
    let Some(session) = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting the agent session header",
        );
    };
    let messages: Vec<ToMaster> = match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::One(m)) => vec![*m],
        Ok(OneOrMany::Many(v)) => v,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to parse agent message: {e}"),
            )
        }
    };
    for message in messages {
        let input = Input::AgentMessage {
            session: session.clone(),
            message: Box::new(message),
        };
        if let Reply::Error(e) = app.handle.step(input).await {
            return call_error(e);
        }
    }
    (StatusCode::ACCEPTED, [(header::CONTENT_LENGTH, "0")]).into_response()
}
