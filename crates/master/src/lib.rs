//! The master's I/O shell (`strata master`): the HTTP server (scheduler, operator,
//! agent-link and read endpoints), the event loop that owns the master core, timers, and
//! the registry on disk.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod event_loop;
mod flags;
mod http;
mod streams;

pub use event_loop::{Handle, Request};
pub use flags::MasterFlags;

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;

/// A running master: its address and a way to stop it.
#[derive(Debug)]
pub struct RunningMaster {
    pub addr: SocketAddr,
    pub handle: Handle,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    pub server: tokio::task::JoinHandle<()>,
}

/// Starts a master on the current tokio runtime and returns once it is listening.
pub async fn start(flags: MasterFlags) -> anyhow::Result<RunningMaster> {
    let listener = tokio::net::TcpListener::bind((flags.ip.as_str(), flags.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", flags.ip, flags.port))?;
    let addr = listener.local_addr()?;
    let handle = event_loop::spawn(&flags, addr).await?;
    let app = http::router(Arc::new(http::AppState::new(handle.clone(), &flags)));
    let (shutdown, mut rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let stop = async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "master HTTP server failed");
        }
    });
    tracing::info!(%addr, "master listening");
    Ok(RunningMaster {
        addr,
        handle,
        shutdown,
        server,
    })
}
