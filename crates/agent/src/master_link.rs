//! The agent's session with the master: (re-)registers with a Hello, feeds the master's
//! messages to the loop, posts the loop's messages in order, and reconnects with backoff
//! when the stream breaks or the master stops pinging.

use crate::event_loop::Handle;
use rand::Rng;
use std::path::PathBuf;
use std::time::Duration;
use strata_agent_core::Input;
use strata_api::agent_link::{ToAgent, ToMaster, CONNECT_PATH, MESSAGE_PATH, SESSION_HEADER};
use strata_transport::{Client, EventStream};
use tokio::sync::{mpsc, watch};

/// Where the agent keeps the id the master gave it, so a restart re-registers as itself.
pub fn agent_id_path(work_dir: &std::path::Path) -> PathBuf {
    work_dir.join("meta").join("agent_id")
}

fn save_agent_id(work_dir: &std::path::Path, id: &str) {
    let path = agent_id_path(work_dir);
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, id)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)
    };
    if let Err(e) = write() {
        tracing::warn!(error = %e, path = %path.display(), "cannot save the agent id");
    }
}

/// Runs the link until the master refuses the agent.
pub async fn run(
    master: String,
    handle: Handle,
    to_master: mpsc::UnboundedReceiver<ToMaster>,
    refused: watch::Receiver<Option<String>>,
    work_dir: PathBuf,
) {
    let (session_tx, session_rx) = watch::channel::<Option<String>>(None);
    // The session the master called stale; only that session is dropped (a 409 for an
    // older session must not end the one that replaced it).
    let (stale_tx, stale_rx) = watch::channel::<Option<String>>(None);
    tokio::spawn(sender(master.clone(), session_rx, to_master, stale_tx));
    let client = Client::new(Duration::from_secs(10));
    let url = format!("http://{master}{CONNECT_PATH}");
    let mut backoff = Duration::from_millis(50);
    let mut failures = 0u32;
    loop {
        if refused.borrow().is_some() {
            return;
        }
        let Some(hello) = handle.read(|a, _| a.hello()).await else {
            return;
        };
        match client.stream(&url, &[], &hello).await {
            Ok(stream) => {
                failures = 0;
                backoff = Duration::from_millis(50);
                session_loop(stream, &handle, &session_tx, &stale_rx, &work_dir).await;
                let _ = session_tx.send(None);
                handle.tell(Input::MasterDisconnected).await;
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(error = %e, "cannot register with the master; retrying");
                }
            }
        }
        let jitter = rand::thread_rng().gen_range(0.5..1.0);
        tokio::time::sleep(backoff.mul_f64(jitter)).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn session_loop(
    mut stream: EventStream,
    handle: &Handle,
    session_tx: &watch::Sender<Option<String>>,
    stale: &watch::Receiver<Option<String>>,
    work_dir: &std::path::Path,
) {
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next::<ToAgent>()).await;
    let registered = match first {
        Ok(Ok(Some(ToAgent::Registered(r)))) => r,
        Ok(Ok(Some(ToAgent::Shutdown(s)))) => {
            handle
                .tell(Input::Master(Box::new(ToAgent::Shutdown(s))))
                .await;
            return;
        }
        other => {
            tracing::warn!(?other, "master did not answer the hello with REGISTERED");
            return;
        }
    };
    save_agent_id(work_dir, registered.agent_id.as_str());
    tracing::info!(agent_id = %registered.agent_id, "registered with the master");
    let silence = Duration::from_secs_f64((registered.ping_interval_seconds * 5.0).max(1.0) + 1.0);
    let session = registered.session.clone();
    let mut stale = stale.clone();
    let _ = session_tx.send(Some(session.clone()));
    handle
        .tell(Input::Master(Box::new(ToAgent::Registered(registered))))
        .await;
    loop {
        let next = tokio::select! {
            r = tokio::time::timeout(silence, stream.next::<ToAgent>()) => r,
            Ok(_) = stale.wait_for(|s| s.as_deref() == Some(session.as_str())) => return,
        };
        match next {
            Ok(Ok(Some(msg))) => {
                let stop = matches!(msg, ToAgent::Shutdown(_));
                handle.tell(Input::Master(Box::new(msg))).await;
                if stop {
                    return;
                }
            }
            Ok(Ok(None)) => {
                tracing::warn!("master closed the session");
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "master session broke");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    seconds = silence.as_secs_f64(),
                    "no ping from the master; reconnecting"
                );
                return;
            }
        }
    }
}

/// Most messages sent in one POST.
const MAX_BATCH: usize = 512;

/// Posts messages to the master in order; whatever queued up while a POST was in flight
/// goes in the next one as a JSON array (bursts of status updates cost one round trip).
async fn sender(
    master: String,
    session: watch::Receiver<Option<String>>,
    mut rx: mpsc::UnboundedReceiver<ToMaster>,
    stale: watch::Sender<Option<String>>,
) {
    let client = Client::new(Duration::from_secs(10));
    let url = format!("http://{master}{MESSAGE_PATH}");
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let Some(current) = session.borrow().clone() else {
            continue; // not registered: status updates are resent after registration
        };
        match client
            .post_json(&url, &[(SESSION_HEADER, current.as_str())], &batch)
            .await
        {
            Ok(r) if r.status == 409 => {
                tracing::warn!("master says our session is stale; reconnecting");
                stale.send_replace(Some(current));
            }
            Ok(r) if r.status >= 300 => {
                tracing::warn!(status = r.status, body = %String::from_utf8_lossy(&r.body), "master rejected a message");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot post to the master"),
        }
    }
}
