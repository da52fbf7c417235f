//! `/files/browse`, `/files/read`, `/files/download` over the sandboxes.

use super::{json_response, text, App};
use crate::files::{self, FileError};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use std::collections::HashMap;
use std::path::PathBuf;

fn error(e: FileError) -> Response {
    let status = match e {
        FileError::MissingPath | FileError::BadRequest(_) => StatusCode::BAD_REQUEST,
        FileError::NotFound(_) => StatusCode::NOT_FOUND,
    };
    text(status, &e.to_string())
}

async fn resolve(app: &App, q: &HashMap<String, String>) -> Result<PathBuf, FileError> {
    let requested = q.get("path").cloned().unwrap_or_default();
    let agent_id = app
        .handle
        .read(|a, _| a.agent_id().map(|i| i.to_string()))
        .await
        .flatten();
    files::resolve(&app.work_dir, agent_id.as_deref(), &requested)
}

pub async fn browse(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    match resolve(&app, &q).await.and_then(|p| files::browse(&p)) {
        Ok(v) => json_response(&v),
        Err(e) => error(e),
    }
}

pub async fn read(State(app): State<App>, Query(q): Query<HashMap<String, String>>) -> Response {
    let offset = match q.get("offset").map(|s| s.parse::<i64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return text(
                StatusCode::BAD_REQUEST,
                "Failed to parse offset: not a number",
            )
        }
    };
    let length = match q.get("length").map(|s| s.parse::<i64>()) {
        None => None,
        Some(Ok(n)) if n < 0 => None,
        Some(Ok(n)) => Some(n as u64),
        Some(Err(_)) => {
            return text(
                StatusCode::BAD_REQUEST,
                "Failed to parse length: not a number",
            )
        }
    };
    match resolve(&app, &q)
        .await
        .and_then(|p| files::read(&p, offset, length))
    {
        Ok(v) => json_response(&v),
        Err(e) => error(e),
    }
}

pub async fn download(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = match resolve(&app, &q).await {
        Ok(p) => p,
        Err(e) => return error(e),
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            return text(
                StatusCode::NOT_FOUND,
                &format!("cannot open {}: {e}", path.display()),
            )
        }
    };
    if path.is_dir() {
        return text(StatusCode::BAD_REQUEST, "Cannot download a directory");
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let s = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", name.replace('"', "")),
        )
        .body(Body::from_stream(s))
        .unwrap_or_else(|_| {
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot build the response",
            )
        })
}
